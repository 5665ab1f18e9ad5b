// TLS to upstreams (issue 12) through the real binary, both drivers: a cluster with `tls:`
// verifies its backends' certificates (chain against tls.ca, name against tls.sni or the
// endpoint's IP), pools its TLS connections like plain ones, resumes the endpoint's session on a
// new connection, presents a client certificate (mTLS), and carries a tcp listener's bytes; a
// failed verification is a 502 with cause upstream_tls and the reason in the error log.
//
// The TLS backend is OpenSSL on blocking sockets in the harness's thread-per-connection
// Backend: it shares no code with lbd's TLS (only the library), as the rest of the harness
// shares none with lbd's runtime, so a bug in lbd::tls cannot hide behind the same bug in the
// backend. It counts handshakes (full and resumed) and requests.

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include "tests/integration/http_harness.hpp"
#include "tests/proxy/tls_test_support.hpp"

namespace lbd::it {
namespace {

using tls::test::CertSpec;
using tls::test::TestPki;

// ---------------------------------------------------------------------------------------------
// The TLS backend

struct TlsBackendOptions {
  std::string chain_file;  // leaf first
  std::string key_file;
  std::string client_ca;  // non-empty: a client certificate is required (mTLS)
  enum class Mode {
    kKeepAlive,  // answers HTTP/1.1 requests until the peer closes
    kCloseEach,  // answers one request with Connection: close, then closes (close_notify, FIN)
    kEcho,       // echoes plaintext until the peer closes
    kCloseQuietly,  // answers one request as keep-alive, then closes anyway (close_notify, FIN)
  };
  Mode mode = Mode::kKeepAlive;
  int max_version = 0;  // e.g. TLS1_2_VERSION; 0: OpenSSL's highest
};

class TlsBackend {
 public:
  explicit TlsBackend(TlsBackendOptions opts) : opts_(std::move(opts)) {
    // OpenSSL writes with write(2): a peer that has gone would kill the test with SIGPIPE
    // (the harness's own sends use MSG_NOSIGNAL). The handler sees EPIPE instead.
    ::signal(SIGPIPE, SIG_IGN);
    ctx_ = SSL_CTX_new(TLS_server_method());
    ok_ = ctx_ != nullptr && SSL_CTX_use_certificate_chain_file(ctx_, opts_.chain_file.c_str()) == 1 &&
          SSL_CTX_use_PrivateKey_file(ctx_, opts_.key_file.c_str(), SSL_FILETYPE_PEM) == 1 &&
          SSL_CTX_check_private_key(ctx_) == 1;
    if (ok_ && opts_.max_version != 0) SSL_CTX_set_max_proto_version(ctx_, opts_.max_version);
    // Resumption needs a session id context once client certificates are verified; the ticket
    // keys are the SSL_CTX's own (made by OpenSSL), which lives as long as the backend.
    static const unsigned char kSid[] = "lbd-upstream-tls-test";
    if (ok_) SSL_CTX_set_session_id_context(ctx_, kSid, sizeof(kSid) - 1);
    if (ok_ && !opts_.client_ca.empty()) {
      ok_ = SSL_CTX_load_verify_locations(ctx_, opts_.client_ca.c_str(), nullptr) == 1;
      SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    }
    // Counts the ClientHellos that offer a session (a TLS 1.3 PSK or a TLS 1.2 ticket), so a
    // failed resumption says whether lbd offered none or this server refused it.
    if (ok_) SSL_CTX_set_client_hello_cb(ctx_, &TlsBackend::on_client_hello, this);
    if (!ok_) ADD_FAILURE() << "the TLS backend could not load its certificate";
    backend_ = std::make_unique<Backend>("tls", [this](int fd) { serve(fd); });
  }
  ~TlsBackend() {
    backend_.reset();  // joins every handler before the context goes
    SSL_CTX_free(ctx_);
  }
  TlsBackend(const TlsBackend&) = delete;
  TlsBackend& operator=(const TlsBackend&) = delete;

  std::string address() const { return backend_->address(); }
  uint16_t port() const { return backend_->port(); }
  int accepted() const { return backend_->accepted(); }
  int handshakes() const { return handshakes_.load(); }  // completed, full or resumed
  int resumed() const { return resumed_.load(); }
  int failed_handshakes() const { return failed_.load(); }
  int offered_sessions() const { return offered_.load(); }
  int requests() const { return requests_.load(); }
  uint64_t echoed() const { return echoed_.load(); }
  /// The SNI names the handshakes carried, "" for none, in order.
  std::vector<std::string> server_names() const {
    std::lock_guard lock(mu_);
    return server_names_;
  }
  /// The client certificates' subjects (one per handshake that had one).
  std::vector<std::string> client_subjects() const {
    std::lock_guard lock(mu_);
    return client_subjects_;
  }
  bool wait_handshake_failures(int n, Ms limit = 10000ms) const {
    return wait_until([&] { return failed_.load() >= n; }, limit);
  }

