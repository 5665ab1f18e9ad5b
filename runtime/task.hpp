#pragma once
// Task<T>: a lazy coroutine. Nothing runs until it is awaited (or spawned). A task that finishes
// while its awaiter is still on the stack returns to it; one that finishes later, resumed by
// the loop, resumes its awaiter by symmetric transfer. Either way await loops do not grow the
// stack.

#include <coroutine>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <utility>

#include "runtime/frame_allocator.hpp"

namespace lbd {

template <class T = void>
class Task;

namespace detail {

struct PromiseBase : FrameAllocated {
  std::coroutine_handle<> continuation_ = std::noop_coroutine();

  std::suspend_always initial_suspend() noexcept { return {}; }

  // Set while the awaiter's await_suspend is inside resume() of this task. A task that finishes
  // then returns to that await_suspend instead of resuming its awaiter from deep in the stack:
  // await loops stay flat even where the compiler does not turn symmetric transfer into a tail
  // call (GCC at -O0, or with ASan).
  bool running_inline_ = false;
  bool finished_inline_ = false;

  struct FinalAwaiter {
    bool await_ready() noexcept { return false; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
      auto& p = h.promise();
      if (p.running_inline_) {
        p.finished_inline_ = true;
        return std::noop_coroutine();
      }
      return p.continuation_;
    }
    void await_resume() noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }

  // The data plane does not throw. An exception that escapes a task is a bug: say so and stop.
  [[noreturn]] void unhandled_exception() noexcept {
    try {
      throw;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "lbd: fatal: exception escaped a task: %s\n", e.what());
    } catch (...) {
      std::fprintf(stderr, "lbd: fatal: unknown exception escaped a task\n");
    }
    std::abort();
  }
};

template <class T>
struct TaskPromise : PromiseBase {
  std::optional<T> value_;
  Task<T> get_return_object() noexcept;
  template <class U>
  void return_value(U&& v) {
    value_.emplace(std::forward<U>(v));
  }
  T take() { return std::move(*value_); }
};

template <>
struct TaskPromise<void> : PromiseBase {
  Task<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void take() {}
};

}  // namespace detail

template <class T>
class [[nodiscard]] Task {
 public:
  using promise_type = detail::TaskPromise<T>;
  using value_type = T;
  using Handle = std::coroutine_handle<promise_type>;

  Task() = default;
  explicit Task(Handle h) : h_(h) {}
  Task(Task&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  Task& operator=(Task&& o) noexcept {
    if (this != &o) {
      if (h_) h_.destroy();
      h_ = std::exchange(o.h_, {});
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() {
    if (h_) h_.destroy();
  }

  bool valid() const { return bool(h_); }

  struct Awaiter {
    Handle h;
    bool await_ready() noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> caller) noexcept {
      auto& p = h.promise();
      p.continuation_ = caller;
      p.running_inline_ = true;
      h.resume();
      p.running_inline_ = false;
      return !p.finished_inline_;  // finished already: carry on without suspending
    }
    T await_resume() { return h.promise().take(); }
  };
  Awaiter operator co_await() && noexcept { return Awaiter{h_}; }

  /// Hands the coroutine over (used by spawn); the Task is empty afterwards.
  Handle release() { return std::exchange(h_, {}); }

 private:
  Handle h_{};
};

namespace detail {
template <class T>
Task<T> TaskPromise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<TaskPromise<T>>::from_promise(*this));
}
inline Task<void> TaskPromise<void>::get_return_object() noexcept {
  return Task<void>(std::coroutine_handle<TaskPromise<void>>::from_promise(*this));
}
}  // namespace detail

namespace detail {
template <class A>
decltype(auto) get_awaiter(A&& a) {
  if constexpr (requires { std::forward<A>(a).operator co_await(); }) {
    return std::forward<A>(a).operator co_await();
  } else {
    return std::forward<A>(a);
  }
}
}  // namespace detail

/// The type `co_await a` yields, for an rvalue `a`.
template <class A>
using await_result_t = decltype(detail::get_awaiter(std::declval<A>()).await_resume());

}  // namespace lbd
