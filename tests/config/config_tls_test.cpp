// Tests the loader's `tls:` block and `timeouts.handshake` (config/loader.cpp): what a file turns
// into, and that every problem ServerCredentials::load finds in a certificate, key or CA file is
// reported at the config key that named the file. Certificates are made at test time.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "tests/proxy/tls_test_support.hpp"

namespace lbd::config {
namespace {

using namespace std::chrono_literals;
using Lines = std::vector<std::string>;
using tls::test::CertSpec;
using tls::test::TestPki;

// As in config_test.cpp: line 1 of the file is the line after R"(.
std::string yaml(std::string_view text) {
  if (text.starts_with('\n')) text.remove_prefix(1);
  return std::string(text);
}

constexpr std::string_view kOneCluster = R"(clusters:
  - name: web
    endpoints: [127.0.0.1:9001]
)";

Lines lines_of(const std::vector<ConfigError>& list) {
  Lines out;
  for (const auto& e : list) out.push_back(e.to_string());
  return out;
}

// The PKI's files live in one directory; the config is "loaded from" that directory too, so
// that its relative file names resolve to them.
class ConfigTls : public ::testing::Test {
 protected:
  ConfigTls() : source_(pki_.dir().path() + "/lb.yaml") {}

  LoadResult load(std::string_view text) { return load_config_string(yaml(text) + std::string(kOneCluster), source_); }

  Config load_ok(std::string_view text) {
    auto r = load(text);
    EXPECT_TRUE(r.has_value()) << r.error_report();
    EXPECT_TRUE(r.warnings().empty()) << r.warning_report();
    return r.has_value() ? std::move(r).value() : Config{};
  }

  Lines errors_of(std::string_view text) {
    auto r = load(text);
    EXPECT_FALSE(r.has_value()) << "expected errors, the file loaded";
    return lines_of(r.errors());
  }

  // The path the loader resolves a relative name to.
  std::string in_dir(const std::string& name) const { return pki_.dir().path() + "/" + name; }
  // "<source>:line:column: " for exact messages.
  std::string at(int line, int column) const {
    return source_ + ":" + std::to_string(line) + ":" + std::to_string(column) + ": ";
  }

