#pragma once
// Event: a one-thread flag that tasks can wait for. set() wakes every waiter; reset() arms it
// again. Waiting is cancellable (timeout(), with_cancel()).

#include <coroutine>
#include <cstddef>
#include <vector>

#include "runtime/cancel.hpp"
#include "runtime/result.hpp"
#include "runtime/runtime.hpp"

namespace lbd {

class Event {
 public:
  Event() = default;
  Event(const Event&) = delete;
  ~Event() {
    for (Waiter* w : waiters_) w->event_ = nullptr;
  }

  bool is_set() const { return set_; }
  void set() {
    set_ = true;
    auto waiters = std::move(waiters_);
    waiters_.clear();
    for (Waiter* w : waiters) w->wake(0);
  }
  void reset() { set_ = false; }

  class Waiter : public Cancellable {
   public:
    explicit Waiter(Event* e) : event_(e) {}
    Waiter(Waiter&& o) noexcept : event_(o.event_) {}
    ~Waiter() { unlink(); }
    bool await_ready() const { return event_ == nullptr || event_->set_; }
    bool await_suspend(std::coroutine_handle<> h) {
      ctx_ = detail::current_ctx;
      if (int reason = ctx_ ? ctx_->fired_reason() : 0) {
        error_ = reason;
        return false;
      }
      h_ = h;
      event_->waiters_.push_back(this);
      if (ctx_) ctx_->waiting = this;
      return true;
    }
    Result<void> await_resume() {
      if (ctx_ && ctx_->waiting == this) ctx_->waiting = nullptr;
      if (error_) return errno_error(error_);
      return {};
    }
    void cancel(int reason) override {
      if (!linked()) return;
      unlink();
      wake(reason);
    }

   private:
    friend class Event;
    bool linked() const {
      if (!event_) return false;
      for (Waiter* w : event_->waiters_)
        if (w == this) return true;
      return false;
    }
    void unlink() {
      if (!event_) return;
      auto& v = event_->waiters_;
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (v[i] == this) {
          v.erase(v.begin() + static_cast<std::ptrdiff_t>(i));
          return;
        }
      }
    }
    void wake(int reason) {
      error_ = reason;
      Runtime::current().schedule(h_, ctx_);
    }

    Event* event_;  // not owned; null once the event is gone
    std::coroutine_handle<> h_{};
    TaskCtx* ctx_ = nullptr;
    int error_ = 0;
  };

  /// Resumes once set() is called (at once if it already was).
  Waiter wait() { return Waiter(this); }

 private:
  std::vector<Waiter*> waiters_;
  bool set_ = false;
};

}  // namespace lbd