 private:
  static int on_client_hello(SSL* ssl, int* /*alert*/, void* arg) {
    const unsigned char* data = nullptr;
    std::size_t len = 0;
    const bool psk = SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_psk, &data, &len) == 1;
    const bool ticket = SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_session_ticket, &data, &len) == 1 && len > 0;
    if (psk || ticket) ++static_cast<TlsBackend*>(arg)->offered_;
    return SSL_CLIENT_HELLO_SUCCESS;
  }

  void serve(int fd) {
    // Bounds every blocking call: a hung peer ends the handler instead of the test.
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    SSL* ssl = SSL_new(ctx_);
    if (!ssl) return;
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) != 1) {
      ERR_clear_error();
      ++failed_;
      SSL_free(ssl);
      return;
    }
    {
      std::lock_guard lock(mu_);
      const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
      server_names_.push_back(sni ? sni : "");
      if (X509* peer = SSL_get_peer_certificate(ssl)) {
        char* line = X509_NAME_oneline(X509_get_subject_name(peer), nullptr, 0);
        client_subjects_.push_back(line ? line : "");
        OPENSSL_free(line);
        X509_free(peer);
      }
    }
    if (SSL_session_reused(ssl)) ++resumed_;
    ++handshakes_;
    if (opts_.mode == TlsBackendOptions::Mode::kEcho)
      echo(ssl);
    else
      answer(ssl);
    ERR_clear_error();
    SSL_free(ssl);
  }

  void echo(SSL* ssl) {
    char buf[16 * 1024];
    for (;;) {
      int n = SSL_read(ssl, buf, sizeof(buf));
      if (n <= 0) break;
      if (SSL_write(ssl, buf, n) != n) return;
      echoed_ += static_cast<uint64_t>(n);
    }
    SSL_shutdown(ssl);
  }

  // GET requests without bodies, which is all the tests send.
  void answer(SSL* ssl) {
    std::string in;
    char buf[4096];
    for (;;) {
      std::size_t end = in.find("\r\n\r\n");
      while (end == std::string::npos) {
        int n = SSL_read(ssl, buf, sizeof(buf));
        if (n <= 0) return;  // the peer closed (or failed): nothing more to answer
        in.append(buf, static_cast<std::size_t>(n));
        end = in.find("\r\n\r\n");
      }
      const std::string head = in.substr(0, end);
      in.erase(0, end + 4);
      const int index = ++requests_;
      const std::string target = head.substr(0, head.find("\r\n"));
      const bool close = opts_.mode == TlsBackendOptions::Mode::kCloseEach;
      const bool close_after = close || opts_.mode == TlsBackendOptions::Mode::kCloseQuietly;
      const std::string body = "tls " + target;
      std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                         "\r\nX-Request: " + std::to_string(index) + "\r\n" +
                         (close ? "Connection: close\r\n" : "") + "\r\n" + body;
      if (SSL_write(ssl, resp.data(), static_cast<int>(resp.size())) != static_cast<int>(resp.size())) return;
      if (close_after) {
        SSL_shutdown(ssl);
        return;
      }
    }
  }

  TlsBackendOptions opts_;
  SSL_CTX* ctx_ = nullptr;
  bool ok_ = false;
  std::atomic<int> handshakes_{0}, resumed_{0}, failed_{0}, requests_{0}, offered_{0};
  std::atomic<uint64_t> echoed_{0};
  mutable std::mutex mu_;
  std::vector<std::string> server_names_;    // guarded by mu_
  std::vector<std::string> client_subjects_;  // guarded by mu_
  std::unique_ptr<Backend> backend_;  // last: its handlers use everything above
};

