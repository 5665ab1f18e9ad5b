#include "runtime/net.hpp"

#include <fcntl.h>
#include <poll.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <string>

#include "runtime/cancel.hpp"
#include "runtime/timer.hpp"

namespace lbd {

namespace detail {
Op* new_op(OpCode code, int fd) {
  Op* op = Runtime::current().alloc_op();
  op->code = code;
  op->fd = fd;
  return op;
}
}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Socket

void Socket::close() {
  if (!fd_) return;
  if (Runtime* rt = Runtime::current_or_null()) rt->driver().forget_fd(fd_.get());
  fd_.reset();
}

Result<SocketAddress> Socket::local_address() const {
  SocketAddress a;
  *a.size_ptr() = SocketAddress::capacity();
  if (getsockname(fd_.get(), a.data(), a.size_ptr()) < 0) return Error::last();
  return a;
}

Result<SocketAddress> Socket::peer_address() const {
  SocketAddress a;
  *a.size_ptr() = SocketAddress::capacity();
  if (getpeername(fd_.get(), a.data(), a.size_ptr()) < 0) return Error::last();
  return a;
}

Result<void> Socket::set_option(int level, int name, int value) {
  if (setsockopt(fd_.get(), level, name, &value, sizeof(value)) < 0) return Error::last();
  return {};
}

// ---------------------------------------------------------------------------------------------
// StreamSocket

IoAwaiter<detail::ExtractRead> StreamSocket::read(Buffer buf) {
  Op* op = detail::new_op(OpCode::kRecv, fd());
  op->buf = std::move(buf);
  return IoAwaiter<detail::ExtractRead>(op);
}

IoAwaiter<detail::ExtractPooled> StreamSocket::read_pooled() {
  return IoAwaiter<detail::ExtractPooled>(detail::new_op(OpCode::kRecvPooled, fd()));
}

IoAwaiter<detail::ExtractPooled> StreamSocket::read_pooled(Duration limit) {
  return IoAwaiter<detail::ExtractPooled>(detail::new_op(OpCode::kRecvPooled, fd()), limit);
}

IoAwaiter<detail::ExtractWrite> StreamSocket::write(Buffer buf, std::size_t offset) {
  Op* op = detail::new_op(OpCode::kSend, fd());
  op->buf = std::move(buf);
  op->offset = offset;
  return IoAwaiter<detail::ExtractWrite>(op);
}

WriteAllAwaiter StreamSocket::write_all(Buffer buf) {
  Op* op = detail::new_op(OpCode::kSend, fd());
  op->buf = std::move(buf);
  return WriteAllAwaiter(op);
}

// ---------------------------------------------------------------------------------------------
// WriteAllAwaiter

WriteAllAwaiter::WriteAllAwaiter(Op* op) : OpAwaiter(op) { op->on_cqe = &WriteAllAwaiter::on_cqe; }

bool WriteAllAwaiter::advance(Op* op) {
  if (op->res <= 0) return false;
  op->offset += static_cast<std::size_t>(op->res);
  return op->offset < op->buf.size();
}

bool WriteAllAwaiter::await_suspend(std::coroutine_handle<> h) {
  // Sends that complete at once (the usual case) loop here; the first that has to wait
  // suspends the task, and its completion carries on in on_cqe().
  while (!OpAwaiter::await_suspend(h)) {
    if (!advance(op_)) return false;
    op_->completed = false;
  }
  return true;
}

void WriteAllAwaiter::on_cqe(Op* op, int32_t res, uint32_t /*cqe_flags*/) {
  Runtime& rt = Runtime::current();
  if (op->detached) {  // the awaiter is gone; this was its cancelled send's last word
    rt.free_op(op);
    return;
  }
  op->res = res;
  for (;;) {
    if (op->cancel_requested) {
      // Stopped part-way: report why, even if this send itself got some bytes out.
      if (op->res > 0) op->offset += static_cast<std::size_t>(op->res);
      bool all_sent = op->offset == op->buf.size();
      op->res = op->res >= 0 && !all_sent ? -op->cancel_reason : op->reason_if_cancelled(op->res);
      break;
    }
    if (!advance(op)) break;
    op->res = 0;
    if (!rt.driver().submit(op)) return;  // waits again; on_cqe runs once more
  }
  op->completed = true;
  rt.schedule(op->waiter, op->ctx);
}

BufWriteResult WriteAllAwaiter::await_resume() {
  Op* op = finish();
  if (op->res < 0) return {errno_error(-op->res), std::move(op->buf)};
  if (op->offset < op->buf.size()) return {errno_error(EPIPE), std::move(op->buf)};
  return {Result<void>{}, std::move(op->buf)};
}

IoAwaiter<detail::ExtractSize> StreamSocket::splice(int in, int out, uint32_t len, bool wait_on_out) {
  Op* op = detail::new_op(OpCode::kSplice, in);
  op->fd_out = out;
  op->len = len;
  op->flags = SPLICE_F_MOVE;
  op->wait_out = wait_on_out;
  return IoAwaiter<detail::ExtractSize>(op);
}

Result<void> StreamSocket::shutdown_write() {
  if (::shutdown(fd(), SHUT_WR) < 0) return Error::last();
  return {};
}

// ---------------------------------------------------------------------------------------------
// IdleWatch

IdleWatch::IdleWatch(int fd, IdleWatchListener* listener) : rt_(&Runtime::current()), started_at_(rt_->polls()) {
  Op* op = detail::new_op(OpCode::kPollIn, fd);
  op->on_cqe = &IdleWatch::on_cqe;
  // Non-null while the watch wants the outcome: the listener, or the op itself when none.
  op->owner = listener ? static_cast<void*>(listener) : op;
  if (rt_->driver().submit(op)) op->completed = true;  // readable already
  op_ = op;
}

void IdleWatch::on_cqe(Op* op, int32_t res, uint32_t /*flags*/) {
  Runtime& rt = Runtime::current();
  if (!op->owner) {
    rt.free_op(op);  // stopped: this is the cancelled poll's last word
    return;
  }
  op->res = res;
  op->completed = true;  // readable, EOF, an error, or cancelled at teardown: unfit in any case
  if (op->owner != op && res != -ECANCELED && !rt.tearing_down())
    static_cast<IdleWatchListener*>(op->owner)->idle_watch_fired();
}

bool IdleWatch::fired() const { return op_ && op_->completed; }

bool IdleWatch::quiet() const {
  if (!op_ || op_->completed) return false;
  if (rt_->polls() != started_at_) return true;
  pollfd p{op_->fd, POLLIN | POLLRDHUP, 0};
  return ::poll(&p, 1, 0) == 0;
}

void IdleWatch::stop() {
  Op* op = std::exchange(op_, nullptr);
  if (!op) return;
  // Destroyed after its runtime (or on another thread): the slot went, or is not ours to touch.
  if (Runtime::current_or_null() != rt_) return;
  if (op->completed) {
    rt_->free_op(op);
    return;
  }
  op->owner = nullptr;  // the completion of the cancel frees the slot
  rt_->driver().cancel(op);
}

// ---------------------------------------------------------------------------------------------
// Connect

namespace {
Result<UniqueFd> new_socket(int family, int type) {
  UniqueFd fd(::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return Error::last();
  return fd;
}

IoAwaiter<detail::ExtractVoid> connect_op(int fd, const SocketAddress& addr) {
  Op* op = detail::new_op(OpCode::kConnect, fd);
  std::memcpy(&op->a().addr, addr.data(), addr.size());
  op->a().addrlen = addr.size();
  return IoAwaiter<detail::ExtractVoid>(op);
}
}  // namespace

Task<Result<TcpStream>> TcpStream::connect(SocketAddress addr, std::optional<Duration> limit) {
  auto fd = new_socket(addr.family(), SOCK_STREAM);
  if (!fd) co_return fd.error();
  TcpStream s(std::move(*fd));
  // Not `limit ? co_await ... : co_await ...`: g++ 12 mishandles co_await inside a conditional
  // expression (it destroyed a Result<Buffer> twice in proxy/core/tls_accept.cpp).
  Result<void> r;
  if (limit)
    r = co_await timeout(connect_op(s.fd(), addr), *limit);
  else
    r = co_await connect_op(s.fd(), addr);
  if (!r) co_return r.error();
  co_return std::move(s);
}

Result<void> TcpStream::set_nodelay(bool on) { return set_option(IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0); }

Task<Result<UnixStream>> UnixStream::connect(SocketAddress addr) {
  auto fd = new_socket(AF_UNIX, SOCK_STREAM);
  if (!fd) co_return fd.error();
  UnixStream s(std::move(*fd));
  Result<void> r = co_await connect_op(s.fd(), addr);
  if (!r) co_return r.error();
  co_return std::move(s);
}

// ---------------------------------------------------------------------------------------------
// Listeners

/// Accepted fds that arrived through a multishot accept and wait for accept() calls. Owned by
/// the listener; the armed op points back here through Op::owner until the listener goes.
struct StreamListener::AcceptQueue {
  std::deque<int> fds;
  int error = 0;          // last error completion, reported to the next accept()
  Op* op = nullptr;       // the armed multishot op, if any
  bool multishot = true;  // false once the kernel refused multishot accept
  AcceptWait* waiter = nullptr;
  ~AcceptQueue() {
    for (int fd : fds) ::close(fd);
  }
};

/// Suspends accept() until the multishot op delivers something.
class StreamListener::AcceptWait : public CancellableWait {
 public:
  explicit AcceptWait(AcceptQueue* q) : q_(q) {}
  ~AcceptWait() {
    if (q_ && q_->waiter == this) q_->waiter = nullptr;
  }
  /// The listener is closing and its queue goes away: resume with `reason` and forget the queue.
  void orphan(int reason) {
    q_->waiter = nullptr;
    q_ = nullptr;
    wake(reason);
  }
  bool await_ready() const { return !q_->fds.empty() || q_->error != 0; }
  bool await_suspend(std::coroutine_handle<> h) {
    if (!park(h)) return false;
    q_->waiter = this;
    return true;
  }
  /// 0 when the queue has something; else why the wait ended.
  int await_resume() {
    int reason = unpark();
    if (q_ && q_->waiter == this) q_->waiter = nullptr;
    return reason;
  }
  void cancel(int reason) override {
    if (!q_ || q_->waiter != this) return;
    q_->waiter = nullptr;
    q_ = nullptr;  // the listener may free the queue before this task resumes
    wake(reason);
  }
  /// The multishot op delivered something (or ended): the task looks at the queue again.
  void deliver() {
    q_->waiter = nullptr;
    q_ = nullptr;
    wake();
  }

