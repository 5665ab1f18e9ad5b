#pragma once
// TlsStream: TLS over a connected StreamSocket of the runtime. OpenSSL encrypts and decrypts in
// memory (a BIO of ours over two buffers); the socket I/O is the runtime's (io_uring or epoll),
// in the rent model like StreamSocket:
//
//   auto tls = TlsStream::accept(std::move(sock), server_ctx);
//   auto hs = co_await tls->handshake(10s);              // a total deadline
//   auto [res, buf] = co_await tls->read(std::move(buf)); // plaintext appended to buf
//   auto [wres, buf2] = co_await tls->write_all(std::move(buf));
//   co_await tls->shutdown();                           // close_notify, then FIN
//
// Memory: ciphertext comes in through read_pooled(), a buffer the runtime picks when bytes
// arrive, kept only until OpenSSL has taken them; ciphertext going out is staged in one buffer of
// kOutCapacity, freed when the operation that filled it ends. OpenSSL's own record buffers are
// released while idle (SSL_MODE_RELEASE_BUFFERS). An idle connection holds the SSL object and
// this stream's small state, nothing else.
//
// Like a StreamSocket, one task may read while another writes; two readers (or two writers) at
// once are not allowed. The context it was made from must outlive the handshake.

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/tls/tls_context.hpp"
#include "proxy/tls/tls_error.hpp"
#include "runtime/buffer.hpp"
#include "runtime/clock.hpp"
#include "runtime/net.hpp"
#include "runtime/result.hpp"
#include "runtime/task.hpp"

namespace lbd::tls {

class TlsStream {
 public:
  /// Outgoing ciphertext is sent in pieces of at most this many bytes (two full records).
  static constexpr std::size_t kOutCapacity = 2 * (16 * 1024 + 512);
  /// read_pooled()'s buffer: one record's plaintext.
  static constexpr std::size_t kPlainReadSize = 16 * 1024;

  /// The server side of an accepted connection. `first_bytes`: ciphertext already read from
  /// the socket (to classify it, see first_bytes.hpp), which TLS reads first.
  static Result<TlsStream> accept(StreamSocket sock, const ServerContext& ctx, Buffer first_bytes = {});
  /// The client side of a connected socket. `server_name` is sent as SNI (unless it is an IP
  /// address) and is what the certificate is verified against when the context verifies (an
  /// empty one: the chain alone is verified).
  /// `session_key` names the cache entry the session is resumed from and stored under (the
  /// endpoint's address); empty: `server_name`.
  static Result<TlsStream> connect(StreamSocket sock, ClientContext& ctx, std::string server_name,
                                   std::string session_key = {});

  TlsStream(TlsStream&&) noexcept;
  TlsStream& operator=(TlsStream&&) noexcept;
  ~TlsStream();

  /// Runs the handshake to its end or until `limit` has passed since the call (then ETIMEDOUT).
  /// A TLS failure is a TlsErrc (error_detail() says why); the alert OpenSSL made is sent first.
  Task<Result<void>> handshake(Duration limit);
  /// Reads plaintext into buf's spare room (appending; precondition: it has some). 0 bytes: the
  /// peer closed (close_notify, or a TCP close without it: see peer_sent_close_notify()).
  Task<BufResult> read(Buffer buf);
  /// Waits for ciphertext without holding a plaintext buffer (an idle connection pins none),
  /// then returns the plaintext it carried in a buffer of kPlainReadSize. Empty: the peer
  /// closed, as read() reports 0.
  Task<Result<Buffer>> read_pooled();
  /// Takes what a read of this stream's socket returned (read_pooled(): empty is EOF), for a
  /// caller that waited for the ciphertext itself: proxy::ByteStream::await_input, with which an
  /// idle connection waits in no coroutine frame of TLS. The next read decrypts it.
  /// Precondition: !has_buffered_input().
  Result<void> take_ciphertext(Result<Buffer> got);
  /// Input has arrived that no read has returned yet: ciphertext taken from the socket or a
  /// record OpenSSL holds. (Bytes still in the socket are not looked at.)
  bool has_buffered_input() const;
  /// Encrypts and sends all of buf[0..size).
  Task<BufWriteResult> write_all(Buffer buf);
  /// Sends close_notify (when the handshake completed and nothing failed), then FIN. The socket
  /// stays open for reading; the peer's close_notify is not waited for.
  Task<Result<void>> shutdown();

  /// The negotiated ALPN protocol; empty when none.
  std::string_view alpn() const;
  /// The SNI name the client asked for (server side) or sent (client side); empty when none.
  std::string_view server_name() const;
  /// The negotiated version, once the handshake completed.
  std::optional<TlsVersion> version() const;
  /// The cipher suite's OpenSSL name ("TLS_AES_128_GCM_SHA256").
  std::string_view cipher() const;
  /// The handshake resumed a session (a ticket) instead of a full one.
  bool resumed() const;
  /// The peer certificate's subject (RFC 2253, "CN=client,O=Example"); empty when the peer
  /// sent none. On a server this is the mTLS client's identity.
  std::string peer_subject() const;
  /// The index of the certificate SNI selected (server side).
  std::size_t certificate_index() const;
  /// Why the last operation failed, in OpenSSL's words; empty after success.
  const std::string& error_detail() const;
  /// The peer ended with close_notify (not only a TCP close).
  bool peer_sent_close_notify() const;

  StreamSocket& socket();

  struct State;

 private:
  explicit TlsStream(std::unique_ptr<State> s);
  std::unique_ptr<State> s_;  // on the heap: OpenSSL's BIO points at it
};

}  // namespace lbd::tls
