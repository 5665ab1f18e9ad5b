#pragma once

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

class EpollDriver final : public Driver {
 public:
  static std::unique_ptr<EpollDriver> create(Runtime& rt, const RuntimeOptions& opts, std::string& error);
  ~EpollDriver() override;

  bool submit(Op* op) override;
  void cancel(Op* op) override;
  void poll(int64_t timeout_ns) override;
  void wake() override;
  void forget_fd(int fd) override;

 private:
  EpollDriver(Runtime& rt, const RuntimeOptions& opts, UniqueFd ep, UniqueFd ev);
  /// Runs the op's syscall once; -EAGAIN means "wait for readiness".
  int try_op(Op* op);
  /// Whether a read on `op->fd` is worth trying now; records what a completed read tells.
  bool worth_trying(const Op* op) const;
  void note_read(const Op* op, int res, std::size_t asked);
  /// Queues `op` until its fd is ready. False (with op->res set) if it cannot wait.
  bool wait(Op* op);
  void unlink(Op* op);
  void retry(int fd, uint8_t dir);

  struct FdState {
    Op* head[2] = {nullptr, nullptr};  // FIFO of ops waiting to read [0] / write [1]
    Op* tail[2] = {nullptr, nullptr};
    bool registered = false;
    // False once a read found the socket drained (EAGAIN or a short read); an EPOLLIN edge
    // sets it again. A read on a drained socket waits for that edge instead of trying a
    // syscall that would only say EAGAIN: in request/response traffic that try fails almost
    // every time, since the peer has not answered yet.
    bool maybe_readable = true;
    // The peer closed or the socket failed (RDHUP, HUP, ERR seen): that stays readable without
    // a new edge, so reads always try from then on.
    bool peer_closed = false;
  };

  Runtime& rt_;
  UniqueFd ep_;
  UniqueFd ev_;
  std::vector<FdState> fds_;
  PlainPool pool_;
};

}  // namespace lbd::detail