  TestPki pki_;
  std::string source_;
};

// ---------------------------------------------------------------------------------------------
// Valid blocks

TEST_F(ConfigTls, OneCertificateLoadsWithTheDefaults) {
  pki_.issue_for("site", {"site.example.com"});
  const Config c = load_ok(R"(
listeners:
  - name: web
    listen: 127.0.0.1:8443
    protocol: http
    cluster: web
    tls:
      cert: site.pem
      key: site.key
)");
  ASSERT_EQ(c.listeners.size(), 1u);
  ASSERT_TRUE(c.listeners[0].tls.has_value());
  const ListenerTls& t = *c.listeners[0].tls;
  ASSERT_EQ(t.server.certificates.size(), 1u);
  // Relative names are the config file's directory's.
  EXPECT_EQ(t.server.certificates[0].chain_file, in_dir("site.pem"));
  EXPECT_EQ(t.server.certificates[0].key_file, in_dir("site.key"));
  EXPECT_TRUE(t.server.certificates[0].names.empty());
  EXPECT_EQ(t.server.min_version, tls::TlsVersion::kTls1_2);
  EXPECT_EQ(t.server.alpn, (std::vector<std::string>{"http/1.1"}));
  EXPECT_EQ(t.server.verify_client, tls::VerifyClient::kOff);
  EXPECT_EQ(t.server.groups, std::string(tls::kIntermediateGroups));
  EXPECT_TRUE(t.server.ciphers.empty());
  EXPECT_EQ(t.ticket_rotation, 12h);
  EXPECT_EQ(t.server.session_lifetime_seconds, 12u * 3600);
  EXPECT_EQ(t.client_subject_header, "x-client-subject");
  EXPECT_EQ(c.listeners[0].timeouts.handshake, 10s);
  ASSERT_NE(t.credentials, nullptr);
  EXPECT_EQ(t.credentials->certificate_count(), 1u);
  EXPECT_EQ(t.credentials->names(0), (std::vector<std::string>{"site.example.com"}));
  // lbd -t's summary says the listener terminates TLS.
  EXPECT_NE(describe(c).find("listener web 127.0.0.1:8443 http tls (1 certificate)\n"), std::string::npos)
      << describe(c);
}

TEST_F(ConfigTls, EveryKeyIsRead) {
  pki_.issue_for("site", {"site.example.com"});
  const std::string ca = pki_.ca_file();  // absolute: kept as it is
  const Config c = load_ok(R"(
listeners:
  - name: web
    listen: 127.0.0.1:8443
    protocol: http
    cluster: web
    timeouts: { handshake: 5s }
    tls:
      cert: site.pem
      key: site.key
      min_version: TLSv1.3
      ciphers: "ECDHE-RSA-AES128-GCM-SHA256"
      ciphersuites: "TLS_AES_128_GCM_SHA256"
      groups: "X25519:prime256v1"
      alpn: [http/1.1, http/1.0]
      client_ca: )" + ca + R"(
      verify_client: optional
      ticket_rotation: 1h
      client_subject_header: X-Client-Cert
)");
  ASSERT_TRUE(c.listeners[0].tls.has_value());
  const ListenerTls& t = *c.listeners[0].tls;
  EXPECT_EQ(c.listeners[0].timeouts.handshake, 5s);
  EXPECT_EQ(t.server.min_version, tls::TlsVersion::kTls1_3);
  EXPECT_EQ(t.server.ciphers, "ECDHE-RSA-AES128-GCM-SHA256");
  EXPECT_EQ(t.server.ciphersuites, "TLS_AES_128_GCM_SHA256");
  EXPECT_EQ(t.server.groups, "X25519:prime256v1");
  EXPECT_EQ(t.server.alpn, (std::vector<std::string>{"http/1.1", "http/1.0"}));
  EXPECT_EQ(t.server.client_ca_file, ca);
  EXPECT_EQ(t.server.verify_client, tls::VerifyClient::kOptional);
  EXPECT_EQ(t.ticket_rotation, 1h);
  EXPECT_EQ(t.server.session_lifetime_seconds, 3600u);
  EXPECT_EQ(t.client_subject_header, "x-client-cert");  // stored lowercase
  EXPECT_NE(t.credentials, nullptr);
}

TEST_F(ConfigTls, TcpListenerDefaultsToNoAlpnAndReadsOffAsText) {
  pki_.issue_for("db", {"db.example.com"});
  // `off` unquoted is a YAML 1.1 boolean; it must still read as verify_client's "off".
  const Config c = load_ok(R"(
listeners:
  - name: db
    listen: 127.0.0.1:5433
    protocol: tcp
    cluster: web
    tls: { cert: db.pem, key: db.key, verify_client: off, ticket_rotation: 0s }
)");
  ASSERT_TRUE(c.listeners[0].tls.has_value());
  const ListenerTls& t = *c.listeners[0].tls;
  EXPECT_TRUE(t.server.alpn.empty());
  EXPECT_EQ(t.server.verify_client, tls::VerifyClient::kOff);
  EXPECT_EQ(t.ticket_rotation, 0s);
  EXPECT_EQ(t.client_subject_header, "");  // http only
  EXPECT_NE(t.credentials, nullptr);
}

TEST_F(ConfigTls, TcpListenerMayAdvertiseAnyAlpnName) {
  pki_.issue_for("db", {"db.example.com"});
  const Config c = load_ok(R"(
listeners:
  - name: db
    listen: 127.0.0.1:5433
    protocol: tcp
    cluster: web
    tls: { cert: db.pem, key: db.key, alpn: [postgresql, h2] }
)");
  EXPECT_EQ(c.listeners[0].tls->server.alpn, (std::vector<std::string>{"postgresql", "h2"}));
}

TEST_F(ConfigTls, SeveralCertificatesWithNames) {
  pki_.issue_for("a", {"a.example.com"});
  pki_.issue_for("b", {"b.example.net"}, tls::test::KeyKind::kRsa);
  const Config c = load_ok(R"(
listeners:
  - name: web
    listen: 127.0.0.1:8443
    protocol: http
    cluster: web
    tls:
      certificates:
        - { cert: a.pem, key: a.key, names: [A.Example.com, "*.example.com"] }
        - { cert: b.pem, key: b.key }
)");
  const ListenerTls& t = *c.listeners[0].tls;
  ASSERT_EQ(t.server.certificates.size(), 2u);
  EXPECT_EQ(t.server.certificates[0].chain_file, in_dir("a.pem"));
  EXPECT_EQ(t.server.certificates[0].names, (std::vector<std::string>{"a.example.com", "*.example.com"}));
  EXPECT_EQ(t.server.certificates[1].key_file, in_dir("b.key"));
  EXPECT_TRUE(t.server.certificates[1].names.empty());
  ASSERT_NE(t.credentials, nullptr);
  EXPECT_EQ(t.credentials->certificate_count(), 2u);
  EXPECT_EQ(t.credentials->names(1), (std::vector<std::string>{"b.example.net"}));
}

TEST_F(ConfigTls, RelativePathsResolveAgainstTheConfigFilesDirectory) {
  // The config lives in a subdirectory and names its files relative to it; the test's working
  // directory is elsewhere.
  const std::string conf_dir = pki_.dir().path() + "/conf";
  std::filesystem::create_directory(conf_dir);
  pki_.issue_for("site", {"site.example.com"});
  const std::string path = conf_dir + "/lb.yaml";
  std::ofstream(path) << yaml(R"(
listeners:
  - name: web
    listen: 127.0.0.1:8443
    protocol: http
    cluster: web
    tls: { cert: ../site.pem, key: ../site.key }
)") << kOneCluster;
  auto r = load_config_file(path);
  ASSERT_TRUE(r.has_value()) << r.error_report();
  EXPECT_EQ(r->listeners[0].tls->server.certificates[0].chain_file, conf_dir + "/../site.pem");
  EXPECT_NE(r->listeners[0].tls->credentials, nullptr);
}

// ---------------------------------------------------------------------------------------------
// The keys themselves

TEST_F(ConfigTls, BothFormsAtOnceIsAnError) {
  pki_.issue_for("a", {"a.example.com"});
  EXPECT_EQ(errors_of(R"(
listeners:
  - name: web
    listen: 127.0.0.1:8443
    protocol: http
    cluster: web
    tls:
      cert: a.pem
      key: a.key
      certificates:
        - { cert: a.pem, key: a.key }
)"),
            (Lines{at(7, 7) +
                   "listeners[0].tls.cert: cannot be combined with certificates (give one certificate as cert and "
                   "key, or several as certificates)"}));
}

TEST_F(ConfigTls, NoCertificateOrHalfOfOneIsAnError) {
  EXPECT_EQ(errors_of(R"(
listeners:
  - name: web
    listen: 127.0.0.1:8443
    protocol: http
    cluster: web
    tls: { min_version: TLSv1.2 }
  - name: half
    listen: 127.0.0.1:8444
    protocol: http
    cluster: web
    tls: { cert: a.pem }
  - name: empty
    listen: 127.0.0.1:8445
    protocol: http
    cluster: web
    tls:
      certificates: []
)"),
            (Lines{
                at(6, 10) +
                    "listeners[0].tls: missing required key \"cert\" (a tls listener needs cert and key, or "
                    "certificates)",
                at(11, 10) + "listeners[1].tls: missing required key \"key\" (the private key of cert)",
                at(17, 21) + "listeners[2].tls.certificates: expected at least one certificate",
            }));
}

TEST_F(ConfigTls, UnknownKeyGetsASuggestion) {
  pki_.issue_for("a", {"a.example.com"});
  EXPECT_EQ(errors_of(R"(
listeners:
  - name: web
    listen: 127.0.0.1:8443
    protocol: http
    cluster: web
    tls:
      cert: a.pem
      key: a.key
      min_verison: TLSv1.3
      certificates_x: []
)"),
            (Lines{
                at(9, 7) + "listeners[0].tls: unknown key \"min_verison\" (did you mean \"min_version\"?)",
                at(10, 7) + "listeners[0].tls: unknown key \"certificates_x\" (did you mean \"certificates\"?)",
            }));
}

TEST_F(ConfigTls, BadMinVersionNamesTheValidOnes) {
  pki_.issue_for("a", {"a.example.com"});
  EXPECT_EQ(errors_of(R"(
listeners:
  - name: web
    listen: 127.0.0.1:8443
    protocol: http
    cluster: web
    tls: { cert: a.pem, key: a.key, min_version: TLSv1.4 }
)"),
            (Lines{at(6, 50) +
                   "listeners[0].tls.min_version: invalid value \"TLSv1.4\" (expected one of: TLSv1.0, TLSv1.1, "
                   "TLSv1.2, TLSv1.3)"}));
}

TEST_F(ConfigTls, HandshakeTimeoutNeedsATlsListener) {
  EXPECT_EQ(errors_of(R"(
listeners:
  - name: web
    listen: 127.0.0.1:8080
    protocol: http
    cluster: web
    timeouts: { idle: 30s, handshake: 10s }
)"),
            (Lines{at(6, 28) +
                   "listeners[0].timeouts.handshake: only valid for tls listeners (this listener has no tls)"}));
}

TEST_F(ConfigTls, HandshakeTimeoutMustBePositive) {
  pki_.issue_for("a", {"a.example.com"});
  EXPECT_EQ(errors_of(R"(
listeners:
  - name: web
    listen: 127.0.0.1:8443
    protocol: tcp
    cluster: web
    timeouts: { handshake: 0s }
    tls: { cert: a.pem, key: a.key }
)"),
            (Lines{at(6, 28) + "listeners[0].timeouts.handshake: must be greater than 0"}));
}

TEST_F(ConfigTls, ClientSubjectHeaderMustBeAWritableToken) {
  pki_.issue_for("a", {"a.example.com"});
  EXPECT_EQ(errors_of(R"(
listeners:
  - name: bad_token
    listen: 127.0.0.1:8443
    protocol: http
    cluster: web
    tls: { cert: a.pem, key: a.key, client_subject_header: "X Subject" }
  - name: hop_by_hop
    listen: 127.0.0.1:8444
    protocol: http
    cluster: web
    tls: { cert: a.pem, key: a.key, client_subject_header: Connection }
  - name: framing
    listen: 127.0.0.1:8445
    protocol: http
    cluster: web
    tls: { cert: a.pem, key: a.key, client_subject_header: content-length }
  - name: tcp
    listen: 127.0.0.1:8446
    protocol: tcp
    cluster: web
    tls: { cert: a.pem, key: a.key, client_subject_header: X-Subject }
)"),
            (Lines{
                at(6, 60) + "listeners[0].tls.client_subject_header: invalid header name \"X Subject\"",
                at(11, 60) +
                    "listeners[1].tls.client_subject_header: header \"Connection\" is managed by the proxy and "
                    "cannot carry the client's subject",
                at(16, 60) +
                    "listeners[2].tls.client_subject_header: header \"content-length\" is managed by the proxy "
                    "and cannot carry the client's subject",
                at(21, 37) +
                    "listeners[3].tls.client_subject_header: only valid for http listeners (this listener is tcp)",
            }));
}

TEST_F(ConfigTls, EmptyClientSubjectHeaderMeansNone) {
  pki_.issue_for("a", {"a.example.com"});
  const Config c = load_ok(R"(
listeners:
  - name: web
    listen: 127.0.0.1:8443
    protocol: http
    cluster: web
    tls: { cert: a.pem, key: a.key, client_subject_header: "" }
)");
  EXPECT_EQ(c.listeners[0].tls->client_subject_header, "");
}

TEST_F(ConfigTls, AlpnTicketRotationAndNamesAreChecked) {
  pki_.issue_for("a", {"a.example.com"});
  EXPECT_EQ(errors_of(R"(
listeners:
  - name: web
    listen: 127.0.0.1:8443
    protocol: http
    cluster: web
    tls:
      certificates:
        - { cert: a.pem, key: a.key, names: [a.example.com, A.EXAMPLE.COM, "bad name"] }
      alpn: [h2, http/1.1, http/1.1]
      ticket_rotation: 30s
)"),
            (Lines{
                at(8, 61) + "listeners[0].tls.certificates[0].names[1]: duplicate name \"a.example.com\"",
                at(8, 76) +
                    "listeners[0].tls.certificates[0].names[2]: invalid host pattern \"bad name\" (expected a "
                    "host name like api.example.com or a wildcard like *.example.com)",
                at(9, 14) +
                    "listeners[0].tls.alpn[0]: invalid protocol \"h2\" for an http listener (it speaks http/1.1 "
                    "and http/1.0 only)",
                at(9, 28) + "listeners[0].tls.alpn[2]: duplicate protocol \"http/1.1\"",
                at(10, 24) + "listeners[0].tls.ticket_rotation: must be 0s (no tickets) or at least 1m, got 30s",
            }));
}

// ---------------------------------------------------------------------------------------------
// Problems in the files, at the key that named each file

TEST_F(ConfigTls, MissingFilesAreEachReportedAtTheirKey) {
  pki_.issue_for("a", {"a.example.com"});
  EXPECT_EQ(errors_of(R"(
listeners:
  - name: web
    listen: 127.0.0.1:8443
    protocol: http
    cluster: web
    tls:
      certificates:
        - { cert: a.pem, key: a.key }
        - cert: absent.pem
          key: absent.key
      client_ca: absent-ca.pem
)"),
            (Lines{
                at(9, 17) + "listeners[0].tls.certificates[1].cert: " + in_dir("absent.pem") + ": no such file",
                at(10, 16) + "listeners[0].tls.certificates[1].key: " + in_dir("absent.key") + ": no such file",
                at(11, 18) + "listeners[0].tls.client_ca: " + in_dir("absent-ca.pem") + ": no such file",
            }));
}

// An unreadable file cannot be made by chmod 000 when the tests run as root (root reads it
// anyway); a directory where a file belongs fails the read the same way.
TEST_F(ConfigTls, UnreadableFileIsReported) {
  pki_.issue_for("a", {"a.example.com"});
  std::filesystem::create_directory(in_dir("keydir"));
  EXPECT_EQ(errors_of(R"(
listeners:
  - name: web
    listen: 127.0.0.1:8443
    protocol: http
    cluster: web
    tls:
      cert: a.pem
      key: keydir
)"),
            (Lines{at(8, 12) + "listeners[0].tls.key: " + in_dir("keydir") + ": cannot read: Is a directory"}));
}

TEST_F(ConfigTls, KeyNotMatchingItsCertificate) {
  pki_.issue_for("a", {"a.example.com"});
  pki_.stray_key("other");
  EXPECT_EQ(errors_of(R"(
listeners:
  - name: web
    listen: 127.0.0.1:8443
    protocol: http
    cluster: web
    tls:
      cert: a.pem
      key: other.key
)"),
            (Lines{at(8, 12) + "listeners[0].tls.key: " + in_dir("other.key") +
                   ": the private key does not match the certificate in " + in_dir("a.pem")}));
}

TEST_F(ConfigTls, ExpiredAndNotYetValidCertificatesAreErrors) {
  CertSpec expired;
  expired.cn = "old.example.com";
  expired.dns = {"old.example.com"};
  expired.valid_from = -30L * 86400;
  expired.valid_to = -86400;
  pki_.issue("old", expired);
  CertSpec future;
  future.cn = "new.example.com";
  future.dns = {"new.example.com"};
  future.valid_from = 86400;
  future.valid_to = 30L * 86400;
  pki_.issue("new", future);
  auto r = load(R"(
listeners:
  - name: web
    listen: 127.0.0.1:8443
    protocol: http
    cluster: web
    tls:
      certificates:
        - { cert: old.pem, key: old.key }
        - { cert: new.pem, key: new.key }
)");
  ASSERT_FALSE(r.has_value());
  ASSERT_EQ(r.errors().size(), 2u) << r.error_report();
  const Lines lines = lines_of(r.errors());
  const std::string first = at(8, 19) + "listeners[0].tls.certificates[0].cert: " + in_dir("old.pem") +
                            ": certificate expired on ";
  const std::string second = at(9, 19) + "listeners[0].tls.certificates[1].cert: " + in_dir("new.pem") +
                             ": certificate is not valid before ";
  EXPECT_EQ(lines[0].rfind(first, 0), 0u) << lines[0];
  EXPECT_EQ(lines[1].rfind(second, 0), 0u) << lines[1];
}

TEST_F(ConfigTls, ExpiringSoonIsAWarningAndTheFileLoads) {
  CertSpec soon;
  soon.cn = "soon.example.com";
  soon.dns = {"soon.example.com"};
  soon.valid_to = 5L * 86400;
  pki_.issue("soon", soon);
  auto r = load(R"(
listeners:
  - name: web
    listen: 127.0.0.1:8443
    protocol: http
    cluster: web
    tls:
      cert: soon.pem
      key: soon.key
)");
  ASSERT_TRUE(r.has_value()) << r.error_report();
  ASSERT_EQ(r.warnings().size(), 1u);
  const ConfigError& w = r.warnings()[0];
  EXPECT_EQ(w.line, 7);
  EXPECT_EQ(w.column, 13);
  EXPECT_EQ(w.key_path, "listeners[0].tls.cert");
  EXPECT_EQ(w.message.rfind(in_dir("soon.pem") + ": certificate expires on ", 0), 0u) << w.message;
  EXPECT_NE(w.message.find(" days"), std::string::npos) << w.message;
  EXPECT_EQ(r.warning_report(), "warning: " + w.to_string() + "\n");
}

TEST_F(ConfigTls, WarningsAreKeptWhenTheFileHasErrors) {
  CertSpec soon;
  soon.cn = "soon.example.com";
  soon.dns = {"soon.example.com"};
  soon.valid_to = 5L * 86400;
  pki_.issue("soon", soon);
  auto r = load(R"(
listeners:
  - name: web
    listen: 127.0.0.1:8443
    protocol: http
    cluster: nope
    tls: { cert: soon.pem, key: soon.key }
)");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(lines_of(r.errors()),
            (Lines{at(5, 14) + "listeners[0].cluster: unknown cluster \"nope\" (defined clusters: web)"}))
      << r.error_report();
  ASSERT_EQ(r.warnings().size(), 1u);
  EXPECT_EQ(r.warnings()[0].key_path, "listeners[0].tls.cert");
}

