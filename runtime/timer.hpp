#pragma once
// Timers on the loop: sleep_until() and sleep_for(), Interval for periodic ticks, and
// timeout(), which bounds any awaitable. They all arm nodes in the runtime's TimerQueue: no
// syscall per timer.

#include <cerrno>
#include <coroutine>
#include <type_traits>
#include <utility>

#include "runtime/cancel.hpp"
#include "runtime/clock.hpp"
#include "runtime/result.hpp"
#include "runtime/runtime.hpp"
#include "runtime/task.hpp"
#include "runtime/timer_queue.hpp"

namespace lbd {

/// Suspends until `deadline`. Result<void>: an error only when cancelled or timed out.
class SleepAwaiter : public CancellableWait {
 public:
  explicit SleepAwaiter(Clock::time_point deadline) { node_.deadline = deadline; }
  SleepAwaiter(SleepAwaiter&& o) noexcept : node_(o.node_) { node_.index = TimerNode::kNotQueued; }
  ~SleepAwaiter() { Runtime::current().timers().remove(&node_); }

  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) {
    if (!park(h)) return false;
    node_.fire = &SleepAwaiter::on_fire;
    node_.owner = this;
    Runtime::current().timers().add(&node_);
    return true;
  }
  Result<void> await_resume() {
    if (int reason = unpark()) return errno_error(reason);
    return {};
  }
  void cancel(int reason) override {
    if (!node_.queued()) return;
    Runtime::current().timers().remove(&node_);
    wake(reason);
  }

 private:
  static void on_fire(TimerNode* n) { static_cast<SleepAwaiter*>(n->owner)->wake(); }

  TimerNode node_;
};

/// Resumes once `deadline` passed (on the next loop turn when it has already).
inline SleepAwaiter sleep_until(Clock::time_point deadline) { return SleepAwaiter(deadline); }
/// Resumes once `d` passed.
inline SleepAwaiter sleep_for(Duration d) { return SleepAwaiter(Clock::now() + d); }

/// Ticks every `period`. A tick that is late does not cause a burst: the next deadline is the
/// first multiple of `period` after now (missed ticks are skipped).
class Interval {
 public:
  explicit Interval(Duration period) : period_(period), next_(Clock::now() + period) {}
  /// Resumes at the next tick.
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

namespace detail {
/// timeout()'s deadline: fires the scope it guards with ETIMEDOUT.
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

}  // namespace lbd