 private:
  AcceptQueue* q_;  // not owned: the listener's; null once this wait let go of it
};

StreamListener::StreamListener(UniqueFd fd) : Socket(std::move(fd)), q_(std::make_unique<AcceptQueue>()) {}
StreamListener::StreamListener() = default;
StreamListener::StreamListener(StreamListener&&) noexcept = default;
StreamListener& StreamListener::operator=(StreamListener&& o) noexcept {
  if (this != &o) {
    close_listener();
    Socket::operator=(std::move(o));
    q_ = std::move(o.q_);
  }
  return *this;
}
StreamListener::~StreamListener() { close_listener(); }

void StreamListener::close_listener() {
  if (q_ && q_->op) {
    q_->op->owner = nullptr;  // the op's last completion frees it and closes late fds
    Runtime::current().driver().cancel(q_->op);
    q_->op = nullptr;
  }
  if (q_ && q_->waiter) q_->waiter->orphan(ECANCELED);
  q_.reset();
  close();
}

void StreamListener::on_accept_cqe(Op* op, int32_t res, uint32_t flags) {
  auto* q = static_cast<AcceptQueue*>(op->owner);
  bool more = flags & kCqeMore;
  if (!q) {
    if (res >= 0) ::close(res);
  } else if (res >= 0) {
    q->fds.push_back(res);
  } else if (res == -EINVAL && q->fds.empty() && q->error == 0 && !more) {
    q->multishot = false;  // this kernel has no multishot accept: accept one at a time
  } else if (res != -ECANCELED) {
    q->error = -res;
  }
  if (!more) {
    if (q) q->op = nullptr;
    Runtime::current().free_op(op);
  }
  if (q && q->waiter && (!q->fds.empty() || q->error != 0 || !q->multishot || !more)) q->waiter->deliver();
}

void StreamListener::arm() {
  Op* op = detail::new_op(OpCode::kAcceptMulti, fd());
  op->on_cqe = &StreamListener::on_accept_cqe;
  op->owner = q_.get();
  q_->op = op;
  Runtime::current().driver().submit(op);
}

namespace {
void store_peer_of(int fd, SocketAddress* peer) {
  *peer = SocketAddress();
  *peer->size_ptr() = SocketAddress::capacity();
  if (getpeername(fd, peer->data(), peer->size_ptr()) < 0) *peer = SocketAddress();
}
}  // namespace

Task<Result<UniqueFd>> StreamListener::accept_fd(SocketAddress* peer) {
  Driver& driver = Runtime::current().driver();
  for (;;) {
    if (!q_ || !valid()) co_return errno_error(EBADF);
    int err = 0;
    if (driver.has_multishot_accept() && q_->multishot) {
      if (!q_->fds.empty()) {
        int fd = q_->fds.front();
        q_->fds.pop_front();
        if (peer) store_peer_of(fd, peer);
        co_return UniqueFd(fd);
      }
      if (q_->error) {
        err = std::exchange(q_->error, 0);
      } else {
        if (!q_->op) arm();
        AcceptQueue* q = q_.get();
        int reason = co_await AcceptWait(q);
        if (reason) co_return errno_error(reason);
        continue;
      }
    } else {
      Op* op = detail::new_op(OpCode::kAccept, fd());
      auto r = co_await IoAwaiter<detail::ExtractAccept>(op);
      if (r.fd) {
        if (peer) *peer = r.peer;
        co_return UniqueFd(*r.fd);
      }
      err = r.fd.error().value();
    }
    switch (err) {
      case EMFILE:
      case ENFILE:
      case ENOBUFS:
      case ENOMEM: {
        runtime_log(3, "accept on fd " + std::to_string(fd()) + ": " + std::strerror(err) +
                           "; pausing accepts for 100ms");
        auto slept = co_await sleep_for(kAcceptPause);
        if (!slept) co_return slept.error();
        break;
      }
      case ECONNABORTED:
      case EPROTO:
      case EPERM:
      case EAGAIN:
      case EINTR:
        break;  // that connection is gone; take the next
      default:
        co_return errno_error(err);
    }
  }
}

Result<UniqueFd> StreamListener::bind_socket(const SocketAddress& addr, const ListenOptions& opts) {
  auto fd = new_socket(addr.family(), SOCK_STREAM);
  if (!fd) return fd.error();
  int one = 1;
  if (addr.family() != AF_UNIX) {
    if (opts.reuse_addr && setsockopt(fd->get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
      return Error::last();
    if (opts.reuse_port && setsockopt(fd->get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
      return Error::last();
    if (opts.tcp_nodelay && setsockopt(fd->get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
      return Error::last();
  }
  if (::bind(fd->get(), addr.data(), addr.size()) < 0) return Error::last();
  if (::listen(fd->get(), opts.backlog) < 0) return Error::last();
  return std::move(*fd);
}

Result<TcpListener> TcpListener::bind(const SocketAddress& addr, const ListenOptions& opts) {
  auto fd = bind_socket(addr, opts);
  if (!fd) return fd.error();
  return TcpListener(std::move(*fd));
}

Task<Result<TcpStream>> TcpListener::accept() {
  auto fd = co_await accept_fd();
  if (!fd) co_return fd.error();
  co_return TcpStream(std::move(*fd));
}

Result<UnixListener> UnixListener::bind(const SocketAddress& addr, const ListenOptions& opts) {
  if (addr.is_unix()) ::unlink(addr.host_string().c_str());
  auto fd = bind_socket(addr, opts);
  if (!fd) return fd.error();
  return UnixListener(std::move(*fd));
}

Task<Result<UnixStream>> UnixListener::accept() {
  auto fd = co_await accept_fd();
  if (!fd) co_return fd.error();
  co_return UnixStream(std::move(*fd));
}

// ---------------------------------------------------------------------------------------------
// UDP and pipes

Result<UdpSocket> UdpSocket::bind(const SocketAddress& addr) {
  auto fd = new_socket(addr.family(), SOCK_DGRAM);
  if (!fd) return fd.error();
  if (::bind(fd->get(), addr.data(), addr.size()) < 0) return Error::last();
  return UdpSocket(std::move(*fd));
}

IoAwaiter<detail::ExtractDatagram> UdpSocket::recv_from(Buffer buf) {
  Op* op = detail::new_op(OpCode::kRecvFrom, fd());
  op->buf = std::move(buf);
  return IoAwaiter<detail::ExtractDatagram>(op);
}

IoAwaiter<detail::ExtractWrite> UdpSocket::send_to(Buffer buf, const SocketAddress& to) {
  Op* op = detail::new_op(OpCode::kSendTo, fd());
  op->buf = std::move(buf);
  std::memcpy(&op->a().addr, to.data(), to.size());
  op->a().addrlen = to.size();
  return IoAwaiter<detail::ExtractWrite>(op);
}

Result<std::pair<UniqueFd, UniqueFd>> make_pipe(int size_hint) {
  int p[2];
  if (::pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) return Error::last();
  std::pair<UniqueFd, UniqueFd> ends{UniqueFd(p[0]), UniqueFd(p[1])};
  if (size_hint > 0) (void)::fcntl(p[1], F_SETPIPE_SZ, size_hint);
  return ends;
}

}  // namespace lbd
