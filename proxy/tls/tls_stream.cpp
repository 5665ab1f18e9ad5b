#include "proxy/tls/tls_stream.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <utility>

#include "proxy/tls/detail/openssl_ptr.hpp"
#include "proxy/tls/detail/session_cache.hpp"
#include "runtime/event.hpp"
#include "runtime/timer.hpp"

namespace lbd::tls {

struct TlsStream::State {
  StreamSocket sock;
  // Ciphertext read from the socket and not yet taken by OpenSSL: [in_off, in.size()).
  Buffer in;
  std::size_t in_off = 0;
  // Ciphertext OpenSSL wrote and nobody has sent yet. While a flush is in flight its bytes are
  // with the socket and this is a fresh buffer (or none), sent by the same flush after them.
  Buffer out;
  bool flushing = false;
  Event flushed;  // set when the flush in flight ends
  bool write_failed = false;
  Error write_error;
  bool handshake_done = false;
  bool failed = false;  // a fatal TLS error: no more TLS on this connection (no close_notify)
  bool eof = false;     // the socket read EOF
  bool close_notify = false;
  std::size_t cert_index = 0;
  std::string detail;
  const ServerContext* server_ctx = nullptr;  // not owned; outlives the handshake (precondition)
  detail::ClientSlot slot;                    // client side: where new sessions go
  detail::SslPtr ssl;                         // last, so it goes first: its BIO points here

