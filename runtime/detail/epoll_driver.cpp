// The epoll driver turns readiness into completions: an operation first tries its syscall;
// only on EAGAIN does it wait, on an edge-triggered registration made once per fd, and it is
// retried when the fd becomes ready. Ops that complete at once never suspend their task.

#include "runtime/detail/epoll_driver.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "runtime/runtime.hpp"

namespace lbd::detail {

namespace {
// Op::waiting_for: the wait list (FdState::head/tail index) the op is queued on.
constexpr uint8_t kIn = 0;
constexpr uint8_t kOut = 1;

uint8_t direction_of(const Op* op) {
  switch (op->code) {
    case OpCode::kConnect:
    case OpCode::kSend:
    case OpCode::kWrite:
    case OpCode::kSendTo:
      return kOut;
    case OpCode::kSplice:
      return op->wait_out ? kOut : kIn;
    default:
      return kIn;
  }
}

int wait_fd_of(const Op* op) {
  if (op->code == OpCode::kSplice && op->wait_out) return op->fd_out;
  return op->fd;
}

int neg_errno(ssize_t r) { return r < 0 ? -errno : static_cast<int>(r); }
}  // namespace

std::unique_ptr<EpollDriver> EpollDriver::create(Runtime& rt, const RuntimeOptions& opts,
                                                 std::string& error) {
  UniqueFd ep(epoll_create1(EPOLL_CLOEXEC));
  if (!ep) {
    error = std::string("epoll_create1: ") + std::strerror(errno);
    return nullptr;
  }
  UniqueFd ev(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!ev) {
    error = std::string("eventfd: ") + std::strerror(errno);
    return nullptr;
  }
  epoll_event e{};
  e.events = EPOLLIN;
  e.data.fd = ev.get();
  if (epoll_ctl(ep.get(), EPOLL_CTL_ADD, ev.get(), &e) < 0) {
    error = std::string("epoll_ctl(eventfd): ") + std::strerror(errno);
    return nullptr;
  }
  return std::unique_ptr<EpollDriver>(new EpollDriver(rt, opts, std::move(ep), std::move(ev)));
}

EpollDriver::EpollDriver(Runtime& rt, const RuntimeOptions& opts, UniqueFd ep, UniqueFd ev)
    : rt_(rt), ep_(std::move(ep)), ev_(std::move(ev)), pool_(opts.recv_buffer_size, 256) {
  info_.name = "epoll";
  info_.features = "edge-triggered, try-first";
}

EpollDriver::~EpollDriver() {
  // Fail whatever still waits so detached slots are reclaimed.
  for (std::size_t fd = 0; fd < fds_.size(); ++fd) {
    if (fds_[fd].head[kIn] || fds_[fd].head[kOut]) forget_fd(static_cast<int>(fd));
  }
}

int EpollDriver::try_op(Op* op) {
  switch (op->code) {
    case OpCode::kNop:
      return 0;
    case OpCode::kAccept:
    case OpCode::kAcceptMulti: {
      op->a().addrlen = sizeof(op->a().addr);
      return neg_errno(accept4(op->fd, reinterpret_cast<sockaddr*>(&op->a().addr), &op->a().addrlen,
                               SOCK_NONBLOCK | SOCK_CLOEXEC));
    }
    case OpCode::kConnect: {
      if (op->len == 0) {
        op->len = 1;  // connect issued; later tries read the outcome
        int r = ::connect(op->fd, reinterpret_cast<const sockaddr*>(&op->a().addr), op->a().addrlen);
        if (r == 0) return 0;
        return errno == EINPROGRESS ? -EAGAIN : -errno;
      }
      int err = 0;
      socklen_t len = sizeof(err);
      if (getsockopt(op->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return -errno;
      if (err == 0) {
        // Writable with no error can also be spurious before the handshake ends: check.
        sockaddr_storage peer;
        socklen_t plen = sizeof(peer);
        if (getpeername(op->fd, reinterpret_cast<sockaddr*>(&peer), &plen) < 0)
          return errno == ENOTCONN ? -EAGAIN : -errno;
        return 0;
      }
      return -err;
    }
    case OpCode::kRecv: {
      auto spare = op->buf.spare();
      return neg_errno(::recv(op->fd, spare.data(), spare.size(), op->flags | MSG_DONTWAIT));
    }
    case OpCode::kRecvPooled: {
      Buffer b = pool_.take();
      ssize_t r = ::recv(op->fd, b.data(), b.capacity(), op->flags | MSG_DONTWAIT);
      if (r < 0) return -errno;  // b goes back to the pool
      b.set_size(r);
      op->buf = std::move(b);
      return static_cast<int>(r);
    }
    case OpCode::kSend: {
      ssize_t r = ::send(op->fd, op->buf.data() + op->offset, op->buf.size() - op->offset,
                         op->flags | MSG_DONTWAIT | MSG_NOSIGNAL);
      return neg_errno(r);
    }
    case OpCode::kRead: {
      auto spare = op->buf.spare();
      return neg_errno(::read(op->fd, spare.data(), spare.size()));
    }
    case OpCode::kWrite:
      return neg_errno(::write(op->fd, op->buf.data() + op->offset, op->buf.size() - op->offset));
    case OpCode::kRecvFrom: {
      auto spare = op->buf.spare();
      op->a().addrlen = sizeof(op->a().addr);
      return neg_errno(::recvfrom(op->fd, spare.data(), spare.size(), op->flags | MSG_DONTWAIT,
                                  reinterpret_cast<sockaddr*>(&op->a().addr), &op->a().addrlen));
    }
    case OpCode::kSendTo:
      return neg_errno(::sendto(op->fd, op->buf.data() + op->offset, op->buf.size() - op->offset,
                                op->flags | MSG_DONTWAIT | MSG_NOSIGNAL,
                                reinterpret_cast<const sockaddr*>(&op->a().addr), op->a().addrlen));
    case OpCode::kSplice:
      return neg_errno(::splice(op->fd, nullptr, op->fd_out, nullptr, op->len,
                                static_cast<unsigned>(op->flags) | SPLICE_F_NONBLOCK));
    case OpCode::kShutdown:
      return ::shutdown(op->fd, op->flags) < 0 ? -errno : 0;
    case OpCode::kPollIn: {
      pollfd p{op->fd, POLLIN | POLLRDHUP, 0};
      int r = ::poll(&p, 1, 0);
      if (r < 0) return -errno;
      return r == 0 ? -EAGAIN : p.revents;
    }
  }
  return -EINVAL;
}

static bool is_stream_read(const Op* op) {
  return op->code == OpCode::kRecv || op->code == OpCode::kRecvPooled || op->code == OpCode::kPollIn;
}

bool EpollDriver::worth_trying(const Op* op) const {
  if (!is_stream_read(op)) return true;
  auto fd = static_cast<std::size_t>(op->fd);
  return fd >= fds_.size() || !fds_[fd].registered || fds_[fd].maybe_readable || fds_[fd].peer_closed;
}

void EpollDriver::note_read(const Op* op, int res, std::size_t asked) {
  if (!is_stream_read(op)) return;
  auto fd = static_cast<std::size_t>(op->fd);
  if (fd >= fds_.size()) return;
  // EOF (0) and errors leave the flag set: the next read must see them again at once.
  bool short_read = op->code != OpCode::kPollIn && res > 0 && static_cast<std::size_t>(res) < asked;
  if (res == -EAGAIN || short_read) fds_[fd].maybe_readable = false;
}

bool EpollDriver::submit(Op* op) {
  if (!worth_trying(op)) return !wait(op);
  std::size_t asked = op->code == OpCode::kRecv ? op->buf.spare().size() : pool_.block_size();
  int r = try_op(op);
  if (r == -EINTR) r = try_op(op);
  note_read(op, r, asked);
  if (r != -EAGAIN) {
    op->res = r;
    return true;
  }
  return !wait(op);
}

bool EpollDriver::wait(Op* op) {
  int fd = wait_fd_of(op);
  if (fd < 0) {
    op->res = -EBADF;
    return false;
  }
  if (static_cast<std::size_t>(fd) >= fds_.size()) fds_.resize(fd + 64);
  FdState& st = fds_[fd];
  if (!st.registered) {
    epoll_event e{};
    e.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    e.data.fd = fd;
    if (epoll_ctl(ep_.get(), EPOLL_CTL_ADD, fd, &e) < 0) {
      int err = errno;
      if (err != EEXIST) {
        op->res = -err;
        return false;
      }
    }
    st.registered = true;
  }
  uint8_t dir = direction_of(op);
  op->waiting_for = dir;
  op->next = nullptr;
  op->prev = st.tail[dir];
  if (st.tail[dir]) st.tail[dir]->next = op;
  else st.head[dir] = op;
  st.tail[dir] = op;
  return true;
}

void EpollDriver::unlink(Op* op) {
  FdState& st = fds_[wait_fd_of(op)];
  uint8_t dir = op->waiting_for;
  if (op->prev) op->prev->next = op->next;
  else st.head[dir] = op->next;
  if (op->next) op->next->prev = op->prev;
  else st.tail[dir] = op->prev;
  op->next = op->prev = nullptr;
  op->waiting_for = Op::kNotWaiting;
}

void EpollDriver::cancel(Op* op) {
  if (op->waiting_for == Op::kNotWaiting || op->completed) return;
  int fd = wait_fd_of(op);
  if (fd < 0 || static_cast<std::size_t>(fd) >= fds_.size()) return;
  unlink(op);
  rt_.complete(op, -ECANCELED, 0);
}

void EpollDriver::forget_fd(int fd) {
  if (fd < 0 || static_cast<std::size_t>(fd) >= fds_.size()) return;
  FdState& st = fds_[fd];
  for (uint8_t dir : {kIn, kOut}) {
    while (Op* op = st.head[dir]) {
      unlink(op);
      rt_.complete(op, -ECANCELED, 0);
    }
  }
  // Ops on other fds that wait on this one (splice) keep their own fd's state.
  st.registered = false;
  st.maybe_readable = true;
  st.peer_closed = false;
}

void EpollDriver::retry(int fd, uint8_t dir) {
  // Only the ops queued before this edge: one that a completion queues again (write_all going
  // on after a short send) has just tried and met EAGAIN, so it waits for the next edge.
  Op* last = fds_[fd].tail[dir];
  while (Op* op = fds_[fd].head[dir]) {
    std::size_t asked = op->code == OpCode::kRecv ? op->buf.spare().size() : pool_.block_size();
    int r = try_op(op);
    note_read(op, r, asked);
    if (r == -EAGAIN) return;
    unlink(op);
    rt_.complete(op, r, 0);
    if (op == last) return;
  }
}

void EpollDriver::poll(int64_t timeout_ns) {
  epoll_event events[256];
  int n;
  if (timeout_ns < 0) {
    n = epoll_pwait2(ep_.get(), events, 256, nullptr, nullptr);
  } else {
    timespec ts{static_cast<time_t>(timeout_ns / 1000000000), static_cast<long>(timeout_ns % 1000000000)};
    n = epoll_pwait2(ep_.get(), events, 256, &ts, nullptr);
    if (n < 0 && errno == ENOSYS) {
      int ms = static_cast<int>((timeout_ns + 999999) / 1000000);
      n = epoll_wait(ep_.get(), events, 256, ms);
    }
  }
  if (n < 0 && errno == ENOSYS) n = epoll_wait(ep_.get(), events, 256, -1);
  for (int i = 0; i < n; ++i) {
    int fd = events[i].data.fd;
    uint32_t ev = events[i].events;
    if (fd == ev_.get()) {
      uint64_t v;
      while (::read(ev_.get(), &v, sizeof(v)) > 0) {
      }
      continue;
    }
    if (static_cast<std::size_t>(fd) >= fds_.size()) continue;
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) {
      fds_[fd].maybe_readable = true;
      if (ev & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) fds_[fd].peer_closed = true;
      retry(fd, kIn);
    }
    if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) retry(fd, kOut);
  }
}

void EpollDriver::wake() {
  uint64_t one = 1;
  ssize_t r = ::write(ev_.get(), &one, sizeof(one));
  (void)r;  // EAGAIN: the counter is saturated, so the loop is awake anyway
}

}  // namespace lbd::detail
