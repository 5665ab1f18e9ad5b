#pragma once
// ByteStream: a connected byte stream as a session sees it, plain (a TCP or Unix socket) or TLS
// over one. Sessions read, write and end their streams through it, so that the HTTP/1
// connection, the exchange and the relay are written once for both. A view: the socket and the
// TlsStream belong to whoever made it (the session's frame, an upstream connection).
//
// The plain path stays what it was without TLS: a read is the socket's own read_pooled awaiter
// (no coroutine frame), and callers that write in a loop of their own (OutputStage, the relay)
// keep doing so on socket() when tls() is null.

#include <coroutine>
#include <optional>

#include "proxy/tls/tls_stream.hpp"
#include "runtime/net.hpp"
#include "runtime/task.hpp"

namespace lbd::proxy {

class ByteStream {
 public:
  class ReadAwaiter;
  class InputAwaiter;

  ByteStream() = default;
  explicit ByteStream(StreamSocket* plain) : sock_(plain) {}
  explicit ByteStream(tls::TlsStream* tls) : sock_(&tls->socket()), tls_(tls) {}

  /// The socket under the stream (the ciphertext's, with TLS).
  StreamSocket* socket() const { return sock_; }
  /// The TLS layer; null on a plain stream.
  tls::TlsStream* tls() const { return tls_; }
  int fd() const { return sock_->fd(); }

  /// The next bytes that arrive, within `limit` (ETIMEDOUT after it), in a buffer taken only
  /// when they arrive. Empty: the peer closed.
  ReadAwaiter read(Duration limit) const;
  /// Waits within `limit` for input to arrive, taking nothing from a plain stream: ready at once
  /// when plain (its read() waits in no frame already) or when TLS holds input; otherwise the
  /// ciphertext is read into the TLS stream. A connection that idles between requests waits
  /// here, then reads, so that an idle TLS connection holds none of the TLS read's frames
  /// (about 800 bytes: its timeout, its task and the socket read's).
  InputAwaiter await_input(Duration limit) const;
  /// Writes all of buf[0..size) within `limit`, a total deadline.
  Task<BufWriteResult> write_all(Buffer buf, Duration limit) const;
  /// Ends this side's sending: FIN, after close_notify on TLS (sent within `limit`). Reading
  /// still works.
  Task<Result<void>> shutdown(Duration limit) const;
  /// Bytes have arrived that no read has returned (a peek; nothing is taken).
  bool has_unread_input() const;
  /// Ends the connection the way nginx's lingering close does: FIN first, then reads and drops
  /// what the peer still sends until it closes too, for at most `limit` and kLingerBytes. A
  /// request that crossed the FIN on the wire is then not in the socket when it closes, and
  /// closing does not reset the connection. The socket itself closes with its owner.
  Task<void> linger(Duration limit) const;

  static constexpr std::size_t kLingerBytes = 64 * 1024;

 private:
  StreamSocket* sock_ = nullptr;   // not owned
  tls::TlsStream* tls_ = nullptr;  // not owned; null: plain
};

/// Awaits one read of either kind: the socket's awaiter itself, or the TLS read's task.
class ByteStream::ReadAwaiter {
 public:
  explicit ReadAwaiter(IoAwaiter<detail::ExtractPooled> plain) : plain_(std::move(plain)) {}
  explicit ReadAwaiter(Task<Result<Buffer>> tls) : tls_(std::move(tls)) {}

  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) {
    if (plain_) return plain_->await_suspend(h);
    tls_awaiter_ = std::move(tls_).operator co_await();
    return tls_awaiter_.await_suspend(h);
  }
  Result<Buffer> await_resume() { return plain_ ? plain_->await_resume() : tls_awaiter_.await_resume(); }

 private:
  std::optional<IoAwaiter<detail::ExtractPooled>> plain_;
  Task<Result<Buffer>> tls_;  // owns the TLS read's frame; tls_awaiter_ resumes it
  Task<Result<Buffer>>::Awaiter tls_awaiter_{};
};

/// Awaits ByteStream::await_input: nothing, or the socket's read of the ciphertext.
class ByteStream::InputAwaiter {
 public:
  InputAwaiter() = default;
  InputAwaiter(tls::TlsStream* tls, IoAwaiter<detail::ExtractPooled> read) : tls_(tls), read_(std::move(read)) {}

  bool await_ready() const noexcept { return !read_; }
  bool await_suspend(std::coroutine_handle<> h) { return read_->await_suspend(h); }
  Result<void> await_resume() {
    if (!read_) return {};
    return tls_->take_ciphertext(read_->await_resume());
  }

 private:
  tls::TlsStream* tls_ = nullptr;
  std::optional<IoAwaiter<detail::ExtractPooled>> read_;
};

}  // namespace lbd::proxy
