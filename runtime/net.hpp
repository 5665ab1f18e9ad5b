#pragma once
// Networking on the runtime: TCP and Unix stream sockets, listeners, UDP. All sockets are
// non-blocking and close-on-exec. I/O follows the rent model: a Buffer goes in, comes back
// with the result.
//
//   auto [res, buf] = co_await stream.read(std::move(buf));   // appends into buf's spare room
//   auto [wres, buf2] = co_await stream.write_all(std::move(buf));

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>

#include "runtime/buffer.hpp"
#include "runtime/clock.hpp"
#include "runtime/op.hpp"
#include "runtime/op_awaiter.hpp"
#include "runtime/result.hpp"
#include "runtime/runtime.hpp"
#include "runtime/socket_address.hpp"
#include "runtime/task.hpp"
#include "runtime/unique_fd.hpp"

namespace lbd {

/// A result and the buffer handed back with it.
struct BufResult {
  Result<std::size_t> result;
  Buffer buf;
};
struct BufWriteResult {
  Result<void> result;
  Buffer buf;
};
struct DatagramResult {
  Result<std::size_t> result;
  Buffer buf;
  SocketAddress from;
};

namespace detail {
struct ExtractSize {  // result = bytes moved, no buffer
  static Result<std::size_t> get(Op* op) {
    if (op->res < 0) return errno_error(-op->res);
    return static_cast<std::size_t>(op->res);
  }
};
struct ExtractRead {  // bytes appended to the buffer's filled part
  static BufResult get(Op* op) {
    if (op->res < 0) return {errno_error(-op->res), std::move(op->buf)};
    op->buf.set_size(op->buf.size() + static_cast<std::size_t>(op->res));
    return {static_cast<std::size_t>(op->res), std::move(op->buf)};
  }
};
struct ExtractWrite {  // bytes written from buf[offset..]
  static BufResult get(Op* op) {
    if (op->res < 0) return {errno_error(-op->res), std::move(op->buf)};
    return {static_cast<std::size_t>(op->res), std::move(op->buf)};
  }
};
struct ExtractPooled {  // a driver-chosen buffer; empty on EOF
  static Result<Buffer> get(Op* op) {
    if (op->res < 0) return errno_error(-op->res);
    return std::move(op->buf);
  }
};
struct ExtractVoid {
  static Result<void> get(Op* op) {
    if (op->res < 0) return errno_error(-op->res);
    return {};
  }
};
struct ExtractAccept {  // the accepted fd and the address the accept reported
  struct Accepted {
    Result<int> fd;
    SocketAddress peer;
  };
  static Accepted get(Op* op) {
    if (op->res < 0) return {errno_error(-op->res), {}};
    return {op->res, SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&op->a().addr), op->a().addrlen)};
  }
};
struct ExtractFd {
  static Result<int> get(Op* op) {
    if (op->res < 0) return errno_error(-op->res);
    return op->res;
  }
};
struct ExtractDatagram {
  static DatagramResult get(Op* op) {
    if (op->res < 0) return {errno_error(-op->res), std::move(op->buf), {}};
    op->buf.set_size(op->buf.size() + static_cast<std::size_t>(op->res));
    return {static_cast<std::size_t>(op->res), std::move(op->buf),
            SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&op->a().addr), op->a().addrlen)};
  }
};

/// Builds an Op on the current runtime.
Op* new_op(OpCode code, int fd);
}  // namespace detail

/// StreamSocket::write_all(): sends buf[0..size) as one operation. A short send is followed by
/// the next from the completion itself, so the task resumes once, when everything is written
/// or the write failed, and no coroutine frame is made. Cancelled or timed out part-way, it
/// fails with that reason even if some bytes went out.
class WriteAllAwaiter : public OpAwaiter {
 public:
  explicit WriteAllAwaiter(Op* op);
  /// An empty buffer is written at once, without a syscall.
  bool await_ready() const noexcept { return op_->buf.size() == 0; }
  bool await_suspend(std::coroutine_handle<> h);
  BufWriteResult await_resume();

 private:
  /// Takes a send's result in; true when bytes are left and the send goes on.
  static bool advance(Op* op);
  static void on_cqe(Op* op, int32_t res, uint32_t cqe_flags);
};

