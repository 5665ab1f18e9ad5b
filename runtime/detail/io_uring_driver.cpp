// The io_uring driver: operations become SQEs queued during a loop turn and submitted together
// with the wait for completions (one io_uring_enter per turn). Each SQE's user_data is its Op
// slot; SQEs whose completions we ignore (cancels) carry 0, the wake-up poll carries a tag.

#include "runtime/detail/io_uring_driver.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "runtime/runtime.hpp"

static_assert(lbd::kCqeMore == IORING_CQE_F_MORE);

namespace lbd::detail {

namespace {
constexpr uint64_t kWakeTag = 1;   // user_data of the eventfd poll
constexpr uint64_t kIgnoreTag = 0;  // user_data of cancel SQEs
constexpr uint16_t kBufGroup = 7;

// Op::waiting_for: a POLL_ADD for the op's fd is in flight in its place (see handle()).
constexpr uint8_t kPolling = 1;

const char* const kRequiredOps[][2] = {
    {"accept", nullptr}, {"connect", nullptr}, {"recv", nullptr},       {"send", nullptr},
    {"read", nullptr},   {"write", nullptr},   {"async_cancel", nullptr}, {"shutdown", nullptr},
    {"splice", nullptr}, {"recvmsg", nullptr}, {"sendmsg", nullptr},    {"poll_add", nullptr},
};
const int kRequiredCodes[] = {IORING_OP_ACCEPT, IORING_OP_CONNECT, IORING_OP_RECV,
                              IORING_OP_SEND,   IORING_OP_READ,    IORING_OP_WRITE,
                              IORING_OP_ASYNC_CANCEL, IORING_OP_SHUTDOWN, IORING_OP_SPLICE,
                              IORING_OP_RECVMSG, IORING_OP_SENDMSG, IORING_OP_POLL_ADD};
}  // namespace

/// The provided-buffer ring: slots live in one mmap'd area; a Buffer taken from a completion
/// gives its slot back to the kernel when it dies.
class IoUringDriver::RingPool final : public BufferPool {
 public:
  RingPool(io_uring_buf_ring* ring, char* base, unsigned count, std::size_t size)
      : ring_(ring), base_(base), count_(count), size_(size) {}
  void give_back(char* data, uint32_t slot) override {
    io_uring_buf_ring_add(ring_, data, static_cast<unsigned>(size_), static_cast<unsigned short>(slot),
                          io_uring_buf_ring_mask(count_), 0);
    io_uring_buf_ring_advance(ring_, 1);
  }
  Buffer wrap(unsigned slot, int32_t len) {
    Buffer b(base_ + static_cast<std::size_t>(slot) * size_, size_, this, slot);
    b.set_size(len > 0 ? static_cast<std::size_t>(len) : 0);
    return b;
  }

