#pragma once
// Cancellation: how a suspended task is interrupted. Every spawned task has a TaskCtx: a stack
// of CancelScopes and the one Cancellable it is suspended on. Firing a scope interrupts that
// wait and fails every later await inside the scope, so the task unwinds promptly with the
// scope's reason. Built on it here: CancelSource (cancels from elsewhere on the thread),
// CancelLink and CancelRegion (tie a task or a block of one to a source), with_cancel(). Also
// built on it: timeout() (runtime/timer.hpp) and JoinHandle::cancel() (runtime/spawn.hpp).

#include <cerrno>
#include <coroutine>
#include <type_traits>
#include <utility>

#include "runtime/runtime.hpp"
#include "runtime/task.hpp"

namespace lbd {

struct TaskCtx;

/// A region of a task inside which awaits can be cancelled together (a timeout, a
/// CancelSource, or the whole task). Scopes nest; a fired scope fails every await inside it.
struct CancelScope {
  CancelScope* parent = nullptr;
  TaskCtx* ctx = nullptr;
  int fired = 0;  // errno the awaits inside fail with, once fired
  // Links for CancelSource's list of attached scopes.
  CancelScope* src_next = nullptr;
  CancelScope* src_prev = nullptr;
};

/// Something a task is suspended on that can be interrupted.
class Cancellable {
 public:
  /// Ends the wait early. The task resumes with `reason` (after the kernel is done with any
  /// buffer involved). A no-op when the wait already completed.
  virtual void cancel(int reason) = 0;

 protected:
  ~Cancellable() = default;
};

/// Per spawned task: its cancel scopes and what it is waiting on. Nested Tasks awaited inline
/// share their root's context.
struct TaskCtx {
  CancelScope root_scope;
  CancelScope* scope = &root_scope;
  Cancellable* waiting = nullptr;  // not owned: an awaiter in this task's frames

  TaskCtx() { root_scope.ctx = this; }
  /// The reason of a fired scope around the current await, innermost first; 0 when none fired.
  int fired_reason() const {
    for (const CancelScope* s = scope; s; s = s->parent)
      if (s->fired) return s->fired;
    return 0;
  }
  /// Fires scope `s` (active in this task) and interrupts the current wait.
  void fire(CancelScope* s, int reason) {
    if (s->fired) return;
    s->fired = reason;
    if (Cancellable* w = std::exchange(waiting, nullptr)) w->cancel(reason);
  }
};

namespace detail {
/// The context of the task running on this thread; null outside tasks. The loop sets it before
/// it resumes a task (Runtime::run_once), so an awaiter reads its own task's context here.
inline thread_local TaskCtx* current_ctx = nullptr;

/// Activates a scope for the current task while alive.
class ScopeGuard {
 public:
  ScopeGuard() {
    ctx_ = current_ctx;
    if (ctx_) {
      scope_.ctx = ctx_;
      scope_.parent = ctx_->scope;
      ctx_->scope = &scope_;
    }
  }
  ~ScopeGuard() {
    if (ctx_) ctx_->scope = scope_.parent;
  }
  ScopeGuard(const ScopeGuard&) = delete;
  CancelScope& scope() { return scope_; }
  void fire(int reason) {
    if (ctx_) ctx_->fire(&scope_, reason);
  }

 private:
  CancelScope scope_;
  TaskCtx* ctx_ = nullptr;
};
}  // namespace detail

/// The part every awaiter shares that parks its task on something other than an Op (an
/// Event, a listener's accept queue, a timer) and can be cancelled while parked. The awaiter
/// calls park() in await_suspend, unpark() in await_resume, and wake() when what it waits for
/// happens or cancel() interrupts it; it implements cancel() itself, since only it knows how
/// to unhook from what it waits on.
class CancellableWait : public Cancellable {
 protected:
  CancellableWait() = default;
  ~CancellableWait() = default;

  /// await_suspend's start. False, with the reason kept for unpark(), when a scope around this
  /// await has fired already: the task then goes on at once and the awaiter registers nothing.
  /// True: `h` is stored and this is the task's current wait; the awaiter now registers with
  /// what it waits on and suspends.
  bool park(std::coroutine_handle<> h) {
    ctx_ = detail::current_ctx;
    if (int reason = ctx_ ? ctx_->fired_reason() : 0) {
      reason_ = reason;
      return false;
    }
    h_ = h;
    if (ctx_) ctx_->waiting = this;
    return true;
  }
  /// await_resume's start: no longer the task's current wait. Returns why the wait ended: an
  /// errno (cancelled, timed out, or whatever wake() was given), or 0 when it was woken.
  int unpark() {
    if (ctx_ && ctx_->waiting == this) ctx_->waiting = nullptr;
    return reason_;
  }
  /// Resumes the parked task on the loop: what it waits for happened (unpark() reports 0), or,
  /// with `reason`, the wait was cut short. Precondition: park() returned true, and this is the
  /// first wake.
  void wake() { Runtime::current().schedule(h_, ctx_); }
  void wake(int reason) {
    reason_ = reason;
    wake();
  }