TEST_F(ConfigTls, DuplicateSniNamesAcrossCertificates) {
  pki_.issue_for("a", {"a.example.com"});
  pki_.issue_for("b", {"b.example.com"});
  EXPECT_EQ(errors_of(R"(
listeners:
  - name: web
    listen: 127.0.0.1:8443
    protocol: http
    cluster: web
    tls:
      certificates:
        - { cert: a.pem, key: a.key }
        - { cert: b.pem, key: b.key, names: [b.example.com, a.example.com] }
)"),
            (Lines{at(9, 19) + "listeners[0].tls.certificates[1].cert: " + in_dir("b.pem") +
                   ": SNI name a.example.com is also served by certificate 0 (" + in_dir("a.pem") + ")"}));
}

TEST_F(ConfigTls, CertificateNoNameSelectsIsAWarning) {
  pki_.issue_for("a", {"a.example.com"});
  CertSpec nameless;  // no SAN, an empty CN: nothing for SNI to match
  pki_.issue("nameless", nameless);
  auto r = load(R"(
listeners:
  - name: web
    listen: 127.0.0.1:8443
    protocol: http
    cluster: web
    tls:
      certificates:
        - { cert: a.pem, key: a.key }
        - { cert: nameless.pem, key: nameless.key }
)");
  ASSERT_TRUE(r.has_value()) << r.error_report();
  ASSERT_EQ(r.warnings().size(), 1u);
  EXPECT_EQ(r.warnings()[0].key_path, "listeners[0].tls.certificates[1].cert");
  EXPECT_EQ(r.warnings()[0].line, 9);
}