  // OpenSSL invalidates the session of an SSL freed without our close_notify (SSL_free clears
  // a "bad" session), and on the client side that session is the very object the ClientCache
  // holds: one upstream connection ended without shutdown() (a backend's Connection: close, a
  // pooled connection closed idle) would stop every later connection to that endpoint from
  // resuming. Only a fatal TLS error should; any other end is marked as shut down, which sends
  // nothing.
  ~State() {
    if (ssl && handshake_done && !failed)
      SSL_set_shutdown(ssl.get(), SSL_get_shutdown(ssl.get()) | SSL_SENT_SHUTDOWN);
  }
};

namespace {

using State = TlsStream::State;

/// Room left for one whole record before SSL_write is called (16 KiB of plaintext plus the
/// largest overhead of any suite), so that a write does not stop half-way for want of room.
constexpr std::size_t kRecordRoom = 16 * 1024 + 512;
constexpr std::size_t kMaxPlainRecord = 16 * 1024;

State* state_of(BIO* b) { return static_cast<State*>(BIO_get_data(b)); }

int bio_write(BIO* b, const char* data, int len) {
  BIO_clear_retry_flags(b);
  if (len <= 0) return 0;
  State* s = state_of(b);
  if (s->out.capacity() == 0) s->out = Buffer(TlsStream::kOutCapacity);
  std::size_t n = s->out.append(std::string_view(data, static_cast<std::size_t>(len)));
  if (n == 0) {
    BIO_set_retry_write(b);
    return -1;
  }
  return static_cast<int>(n);
}

int bio_read(BIO* b, char* data, int len) {
  BIO_clear_retry_flags(b);
  if (len <= 0) return 0;
  State* s = state_of(b);
  std::size_t avail = s->in.size() - s->in_off;
  if (avail == 0) {
    // Never 0: EOF is the stream's to judge (a handshake cut short, or a TCP close after the
    // last record), not OpenSSL's.
    BIO_set_retry_read(b);
    return -1;
  }
  std::size_t n = std::min(avail, static_cast<std::size_t>(len));
  std::memcpy(data, s->in.data() + s->in_off, n);
  s->in_off += n;
  if (s->in_off == s->in.size()) {
    s->in = Buffer();  // a pooled slot goes back to the runtime at once
    s->in_off = 0;
  }
  return static_cast<int>(n);
}

long bio_ctrl(BIO*, int cmd, long, void*) {
  // FLUSH succeeds: the stream sends what was written when the SSL call returns.
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

int bio_create(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

BIO_METHOD* stream_bio_method() {
  // Made once for the process and never freed: a BIO_METHOD is read-only after this.
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "lbd stream");
    if (m) {
      BIO_meth_set_write(m, bio_write);
      BIO_meth_set_read(m, bio_read);
      BIO_meth_set_ctrl(m, bio_ctrl);
      BIO_meth_set_create(m, bio_create);
    }
    return m;
  }();
  return method;
}

/// The SSL object with our BIO over `s`.
Result<void> attach_ssl(State* s, SSL_CTX* ctx) {
  s->ssl.reset(SSL_new(ctx));
  BIO_METHOD* method = stream_bio_method();
  BIO* bio = s->ssl && method ? BIO_new(method) : nullptr;
  if (!bio) {
    ERR_clear_error();
    return errno_error(ENOMEM);
  }
  BIO_set_data(bio, s);
  SSL_set_bio(s->ssl.get(), bio, bio);  // one reference, taken by the SSL
  return {};
}

bool is_ip_literal(const std::string& name) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, name.c_str(), buf) == 1 || ::inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

bool is_certificate_reason(int reason) {
  switch (reason) {
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
      return true;
    default:
      return false;
  }
}

/// Records why the handshake failed (right after the failing call: the error queue is this
/// thread's, and other tasks run at the next co_await) and returns the error to report.
Error handshake_failure(State* s, int ssl_error) {
  s->failed = true;
  std::vector<int> reasons;
  std::string why = detail::drain_errors(&reasons);
  // Without SSL_VERIFY_PEER OpenSSL still records a verify result, which decided nothing.
  bool verifying = (SSL_get_verify_mode(s->ssl.get()) & SSL_VERIFY_PEER) != 0;
  long verify = verifying ? SSL_get_verify_result(s->ssl.get()) : X509_V_OK;
  bool cert = verify != X509_V_OK || std::any_of(reasons.begin(), reasons.end(), is_certificate_reason);
  if (verify != X509_V_OK) {
    std::string v = "certificate verify failed: ";
    v += X509_verify_cert_error_string(verify);
    // OpenSSL's own reason says the same ("certificate verify failed"), less precisely.
    why = why.empty() || why == "certificate verify failed" ? v : v + " (" + why + ")";
  }
  if (why.empty()) why = ssl_error == SSL_ERROR_SYSCALL ? "TLS failure without a reason" : "TLS handshake failed";
  s->detail = std::move(why);
  return tls_error(cert ? TlsErrc::kCertificateRejected : TlsErrc::kHandshakeFailed);
}

Error stream_failure(State* s) {
  s->failed = true;
  s->detail = detail::drain_errors();
  if (s->detail.empty()) s->detail = "TLS error";
  return tls_error(TlsErrc::kProtocol);
}

/// Frees the staging buffer when nothing is in it and no flush is using it: an idle connection
/// holds no ciphertext buffer.
void release_idle(State* s) {
  if (!s->flushing && s->out.empty()) s->out = Buffer();
}

/// Sends what OpenSSL wrote. If another task's flush is in flight, waits for it; that flush
/// sends what is staged after its own bytes, so the order on the wire is OpenSSL's.
Task<Result<void>> flush(State* s) {
  for (;;) {
    if (s->write_failed) co_return s->write_error;
    if (s->flushing) {
      Result<void> waited = co_await s->flushed.wait();
      if (!waited) co_return waited;
      continue;
    }
    if (s->out.empty()) co_return Result<void>{};
    s->flushing = true;
    s->flushed.reset();
    Buffer chunk = std::move(s->out);
    s->out = Buffer();
    BufWriteResult sent = co_await s->sock.write_all(std::move(chunk));
    s->flushing = false;
    s->flushed.set();
    if (!sent.result) {
      s->write_failed = true;
      s->write_error = sent.result.error();
      co_return s->write_error;
    }
    if (s->out.capacity() == 0) {
      sent.buf.clear();
      s->out = std::move(sent.buf);  // keep the buffer for the rest of this operation
    }
  }
}

/// Makes what a read of the socket returned the ciphertext `in` holds; sets `eof` on EOF.
Result<void> take(State* s, Result<Buffer> got) {
  if (!got) return got.error();
  if (got->empty()) {
    s->eof = true;
    return {};
  }
  s->in = std::move(*got);
  s->in_off = 0;
  return {};
}

/// Reads the next ciphertext from the socket into `in` (a buffer the runtime picks).
Task<Result<void>> fill(State* s) { co_return take(s, co_await s->sock.read_pooled()); }

Task<Result<void>> drive_handshake(State* s) {
  for (;;) {
    ERR_clear_error();
    int r = SSL_do_handshake(s->ssl.get());
    int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(s->ssl.get(), r);
    bool failed_now = r != 1 && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE;
    Error failure;
    if (failed_now) failure = handshake_failure(s, e);
    // Whatever OpenSSL wrote goes out first: the next flight, or the alert that tells the peer
    // why we give up.
    if (!s->out.empty()) {
      Result<void> sent = co_await flush(s);
      if (!sent && !failed_now) co_return sent;
    }
    if (failed_now) co_return failure;
    if (r == 1) {
      s->handshake_done = true;
      if (s->server_ctx) {
        const char* name = SSL_get_servername(s->ssl.get(), TLSEXT_NAMETYPE_host_name);
        s->cert_index = s->server_ctx->certificate_for(name ? name : "");
      }
      release_idle(s);
      co_return Result<void>{};
    }
    if (e == SSL_ERROR_WANT_READ) {
      Result<void> got = co_await fill(s);
      if (!got) co_return got;
      if (s->eof) {
        s->failed = true;
        s->detail = "the peer closed the connection during the handshake";
        co_return tls_error(TlsErrc::kPeerClosed);
      }
    }
  }
}

Task<Result<void>> handshake_within(State* s, Duration limit) {
  s->detail.clear();
  Result<void> done = co_await timeout(drive_handshake(s), limit);
  if (!done && done.error().is(ETIMEDOUT)) {
    s->failed = true;
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(limit).count();
    s->detail = "handshake not finished within ";
    s->detail += std::to_string(ms);
    s->detail += " ms";
  }
  co_return done;
}

Task<BufResult> read_plain(State* s, Buffer buf) {
  s->detail.clear();
  if (s->failed) co_return BufResult{tls_error(TlsErrc::kProtocol), std::move(buf)};
  for (;;) {
    std::span<char> room = buf.spare();
    if (room.empty()) co_return BufResult{errno_error(ENOBUFS), std::move(buf)};
    ERR_clear_error();
    std::size_t n = 0;
    int r = SSL_read_ex(s->ssl.get(), room.data(), room.size(), &n);
    int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(s->ssl.get(), r);
    bool fatal = r != 1 && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_ZERO_RETURN;
    Error failure;
    if (fatal) failure = stream_failure(s);
    // Reading can make OpenSSL answer (a KeyUpdate, an alert): send it.
    if (!s->out.empty()) {
      Result<void> sent = co_await flush(s);
      if (!sent && !fatal && r != 1) co_return BufResult{sent.error(), std::move(buf)};
    }
    if (fatal) co_return BufResult{failure, std::move(buf)};
    if (r == 1) {
      buf.set_size(buf.size() + n);
      release_idle(s);
      co_return BufResult{n, std::move(buf)};
    }
    if (e == SSL_ERROR_ZERO_RETURN) {
      s->close_notify = true;
      co_return BufResult{std::size_t{0}, std::move(buf)};
    }
    if (e == SSL_ERROR_WANT_READ) {
      if (s->eof) co_return BufResult{std::size_t{0}, std::move(buf)};
      Result<void> got = co_await fill(s);
      if (!got) co_return BufResult{got.error(), std::move(buf)};
      if (s->eof) co_return BufResult{std::size_t{0}, std::move(buf)};
    }
  }
}

Task<Result<Buffer>> read_pooled_plain(State* s) {
  bool buffered = s->in_off < s->in.size() || SSL_has_pending(s->ssl.get()) == 1;
  if (!buffered && !s->failed && !s->eof) {
    Result<void> got = co_await fill(s);
    if (!got) co_return got.error();
  }
  BufResult r = co_await read_plain(s, Buffer(TlsStream::kPlainReadSize));
  if (!r.result) co_return r.result.error();
  if (*r.result == 0) co_return Buffer();
  co_return std::move(r.buf);
}

Task<BufWriteResult> write_plain(State* s, Buffer buf) {
  s->detail.clear();
  if (s->failed) co_return BufWriteResult{tls_error(TlsErrc::kProtocol), std::move(buf)};
  std::size_t off = 0;
  while (off < buf.size()) {
    if (!s->out.empty() && s->out.capacity() - s->out.size() < kRecordRoom) {
      Result<void> sent = co_await flush(s);
      if (!sent) co_return BufWriteResult{sent, std::move(buf)};
    }
    std::size_t chunk = std::min(buf.size() - off, kMaxPlainRecord);
    ERR_clear_error();
    std::size_t n = 0;
    int r = SSL_write_ex(s->ssl.get(), buf.data() + off, chunk, &n);
    if (r == 1) {
      off += n;
      continue;
    }
    int e = SSL_get_error(s->ssl.get(), r);
    if (e != SSL_ERROR_WANT_WRITE) {
      Error failure = stream_failure(s);
      co_return BufWriteResult{failure, std::move(buf)};
    }
    // The staging buffer is full: send it, then repeat the same SSL_write (OpenSSL wants the
    // same arguments again).
    Result<void> sent = co_await flush(s);
    if (!sent) co_return BufWriteResult{sent, std::move(buf)};
  }
  Result<void> sent = co_await flush(s);
  release_idle(s);
  co_return BufWriteResult{sent, std::move(buf)};
}

Task<Result<void>> shutdown_stream(State* s) {
  Result<void> sent;
  if (s->handshake_done && !s->failed && !s->write_failed) {
    ERR_clear_error();
    (void)SSL_shutdown(s->ssl.get());  // 0: our close_notify is written, the peer's not seen
    ERR_clear_error();
    sent = co_await flush(s);
  }
  Result<void> fin = s->sock.shutdown_write();
  release_idle(s);
  if (!sent) co_return sent;
  co_return fin;
}

}  // namespace