/// A leaf certificate for IP address 127.0.0.1 only (an IP SAN, no DNS name), issued by a CA of
/// its own; written as chain.pem/leaf.key and ca.pem into `dir`.
struct IpCertificate {
  std::string chain_file, key_file, ca_file;
};
IpCertificate make_ip_certificate(const tls::test::TempDir& dir) {
  using namespace tls::test;
  PkeyOwner ca_key = make_key(KeyKind::kEcdsa);
  CertSpec ca_spec;
  ca_spec.cn = "lbd ip CA";
  ca_spec.ca = true;
  X509Owner ca = make_cert(ca_spec, ca_key.get(), nullptr, nullptr);
  PkeyOwner key = make_key(KeyKind::kEcdsa);
  CertSpec leaf_spec;
  leaf_spec.cn = "127.0.0.1";
  X509Owner leaf = make_cert(leaf_spec, key.get(), ca.get(), ca_key.get());
  add_ext(leaf.get(), ca.get(), NID_subject_alt_name, "IP:127.0.0.1");
  X509_sign(leaf.get(), ca_key.get(), EVP_sha256());  // again, now with the SAN
  IpCertificate out;
  out.chain_file = dir.write("ip-chain.pem", pem_of(leaf.get()) + pem_of(ca.get()));
  out.key_file = dir.write("ip-leaf.key", pem_of(key.get()));
  out.ca_file = dir.write("ip-ca.pem", pem_of(ca.get()));
  return out;
}

// ---------------------------------------------------------------------------------------------
// The fixture

class UpstreamTls : public HttpTest {
 protected:
  UpstreamTls() { backend_cert_ = pki_.issue_for("backend", {"backend.test"}); }

  TlsBackendOptions backend_options(TlsBackendOptions::Mode mode = TlsBackendOptions::Mode::kKeepAlive) const {
    TlsBackendOptions o;
    o.chain_file = backend_cert_.chain_file;
    o.key_file = backend_cert_.key_file;
    o.mode = mode;
    return o;
  }
  /// The tls block of the cluster, verifying against the test CA with sni backend.test, plus
  /// `more` keys ("key: value, ...").
  std::string tls_block(const std::string& more = "") const {
    return "    tls: { ca: " + pki_.ca_file() + ", sni: backend.test" + (more.empty() ? "" : ", " + more) + " }\n";
  }
  /// An http listener in front of cluster "web" of `endpoints` with `cluster_extra`; with a
  /// combined access log in access.log.
  std::string start_web(const std::vector<std::string>& endpoints, const std::string& cluster_extra) {
    port_ = free_port();
    std::string y = web_yaml(endpoints, cluster_extra);
    const std::string from = "log: { level: info, access_log: off }\n";
    y.replace(y.find(from), from.size(),
              "log: { level: info, access_log: " + access_log() + ", access_log_format: combined }\n");
    return start_yaml(y, {port_});
  }
  std::string access_log() const { return dir_.file("access.log"); }
  /// The access log's lines once there are at least `n`.
  std::vector<std::string> access_lines(std::size_t n) const {
    std::vector<std::string> lines;
    wait_until(
        [&] {
          lines.clear();
          std::string text = read_file(access_log());
          std::size_t at = 0;
          while (at < text.size()) {
            std::size_t nl = text.find('\n', at);
            if (nl == std::string::npos) break;
            lines.push_back(text.substr(at, nl - at));
            at = nl + 1;
          }
          return lines.size() >= n;
        },
        10000ms, 5ms);
    return lines;
  }

  // A backend that closes after each response makes lbd connect again for every request;
  // each handshake after the first resumes the session the previous one left.
  void expect_resumption(TlsBackend& backend, int requests) {
    for (int i = 0; i < requests; ++i) {
      HttpMessage resp = roundtrip(http_get("/r/" + std::to_string(i), "a"));
      ASSERT_EQ(resp.status, 200) << i << ": " << resp.summary();
      EXPECT_EQ(resp.body, "tls GET /r/" + std::to_string(i) + " HTTP/1.1");
    }
    EXPECT_EQ(backend.requests(), requests);
    EXPECT_EQ(backend.handshakes(), requests);  // Connection: close: a new connection each time
    EXPECT_EQ(backend.offered_sessions(), requests - 1) << "lbd should offer the last session on each new connection";
    EXPECT_EQ(backend.resumed(), requests - 1) << "only the first handshake should be a full one";
  }

  TestPki pki_;
  TestPki::Issued backend_cert_;
};

// ---------------------------------------------------------------------------------------------
// Requests through a verified TLS upstream