 private:
  io_uring_buf_ring* ring_;
  char* base_;
  unsigned count_;
  std::size_t size_;
};

std::unique_ptr<IoUringDriver> IoUringDriver::create(Runtime& rt, const RuntimeOptions& opts,
                                                     std::string& error) {
  auto d = std::unique_ptr<IoUringDriver>(new IoUringDriver(rt, opts));
  if (!d->init(opts, error)) return nullptr;
  return d;
}

IoUringDriver::IoUringDriver(Runtime& rt, const RuntimeOptions& opts)
    : rt_(rt), fallback_pool_(opts.recv_buffer_size, 256) {}

bool IoUringDriver::init(const RuntimeOptions& opts, std::string& error) {
  // Try the most capable setup first, then fewer flags (older kernels reject unknown ones).
  const unsigned attempts[] = {
      IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
      IORING_SETUP_COOP_TASKRUN,
      0,
  };
  int ret = -EINVAL;
  unsigned used = 0;
  for (unsigned flags : attempts) {
    io_uring_params p{};
    p.flags = flags | IORING_SETUP_CQSIZE;
    p.cq_entries = opts.ring_entries * 4;
    ret = io_uring_queue_init_params(opts.ring_entries, &ring_, &p);
    if (ret == 0) {
      used = flags;
      features_ = p.features;
      break;
    }
    if (ret == -EPERM || ret == -ENOSYS || ret == -ENOMEM) break;  // fewer flags will not help
  }
  if (ret < 0) {
    error = std::string("io_uring_setup failed: ") + std::strerror(-ret);
    return false;
  }
  ring_ok_ = true;
  defer_taskrun_ = (used & IORING_SETUP_DEFER_TASKRUN) != 0;

  io_uring_probe* probe = io_uring_get_probe_ring(&ring_);
  if (!probe) {
    error = "io_uring probe failed";
    return false;
  }
  for (std::size_t i = 0; i < std::size(kRequiredCodes); ++i) {
    if (!io_uring_opcode_supported(probe, kRequiredCodes[i])) {
      io_uring_free_probe(probe);
      error = std::string("io_uring lacks opcode ") + kRequiredOps[i][0];
      return false;
    }
  }
  io_uring_free_probe(probe);
  if (!(features_ & IORING_FEAT_EXT_ARG)) {
    error = "io_uring lacks IORING_FEAT_EXT_ARG (kernel older than 5.11)";
    return false;
  }

  wake_fd_.reset(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake_fd_) {
    error = std::string("eventfd: ") + std::strerror(errno);
    return false;
  }
  arm_wake();

  std::string features;
  if (defer_taskrun_) features += "defer_taskrun single_issuer ";
  else if (used & IORING_SETUP_COOP_TASKRUN) features += "coop_taskrun ";
  if (opts.provided_buffers) {
    std::string why;
    if (setup_buf_ring(opts, why)) {
      features += "buf_ring ";
    } else {
      runtime_log(1, "io_uring: provided buffer ring unavailable (" + why + "); recv uses plain buffers");
    }
  }
  multishot_accept_ = true;  // kernels without it answer -EINVAL; the listener then falls back
  features += "multishot_accept";
  info_.name = "io_uring";
  info_.features = features;
  return true;
}

bool IoUringDriver::setup_buf_ring(const RuntimeOptions& opts, std::string& why) {
  unsigned count = opts.provided_buffer_count;
  if (count == 0 || (count & (count - 1)) != 0 || count > 32768) {
    why = "provided_buffer_count must be a power of two <= 32768";
    return false;
  }
  std::size_t ring_bytes = count * sizeof(io_uring_buf);
  std::size_t total = ring_bytes + count * opts.recv_buffer_size;
  void* mem = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (mem == MAP_FAILED) {
    why = std::string("mmap: ") + std::strerror(errno);
    return false;
  }
  auto* br = static_cast<io_uring_buf_ring*>(mem);
  io_uring_buf_ring_init(br);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uint64_t>(br);
  reg.ring_entries = count;
  reg.bgid = kBufGroup;
  int r = io_uring_register_buf_ring(&ring_, &reg, 0);
  if (r < 0) {
    munmap(mem, total);
    why = std::string("register_buf_ring: ") + std::strerror(-r);
    return false;
  }
  buf_ring_mem_ = mem;
  buf_ring_bytes_ = total;
  buf_count_ = count;
  char* base = static_cast<char*>(mem) + ring_bytes;
  ring_pool_ = std::make_unique<RingPool>(br, base, count, opts.recv_buffer_size);
  for (unsigned i = 0; i < count; ++i) {
    io_uring_buf_ring_add(br, base + i * opts.recv_buffer_size, static_cast<unsigned>(opts.recv_buffer_size),
                          static_cast<unsigned short>(i), io_uring_buf_ring_mask(count), static_cast<int>(i));
  }
  io_uring_buf_ring_advance(br, static_cast<int>(count));
  return true;
}

IoUringDriver::~IoUringDriver() {
  if (!ring_ok_) return;
  // Teardown: cancel everything still in the kernel, reap those completions (bounded), and only
  // then close the ring and release the memory the kernel could have written into.
  if (in_kernel_ > 0) {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
    io_uring_sqe_set_data64(sqe, kIgnoreTag);
    auto deadline = Clock::now() + std::chrono::seconds(2);
    while (in_kernel_ > 0 && Clock::now() < deadline) poll(100'000'000);
    if (in_kernel_ > 0)
      runtime_log(2, "io_uring: " + std::to_string(in_kernel_) + " operations did not complete at shutdown");
  }
  io_uring_queue_exit(&ring_);
  ring_pool_.reset();
  if (buf_ring_mem_) munmap(buf_ring_mem_, buf_ring_bytes_);
}

io_uring_sqe* IoUringDriver::get_sqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (!sqe) {
    io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
  }
  return sqe;  // non-null: the queue was just flushed
}

void IoUringDriver::arm_wake() {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_poll_multishot(sqe, wake_fd_.get(), POLLIN);
  io_uring_sqe_set_data64(sqe, kWakeTag);
}

