#pragma once
// The driver interface: one completion-style backend per runtime. A driver starts operations,
// cancels them, and waits for completions; each completed operation is handed back to the
// runtime with its result. One file per implementation (detail/io_uring_driver.cpp,
// detail/epoll_driver.cpp; a kqueue driver would be a third file behind the same interface).

#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <coroutine>
#include <cstdint>
#include <memory>
#include <string>

#include "runtime/buffer.hpp"

namespace lbd {

class Runtime;
struct TaskCtx;

/// Completion flag: more completions follow for this (multishot) op. Same bit as
/// IORING_CQE_F_MORE; the epoll driver never sets it.
inline constexpr uint32_t kCqeMore = 1u << 1;

enum class IoMode { kAuto, kIoUring, kEpoll };

enum class OpCode : uint8_t {
  kNop,
  kAccept,      // fd = listener; result = new fd
  kAcceptMulti, // multishot accept on io_uring; every CQE goes to on_cqe
  kConnect,     // fd = socket, addr
  kRecv,        // recv into buf.spare()
  kRecvPooled,  // recv into a buffer the driver picks (provided ring / plain pool)
  kSend,        // send buf bytes [offset, size)
  kRead,        // read(2) into buf.spare() (signalfd, eventfd, pipes, files)
  kWrite,       // write(2) of buf bytes [offset, size)
  kRecvFrom,    // recvfrom into buf.spare(); fills addr
  kSendTo,      // sendto of buf to addr
  kSplice,      // splice(fd -> fd_out, len)
  kShutdown,    // shutdown(fd, how = flags)
  kPollIn,      // completes once fd is readable, at EOF or failed; result = poll revents
};

/// An in-flight operation. Slots are owned by the runtime, never by the awaiting coroutine:
/// when the awaiter goes away first, the slot is marked detached and freed when the kernel's
/// completion arrives, so the kernel never writes into freed memory.
struct Op {
  OpCode code = OpCode::kNop;
  int fd = -1;
  int fd_out = -1;  // splice target
  int flags = 0;    // MSG_* for send/recv, `how` for shutdown, SPLICE_F_* for splice
  uint32_t len = 0; // splice length
  bool wait_out = false;  // splice: the socket side is fd_out (wait for writability there)
  std::size_t offset = 0;  // send/write start within buf
  Buffer buf;              // owned while in flight
  /// Address state, for the ops that need one (connect, accept, recvfrom, sendto). Kept out
  /// of line so that the slot of a plain read or write, which an idle connection holds, stays
  /// small.
  struct AddressPart {
    sockaddr_storage addr{};
    socklen_t addrlen = 0;
    msghdr msg{};  // recvfrom/sendto via recvmsg/sendmsg on io_uring
    iovec iov{};
  };
  /// Taken from the runtime on first use and given back when the slot is freed, so a slot
  /// reused for a read (what an idle connection holds) does not keep it.
  std::unique_ptr<AddressPart> address_part;
  AddressPart& a();

  int32_t res = 0;
  uint32_t cqe_flags = 0;

  // Who to resume. When `detached`, nobody: the runtime frees the slot on completion.
  std::coroutine_handle<> waiter{};
  TaskCtx* ctx = nullptr;
  bool detached = false;
  bool completed = false;
  bool cancel_requested = false;
  int cancel_reason = 0;  // errno reported when a cancel wins (ECANCELED, ETIMEDOUT)
  /// A completion's result as the awaiter reports it: a cancel that won ends with its reason.
  int32_t reason_if_cancelled(int32_t r) const {
    return cancel_requested && (r == -ECANCELED || r == -EINTR) ? -cancel_reason : r;
  }

  // Multishot ops: called for every completion instead of resuming a waiter.
  void (*on_cqe)(Op* op, int32_t res, uint32_t cqe_flags) = nullptr;
  void* owner = nullptr;  // the object on_cqe works for; null once that object is gone

  // Driver-private links (epoll wait lists).
  Op* next = nullptr;
  Op* prev = nullptr;
  uint8_t wait_dir = 0xff;  // 0xff: not on a wait list
  int tracked_fd = -1;      // io_uring: the fd this op is counted against until it completes

  void reset();
};

/// What a driver reports about itself at start-up.
struct DriverInfo {
  std::string name;    // "io_uring" or "epoll"
  std::string reason;  // why this driver was chosen
  std::string features;  // e.g. "defer_taskrun single_issuer buf_ring multishot_accept"
};

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
  DriverInfo& info_mut() { return info_; }

 protected:
  DriverInfo info_;
};

struct RuntimeOptions;
/// Picks and builds a driver: io_uring unless it is missing, denied or forced off.
std::unique_ptr<Driver> make_driver(Runtime& rt, const RuntimeOptions& opts);

}  // namespace lbd
