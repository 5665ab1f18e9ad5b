#include "tests/integration/tls_harness.hpp"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace lbd::it {
namespace {

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

/// Everything in OpenSSL's error queue (emptied), "; "-separated.
std::string drain_errors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

/// Why an SSL call that returned `ret` failed, for messages: OpenSSL's queue, or the errno.
std::string failure(SSL* ssl, int ret, int saved_errno) {
  int e = SSL_get_error(ssl, ret);
  std::string queue = drain_errors();
  if (e == SSL_ERROR_SYSCALL && queue.empty()) {
    if (saved_errno == ECONNRESET) return "reset";
    if (saved_errno == 0) return "eof";
    return std::string("syscall: ") + std::strerror(saved_errno);
  }
  if (e == SSL_ERROR_SSL && queue.find("unexpected eof") != std::string::npos) return "eof";
  std::string out = "SSL_get_error " + std::to_string(e);
  if (!queue.empty()) out += ": " + queue;
  long verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK) out += std::string(" (verify: ") + X509_verify_cert_error_string(verify) + ")";
  return out;
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(n > 0 ? n : 0));
}

std::string serial_hex(X509* x) {
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), nullptr);
  if (!bn) return "";
  char* hex = BN_bn2hex(bn);
  std::string out = hex ? hex : "";
  OPENSSL_free(hex);
  BN_free(bn);
  return out;
}

std::string common_name(X509* x) {
  char buf[256] = {};
  int n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
}

int version_of(const std::string& name) {
  if (name == "TLSv1.1") return TLS1_1_VERSION;
  if (name == "TLSv1.2") return TLS1_2_VERSION;
  if (name == "TLSv1.3") return TLS1_3_VERSION;
  return 0;
}

}  // namespace

std::unique_ptr<TlsClient> TlsClient::connect(uint16_t port, const TlsClientOptions& opts) {
  std::unique_ptr<TlsClient> c(new TlsClient());
  c->handshake_run(port, opts);
  return c;
}

int TlsClient::on_new_session(ssl_st* ssl, ssl_session_st* session) {
  auto* self = static_cast<TlsClient*>(SSL_get_app_data(ssl));
  // A copy: OpenSSL marks the connection's own session object not resumable when the
  // connection later fails (a server that closes without close_notify is enough), and the test
  // wants what a client would have kept, as `s_client -sess_out` writes it at once.
  SSL_SESSION* copy = SSL_SESSION_dup(session);
  if (!copy) return 0;
  std::lock_guard<std::mutex> lock(self->mu_);
  self->latest_session_.session_ = std::shared_ptr<SSL_SESSION>(copy, SSL_SESSION_free);
  return 0;  // OpenSSL keeps (and frees) `session`
}