TEST_P(UpstreamTls, CurlGetsTheBackendsAnswerOverAVerifiedConnection) {
  if (!have_program("curl")) GTEST_SKIP() << "curl is not installed (deploy/bootstrap.sh test installs it)";
  TlsBackend backend(backend_options());
  ASSERT_EQ(start_web({backend.address()}, tls_block()), "");
  const std::string body_file = dir_.file("curl.body");
  CommandResult r = run_command({"curl", "-sS", "--noproxy", "*", "--max-time", "20", "-o", body_file, "-w",
                                 "%{http_code}", "http://127.0.0.1:" + std::to_string(port_) + "/hello"},
                                dir_, 30000ms);
  ASSERT_TRUE(r.spawned) << r.err;
  EXPECT_EQ(r.status.code, 0) << r.err;
  EXPECT_EQ(r.out, "200");
  EXPECT_EQ(read_file(body_file), "tls GET /hello HTTP/1.1");
  EXPECT_EQ(backend.handshakes(), 1);
  EXPECT_EQ(backend.server_names(), (std::vector<std::string>{"backend.test"}));  // tls.sni is sent
  EXPECT_EQ(backend.client_subjects().size(), 0u);  // no client certificate configured
}

TEST_P(UpstreamTls, SequentialRequestsShareOnePooledTlsConnection) {
  TlsBackend backend(backend_options());
  ASSERT_EQ(start_web({backend.address()}, tls_block()), "");
  Fd c = client();
  HttpReader r(c.get());
  constexpr int kRequests = 20;
  for (int i = 0; i < kRequests; ++i) {
    const std::string path = "/seq/" + std::to_string(i);
    ASSERT_TRUE(send_all(c.get(), http_get(path, "a")));
    HttpMessage resp = r.read_final_response();
    ASSERT_EQ(resp.status, 200) << "request " << i << ": " << resp.summary();
    EXPECT_EQ(resp.body, "tls GET " + path + " HTTP/1.1");
  }
  EXPECT_EQ(backend.requests(), kRequests);
  // One connection, one handshake: the TLS connection went back to the pool after each
  // response and was taken again for the next request.
  EXPECT_EQ(backend.accepted(), 1);
  EXPECT_EQ(backend.handshakes(), 1);
}

TEST_P(UpstreamTls, RequestsOnManyClientConnectionsReuseThePooledTlsConnection) {
  TlsBackend backend(backend_options());
  ASSERT_EQ(start_web({backend.address()}, tls_block()), "");
  for (int i = 0; i < 10; ++i) {
    HttpMessage resp = roundtrip(http_get("/c/" + std::to_string(i), "a"));
    ASSERT_EQ(resp.status, 200) << i << ": " << resp.summary();
  }
  EXPECT_EQ(backend.requests(), 10);
  EXPECT_EQ(backend.handshakes(), 1);
}

TEST_P(UpstreamTls, ANewConnectionResumesTheEndpointsTls13Session) {
  TlsBackend backend(backend_options(TlsBackendOptions::Mode::kCloseEach));
  ASSERT_EQ(start_web({backend.address()}, tls_block()), "");
  expect_resumption(backend, 5);
}

TEST_P(UpstreamTls, ANewConnectionResumesTheEndpointsTls12Session) {
  TlsBackendOptions o = backend_options(TlsBackendOptions::Mode::kCloseEach);
  o.max_version = TLS1_2_VERSION;
  TlsBackend backend(o);
  ASSERT_EQ(start_web({backend.address()}, tls_block()), "");
  expect_resumption(backend, 5);
}

// A pooled TLS connection the backend ends while it idles (its close_notify arrives as bytes
// nobody asked for) is not used again: the next request gets a new connection, which resumes.
TEST_P(UpstreamTls, APooledConnectionTheBackendClosedIsReplacedByAResumedOne) {
  TlsBackend backend(backend_options(TlsBackendOptions::Mode::kCloseQuietly));
  ASSERT_EQ(start_web({backend.address()}, tls_block()), "");
  Fd c = client();
  HttpReader r(c.get());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(send_all(c.get(), http_get("/q/" + std::to_string(i), "a")));
    HttpMessage resp = r.read_final_response();
    ASSERT_EQ(resp.status, 200) << i << ": " << resp.summary();
    EXPECT_EQ(resp.body, "tls GET /q/" + std::to_string(i) + " HTTP/1.1");
  }
  EXPECT_EQ(backend.requests(), 3);
  EXPECT_EQ(backend.handshakes(), 3);
  EXPECT_EQ(backend.resumed(), 2);
}

// ---------------------------------------------------------------------------------------------
// Verification

