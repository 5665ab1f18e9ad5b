#pragma once
// Drain: a worker's graceful stop as its sessions see it. Once it has started, a session
// finishes the request (or relay) it is in and closes; a keep-alive connection idling between
// requests closes at once. The worker starts it (SIGTERM, or stopping now); sessions only ask.

#include "runtime/cancel.hpp"

namespace lbd::proxy {

class Drain {
 public:
  Drain() = default;
  Drain(const Drain&) = delete;
  Drain& operator=(const Drain&) = delete;

  /// True from start() on.
  bool started() const { return started_; }
  /// Starts draining: every wait tied to idle_wake() fails with ECANCELED now.
  void start() {
    started_ = true;
    idle_wake_.cancel();
  }
  /// What a session ties its wait for the next request to (CancelRegion), so that the drain
  /// ends that wait. A wait inside a request is not tied to it: that request finishes.
  CancelSource* idle_wake() { return &idle_wake_; }

 private:
  bool started_ = false;
  CancelSource idle_wake_;
};

}  // namespace lbd::proxy
