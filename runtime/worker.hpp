#pragma once
// Workers: N threads, each with its own Runtime, optionally pinned to a CPU. Workers share no
// mutable state; they talk through Mailboxes, which post work to another worker's runtime and
// bring the result back to the caller's.

#include <coroutine>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "runtime/cancel.hpp"
#include "runtime/runtime.hpp"
#include "runtime/spawn.hpp"
#include "runtime/task.hpp"

namespace lbd {

namespace detail {
template <class T>
struct CallState {
  std::optional<T> value;
  bool done = false;
  std::coroutine_handle<> waiter{};
  TaskCtx* ctx = nullptr;
};
template <>
struct CallState<void> {
  bool done = false;
  std::coroutine_handle<> waiter{};
  TaskCtx* ctx = nullptr;
};

/// Awaits a CallState filled in on this thread by a posted job.
template <class T>
struct CallAwaiter {
  std::shared_ptr<CallState<T>> st;
  bool await_ready() const noexcept { return st->done; }
  void await_suspend(std::coroutine_handle<> h) noexcept {
    st->waiter = h;
    st->ctx = current_ctx;
  }
  T await_resume() {
    if constexpr (!std::is_void_v<T>) return std::move(*st->value);
  }
};

template <class T>
void deliver(Runtime* origin, std::shared_ptr<CallState<T>> st) {
  origin->post(make_remote_job([origin, st] {
    st->done = true;
    if (st->waiter) origin->schedule(st->waiter, st->ctx);
  }));
}

template <class T>
Task<void> run_call(Task<T> task, std::shared_ptr<CallState<T>> st, Runtime* origin) {
  if constexpr (std::is_void_v<T>) {
    co_await std::move(task);
  } else {
    st->value.emplace(co_await std::move(task));
  }
  deliver(origin, st);
}
}  // namespace detail

/// A handle to post work to one runtime from any thread.
class Mailbox {
 public:
  explicit Mailbox(Runtime* target) : target_(target) {}

  /// Runs `make_task()` (a callable returning Task<T>) as a task on the target runtime and
  /// awaits its result on the calling runtime. The target is woken at once (eventfd).
  template <class F>
  auto call(F make_task) {
    using T = typename decltype(make_task())::value_type;
    auto st = std::make_shared<detail::CallState<T>>();
    Runtime* origin = &Runtime::current();
    target_->post(make_remote_job([make_task = std::move(make_task), st, origin]() mutable {
      (void)spawn(detail::run_call<T>(make_task(), st, origin));
    }));
    return detail::CallAwaiter<T>{st};
  }

  /// Runs `fn()` on the target's thread; fire and forget.
  template <class F>
  void post(F fn) {
    target_->post(make_remote_job(std::move(fn)));
  }

  Runtime* runtime() const { return target_; }

 private:
  Runtime* target_;  // not owned: the worker thread owns its runtime
};

struct WorkerOptions {
  unsigned count = 0;  // 0: one per CPU
  bool pin = false;    // pin worker i to CPU i % ncpu
  RuntimeOptions runtime;
};

class WorkerPool {
 public:
  /// Body of each worker: called on the worker's thread, inside its runtime.
  using Entry = std::function<Task<void>(unsigned index)>;

  /// Starts the workers; returns once every runtime exists (so mailboxes work).
  WorkerPool(WorkerOptions opts, Entry entry);
  /// Joins the threads (each ends when its entry task returns).
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;

  unsigned size() const { return static_cast<unsigned>(threads_.size()); }
  Mailbox mailbox(unsigned i) const { return Mailbox(runtimes_[i]); }
  void join();

  static unsigned default_count();

 private:
  std::vector<std::thread> threads_;
  std::vector<Runtime*> runtimes_;  // not owned: each lives on its thread's stack
};

/// Runs `fn` on a small shared thread pool (for blocking work: getaddrinfo, files) and awaits
/// its result on the calling runtime.
template <class F>
auto spawn_blocking(F fn) -> detail::CallAwaiter<std::invoke_result_t<F>>;

namespace detail {
void submit_blocking(std::function<void()> job);
}

template <class F>
auto spawn_blocking(F fn) -> detail::CallAwaiter<std::invoke_result_t<F>> {
  using T = std::invoke_result_t<F>;
  auto st = std::make_shared<detail::CallState<T>>();
  Runtime* origin = &Runtime::current();
  detail::submit_blocking([fn = std::move(fn), st, origin]() mutable {
    if constexpr (std::is_void_v<T>) {
      fn();
    } else {
      st->value.emplace(fn());
    }
    detail::deliver(origin, st);
  });
  return detail::CallAwaiter<T>{st};
}

}  // namespace lbd
