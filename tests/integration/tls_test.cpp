// TLS termination through the real binary (issue 12): curl through a TLS http listener, SNI
// selection, ALPN, the protocol floor, client certificates (required, optional, wrong CA) and
// the subject header, the handshake timeout, plain HTTP and garbage on a TLS port, certificate
// rotation by SIGHUP (and a broken new certificate), session resumption across workers and
// reloads, and 100 MiB both ways through a TLS tcp listener.
//
// Certificates are made at test time (tests/proxy/tls_test_support.hpp). The openssl and curl
// CLIs are real-world clients; the harness's TlsClient (OpenSSL on its own socket) is the one
// the tests script byte by byte.

#include <sys/socket.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/http_harness.hpp"
#include "tests/integration/tls_harness.hpp"
#include "tests/proxy/tls_test_support.hpp"

namespace lbd::it {
namespace {

using tls::test::TestPki;
using namespace std::string_literals;

Ms since(Clock::time_point t) { return std::chrono::duration_cast<Ms>(Clock::now() - t); }

/// Replaces `path` with `text` at once (rename), as certbot and cert-manager do.
void replace_file(const std::string& path, const std::string& text) {
  write_file(path + ".new", text);
  std::filesystem::rename(path + ".new", path);
}

class TlsIt : public HttpTest {
 protected:
  void SetUp() override {
    HttpTest::SetUp();
    if (IsSkipped()) return;
    port_ = free_port();
    // The served certificate lives in the test's directory under fixed names, so that the
    // rotation tests can replace the files the config names.
    site_ = pki_.issue_for("site", {"site.test"});
    cert_ = dir_.file("site.pem");
    key_ = dir_.file("site.key");
    write_file(cert_, read_file(site_.chain_file));
    write_file(key_, read_file(site_.key_file));
  }

  /// One listener "web" (`protocol`) on port_ with `tls_lines` (at 6 spaces) under `tls:`,
  /// `listener_extra` (at 4), before cluster "app" of `endpoints`.
  std::string yaml(const std::vector<std::string>& endpoints, const std::string& tls_lines,
                   const std::string& listener_extra = "", const std::string& protocol = "http",
                   int workers = 1) const {
    std::string y = "workers: " + std::to_string(workers) + "\n";
    y += "log: { level: info, access_log: off }\n";
    y += "listeners:\n  - name: web\n    listen: 127.0.0.1:" + std::to_string(port_) + "\n";
    y += "    protocol: " + protocol + "\n    cluster: app\n";
    y += listener_extra;
    y += "    tls:\n" + tls_lines;
    y += "clusters:\n  - name: app\n    endpoints:\n";
    for (const auto& e : endpoints) y += "      - " + e + "\n";
    return y;
  }
  /// The tls lines of the one site certificate, plus `more` (at 6 spaces).
  std::string site_tls(const std::string& more = "") const {
    return "      cert: " + cert_ + "\n      key: " + key_ + "\n" + more;
  }
  std::string start_tls(const std::string& text) { return start_yaml(text, {port_}); }

  /// Client options that trust the test CA and ask for site.test.
  TlsClientOptions site_client() const {
    TlsClientOptions o;
    o.sni = "site.test";
    o.alpn = {"http/1.1"};
    o.ca_file = pki_.ca_file();
    return o;
  }
  std::unique_ptr<TlsClient> tls_connect(const TlsClientOptions& o) { return TlsClient::connect(port_, o); }

  /// One request on a TLS connection already open; the final response.
  static HttpMessage request_on(TlsClient& c, HttpReader& r, const std::string& request) {
    if (!send_all(c.fd(), request)) return HttpMessage{.error = "send failed"};
    return r.read_final_response(10000ms);
  }
  /// One request on a new TLS connection made with `o`.
  HttpMessage tls_roundtrip(const TlsClientOptions& o, const std::string& request) {
    auto c = tls_connect(o);
    if (!c->handshake().ok) return HttpMessage{.error = "handshake: " + c->handshake().error};
    HttpReader r(c->fd());
    HttpMessage m = request_on(*c, r, request);
    if (!m.complete) m.error += " (TLS side: " + c->net_end() + ")";
    return m;
  }