TEST_P(UpstreamTls, ACertificateFromAnotherCaIs502WithTheReason) {
  TestPki other("another CA");
  TlsBackendOptions o = backend_options();
  const TestPki::Issued foreign = other.issue_for("foreign", {"backend.test"});
  o.chain_file = foreign.chain_file;
  o.key_file = foreign.key_file;
  TlsBackend backend(o);
  ASSERT_EQ(start_web({backend.address()}, tls_block()), "");
  HttpMessage resp = roundtrip(http_get("/v", "a"));
  EXPECT_EQ(resp.status, 502) << resp.summary();
  EXPECT_EQ(backend.requests(), 0);  // nothing was sent to a server lbd could not verify
  auto lines = access_lines(1);
  ASSERT_EQ(lines.size(), 1u) << read_file(access_log());
  EXPECT_NE(lines[0].find("\"GET /v HTTP/1.1\" 502 "), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("cause=upstream_tls"), std::string::npos) << lines[0];
  const std::string what = "TLS to " + backend.address() + " for cluster web: certificate verify failed";
  EXPECT_TRUE(lbd_->wait_log(what)) << "the error log does not say why";
}

TEST_P(UpstreamTls, AnSniTheCertificateDoesNotNameIs502WithHostnameMismatch) {
  TlsBackend backend(backend_options());
  ASSERT_EQ(start_web({backend.address()}, "    tls: { ca: " + pki_.ca_file() + ", sni: other.test }\n"), "");
  HttpMessage resp = roundtrip(http_get("/v", "a"));
  EXPECT_EQ(resp.status, 502) << resp.summary();
  EXPECT_EQ(backend.requests(), 0);
  auto lines = access_lines(1);
  ASSERT_EQ(lines.size(), 1u) << read_file(access_log());
  EXPECT_NE(lines[0].find("cause=upstream_tls"), std::string::npos) << lines[0];
  EXPECT_TRUE(lbd_->wait_log("TLS to " + backend.address() +
                             " for cluster web: certificate verify failed: hostname mismatch"))
      << "the error log does not say why";
}

TEST_P(UpstreamTls, VerifyFalseAcceptsAnyCertificate) {
  TestPki other("another CA");
  TlsBackendOptions o = backend_options();
  const TestPki::Issued foreign = other.issue_for("foreign", {"elsewhere.test"});
  o.chain_file = foreign.chain_file;
  o.key_file = foreign.key_file;
  TlsBackend backend(o);
  ASSERT_EQ(start_web({backend.address()}, "    tls: { verify: false, sni: backend.test }\n"), "");
  HttpMessage resp = roundtrip(http_get("/any", "a"));
  EXPECT_EQ(resp.status, 200) << resp.summary();
  EXPECT_EQ(resp.body, "tls GET /any HTTP/1.1");
}

// Without tls.sni no SNI is sent, and the certificate must name the endpoint's IP address.
TEST_P(UpstreamTls, WithoutSniTheEndpointsIpIsVerified) {
  tls::test::TempDir certs;
  const IpCertificate ip = make_ip_certificate(certs);
  TlsBackendOptions o = backend_options();
  o.chain_file = ip.chain_file;
  o.key_file = ip.key_file;
  TlsBackend by_ip(o);
  TlsBackend by_name(backend_options());  // backend.test only: no IP SAN
  ASSERT_EQ(start_web({by_ip.address(), by_name.address()},
                      "    retries: 0\n    tls: { ca: " + ip.ca_file + " }\n"),
            "");
  std::vector<int> statuses;
  for (int i = 0; i < 2; ++i) statuses.push_back(roundtrip(http_get("/ip", "a")).status);
  std::sort(statuses.begin(), statuses.end());
  // Round robin: one request to each endpoint.
  EXPECT_EQ(statuses, (std::vector<int>{200, 502}));
  EXPECT_EQ(by_ip.requests(), 1);
  EXPECT_EQ(by_ip.server_names(), (std::vector<std::string>{""}));  // no SNI for an IP
  EXPECT_EQ(by_name.requests(), 0);
  EXPECT_TRUE(lbd_->wait_log("TLS to " + by_name.address() + " for cluster web: certificate verify failed"));
}