 private:
  std::coroutine_handle<> h_{};
  TaskCtx* ctx_ = nullptr;  // the parked task's context; null outside tasks
  int reason_ = 0;
};

/// Cancels a group of awaits from elsewhere in the same thread: `with_cancel(op, source)`
/// resumes with ECANCELED once `source.cancel()` is called.
class CancelSource {
 public:
  CancelSource() = default;
  CancelSource(const CancelSource&) = delete;
  // Precondition for destruction: no with_cancel() on this source is still running.
  ~CancelSource() = default;
  /// True once cancel() was called.
  bool is_cancelled() const { return cancelled_; }
  /// Fires every scope tied to this source, now and from now on: their tasks' awaits fail with
  /// `reason`. Only the first call counts.
  void cancel(int reason = ECANCELED) {
    if (cancelled_) return;
    cancelled_ = true;
    reason_ = reason;
    for (CancelScope* s = head_; s;) {
      CancelScope* next = s->src_next;
      s->ctx->fire(s, reason);
      s = next;
    }
  }
  /// What cancel() was given; 0 before it is called.
  int reason() const { return reason_; }

  // For CancelLink and CancelRegion: ties `s` to this source, or unties it.
  void attach(CancelScope* s) {
    s->src_next = head_;
    s->src_prev = nullptr;
    if (head_) head_->src_prev = s;
    head_ = s;
  }
  void detach(CancelScope* s) {
    if (s->src_prev) s->src_prev->src_next = s->src_next;
    else if (head_ == s) head_ = s->src_next;
    if (s->src_next) s->src_next->src_prev = s->src_prev;
    s->src_next = s->src_prev = nullptr;
  }

 private:
  CancelScope* head_ = nullptr;
  bool cancelled_ = false;
  int reason_ = 0;
};

/// Ties the whole current task to `source` while alive: source->cancel() cancels whatever the
/// task awaits from then on, like JoinHandle::cancel(). Costs no coroutine frame, unlike
/// with_cancel(); the task's root scope can be linked to one source at a time.
class CancelLink {
 public:
  /// A null `source` links nothing.
  explicit CancelLink(CancelSource* source) : source_(source), ctx_(source ? detail::current_ctx : nullptr) {
    if (!ctx_) return;
    if (source_->is_cancelled()) {
      ctx_->root_scope.fired = source_->reason();
    } else {
      source_->attach(&ctx_->root_scope);
    }
  }
  ~CancelLink() {
    if (ctx_ && !source_->is_cancelled()) source_->detach(&ctx_->root_scope);
  }
  CancelLink(const CancelLink&) = delete;
  CancelLink& operator=(const CancelLink&) = delete;

 private:
  CancelSource* source_;  // not owned; outlives the link
  TaskCtx* ctx_;          // the linked task's context
};

/// While alive, `source->cancel()` fails the current task's awaits (and nothing else of the
/// task's): with_cancel() for a block of a coroutine, without its coroutine frame. Regions nest
/// with timeout() and with_cancel() scopes; destroy them in reverse order of creation (a local
/// in a coroutine body does that). A null `source` ties nothing. Precondition: `source`
/// outlives the region and lives on this thread.
class CancelRegion {
 public:
  explicit CancelRegion(CancelSource* source) : source_(source) {
    if (!source_) return;
    if (source_->is_cancelled()) {
      guard_.scope().fired = source_->reason();
    } else if (guard_.scope().ctx) {
      source_->attach(&guard_.scope());
    }
  }
  ~CancelRegion() {
    if (source_ && guard_.scope().ctx && !source_->is_cancelled()) source_->detach(&guard_.scope());
  }
  CancelRegion(const CancelRegion&) = delete;
  CancelRegion& operator=(const CancelRegion&) = delete;

 private:
  detail::ScopeGuard guard_;
  CancelSource* source_;  // not owned
};

/// Awaits `a` inside a scope that `source->cancel()` fires. Precondition: `source` outlives
/// the await and lives on this thread.
template <class A>
Task<await_result_t<A>> with_cancel(A a, CancelSource* source) {
  CancelRegion region(source);
  if constexpr (std::is_void_v<await_result_t<A>>) {
    co_await std::move(a);
  } else {
    co_return co_await std::move(a);
  }
}

}  // namespace lbd
