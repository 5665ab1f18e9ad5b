#pragma once
// Event: a one-thread flag that tasks can wait for. set() wakes every waiter; reset() arms it
// again. Waiting is cancellable (timeout(), with_cancel()).

#include <coroutine>
#include <cstddef>
#include <vector>

#include "runtime/cancel.hpp"
#include "runtime/result.hpp"

namespace lbd {

/// A flag tasks wait for (see above). One thread only.
class Event {
 public:
  Event() = default;
  Event(const Event&) = delete;
  ~Event() {
    for (Waiter* w : waiters_) w->event_ = nullptr;
  }

  /// True from set() until reset().
  bool is_set() const { return set_; }
  /// Sets the flag and wakes every waiter.
  void set() {
    set_ = true;
    auto waiters = std::move(waiters_);
    waiters_.clear();
    for (Waiter* w : waiters) w->wake(0);
  }
  /// Clears the flag: waits from now on suspend until the next set().
  void reset() { set_ = false; }

  /// Awaits set(). Result<void>: an error only when cancelled or timed out.
  class Waiter : public CancellableWait {
   public:
    explicit Waiter(Event* e) : event_(e) {}
    Waiter(Waiter&& o) noexcept : event_(o.event_) {}
    ~Waiter() { unlink(); }
    bool await_ready() const { return event_ == nullptr || event_->set_; }
    bool await_suspend(std::coroutine_handle<> h) {
      if (!park(h)) return false;
      event_->waiters_.push_back(this);
      return true;
    }
    Result<void> await_resume() {
      if (int reason = unpark()) return errno_error(reason);
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

    Event* event_;  // not owned; null once the event is gone
  };

  /// Resumes once set() is called (at once if it already was).
  Waiter wait() { return Waiter(this); }

 private:
  std::vector<Waiter*> waiters_;
  bool set_ = false;
};

}  // namespace lbd