TlsStream::TlsStream(std::unique_ptr<State> s) : s_(std::move(s)) {}
TlsStream::TlsStream(TlsStream&&) noexcept = default;
TlsStream& TlsStream::operator=(TlsStream&&) noexcept = default;
TlsStream::~TlsStream() = default;

Result<TlsStream> TlsStream::accept(StreamSocket sock, const ServerContext& ctx, Buffer first_bytes) {
  auto s = std::make_unique<State>();
  s->sock = std::move(sock);
  s->in = std::move(first_bytes);
  s->server_ctx = &ctx;
  Result<void> made = attach_ssl(s.get(), ctx.native());
  if (!made) return made.error();
  SSL_set_accept_state(s->ssl.get());
  return TlsStream(std::move(s));
}

Result<TlsStream> TlsStream::connect(StreamSocket sock, ClientContext& ctx, std::string server_name,
                                     std::string session_key) {
  auto s = std::make_unique<State>();
  s->sock = std::move(sock);
  Result<void> made = attach_ssl(s.get(), ctx.native());
  if (!made) return made.error();
  SSL* ssl = s->ssl.get();
  s->slot.cache = &ctx.cache();
  s->slot.key = session_key.empty() ? server_name : std::move(session_key);
  SSL_set_ex_data(ssl, detail::client_slot_index(), &s->slot);
  bool ip = is_ip_literal(server_name);
  bool ok = true;
  // RFC 6066: SNI carries host names only, never an address.
  if (!server_name.empty() && !ip) ok = SSL_set_tlsext_host_name(ssl, server_name.c_str()) == 1;
  if (ok && ctx.options().verify && !server_name.empty()) {
    if (ip)
      ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), server_name.c_str()) == 1;
    else
      ok = SSL_set1_host(ssl, server_name.c_str()) == 1;
  }
  if (!ok) {
    ERR_clear_error();
    return errno_error(EINVAL);
  }
  if (SSL_SESSION* cached = ctx.cache().get(s->slot.key)) SSL_set_session(ssl, cached);
  SSL_set_connect_state(ssl);
  return TlsStream(std::move(s));
}

