#pragma once

#include <liburing.h>

#include <memory>
#include <string>
#include <vector>

#include "runtime/detail/plain_pool.hpp"
#include "runtime/driver.hpp"
#include "runtime/unique_fd.hpp"

namespace lbd {
struct RuntimeOptions;
}

namespace lbd::detail {

class IoUringDriver final : public Driver {
 public:
  /// Sets up a ring and probes what we need; null (with `error` saying why) when io_uring is
  /// missing, denied (seccomp, kernel.io_uring_disabled) or lacks an opcode.
  static std::unique_ptr<IoUringDriver> create(Runtime& rt, const RuntimeOptions& opts, std::string& error);
  ~IoUringDriver() override;

  bool submit(Op* op) override;
  void cancel(Op* op) override;
  void poll(int64_t timeout_ns) override;
  void wake() override;
  void forget_fd(int fd) override;
  bool has_multishot_accept() const override { return multishot_accept_; }

 private:
  class RingPool;

  IoUringDriver(Runtime& rt, const RuntimeOptions& opts);
  bool init(const RuntimeOptions& opts, std::string& error);
  bool setup_buf_ring(const RuntimeOptions& opts, std::string& why);
  io_uring_sqe* get_sqe();
  void prep(Op* op);
  void arm_wake();
  void handle(io_uring_cqe* cqe);
  void reap();
  void track(Op* op);
  void untrack(Op* op);

  Runtime& rt_;
  io_uring ring_{};
  bool ring_ok_ = false;
  bool defer_taskrun_ = false;
  bool multishot_accept_ = false;
  unsigned features_ = 0;
  UniqueFd wake_fd_;
  std::size_t in_kernel_ = 0;  // op SQEs whose final CQE has not arrived
  std::vector<uint32_t> fd_ops_;  // ops in flight per fd, so closing an fd can cancel them

  void* buf_ring_mem_ = nullptr;
  std::size_t buf_ring_bytes_ = 0;
  unsigned buf_count_ = 0;
  std::unique_ptr<RingPool> ring_pool_;
  PlainPool fallback_pool_;
};

}  // namespace lbd::detail
