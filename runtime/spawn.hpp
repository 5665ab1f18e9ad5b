#pragma once
// Tasks on the loop: spawn() starts one and returns its JoinHandle, Runtime::block_on() runs
// the loop until one ends, yield_now() lets the others run first.

#include <cerrno>
#include <coroutine>
#include <cstdlib>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "runtime/cancel.hpp"
#include "runtime/frame_allocator.hpp"
#include "runtime/runtime.hpp"
#include "runtime/task.hpp"

namespace lbd {
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

  /// True once the task ended.
  bool is_finished() const { return st_->done; }
  /// What is_finished() reads, for Runtime::block_on's loop; valid while the handle lives.
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

}  // namespace lbd
