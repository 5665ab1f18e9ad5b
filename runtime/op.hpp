#pragma once
// Op: one operation on its way through a driver: what it does (OpCode and its arguments), the
// buffer it owns while in flight, its result, and who resumes when it completes. The runtime
// owns every Op slot (Runtime::alloc_op); awaiters (runtime/op_awaiter.hpp) and drivers
// (runtime/driver.hpp) only borrow it.

#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <coroutine>
#include <cstdint>
#include <memory>

#include "runtime/buffer.hpp"

namespace lbd {

struct TaskCtx;
namespace detail {
class EpollDriver;
class IoUringDriver;
}  // namespace detail

/// Completion flag: more completions follow for this (multishot) op. Same bit as
/// IORING_CQE_F_MORE; the epoll driver never sets it.
inline constexpr uint32_t kCqeMore = 1u << 1;

/// What an Op does; each comment names the Op fields that code reads.
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

  /// Back to a fresh slot's state (Runtime::free_op).
  void reset();

 private:
  // The drivers' own bookkeeping: nothing else reads or writes it.
  friend class detail::EpollDriver;
  friend class detail::IoUringDriver;

  /// `waiting_for` when the op waits for nothing but its own completion (in both drivers).
  static constexpr uint8_t kNotWaiting = 0xff;

  // epoll: links of the per-fd wait list the op is queued on.
  Op* next = nullptr;
  Op* prev = nullptr;
  // What the op waits for inside its driver. epoll: the readiness it is queued for, that
  // driver's kIn or kOut (which wait list next/prev link). io_uring: kPolling while a poll
  // for readiness stands in for the op, which answered -EAGAIN (a non-blocking pipe or
  // eventfd); the op is issued again once the poll fires.
  uint8_t waiting_for = kNotWaiting;
  int tracked_fd = -1;  // io_uring: the fd this op is counted against until it completes
};

}  // namespace lbd