  /// `openssl s_client` against port_ with `args`; stdin is /dev/null, so it ends after the
  /// handshake. Returns stdout and stderr together.
  std::string s_client(std::vector<std::string> args, bool* ok = nullptr) {
    std::vector<std::string> argv = {"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(port_)};
    argv.insert(argv.end(), args.begin(), args.end());
    CommandResult r = run_command(argv, dir_, 20000ms);
    if (ok) *ok = r.status.exited && r.status.code == 0;
    return r.out + r.err + (r.timed_out ? "\n<timed out>" : "");
  }

  TestPki pki_;
  TestPki::Issued site_;
  std::string cert_, key_;  // the files the config names
};

// 1. curl through a TLS http listener to a plain backend.
TEST_P(TlsIt, CurlGetsTheBackendsAnswerAndTheBackendSeesHttps) {
  if (!have_program("curl")) GTEST_SKIP() << "curl is not installed (Debian: curl)";
  HttpBackend backend(respond_ok("hello over tls"));
  ASSERT_EQ(start_tls(yaml({backend.address()}, site_tls())), "");
  std::string p = std::to_string(port_);
  CommandResult r = run_command({"curl", "-sS", "--cacert", pki_.ca_file(), "--resolve", "site.test:" + p + ":127.0.0.1",
                                 "-w", "\n%{http_code} %{http_version}", "https://site.test:" + p + "/"},
                                dir_, 20000ms);
  EXPECT_TRUE(r.status.exited && r.status.code == 0) << r.status.to_string() << ": " << r.err;
  EXPECT_EQ(r.out, "hello over tls\n200 1.1") << r.err;
  ASSERT_EQ(backend.request_count(), 1u);
  HttpMessage seen = backend.requests()[0];
  EXPECT_EQ(seen.header("X-Forwarded-Proto").value_or("<none>"), "https") << seen.raw_head;
}

// 2. SNI: exact name, one-label wildcard, no SNI and an unknown name (both: the first, default).
TEST_P(TlsIt, SniSelectsTheCertificate) {
  if (!have_program("openssl")) GTEST_SKIP() << "openssl is not installed (Debian: openssl)";
  auto def = pki_.issue_for("default", {"default.test"});
  auto a = pki_.issue_for("a", {"a.test"});
  tls::test::CertSpec bspec;
  bspec.cn = "b-wildcard";
  bspec.dns = {"*.b.test"};
  auto b = pki_.issue("b", bspec);
  HttpBackend backend(respond_ok());
  // a's names come from its SAN; b's are given explicitly.
  std::string tls = "      certificates:\n"
                    "        - { cert: " + def.chain_file + ", key: " + def.key_file + " }\n"
                    "        - { cert: " + a.chain_file + ", key: " + a.key_file + " }\n"
                    "        - { cert: " + b.chain_file + ", key: " + b.key_file + ", names: [\"*.b.test\"] }\n";
  ASSERT_EQ(start_tls(yaml({backend.address()}, tls)), "");

  struct Case {
    std::vector<std::string> sni_args;
    std::string cn;
  };
  for (const Case& c : {Case{{"-servername", "a.test"}, "a.test"}, Case{{"-servername", "x.b.test"}, "b-wildcard"},
                        Case{{"-servername", "A.TEST"}, "a.test"}, Case{{"-noservername"}, "default.test"},
                        Case{{"-servername", "other.test"}, "default.test"},
                        Case{{"-servername", "y.x.b.test"}, "default.test"}}) {
    std::vector<std::string> args = c.sni_args;
    args.insert(args.end(), {"-CAfile", pki_.ca_file()});
    bool ok = false;
    std::string out = s_client(args, &ok);
    std::string what = c.sni_args.back();
    EXPECT_TRUE(ok) << what << ":\n" << out;
    EXPECT_NE(out.find("subject=O = lbd tests, CN = " + c.cn + "\n"), std::string::npos)
        << what << " should get CN " << c.cn << ":\n" << out;
    EXPECT_NE(out.find("Verify return code: 0 (ok)"), std::string::npos) << what << ":\n" << out;
  }
  // The same through the harness's client, which also reads the SAN.
  TlsClientOptions o;
  o.sni = "deep.b.test";
  o.ca_file = pki_.ca_file();
  auto c = tls_connect(o);
  ASSERT_TRUE(c->handshake().ok) << c->handshake().error;
  EXPECT_EQ(c->handshake().peer_dns, std::vector<std::string>{"*.b.test"});
}

// 3. ALPN: http/1.1 is chosen; a client that offers only h2 is refused in the handshake.
TEST_P(TlsIt, AlpnChoosesHttp11AndRefusesAClientOfferingOnlyH2) {
  if (!have_program("openssl")) GTEST_SKIP() << "openssl is not installed (Debian: openssl)";
  HttpBackend backend(respond_ok());
  ASSERT_EQ(start_tls(yaml({backend.address()}, site_tls())), "");
  bool ok = false;
  std::string out = s_client({"-servername", "site.test", "-alpn", "http/1.1"}, &ok);
  EXPECT_TRUE(ok) << out;
  EXPECT_NE(out.find("ALPN protocol: http/1.1"), std::string::npos) << out;

  out = s_client({"-servername", "site.test", "-alpn", "h2"}, &ok);
  EXPECT_FALSE(ok) << out;
  EXPECT_NE(out.find("no application protocol"), std::string::npos) << out;
  EXPECT_EQ(out.find("ALPN protocol: h2"), std::string::npos) << out;

  // A browser-like offer (h2 first) gets http/1.1, and a client without ALPN is let in.
  TlsClientOptions o = site_client();
  o.alpn = {"h2", "http/1.1"};
  auto c = tls_connect(o);
  ASSERT_TRUE(c->handshake().ok) << c->handshake().error;
  EXPECT_EQ(c->handshake().alpn, "http/1.1");
  o.alpn.clear();
  HttpMessage m = tls_roundtrip(o, http_get("/", "site.test"));
  EXPECT_EQ(m.status, 200) << m.summary() << " " << m.error;
}

// 4. The protocol floor (default TLSv1.2): TLS 1.1 is refused, 1.2 and 1.3 are accepted.
TEST_P(TlsIt, Tls11IsRefusedAndTls12And13AreAccepted) {
  if (!have_program("openssl")) GTEST_SKIP() << "openssl is not installed (Debian: openssl)";
  HttpBackend backend(respond_ok());
  ASSERT_EQ(start_tls(yaml({backend.address()}, site_tls())), "");
  bool ok = false;
  std::string out = s_client({"-servername", "site.test", "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"}, &ok);
  EXPECT_FALSE(ok) << out;
  // The server's protocol_version alert (70), not a client that could not even offer 1.1.
  EXPECT_NE(out.find("alert protocol version"), std::string::npos) << out;

  for (const char* v : {"-tls1_2", "-tls1_3"}) {
    out = s_client({"-servername", "site.test", v, "-CAfile", pki_.ca_file()}, &ok);
    EXPECT_TRUE(ok) << v << ":\n" << out;
    std::string want = std::string("New, TLSv1.") + (v[6] == '2' ? "2" : "3");
    EXPECT_NE(out.find(want), std::string::npos) << v << ":\n" << out;
  }
  // And a request goes through on each.
  for (const char* v : {"TLSv1.2", "TLSv1.3"}) {
    TlsClientOptions o = site_client();
    o.version = v;
    HttpMessage m = tls_roundtrip(o, http_get("/", "site.test"));
    EXPECT_EQ(m.status, 200) << v << ": " << m.summary() << " " << m.error;
  }
  TlsClientOptions o = site_client();
  o.version = "TLSv1.1";
  auto c = tls_connect(o);
  EXPECT_FALSE(c->handshake().ok) << "a TLS 1.1 handshake succeeded";
}

// 5. Client certificates.
class TlsMtls : public TlsIt {
 protected:
  void SetUp() override {
    TlsIt::SetUp();
    if (IsSkipped()) return;
    clients_ca_ = std::make_unique<TestPki>("lbd client CA");
    client_ = clients_ca_->issue_for("client-1", {});  // CN client-1, no SAN
    other_ca_ = std::make_unique<TestPki>("another CA");
    stranger_ = other_ca_->issue_for("stranger", {});
  }
  std::string mtls(const std::string& mode) const {
    return site_tls("      client_ca: " + clients_ca_->ca_file() + "\n      verify_client: " + mode + "\n");
  }
  TlsClientOptions with_cert(const TestPki::Issued& who, const std::string& version = "") const {
    TlsClientOptions o = site_client();
    o.cert_file = who.chain_file;
    o.key_file = who.key_file;
    o.version = version;
    return o;
  }

