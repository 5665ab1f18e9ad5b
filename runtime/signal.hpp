#pragma once
// SignalSet: signals delivered through a signalfd and awaited like any other operation.
// Create it on the main thread before starting other threads: the signals are blocked in the
// creating thread, and threads started afterwards inherit that mask.

#include <initializer_list>

#include "runtime/net.hpp"

namespace lbd {

class SignalSet {
 public:
  static Result<SignalSet> create(std::initializer_list<int> signals);
  /// The next signal's number.
  Task<Result<int>> next();
  int fd() const { return fd_.fd(); }

 private:
  explicit SignalSet(Socket fd) : fd_(std::move(fd)) {}
  Socket fd_;  // a signalfd; Socket only for its close-with-driver behaviour
};

}  // namespace lbd