// A failed handshake is the endpoint's failure, like a refused connect: the request goes to
// the next endpoint.
TEST_P(UpstreamTls, AFailedVerificationIsRetriedOnAnotherEndpoint) {
  TestPki other("another CA");
  TlsBackendOptions o = backend_options();
  const TestPki::Issued foreign = other.issue_for("foreign", {"backend.test"});
  o.chain_file = foreign.chain_file;
  o.key_file = foreign.key_file;
  TlsBackend bad(o);
  TlsBackend good(backend_options());
  ASSERT_EQ(start_web({bad.address(), good.address()}, "    retries: 1\n" + tls_block()), "");
  for (int i = 0; i < 4; ++i) {
    HttpMessage resp = roundtrip(http_get("/rt/" + std::to_string(i), "a"));
    EXPECT_EQ(resp.status, 200) << i << ": " << resp.summary();
  }
  EXPECT_EQ(good.requests(), 4);
  EXPECT_EQ(bad.requests(), 0);
  EXPECT_GE(bad.accepted(), 1) << "the bad endpoint was never tried";
}

// ---------------------------------------------------------------------------------------------
// mTLS to the backend

TEST_P(UpstreamTls, ABackendThatRequiresAClientCertificateGetsTheConfiguredOne) {
  const TestPki::Issued client = pki_.issue_for("client", {"lbd-client.test"});
  TlsBackendOptions o = backend_options();
  o.client_ca = pki_.ca_file();
  TlsBackend backend(o);
  ASSERT_EQ(start_web({backend.address()},
                      tls_block("client_cert: " + client.chain_file + ", client_key: " + client.key_file)),
            "");
  HttpMessage resp = roundtrip(http_get("/mtls", "a"));
  EXPECT_EQ(resp.status, 200) << resp.summary();
  EXPECT_EQ(resp.body, "tls GET /mtls HTTP/1.1");
  auto subjects = backend.client_subjects();
  ASSERT_EQ(subjects.size(), 1u);
  EXPECT_NE(subjects[0].find("CN=lbd-client.test"), std::string::npos) << subjects[0];
}

TEST_P(UpstreamTls, ABackendThatRequiresAClientCertificateRefusesLbdWithoutOne) {
  TlsBackendOptions o = backend_options();
  o.client_ca = pki_.ca_file();
  TlsBackend backend(o);
  ASSERT_EQ(start_web({backend.address()}, tls_block()), "");
  HttpMessage resp = roundtrip(http_get("/mtls", "a"));
  EXPECT_EQ(resp.status, 502) << resp.summary();
  EXPECT_EQ(backend.requests(), 0);
  EXPECT_TRUE(backend.wait_handshake_failures(1)) << "the backend saw no refused handshake";
  EXPECT_EQ(backend.handshakes(), 0);
}

// ---------------------------------------------------------------------------------------------
// A tcp listener in front of a TLS cluster

TEST_P(UpstreamTls, ATcpListenerCarriesBytesExactlyThroughATlsCluster) {
  TlsBackend backend(backend_options(TlsBackendOptions::Mode::kEcho));
  port_ = free_port();
  const std::string y = "workers: 1\nlog: { level: info, access_log: off }\nlisteners:\n  - name: l4\n"
                        "    listen: 127.0.0.1:" + std::to_string(port_) +
                        "\n    protocol: tcp\n    cluster: web\nclusters:\n  - name: web\n    endpoints: [" +
                        backend.address() + "]\n" + tls_block();
  ASSERT_EQ(start_yaml(y, {port_}), "");
  Fd c = client();
  ASSERT_TRUE(c);
  constexpr uint64_t kBytes = 1024 * 1024;
  constexpr uint64_t kSeed = 12;
  std::atomic<uint64_t> sent{0};
  std::thread sender([&] { sent = send_stream(c.get(), kSeed, kBytes); });
  StreamChecker checker(kSeed);
  ReadResult got = read_exact(c.get(), kBytes, 30000ms);
  sender.join();
  checker.feed(got.data.data(), got.data.size());
  EXPECT_EQ(sent.load(), kBytes);
  EXPECT_EQ(checker.received(), kBytes) << "ended: " << to_string(got.end);
  EXPECT_FALSE(checker.first_mismatch().has_value()) << "first wrong byte at " << *checker.first_mismatch();
  EXPECT_EQ(backend.echoed(), kBytes);
  EXPECT_EQ(backend.handshakes(), 1);
  // The client's FIN reaches the backend as the end of the TLS stream; its close comes back.
  ::shutdown(c.get(), SHUT_WR);
  ReadResult rest = read_to_end(c.get(), 10000ms);
  EXPECT_EQ(rest.end, End::kEof);
  EXPECT_EQ(rest.data, "");
}

LBD_INSTANTIATE_DRIVERS(UpstreamTls);

}  // namespace
}  // namespace lbd::it
