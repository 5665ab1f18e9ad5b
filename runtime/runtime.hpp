#pragma once
// Runtime: one per thread. Its loop runs ready tasks, submits every queued operation in one
// call, waits for completions with the nearest timer as the deadline, and wakes the tasks
// whose operations completed.
//
//   Runtime rt;                          // picks io_uring, else epoll (LBD_IO overrides)
//   int n = rt.block_on(main_task());    // runs until main_task ends
//
// Inside a task: spawn(), yield_now(), sleep_for(), timeout(), and the net types.

#include <atomic>
#include <cerrno>
#include <coroutine>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "runtime/driver.hpp"
#include "runtime/timer_queue.hpp"
#include "runtime/result.hpp"
#include "runtime/task.hpp"

namespace lbd {

// ---------------------------------------------------------------------------------------------
// Cancellation plumbing shared by every awaitable.

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
inline thread_local TaskCtx* current_ctx = nullptr;
}

// ---------------------------------------------------------------------------------------------

struct RuntimeOptions {
  IoMode io = IoMode::kAuto;        // LBD_IO ("io_uring" | "epoll" | "auto"), when set, overrides this
  unsigned ring_entries = 1024;    // io_uring submission queue size
  bool provided_buffers = true;    // io_uring: recv from a provided buffer ring when possible
  std::size_t recv_buffer_size = 16 * 1024;
  unsigned provided_buffer_count = 256;  // power of two
};

/// Work posted to a runtime from another thread.
class RemoteJob {
 public:
  virtual ~RemoteJob() = default;
  virtual void run() = 0;
};

template <class F>
std::unique_ptr<RemoteJob> make_remote_job(F f) {
  struct Job final : RemoteJob {
    explicit Job(F fn) : fn_(std::move(fn)) {}
    void run() override { fn_(); }
    F fn_;
  };
  return std::make_unique<Job>(std::move(f));
}

/// Where the runtime's own diagnostics go (driver choice, accept pauses). lbd points it at
/// spdlog; the default writes to stderr. Level: 0 debug, 1 info, 2 warn, 3 error.
using LogSink = void (*)(int level, const std::string& message);
void set_runtime_log_sink(LogSink sink);
void runtime_log(int level, const std::string& message);

template <class T>
class JoinHandle;

class Runtime {
 public:
  explicit Runtime(RuntimeOptions opts = {});
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  /// The runtime of the calling thread. Precondition: one exists.
  static Runtime& current() { return *current_; }
  static Runtime* current_or_null() { return current_; }

  /// Runs the loop until `task` ends and returns its result.
  template <class T>
  T block_on(Task<T> task);

  /// Thread-safe: runs `job` on this runtime's thread soon, waking it if it sleeps.
  void post(std::unique_ptr<RemoteJob> job);

  const DriverInfo& driver_info() const { return driver_->info(); }
  Driver& driver() { return *driver_; }
  const RuntimeOptions& options() const { return opts_; }
  /// The loop's clock, read once per turn.
  Clock::time_point now() const { return now_; }
  std::size_t live_tasks() const { return live_tasks_; }
  /// True while the runtime is being destroyed: its tasks are gone, its driver reaps the last
  /// completions. Nothing may be spawned then.
  bool tearing_down() const { return tearing_down_; }
  std::size_t ops_in_flight() const { return ops_in_flight_; }

  // --- for awaitables and drivers -----------------------------------------------------------
  void schedule(std::coroutine_handle<> h, TaskCtx* ctx) { ready_.push_back({h, ctx}); }
  Op* alloc_op();
  void free_op(Op* op);
  /// The out-of-line address state of an op (see Op::a()); returned by free_op.
  std::unique_ptr<Op::AddressPart> take_address_part();
  /// A driver hands back a completed operation.
  void complete(Op* op, int32_t res, uint32_t cqe_flags);
  TimerQueue& timers() { return timers_; }
  void task_started() { ++live_tasks_; }
  void task_ended() { --live_tasks_; }
  void register_root(std::coroutine_handle<> h);
  void unregister_root(std::coroutine_handle<> h);

 private:
  /// One loop turn. `stop`: when it becomes true while tasks run, return before waiting.
  void run_once(const bool* stop = nullptr);
  void drain_inbox();

  struct Ready {
    std::coroutine_handle<> h;
    TaskCtx* ctx;
  };

  static inline thread_local Runtime* current_ = nullptr;

  RuntimeOptions opts_;
  std::unique_ptr<Driver> driver_;
  std::deque<Ready> ready_;
  TimerQueue timers_;
  Clock::time_point now_;