/// Owns a socket fd. Closing tells the driver first, so nothing waits on a dead fd.
class Socket {
 public:
  Socket() = default;
  explicit Socket(UniqueFd fd) : fd_(std::move(fd)) {}
  Socket(Socket&&) noexcept = default;
  Socket& operator=(Socket&& o) noexcept {
    if (this != &o) {
      close();
      fd_ = std::move(o.fd_);
    }
    return *this;
  }
  ~Socket() { close(); }

  int fd() const { return fd_.get(); }
  bool valid() const { return fd_.valid(); }
  void close();
  Result<SocketAddress> local_address() const;
  Result<SocketAddress> peer_address() const;
  /// setsockopt wrapper with errno context.
  Result<void> set_option(int level, int name, int value);

 protected:
  UniqueFd fd_;
};

/// A connected stream socket (TCP or Unix).
class StreamSocket : public Socket {
 public:
  using Socket::Socket;

  /// Reads into `buf`'s spare room (appending). 0 bytes means the peer closed its side.
  IoAwaiter<detail::ExtractRead> read(Buffer buf);
  /// Reads into a buffer the runtime picks when data arrives (a provided-buffer ring slot on
  /// io_uring), so an idle connection pins no memory. An empty buffer means EOF.
  IoAwaiter<detail::ExtractPooled> read_pooled();
  /// read_pooled().with_timeout(limit) as one awaiter: a coroutine frame holds every temporary
  /// of a co_await expression, so this keeps one awaiter (72 B) out of the caller's frame.
  IoAwaiter<detail::ExtractPooled> read_pooled(Duration limit);
  /// One send of buf[offset..size): may write less.
  IoAwaiter<detail::ExtractWrite> write(Buffer buf, std::size_t offset = 0);
  /// Writes all of buf[0..size), looping over short writes. EPIPE if a send writes nothing.
  WriteAllAwaiter write_all(Buffer buf);
  /// Moves up to `len` bytes from `in` to `out` with splice(2) (one of them must be a pipe).
  /// `wait_on_out`: the socket side is `out` (wait for it to be writable).
  static IoAwaiter<detail::ExtractSize> splice(int in, int out, uint32_t len, bool wait_on_out);
  /// Sends FIN: the peer reads EOF; reading from it still works.
  Result<void> shutdown_write();
};

/// Told when an IdleWatch fires. It is called from the event loop while the driver hands out
/// completions, not from a task: it must not close sockets, stop watches or resume tasks
/// itself, only arrange for that (spawn a task, set an Event). It is not called for a watch
/// that fires because it is cancelled, or while the runtime is torn down.
class IdleWatchListener {
 public:
  virtual void idle_watch_fired() = 0;

 protected:
  ~IdleWatchListener() = default;
};

/// Watches an idle connection, without a task, for anything that makes it unfit to carry a
/// new request: bytes nobody asked for, EOF, an error. The kernel reports it when it happens
/// (a pending poll on io_uring, the fd's readiness edge on epoll), so checking costs no
/// syscall. Precondition: the watch stops (destructor or stop()) before its socket closes and
/// before anything else reads the socket; declare it after the socket it watches.
class IdleWatch {
 public:
  IdleWatch() = default;
  /// Starts watching `fd`. A `listener` (not owned; it must outlive the watch) is told when the
  /// watch fires, so the connection can be closed at once rather than when next looked at. A
  /// socket that is unfit already may fire at once (the epoll driver tries first): fired() is
  /// then true on return and the listener is not called, so check fired() after starting.
  explicit IdleWatch(int fd, IdleWatchListener* listener = nullptr);
  IdleWatch(IdleWatch&& o) noexcept : rt_(o.rt_), op_(std::exchange(o.op_, nullptr)), started_at_(o.started_at_) {}
  IdleWatch& operator=(IdleWatch&& o) noexcept {
    if (this != &o) {
      stop();
      rt_ = o.rt_;
      op_ = std::exchange(o.op_, nullptr);
      started_at_ = o.started_at_;
    }
    return *this;
  }
  IdleWatch(const IdleWatch&) = delete;
  ~IdleWatch() { stop(); }

