#pragma once
// The driver interface: one completion-style backend per runtime. A driver starts operations,
// cancels them, and waits for completions; each completed operation is handed back to the
// runtime with its result. One file per implementation (detail/io_uring_driver.cpp,
// detail/epoll_driver.cpp; a kqueue driver would be a third file behind the same interface).

#include <cstdint>
#include <memory>
#include <string>

#include "runtime/op.hpp"

namespace lbd {

class Runtime;
struct RuntimeOptions;

/// What a driver reports about itself at start-up.
struct DriverInfo {
  std::string name;    // "io_uring" or "epoll"
  std::string reason;  // why this driver was chosen
  std::string features;  // e.g. "defer_taskrun single_issuer buf_ring multishot_accept"
};

/// One I/O backend (see above). Called only on its runtime's thread, except wake().
class Driver {
 public:
  virtual ~Driver() = default;

  /// Starts `op`. Returns true when it completed at once (op->res is set and the caller must
  /// not suspend); false when the completion will arrive through Runtime::complete().
  virtual bool submit(Op* op) = 0;
  /// Asks the kernel to stop `op`. Its completion still arrives (maybe with success).
  virtual void cancel(Op* op) = 0;
  /// Flushes queued submissions and waits up to `timeout_ns` (-1: no limit, 0: just poll)
  /// for completions, handing each to the runtime.
  virtual void poll(int64_t timeout_ns) = 0;
  /// Thread-safe: makes a blocking poll() return.
  virtual void wake() = 0;
  /// Called before `fd` is closed: drops per-fd state and fails ops still waiting on it.
  virtual void forget_fd(int fd) = 0;
  /// Whether OpCode::kAcceptMulti works (the listener then keeps one op armed; it stays armed
  /// while completions carry IORING_CQE_F_MORE).
  virtual bool has_multishot_accept() const { return false; }

  const DriverInfo& info() const { return info_; }
  /// For make_driver(), which records why this driver was chosen.
  DriverInfo& info_mut() { return info_; }

 protected:
  DriverInfo info_;
};

/// Picks and builds a driver: io_uring unless it is missing, denied or forced off.
std::unique_ptr<Driver> make_driver(Runtime& rt, const RuntimeOptions& opts);

}  // namespace lbd