  std::vector<Op*> free_ops_;
  std::vector<std::unique_ptr<Op[]>> op_blocks_;
  std::vector<std::unique_ptr<Op::AddressPart>> free_address_parts_;
  std::size_t ops_in_flight_ = 0;
  std::size_t live_tasks_ = 0;
  bool tearing_down_ = false;
  std::vector<std::coroutine_handle<>> roots_;  // live spawned tasks, destroyed at teardown

  std::mutex inbox_mu_;
  std::vector<std::unique_ptr<RemoteJob>> inbox_;
  std::atomic<bool> notified_{false};
};

// ---------------------------------------------------------------------------------------------
// spawn / JoinHandle

namespace detail {

template <class T>
struct JoinState {
  std::optional<T> value;
  bool done = false;
  std::coroutine_handle<> joiner{};
  TaskCtx* joiner_ctx = nullptr;
  TaskCtx* child_ctx = nullptr;  // the running task's context; null once it ended
  void set(T v) { value.emplace(std::move(v)); }
  T take() { return std::move(*value); }
};
template <>
struct JoinState<void> {
  bool done = false;
  std::coroutine_handle<> joiner{};
  TaskCtx* joiner_ctx = nullptr;
  TaskCtx* child_ctx = nullptr;
  void take() {}
};

struct RootPromise : FrameAllocated {
  TaskCtx ctx;
  Runtime* rt = nullptr;

  struct RootTask {
    std::coroutine_handle<RootPromise> h;
  };
  RootTask get_return_object() noexcept {
    return {std::coroutine_handle<RootPromise>::from_promise(*this)};
  }
  std::suspend_always initial_suspend() noexcept { return {}; }
  std::suspend_never final_suspend() noexcept { return {}; }
  void return_void() noexcept {}
  [[noreturn]] void unhandled_exception() noexcept { std::abort(); }
  ~RootPromise() {
    if (rt) {
      rt->unregister_root(std::coroutine_handle<RootPromise>::from_promise(*this));
      rt->task_ended();
    }
  }
};
using RootTask = RootPromise::RootTask;

}  // namespace detail
}  // namespace lbd

template <class... Args>
struct std::coroutine_traits<lbd::detail::RootTask, Args...> {
  using promise_type = lbd::detail::RootPromise;
};

namespace lbd {
namespace detail {

template <class T>
void finish_join(const std::shared_ptr<JoinState<T>>& st) {
  st->done = true;
  st->child_ctx = nullptr;
  if (st->joiner) Runtime::current().schedule(std::exchange(st->joiner, {}), st->joiner_ctx);
}

template <class T>
RootTask run_root(Task<T> task, std::shared_ptr<JoinState<T>> st) {
  if constexpr (std::is_void_v<T>) {
    co_await std::move(task);
  } else {
    st->set(co_await std::move(task));
  }
  finish_join(st);
}

}  // namespace detail

/// Awaits a spawned task's result. Dropping the handle detaches the task: it keeps running.
template <class T>
class [[nodiscard]] JoinHandle {
 public:
  explicit JoinHandle(std::shared_ptr<detail::JoinState<T>> st) : st_(std::move(st)) {}

  bool is_finished() const { return st_->done; }
  const bool* finished_flag() const { return &st_->done; }
  /// Cancels the task cooperatively: its current and later awaits fail with ECANCELED.
  void cancel() {
    if (TaskCtx* c = st_->child_ctx) c->fire(&c->root_scope, ECANCELED);
  }
  /// Precondition: is_finished().
  T take() { return st_->take(); }

  // Joining waits for the task to end; it is not itself interruptible.
  bool await_ready() const noexcept { return st_->done; }
  void await_suspend(std::coroutine_handle<> h) noexcept {
    st_->joiner = h;
    st_->joiner_ctx = detail::current_ctx;
  }
  T await_resume() { return st_->take(); }

 private:
  std::shared_ptr<detail::JoinState<T>> st_;
};

/// Starts `task` on the current thread's runtime. It first runs on the next loop turn.
template <class T>
JoinHandle<T> spawn(Task<T> task) {
  Runtime& rt = Runtime::current();
  auto st = std::make_shared<detail::JoinState<T>>();
  auto root = detail::run_root<T>(std::move(task), st);
  auto& p = root.h.promise();
  p.rt = &rt;
  st->child_ctx = &p.ctx;
  rt.task_started();
  rt.register_root(root.h);
  rt.schedule(root.h, &p.ctx);
  return JoinHandle<T>(std::move(st));
}

template <class T>
T Runtime::block_on(Task<T> task) {
  auto h = spawn(std::move(task));
  while (!h.is_finished()) run_once(h.finished_flag());
  return h.take();
}

/// Goes to the back of the run queue, letting every other ready task run first.
struct yield_now {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) noexcept {
    Runtime::current().schedule(h, detail::current_ctx);
  }
  void await_resume() const noexcept {}
};