void TlsClient::handshake_run(uint16_t port, const TlsClientOptions& opts) {
  ERR_clear_error();
  ctx_ = SSL_CTX_new(TLS_client_method());
  if (int v = version_of(opts.version)) {
    SSL_CTX_set_min_proto_version(ctx_, v);
    SSL_CTX_set_max_proto_version(ctx_, v);
    if (v < TLS1_2_VERSION) {
      // Debian's default security level forbids TLS 1.1 in the client itself; the test wants
      // the server to be the one that refuses.
      SSL_CTX_set_security_level(ctx_, 0);
      SSL_CTX_set_cipher_list(ctx_, "DEFAULT@SECLEVEL=0");
    }
  } else {
    SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
  }
  SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx_, &TlsClient::on_new_session);
  if (!opts.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx_, opts.ca_file.c_str(), nullptr) != 1) {
      handshake_.error = "cannot load " + opts.ca_file + ": " + drain_errors();
      return;
    }
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
  }
  if (!opts.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx_, opts.cert_file.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx_, opts.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      handshake_.error = "cannot load the client certificate: " + drain_errors();
      return;
    }
  }
  if (!opts.alpn.empty()) {
    std::string wire;
    for (const auto& p : opts.alpn) wire += static_cast<char>(p.size()) + p;
    SSL_CTX_set_alpn_protos(ctx_, reinterpret_cast<const unsigned char*>(wire.data()),
                            static_cast<unsigned>(wire.size()));
  }

  ssl_ = SSL_new(ctx_);
  SSL_set_app_data(ssl_, this);
  SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (!opts.sni.empty()) {
    SSL_set_tlsext_host_name(ssl_, opts.sni.c_str());
    if (!opts.ca_file.empty()) SSL_set1_host(ssl_, opts.sni.c_str());
  }
  if (opts.session) {
    // A copy again (see on_new_session): a resumed connection uses the very object it was
    // given, and its failure would spoil the session for the test's next connections.
    SSL_SESSION* copy = SSL_SESSION_dup(opts.session.session_.get());
    SSL_set_session(ssl_, copy);
    SSL_SESSION_free(copy);
  }

  ConnectResult conn = connect_to(port, opts.source, opts.handshake_limit);
  if (!conn.fd) {
    handshake_.error = std::string("connect: ") + std::strerror(conn.error);
    return;
  }
  net_ = std::move(conn.fd);
  set_nonblocking(net_.get());
  SSL_set_fd(ssl_, net_.get());

  Clock::time_point deadline = Clock::now() + opts.handshake_limit;
  for (;;) {
    errno = 0;
    int r = SSL_connect(ssl_);
    if (r == 1) break;
    int saved = errno;
    int e = SSL_get_error(ssl_, r);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
      handshake_.error = failure(ssl_, r, saved);
      return;
    }
    auto left = std::chrono::duration_cast<Ms>(deadline - Clock::now()).count();
    if (left <= 0) {
      handshake_.error = "handshake timed out";
      return;
    }
    pollfd p{net_.get(), static_cast<short>(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), 0};
    ::poll(&p, 1, static_cast<int>(left));
  }

  handshake_.ok = true;
  handshake_.version = SSL_get_version(ssl_);
  handshake_.reused = SSL_session_reused(ssl_) == 1;
  const unsigned char* alpn = nullptr;
  unsigned alpn_len = 0;
  SSL_get0_alpn_selected(ssl_, &alpn, &alpn_len);
  if (alpn) handshake_.alpn.assign(reinterpret_cast<const char*>(alpn), alpn_len);
  if (X509* peer = SSL_get0_peer_certificate(ssl_)) {
    BIO* bio = BIO_new(BIO_s_mem());
    X509_NAME_print_ex(bio, X509_get_subject_name(peer), 0, XN_FLAG_RFC2253);
    handshake_.peer_subject = bio_text(bio);
    BIO_free(bio);
    handshake_.peer_cn = common_name(peer);
    handshake_.peer_serial = serial_hex(peer);
    auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(peer, NID_subject_alt_name, nullptr, nullptr));
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); ++i) {
      const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
      if (n->type != GEN_DNS) continue;
      const ASN1_STRING* s = n->d.dNSName;
      handshake_.peer_dns.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                       static_cast<std::size_t>(ASN1_STRING_length(s)));
    }
    GENERAL_NAMES_free(names);
  }

  int pair[2];
  int pipe_fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0 || ::pipe(pipe_fds) != 0) {
    handshake_.ok = false;
    handshake_.error = std::string("socketpair: ") + std::strerror(errno);
    return;
  }
  app_.reset(pair[0]);
  pump_side_.reset(pair[1]);
  wake_read_.reset(pipe_fds[0]);
  wake_write_.reset(pipe_fds[1]);
  set_nonblocking(pump_side_.get());
  pump_thread_ = std::thread([this] { pump(); });
}

TlsClient::~TlsClient() {
  if (pump_thread_.joinable()) {
    char b = 0;
    [[maybe_unused]] ssize_t n = ::write(wake_write_.get(), &b, 1);
    pump_thread_.join();
  }
  if (ssl_) SSL_free(ssl_);  // before net_ closes: SSL_free does not close the fd (no BIO_CLOSE)
  if (ctx_) SSL_CTX_free(ctx_);
}

void TlsClient::set_end(std::string why) {
  std::lock_guard<std::mutex> lock(mu_);
  if (end_.empty()) end_ = std::move(why);
}

std::string TlsClient::net_end() const {
  std::lock_guard<std::mutex> lock(mu_);
  return end_;
}

TlsSession TlsClient::wait_session(Ms limit) const {
  TlsSession out;
  wait_until(
      [&] {
        std::lock_guard<std::mutex> lock(mu_);
        if (!latest_session_.session_ || SSL_SESSION_is_resumable(latest_session_.session_.get()) != 1) return false;
        out = latest_session_;
        return true;
      },
      limit, 2ms);
  return out;
}