  std::unique_ptr<TestPki> clients_ca_, other_ca_;
  TestPki::Issued client_, stranger_;
};

/// Whether a client made with `o` was refused: no response (a TLS 1.2 client fails its
/// handshake; a TLS 1.3 client finishes it and then reads the server's alert).
::testing::AssertionResult refused(const HttpMessage& m) {
  if (m.status != 0) return ::testing::AssertionFailure() << "let in: " << m.summary();
  return ::testing::AssertionSuccess();
}

TEST_P(TlsMtls, RequiredRefusesClientsWithoutACertificateOrWithOneOfAnotherCa) {
  HttpBackend backend(respond_ok());
  ASSERT_EQ(start_tls(yaml({backend.address()}, mtls("required"))), "");
  for (const char* v : {"TLSv1.2", "TLSv1.3"}) {
    TlsClientOptions o = site_client();
    o.version = v;
    HttpMessage m = tls_roundtrip(o, http_get("/", "site.test"));
    EXPECT_TRUE(refused(m)) << v << " without a certificate";
    if (std::string(v) == "TLSv1.3") {
      EXPECT_NE(m.error.find("certificate required"), std::string::npos) << m.error;
    }
    m = tls_roundtrip(with_cert(stranger_, v), http_get("/", "site.test"));
    EXPECT_TRUE(refused(m)) << v << " with a certificate of another CA";
  }
  EXPECT_EQ(backend.request_count(), 0u) << "a refused client's request reached the backend";
}

TEST_P(TlsMtls, RequiredLetsInTheCasClientsAndTheBackendGetsTheSubjectNotTheClientsCopy) {
  HttpBackend backend(respond_ok());
  ASSERT_EQ(start_tls(yaml({backend.address()}, mtls("required"))), "");
  for (const char* v : {"TLSv1.2", "TLSv1.3"}) {
    HttpMessage m = tls_roundtrip(with_cert(client_, v), http_get("/", "site.test"));
    EXPECT_EQ(m.status, 200) << v << ": " << m.summary() << " " << m.error;
  }
  // The client's own X-Client-Subject (any case) must not reach the backend as if lbd sent it.
  HttpMessage m = tls_roundtrip(with_cert(client_),
                                http_get("/", "site.test", "X-Client-Subject: CN=admin\r\nx-client-subject: CN=root\r\n"));
  EXPECT_EQ(m.status, 200) << m.summary() << " " << m.error;
  auto seen = backend.requests();
  ASSERT_EQ(seen.size(), 3u);
  for (const auto& r : seen) {
    EXPECT_EQ(r.count("X-Client-Subject"), 1) << r.raw_head;
    EXPECT_EQ(r.header("X-Client-Subject").value_or(""), "CN=client-1,O=lbd tests") << r.raw_head;
  }
}

TEST_P(TlsMtls, OptionalLetsInClientsWithoutACertificateAndSendsNoSubject) {
  HttpBackend backend(respond_ok());
  ASSERT_EQ(start_tls(yaml({backend.address()}, mtls("optional"))), "");
  HttpMessage m = tls_roundtrip(site_client(), http_get("/", "site.test", "X-Client-Subject: CN=admin\r\n"));
  EXPECT_EQ(m.status, 200) << m.summary() << " " << m.error;
  m = tls_roundtrip(with_cert(client_), http_get("/", "site.test"));
  EXPECT_EQ(m.status, 200) << m.summary() << " " << m.error;
  // A certificate lbd cannot verify is refused even when certificates are optional.
  m = tls_roundtrip(with_cert(stranger_), http_get("/", "site.test"));
  EXPECT_TRUE(refused(m)) << "with a certificate of another CA";
  auto seen = backend.requests();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].count("X-Client-Subject"), 0) << "without a certificate:\n" << seen[0].raw_head;
  EXPECT_EQ(seen[1].header("X-Client-Subject").value_or("<none>"), "CN=client-1,O=lbd tests") << seen[1].raw_head;
}

// 6. A client that stalls in the handshake is closed after timeouts.handshake; others are served.
TEST_P(TlsIt, StalledHandshakesAreClosedAfterTheHandshakeTimeout) {
  HttpBackend backend(respond_ok());
  ASSERT_EQ(start_tls(yaml({backend.address()}, site_tls(), "    timeouts: { handshake: 300ms }\n")), "");
  std::string hello = client_hello_bytes("site.test");
  ASSERT_GT(hello.size(), 100u);

  struct Stalled {
    std::string what;
    Fd fd;
    Clock::time_point start;
    End end = End::kTimeout;
    Ms took{0};
  };
  std::vector<Stalled> stalled;
  stalled.push_back({"nothing sent", connect_or_fail(port_), Clock::now()});
  stalled.push_back({"half a ClientHello", connect_or_fail(port_), Clock::now()});
  ASSERT_TRUE(stalled[1].fd && send_all(stalled[1].fd.get(), hello.substr(0, hello.size() / 2)));
  stalled.push_back({"a whole ClientHello, then silence", connect_or_fail(port_), Clock::now()});
  ASSERT_TRUE(stalled[2].fd && send_all(stalled[2].fd.get(), hello));

  std::vector<std::thread> waiters;
  for (auto& s : stalled) {
    waiters.emplace_back([&s] {
      s.end = read_to_end(s.fd.get(), 5000ms).end;
      s.took = since(s.start);
    });
  }
  // While those hang in their handshakes, a normal client is served.
  HttpMessage m = tls_roundtrip(site_client(), http_get("/", "site.test"));
  EXPECT_EQ(m.status, 200) << m.summary() << " " << m.error;
  for (auto& t : waiters) t.join();
  for (const auto& s : stalled) {
    EXPECT_TRUE(s.end == End::kEof || s.end == End::kReset) << s.what << ": " << to_string(s.end);
    EXPECT_GE(s.took.count(), 250) << s.what << ": closed before the handshake timeout";
    EXPECT_LE(s.took.count(), 1500) << s.what << ": closed long after the 300ms handshake timeout";
  }
  m = tls_roundtrip(site_client(), http_get("/", "site.test"));
  EXPECT_EQ(m.status, 200) << m.summary() << " " << m.error;
}

// 7. Plain HTTP to the TLS port: 400 as nginx words it, then closed; other garbage: closed.
TEST_P(TlsIt, PlainHttpGets400AndGarbageIsClosedAndLbdKeepsServing) {
  HttpBackend backend(respond_ok());
  ASSERT_EQ(start_tls(yaml({backend.address()}, site_tls())), "");
  std::size_t from = lbd_->log_size();
  for (int i = 0; i < 3; ++i) {
    Fd c = connect_or_fail(port_);
    ASSERT_TRUE(send_all(c.get(), http_get("/", "site.test")));
    HttpReader r(c.get());
    HttpMessage resp = r.read_response(5000ms);
    EXPECT_TRUE(resp.complete) << resp.summary() << " " << resp.error;
    EXPECT_EQ(resp.status, 400) << resp.summary();
    EXPECT_EQ(resp.raw_head.rfind("HTTP/1.1 400", 0), 0u) << resp.raw_head;
    EXPECT_NE(resp.body.find("The plain HTTP request was sent to HTTPS port"), std::string::npos) << resp.body;
    End end = r.wait_end(5000ms);
    EXPECT_TRUE(end == End::kEof || end == End::kReset) << "not closed after the 400: " << to_string(end);
  }
  for (const std::string& garbage : {"\x01\x02\x03\xff\xfe not tls at all\r\n\r\n"s,
                                     std::string(64, '\0')}) {
    Fd c = connect_or_fail(port_);
    ASSERT_TRUE(send_all(c.get(), garbage));
    HttpReader r(c.get());
    End end = r.wait_end(5000ms);
    EXPECT_TRUE(end == End::kEof || end == End::kReset) << "garbage: " << to_string(end) << ", got "
                                                        << r.buffered().size() << " bytes";
  }
  EXPECT_EQ(backend.request_count(), 0u);
  HttpMessage m = tls_roundtrip(site_client(), http_get("/", "site.test"));
  EXPECT_EQ(m.status, 200) << m.summary() << " " << m.error;
  std::string since_start = lbd_->log().substr(from);
  EXPECT_EQ(since_start.find("[error]"), std::string::npos) << "logged at error level:\n" << since_start;
}

// 8. Certificate rotation by SIGHUP.
TEST_P(TlsIt, SighupServesTheNewCertificateToNewConnectionsAndKeepsOpenOnes) {
  HttpBackend backend(respond_ok());
  std::string config = yaml({backend.address()}, site_tls());
  ASSERT_EQ(start_tls(config), "");
  CertFacts old_cert = cert_facts(cert_);
  auto kept = tls_connect(site_client());
  ASSERT_TRUE(kept->handshake().ok) << kept->handshake().error;
  EXPECT_EQ(kept->handshake().peer_serial, old_cert.serial);
  HttpReader kept_reader(kept->fd());
  HttpMessage m = request_on(*kept, kept_reader, http_get("/1", "site.test"));
  ASSERT_EQ(m.status, 200) << m.summary() << " " << m.error;

  tls::test::CertSpec spec;
  spec.cn = "site.test v2";
  spec.dns = {"site.test"};
  auto v2 = pki_.issue("site-v2", spec);
  replace_file(cert_, read_file(v2.chain_file));
  replace_file(key_, read_file(v2.key_file));
  CertFacts new_cert = cert_facts(cert_);
  ASSERT_NE(new_cert.serial, old_cert.serial);
  std::string log = reload(config);
  ASSERT_NE(log.find("reload done"), std::string::npos) << "reload: " << (log.empty() ? "<timed out>" : log);

  auto fresh = tls_connect(site_client());
  ASSERT_TRUE(fresh->handshake().ok) << fresh->handshake().error;
  EXPECT_EQ(fresh->handshake().peer_serial, new_cert.serial) << "a new connection got " << fresh->handshake().peer_cn;
  EXPECT_EQ(fresh->handshake().peer_cn, "site.test v2");
  // The connection made before the reload goes on.
  m = request_on(*kept, kept_reader, http_get("/2", "site.test"));
  EXPECT_EQ(m.status, 200) << m.summary() << " " << m.error << " (TLS side: " << kept->net_end() << ")";
}

TEST_P(TlsIt, BrokenNewCertificateFailsTheReloadAndTheOldOneStaysServed) {
  HttpBackend backend(respond_ok());
  std::string config = yaml({backend.address()}, site_tls());
  ASSERT_EQ(start_tls(config), "");
  CertFacts old_cert = cert_facts(cert_);
  auto kept = tls_connect(site_client());
  ASSERT_TRUE(kept->handshake().ok) << kept->handshake().error;
  HttpReader kept_reader(kept->fd());
  ASSERT_EQ(request_on(*kept, kept_reader, http_get("/1", "site.test")).status, 200);

  // A new certificate with a key that is not its own (a rotation that copied only one file).
  auto v2 = pki_.issue_for("site-v2", {"site.test"});
  replace_file(cert_, read_file(v2.chain_file));
  replace_file(key_, read_file(pki_.stray_key("stray")));
  std::string log = reload(config);
  ASSERT_FALSE(log.empty()) << "the reload neither finished nor failed";
  EXPECT_NE(log.find("reload failed"), std::string::npos) << log;
  EXPECT_NE(log.find(key_), std::string::npos) << "the failure does not name the key file:\n" << log;

  auto fresh = tls_connect(site_client());
  ASSERT_TRUE(fresh->handshake().ok) << fresh->handshake().error;
  EXPECT_EQ(fresh->handshake().peer_serial, old_cert.serial) << "a new connection got " << fresh->handshake().peer_cn;
  HttpReader fresh_reader(fresh->fd());
  EXPECT_EQ(request_on(*fresh, fresh_reader, http_get("/2", "site.test")).status, 200);
  HttpMessage m = request_on(*kept, kept_reader, http_get("/3", "site.test"));
  EXPECT_EQ(m.status, 200) << m.summary() << " " << m.error;
}

// 9. Session resumption across workers and across a reload.
//
// Each of the 2 workers accepts on its own SO_REUSEPORT socket and the kernel picks one by a
// hash of the connection's addresses and ports (with a secret of its own, so a test cannot aim).
// The later connections come from varying source addresses and ports; each lands on the worker
// that issued the ticket with probability 1/2, so if only that worker could resume it, all
// kConns would resume with probability 2^-kConns (one in a million for 20): in practice, every
// run has connections on both workers. lbd's /stats has no per-worker figures to confirm it.
constexpr int kConns = 20;

TEST_P(TlsIt, SessionsResumeOnEveryWorkerAndAfterAReload) {
  HttpBackend backend(respond_ok());
  std::string config = yaml({backend.address()}, site_tls(), "", "http", 2);
  ASSERT_EQ(start_tls(config), "");
  for (const char* v : {"TLSv1.3", "TLSv1.2"}) {
    SCOPED_TRACE(v);
    TlsClientOptions o = site_client();
    o.version = v;
    auto first = tls_connect(o);
    ASSERT_TRUE(first->handshake().ok) << first->handshake().error;
    EXPECT_FALSE(first->handshake().reused);
    HttpReader r(first->fd());
    ASSERT_EQ(request_on(*first, r, http_get("/", "site.test")).status, 200);  // TLS 1.3's tickets come after the handshake
    o.session = first->wait_session();
    ASSERT_TRUE(o.session) << "the server gave no resumable session";

    auto resume_all = [&](const std::string& when) {
      int reused = 0;
      for (int i = 0; i < kConns; ++i) {
        o.source = source_ip(i);
        auto c = tls_connect(o);
        ASSERT_TRUE(c->handshake().ok) << when << " connection " << i << ": " << c->handshake().error;
        reused += c->handshake().reused;
        HttpReader cr(c->fd());
        EXPECT_EQ(request_on(*c, cr, http_get("/", "site.test")).status, 200) << when << " connection " << i;
      }
      EXPECT_EQ(reused, kConns) << when << ": only " << reused << " of " << kConns << " connections resumed";
    };
    resume_all("before the reload");
    std::string log = reload(config);
    ASSERT_NE(log.find("reload done"), std::string::npos) << (log.empty() ? "<timed out>" : log);
    resume_all("after the reload");
  }
}

// The same with openssl s_client's session files (TLS 1.2: the ticket is part of the handshake,
// so s_client has it before it ends).
TEST_P(TlsIt, SClientSessionFileResumes) {
  if (!have_program("openssl")) GTEST_SKIP() << "openssl is not installed (Debian: openssl)";
  HttpBackend backend(respond_ok());
  ASSERT_EQ(start_tls(yaml({backend.address()}, site_tls(), "", "http", 2)), "");
  std::string sess = dir_.file("session.pem");
  bool ok = false;
  std::string out = s_client({"-servername", "site.test", "-tls1_2", "-sess_out", sess}, &ok);
  ASSERT_TRUE(ok) << out;
  EXPECT_NE(out.find("New, TLSv1.2"), std::string::npos) << out;
  for (int i = 0; i < 10; ++i) {
    out = s_client({"-servername", "site.test", "-tls1_2", "-sess_in", sess}, &ok);
    EXPECT_TRUE(ok) << out;
    EXPECT_NE(out.find("Reused, TLSv1.2"), std::string::npos) << "connection " << i << ":\n" << out;
  }
}

// 10. 100 MiB each way, byte-exact, through a TLS tcp listener to an echo backend.
// Both ways at once through a TLS tcp listener. This found a double release of a pooled read
// buffer: accept_tls() had `cond ? co_await read_pooled(...) : Result<Buffer>(...)`, whose
// Result<Buffer> g++ 12 destroyed twice; two later reads then shared one buffer and lbd's
// OpenSSL saw damaged ciphertext after a few hundred KiB.
TEST_P(TlsIt, HundredMiBBothWaysThroughATlsTcpListener) {
  constexpr uint64_t kBytes = 100ull << 20;
  auto echo = make_echo();
  ASSERT_EQ(start_tls(yaml({echo->address()}, site_tls(), "", "tcp")), "");
  TlsClientOptions o = site_client();
  o.alpn.clear();
  auto c = tls_connect(o);
  ASSERT_TRUE(c->handshake().ok) << c->handshake().error;
  uint64_t sent = 0;
  std::thread sender([&] { sent = send_stream(c->fd(), 42, kBytes, 120000ms); });
  StreamChecker checker(42);
  Clock::time_point deadline = Clock::now() + 120000ms;
  while (checker.received() < kBytes && Clock::now() < deadline) {
    std::size_t want = static_cast<std::size_t>(std::min<uint64_t>(64 * 1024, kBytes - checker.received()));
    ReadResult r = read_exact(c->fd(), want, 10000ms);
    checker.feed(r.data.data(), r.data.size());
    if (r.data.size() < want) break;  // the stream ended early, or stalled for 10s
  }
  sender.join();
  EXPECT_EQ(sent, kBytes);
  EXPECT_EQ(checker.received(), kBytes) << "TLS side: " << c->net_end();
  EXPECT_FALSE(checker.first_mismatch().has_value()) << "first wrong byte at " << *checker.first_mismatch();
  EXPECT_EQ(checker.digest(), stream_digest(42, kBytes));
  // Closing our side ends the session cleanly.
  ::shutdown(c->fd(), SHUT_WR);
  EXPECT_TRUE(wait_until([&] { return echo->active() == 0; }, 10000ms)) << "the backend connection stayed open";
}

LBD_INSTANTIATE_DRIVERS(TlsIt);
LBD_INSTANTIATE_DRIVERS(TlsMtls);

}  // namespace
}  // namespace lbd::it