  /// The socket became readable, reached EOF or failed since the watch started.
  bool fired() const;
  /// For a connection about to carry a request: false when the watch fired, or when it started
  /// in this very turn of the event loop and the kernel says now that the socket is readable, at
  /// EOF or failed. Such a watch has heard nothing yet (its poll is not submitted, or the fd's
  /// edge not collected): a backend's FIN that arrived before the connection was pooled and
  /// taken again in one turn would otherwise go unseen. That case costs one poll(2); the usual
  /// one, a watch older than the turn, costs nothing.
  bool quiet() const;
  /// Stops watching; the slot is freed when the kernel lets go of it.
  void stop();

 private:
  static void on_cqe(Op* op, int32_t res, uint32_t flags);
  Runtime* rt_ = nullptr;  // the runtime the op belongs to (not owned)
  Op* op_ = nullptr;       // the pending PollIn; owned by rt_, released by stop()
  uint64_t started_at_ = 0;  // rt_->polls() when the watch started
};

class TcpStream : public StreamSocket {
 public:
  using StreamSocket::StreamSocket;
  /// Connects to `addr`; with a timeout, fails with ETIMEDOUT when it passes.
  static Task<Result<TcpStream>> connect(SocketAddress addr, std::optional<Duration> timeout = std::nullopt);
  Result<void> set_nodelay(bool on);
};

class UnixStream : public StreamSocket {
 public:
  using StreamSocket::StreamSocket;
  static Task<Result<UnixStream>> connect(SocketAddress addr);
};

struct ListenOptions {
  int backlog = 511;        // like nginx's default
  bool reuse_port = true;   // every worker binds its own socket
  bool reuse_addr = true;
  /// TCP: set TCP_NODELAY on the listening socket. Linux copies it to every accepted socket,
  /// which saves a setsockopt per connection.
  bool tcp_nodelay = false;
};

/// A listening stream socket. On io_uring it keeps one multishot accept armed and queues the
/// accepted fds; on epoll it accepts one at a time when readable.
class StreamListener : public Socket {
 public:
  StreamListener();
  StreamListener(StreamListener&&) noexcept;
  StreamListener& operator=(StreamListener&&) noexcept;
  ~StreamListener();

  /// Waits for the next connection. Running out of fds (EMFILE/ENFILE) pauses accepting for
  /// `kAcceptPause` and logs, instead of spinning; other transient errors are skipped.
  /// With `peer`, also stores the connection's address there: taken from the accept itself
  /// where the driver has it (epoll, single-shot accept), else from getpeername (io_uring's
  /// multishot accept shares one address buffer among all its completions).
  Task<Result<UniqueFd>> accept_fd(SocketAddress* peer = nullptr);
  /// Stops accepting and closes the socket (queued connections are closed).
  void close_listener();

  static constexpr auto kAcceptPause = std::chrono::milliseconds(100);

 protected:
  static Result<UniqueFd> bind_socket(const SocketAddress& addr, const ListenOptions& opts);
  explicit StreamListener(UniqueFd fd);

 private:
  struct AcceptQueue;
  class AcceptWait;
  void arm();
  static void on_accept_cqe(Op* op, int32_t res, uint32_t flags);

  std::unique_ptr<AcceptQueue> q_;
};

class TcpListener : public StreamListener {
 public:
  TcpListener() = default;
  static Result<TcpListener> bind(const SocketAddress& addr, const ListenOptions& opts = {});
  Task<Result<TcpStream>> accept();

 private:
  using StreamListener::StreamListener;
};

class UnixListener : public StreamListener {
 public:
  UnixListener() = default;
  /// Binds a Unix socket path; a stale socket file at `addr` is removed first.
  static Result<UnixListener> bind(const SocketAddress& addr, const ListenOptions& opts = {});
  Task<Result<UnixStream>> accept();

 private:
  using StreamListener::StreamListener;
};

class UdpSocket : public Socket {
 public:
  using Socket::Socket;
  static Result<UdpSocket> bind(const SocketAddress& addr);
  IoAwaiter<detail::ExtractDatagram> recv_from(Buffer buf);
  IoAwaiter<detail::ExtractWrite> send_to(Buffer buf, const SocketAddress& to);
};

/// A non-blocking, close-on-exec pipe pair for splice: [0] read end, [1] write end.
Result<std::pair<UniqueFd, UniqueFd>> make_pipe(int size_hint = 0);

}  // namespace lbd