// The pump: moves plaintext between the socketpair and SSL in one thread (SSL objects are not
// to be shared between threads), making every step it can, then polling for whatever it is
// blocked on. The test's side sees EOF once the TLS side ended and its bytes were delivered;
// EOF from the test's side (shutdown(SHUT_WR)) becomes a close_notify.
void TlsClient::pump() {
  constexpr std::size_t kChunk = 64 * 1024;
  std::vector<char> to_app(kChunk), to_net(kChunk);
  std::size_t app_off = 0, app_len = 0;  // decrypted bytes not yet written to the test's side
  std::size_t net_off = 0, net_len = 0;  // the test's bytes not yet taken by SSL_write
  bool net_done = false;                 // the TLS connection ended (or failed)
  bool app_eof = false;                  // the test shut its side down for writing
  bool app_shut = false;                 // we did the same to the test's side
  for (;;) {
    bool net_in = false, net_out = false, app_in = false, app_out = false;
    bool progress = true;
    while (progress) {
      progress = false;
      if (!net_done && app_len == 0) {
        errno = 0;
        int n = SSL_read(ssl_, to_app.data(), static_cast<int>(to_app.size()));
        int saved = errno;
        if (n > 0) {
          app_off = 0;
          app_len = static_cast<std::size_t>(n);
          progress = true;
        } else {
          int e = SSL_get_error(ssl_, n);
          if (e == SSL_ERROR_WANT_READ) {
            net_in = true;
          } else if (e == SSL_ERROR_WANT_WRITE) {
            net_out = true;
          } else {
            set_end(e == SSL_ERROR_ZERO_RETURN ? "close_notify" : failure(ssl_, n, saved));
            net_done = true;
            progress = true;
          }
        }
      }
      if (app_len > 0) {
        ssize_t w = ::send(pump_side_.get(), to_app.data() + app_off, app_len, MSG_NOSIGNAL);
        if (w > 0) {
          app_off += static_cast<std::size_t>(w);
          app_len -= static_cast<std::size_t>(w);
          progress = true;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
          app_out = true;
        } else {
          app_len = 0;  // the test closed its side: nobody reads these any more
        }
      }
      if (net_done && app_len == 0 && !app_shut) {
        ::shutdown(pump_side_.get(), SHUT_WR);
        app_shut = true;
      }
      if (!app_eof && net_len == 0) {
        ssize_t r = ::recv(pump_side_.get(), to_net.data(), to_net.size(), 0);
        if (r > 0) {
          net_off = 0;
          net_len = static_cast<std::size_t>(r);
          progress = true;
        } else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
          app_in = true;
        } else {
          app_eof = true;
          if (!net_done) SSL_shutdown(ssl_);
          progress = true;
        }
      }
      if (net_len > 0) {
        if (net_done) {
          net_len = 0;
          continue;
        }
        errno = 0;
        int n = SSL_write(ssl_, to_net.data() + net_off, static_cast<int>(net_len));
        int saved = errno;
        if (n > 0) {
          net_off += static_cast<std::size_t>(n);
          net_len -= static_cast<std::size_t>(n);
          progress = true;
        } else {
          int e = SSL_get_error(ssl_, n);
          if (e == SSL_ERROR_WANT_WRITE) {
            net_out = true;
          } else if (e == SSL_ERROR_WANT_READ) {
            net_in = true;
          } else {
            set_end(failure(ssl_, n, saved));
            net_done = true;
            net_len = 0;
            progress = true;
          }
        }
      }
    }
    pollfd p[3] = {{wake_read_.get(), POLLIN, 0},
                   {net_done ? -1 : net_.get(), static_cast<short>((net_in ? POLLIN : 0) | (net_out ? POLLOUT : 0)), 0},
                   {pump_side_.get(), static_cast<short>((app_in ? POLLIN : 0) | (app_out ? POLLOUT : 0)), 0}};
    ::poll(p, 3, -1);
    if (p[0].revents) return;
  }
}

std::string client_hello_bytes(const std::string& sni) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(ctx);
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, rbio, wbio);  // the SSL owns both now
  SSL_set_tlsext_host_name(ssl, sni.c_str());
  SSL_connect(ssl);  // writes the ClientHello, then wants the server's answer
  std::string out = bio_text(wbio);
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  ERR_clear_error();
  return out;
}

CertFacts cert_facts(const std::string& pem_file) {
  CertFacts out;
  FILE* f = std::fopen(pem_file.c_str(), "r");
  if (!f) return out;
  X509* x = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (!x) return out;
  out.cn = common_name(x);
  out.serial = serial_hex(x);
  X509_free(x);
  return out;
}

}  // namespace lbd::it
