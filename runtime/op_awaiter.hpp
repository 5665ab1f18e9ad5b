#pragma once
// Awaiting one Op: OpAwaiter submits it and resumes the task when it completes; IoAwaiter adds
// the result each kind of operation reports. The net types (runtime/net.hpp) return these.

#include <cerrno>
#include <coroutine>
#include <utility>

#include "runtime/cancel.hpp"
#include "runtime/clock.hpp"
#include "runtime/op.hpp"
#include "runtime/runtime.hpp"
#include "runtime/timer_queue.hpp"

namespace lbd {

/// Submits one Op and resumes when it completes. The Op slot stays with the runtime until the
/// kernel is done with it, even if this awaiter (its task) is destroyed first.
class OpAwaiter : public Cancellable {
 public:
  /// Takes over `op`, a slot from Runtime::alloc_op() with its code and arguments set.
  explicit OpAwaiter(Op* op) : op_(op) {}
  OpAwaiter(OpAwaiter&& o) noexcept : op_(std::exchange(o.op_, nullptr)) {
    timer_.deadline = o.timer_.deadline;
    timed_ = o.timed_;
  }
  OpAwaiter(const OpAwaiter&) = delete;
  ~OpAwaiter() {
    if (!op_) return;
    Runtime& rt = Runtime::current();
    rt.timers().remove(&timer_);
    if (submitted_ && !op_->completed) {
      op_->detached = true;  // the completion frees it
      if (!op_->cancel_requested) {
        op_->cancel_requested = true;
        op_->cancel_reason = ECANCELED;
        rt.driver().cancel(op_);
      }
    } else {
      rt.free_op(op_);
    }
  }

  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) {
    TaskCtx* ctx = detail::current_ctx;
    if (int reason = ctx ? ctx->fired_reason() : 0) {
      op_->res = -reason;
      op_->completed = true;
      return false;
    }
    op_->waiter = h;
    op_->ctx = ctx;
    submitted_ = true;
    if (Runtime::current().driver().submit(op_)) {
      op_->completed = true;
      return false;
    }
    ctx_ = ctx;
    if (ctx) ctx->waiting = this;
    if (timed_) {
      timer_.fire = &OpAwaiter::on_deadline;
      timer_.owner = this;
      Runtime::current().timers().add(&timer_);
    }
    return true;
  }
  /// The completed op; still owned by this awaiter (freed with it).
  Op* finish() {
    if (ctx_ && ctx_->waiting == this) ctx_->waiting = nullptr;
    if (timed_) Runtime::current().timers().remove(&timer_);
    return op_;
  }

  void cancel(int reason) override {
    if (!op_ || op_->completed || op_->cancel_requested) return;
    op_->cancel_requested = true;
    op_->cancel_reason = reason;
    Runtime::current().driver().cancel(op_);
  }

 protected:
  /// Arms a deadline for this one operation: past it the op is cancelled and resumes with
  /// ETIMEDOUT. Cheaper than timeout(): no coroutine frame, one timer-heap entry.
  void set_deadline(Clock::time_point deadline) {
    timer_.deadline = deadline;
    timed_ = true;
  }

  Op* op_;
  TaskCtx* ctx_ = nullptr;
  bool submitted_ = false;
  bool timed_ = false;
  TimerNode timer_;

 private:
  static void on_deadline(TimerNode* n) { static_cast<OpAwaiter*>(n->owner)->cancel(ETIMEDOUT); }
};

/// An OpAwaiter whose result is computed by `Extract::get(Op*)`.
template <class Extract>
class IoAwaiter : public OpAwaiter {
 public:
  using OpAwaiter::OpAwaiter;
  /// An awaiter whose op fails with ETIMEDOUT once `limit` passes, like with_timeout().
  IoAwaiter(Op* op, Duration limit) : OpAwaiter(op) { set_deadline(Clock::now() + limit); }
  auto await_resume() { return Extract::get(finish()); }
  /// `co_await stream.read_pooled().with_timeout(5s)`: ETIMEDOUT once `d` passes.
  IoAwaiter&& with_timeout(Duration d) && {
    set_deadline(Clock::now() + d);
    return std::move(*this);
  }
};

}  // namespace lbd