TEST_F(ConfigTls, VerifyClientWithoutClientCaIsReportedOnTheTlsKey) {
  pki_.issue_for("a", {"a.example.com"});
  EXPECT_EQ(errors_of(R"(
listeners:
  - name: web
    listen: 127.0.0.1:8443
    protocol: http
    cluster: web
    tls:
      cert: a.pem
      key: a.key
      verify_client: required
)"),
            (Lines{at(7, 7) + "listeners[0].tls: verify_client is required but no client_ca file is given"}));
}

TEST_F(ConfigTls, BadCipherListIsReportedOnTheTlsKey) {
  pki_.issue_for("a", {"a.example.com"});
  EXPECT_EQ(errors_of(R"(
listeners:
  - name: web
    listen: 127.0.0.1:8443
    protocol: http
    cluster: web
    tls: { cert: a.pem, key: a.key, ciphers: NOT-A-CIPHER }
)"),
            (Lines{at(6, 10) +
                   "listeners[0].tls: ciphers \"NOT-A-CIPHER\": no cipher in the list is known to OpenSSL"}));
}

TEST_F(ConfigTls, ProblemsInSeveralListenersAreAllReportedInFileOrder) {
  pki_.issue_for("a", {"a.example.com"});
  EXPECT_EQ(errors_of(R"(
listeners:
  - name: one
    listen: 127.0.0.1:8443
    protocol: http
    cluster: web
    tls: { cert: one.pem, key: a.key }
  - name: two
    listen: 127.0.0.1:8444
    protocol: tcp
    cluster: web
    tls: { cert: a.pem, key: two.key }
)"),
            (Lines{
                at(6, 18) + "listeners[0].tls.cert: " + in_dir("one.pem") + ": no such file",
                at(11, 30) + "listeners[1].tls.key: " + in_dir("two.key") + ": no such file",
            }));
}

}  // namespace
}  // namespace lbd::config