void IoUringDriver::prep(Op* op) {
  io_uring_sqe* sqe = get_sqe();
  if (op->waiting_for == kPolling) {
    bool out = op->code == OpCode::kWrite || op->code == OpCode::kSend || op->code == OpCode::kSendTo ||
               op->code == OpCode::kConnect || (op->code == OpCode::kSplice && op->wait_out);
    int fd = (op->code == OpCode::kSplice && op->wait_out) ? op->fd_out : op->fd;
    io_uring_prep_poll_add(sqe, fd, out ? POLLOUT : POLLIN);
    io_uring_sqe_set_data(sqe, op);
    ++in_kernel_;
    return;
  }
  switch (op->code) {
    case OpCode::kNop:
      io_uring_prep_nop(sqe);
      break;
    case OpCode::kAccept:
      op->a().addrlen = sizeof(op->a().addr);
      io_uring_prep_accept(sqe, op->fd, reinterpret_cast<sockaddr*>(&op->a().addr), &op->a().addrlen,
                           SOCK_NONBLOCK | SOCK_CLOEXEC);
      break;
    case OpCode::kAcceptMulti:
      io_uring_prep_multishot_accept(sqe, op->fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      break;
    case OpCode::kConnect:
      io_uring_prep_connect(sqe, op->fd, reinterpret_cast<const sockaddr*>(&op->a().addr), op->a().addrlen);
      break;
    case OpCode::kRecv: {
      auto spare = op->buf.spare();
      io_uring_prep_recv(sqe, op->fd, spare.data(), spare.size(), op->flags);
      break;
    }
    case OpCode::kRecvPooled:
      if (ring_pool_ && !op->buf.capacity()) {
        io_uring_prep_recv(sqe, op->fd, nullptr, 0, op->flags);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = kBufGroup;
      } else {
        if (!op->buf.capacity()) op->buf = fallback_pool_.take();
        io_uring_prep_recv(sqe, op->fd, op->buf.data(), op->buf.capacity(), op->flags);
      }
      break;
    case OpCode::kSend:
      io_uring_prep_send(sqe, op->fd, op->buf.data() + op->offset, op->buf.size() - op->offset,
                         op->flags | MSG_NOSIGNAL);
      break;
    case OpCode::kRead: {
      auto spare = op->buf.spare();
      io_uring_prep_read(sqe, op->fd, spare.data(), static_cast<unsigned>(spare.size()), ~0ULL);
      break;
    }
    case OpCode::kWrite:
      io_uring_prep_write(sqe, op->fd, op->buf.data() + op->offset,
                          static_cast<unsigned>(op->buf.size() - op->offset), ~0ULL);
      break;
    case OpCode::kRecvFrom: {
      auto spare = op->buf.spare();
      op->a().iov = {spare.data(), spare.size()};
      op->a().msg = {};
      op->a().msg.msg_name = &op->a().addr;
      op->a().msg.msg_namelen = sizeof(op->a().addr);
      op->a().msg.msg_iov = &op->a().iov;
      op->a().msg.msg_iovlen = 1;
      io_uring_prep_recvmsg(sqe, op->fd, &op->a().msg, op->flags);
      break;
    }
    case OpCode::kSendTo:
      op->a().iov = {op->buf.data() + op->offset, op->buf.size() - op->offset};
      op->a().msg = {};
      op->a().msg.msg_name = &op->a().addr;
      op->a().msg.msg_namelen = op->a().addrlen;
      op->a().msg.msg_iov = &op->a().iov;
      op->a().msg.msg_iovlen = 1;
      io_uring_prep_sendmsg(sqe, op->fd, &op->a().msg, op->flags | MSG_NOSIGNAL);
      break;
    case OpCode::kSplice:
      io_uring_prep_splice(sqe, op->fd, -1, op->fd_out, -1, op->len, static_cast<unsigned>(op->flags));
      break;
    case OpCode::kShutdown:
      io_uring_prep_shutdown(sqe, op->fd, op->flags);
      break;
    case OpCode::kPollIn:
      io_uring_prep_poll_add(sqe, op->fd, POLLIN | POLLRDHUP);
      break;
  }
  io_uring_sqe_set_data(sqe, op);
  ++in_kernel_;
}

bool IoUringDriver::submit(Op* op) {
  track(op);
  prep(op);
  return false;
}

void IoUringDriver::track(Op* op) {
  // A PollIn's owner (IdleWatch) cancels it before the socket closes; counting it would make
  // that close submit a second cancel, by fd, in a syscall of its own.
  if (op->fd < 0 || op->code == OpCode::kPollIn) return;
  auto fd = static_cast<std::size_t>(op->fd);
  if (fd >= fd_ops_.size()) fd_ops_.resize(fd + 64);
  ++fd_ops_[fd];
  op->tracked_fd = op->fd;
}

void IoUringDriver::untrack(Op* op) {
  if (op->tracked_fd < 0) return;
  --fd_ops_[static_cast<std::size_t>(op->tracked_fd)];
  op->tracked_fd = -1;
}

void IoUringDriver::cancel(Op* op) {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_cancel(sqe, op, 0);
  io_uring_sqe_set_data64(sqe, kIgnoreTag);
}

void IoUringDriver::forget_fd(int fd) {
  // An in-flight op holds its own reference to the file: closing the fd alone would neither
  // wake the task waiting on it nor really close the connection. Cancel them while the fd
  // still names the file (the cancel is submitted now, before the caller closes it).
  if (fd < 0 || static_cast<std::size_t>(fd) >= fd_ops_.size() || fd_ops_[fd] == 0) return;
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
  io_uring_sqe_set_data64(sqe, kIgnoreTag);
  io_uring_submit(&ring_);
}

void IoUringDriver::handle(io_uring_cqe* cqe) {
  uint64_t data = io_uring_cqe_get_data64(cqe);
  if (data == kIgnoreTag) return;
  if (data == kWakeTag) {
    uint64_t v;
    while (::read(wake_fd_.get(), &v, sizeof(v)) > 0) {
    }
    if (!(cqe->flags & IORING_CQE_F_MORE)) arm_wake();
    return;
  }
  auto* op = reinterpret_cast<Op*>(data);
  int32_t res = cqe->res;
  uint32_t flags = cqe->flags;
  if (!(flags & IORING_CQE_F_MORE)) --in_kernel_;

  if (op->waiting_for == kPolling) {
    // Readiness arrived for an op that had answered EAGAIN: issue it again.
    op->waiting_for = Op::kNotWaiting;
    if (res >= 0 && !op->cancel_requested) {
      prep(op);
      return;
    }
    untrack(op);
    rt_.complete(op, res < 0 ? res : -ECANCELED, 0);
    return;
  }
  if (res == -EAGAIN && op->code != OpCode::kAcceptMulti) {
    // Non-blocking fds (eventfd, signalfd, pipes) answer EAGAIN instead of parking: poll first.
    // An op whose cancel raced that answer ends as cancelled (or timed out), never as EAGAIN.
    if (op->cancel_requested) {
      res = -ECANCELED;
    } else {
      op->waiting_for = kPolling;
      prep(op);
      return;
    }
  }
  if (op->code == OpCode::kRecvPooled) {
    if (flags & IORING_CQE_F_BUFFER) {
      op->buf = ring_pool_->wrap(flags >> IORING_CQE_BUFFER_SHIFT, res);
    } else if (res == -ENOBUFS && !op->cancel_requested) {
      // The ring ran dry (many connections mid-transfer): read into a plain buffer instead.
      op->buf = fallback_pool_.take();
      prep(op);
      return;
    } else if (res > 0) {
      op->buf.set_size(res);  // a fallback plain buffer
    }
  }
  if (op->code == OpCode::kRecvFrom && res >= 0) op->a().addrlen = op->a().msg.msg_namelen;
  if (!(flags & IORING_CQE_F_MORE)) untrack(op);
  rt_.complete(op, res, flags);
}

void IoUringDriver::reap() {
  io_uring_cqe* cqe;
  unsigned head;
  unsigned count = 0;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    handle(cqe);
    ++count;
  }
  io_uring_cq_advance(&ring_, count);
}

void IoUringDriver::poll(int64_t timeout_ns) {
  if (timeout_ns == 0) {
    io_uring_submit_and_get_events(&ring_);
  } else {
    io_uring_cqe* cqe = nullptr;
    if (timeout_ns < 0) {
      io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, nullptr, nullptr);
    } else {
      __kernel_timespec ts{timeout_ns / 1000000000, timeout_ns % 1000000000};
      io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
    }
  }
  reap();
  // Completions handled above may have queued new SQEs (re-arms); they go out next turn.
}

void IoUringDriver::wake() {
  uint64_t one = 1;
  ssize_t r = ::write(wake_fd_.get(), &one, sizeof(one));
  (void)r;
}

}  // namespace lbd::detail