// ---------------------------------------------------------------------------------------------
// Operation awaiters

/// Submits one Op and resumes when it completes. The Op slot stays with the runtime until the
/// kernel is done with it, even if this awaiter (its task) is destroyed first.
class OpAwaiter : public Cancellable {
 public:
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

// ---------------------------------------------------------------------------------------------
// Timers

/// Suspends until `deadline`. Result<void>: an error only when cancelled or timed out.
class SleepAwaiter : public Cancellable {
 public:
  explicit SleepAwaiter(Clock::time_point deadline) { node_.deadline = deadline; }
  SleepAwaiter(SleepAwaiter&& o) noexcept : node_(o.node_) { node_.index = TimerNode::kNotQueued; }
  ~SleepAwaiter() { Runtime::current().timers().remove(&node_); }

  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) {
    ctx_ = detail::current_ctx;
    if (int reason = ctx_ ? ctx_->fired_reason() : 0) {
      error_ = reason;
      return false;
    }
    h_ = h;
    node_.fire = &SleepAwaiter::on_fire;
    node_.owner = this;
    Runtime::current().timers().add(&node_);
    if (ctx_) ctx_->waiting = this;
    return true;
  }
  Result<void> await_resume() {
    if (ctx_ && ctx_->waiting == this) ctx_->waiting = nullptr;
    if (error_) return errno_error(error_);
    return {};
  }
  void cancel(int reason) override {
    if (!node_.queued()) return;
    Runtime::current().timers().remove(&node_);
    error_ = reason;
    Runtime::current().schedule(h_, ctx_);
  }

 private:
  static void on_fire(TimerNode* n) {
    auto* self = static_cast<SleepAwaiter*>(n->owner);
    Runtime::current().schedule(self->h_, self->ctx_);
  }

  TimerNode node_;
  std::coroutine_handle<> h_{};
  TaskCtx* ctx_ = nullptr;
  int error_ = 0;
};

inline SleepAwaiter sleep_until(Clock::time_point deadline) { return SleepAwaiter(deadline); }
inline SleepAwaiter sleep_for(Duration d) { return SleepAwaiter(Clock::now() + d); }

/// Ticks every `period`. A tick that is late does not cause a burst: the next deadline is the
/// first multiple of `period` after now (missed ticks are skipped).
class Interval {
 public:
  explicit Interval(Duration period) : period_(period), next_(Clock::now() + period) {}
  SleepAwaiter tick() {
    auto deadline = next_;
    auto now = Clock::now();
    next_ += period_;
    if (next_ <= now) next_ = now + period_ - (now - next_) % period_;
    return SleepAwaiter(deadline);
  }

 private:
  Duration period_;
  Clock::time_point next_;
};

// ---------------------------------------------------------------------------------------------
// Scoped cancellation: timeout() and CancelSource

namespace detail {
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

struct ScopeTimer {
  TimerNode node;
  static void on_fire(TimerNode* n) { static_cast<ScopeGuard*>(n->owner)->fire(ETIMEDOUT); }
  ~ScopeTimer() { Runtime::current().timers().remove(&node); }
};
}  // namespace detail

/// Awaits `a`; if it has not finished after `d`, the operation it is waiting on is cancelled
/// and it resumes with ETIMEDOUT (after the kernel let go of its buffer). Every await inside
/// fails with ETIMEDOUT from then on, so `a` ends promptly with that error.
template <class A>
Task<await_result_t<A>> timeout(A a, Duration d) {
  detail::ScopeGuard guard;
  detail::ScopeTimer timer;
  timer.node.owner = &guard;
  timer.node.deadline = Clock::now() + d;
  timer.node.fire = &detail::ScopeTimer::on_fire;
  Runtime::current().timers().add(&timer.node);
  if constexpr (std::is_void_v<await_result_t<A>>) {
    co_await std::move(a);
  } else {
    co_return co_await std::move(a);
  }
}

/// Cancels a group of awaits from elsewhere in the same thread: `with_cancel(op, source)`
/// resumes with ECANCELED once `source.cancel()` is called.
class CancelSource {
 public:
  CancelSource() = default;
  CancelSource(const CancelSource&) = delete;
  // Precondition for destruction: no with_cancel() on this source is still running.
  ~CancelSource() = default;
  bool is_cancelled() const { return cancelled_; }
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
  int reason() const { return reason_; }

  // Internal: scope attachment.
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