Task<Result<void>> TlsStream::handshake(Duration limit) { return handshake_within(s_.get(), limit); }
Task<BufResult> TlsStream::read(Buffer buf) { return read_plain(s_.get(), std::move(buf)); }
Task<Result<Buffer>> TlsStream::read_pooled() { return read_pooled_plain(s_.get()); }
Result<void> TlsStream::take_ciphertext(Result<Buffer> got) { return take(s_.get(), std::move(got)); }
bool TlsStream::has_buffered_input() const {
  return s_->in_off < s_->in.size() || SSL_has_pending(s_->ssl.get()) == 1;
}
Task<BufWriteResult> TlsStream::write_all(Buffer buf) { return write_plain(s_.get(), std::move(buf)); }
Task<Result<void>> TlsStream::shutdown() { return shutdown_stream(s_.get()); }

std::string_view TlsStream::alpn() const {
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(s_->ssl.get(), &data, &len);
  return data ? std::string_view(reinterpret_cast<const char*>(data), len) : std::string_view();
}

std::string_view TlsStream::server_name() const {
  const char* name = SSL_get_servername(s_->ssl.get(), TLSEXT_NAMETYPE_host_name);
  return name ? std::string_view(name) : std::string_view();
}

std::optional<TlsVersion> TlsStream::version() const {
  if (!s_->handshake_done) return std::nullopt;
  switch (SSL_version(s_->ssl.get())) {
    case TLS1_VERSION:
      return TlsVersion::kTls1_0;
    case TLS1_1_VERSION:
      return TlsVersion::kTls1_1;
    case TLS1_2_VERSION:
      return TlsVersion::kTls1_2;
    case TLS1_3_VERSION:
      return TlsVersion::kTls1_3;
    default:
      return std::nullopt;
  }
}

std::string_view TlsStream::cipher() const {
  const char* name = SSL_get_cipher_name(s_->ssl.get());
  return name ? std::string_view(name) : std::string_view();
}

bool TlsStream::resumed() const { return SSL_session_reused(s_->ssl.get()) == 1; }

std::string TlsStream::peer_subject() const {
  X509* peer = SSL_get0_peer_certificate(s_->ssl.get());
  return peer ? detail::name_text(X509_get_subject_name(peer)) : std::string();
}

std::size_t TlsStream::certificate_index() const { return s_->cert_index; }
const std::string& TlsStream::error_detail() const { return s_->detail; }
bool TlsStream::peer_sent_close_notify() const { return s_->close_notify; }
StreamSocket& TlsStream::socket() { return s_->sock; }

}  // namespace lbd::tls
