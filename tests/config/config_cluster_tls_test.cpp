// Tests the loader's clusters[].tls block (config/loader.cpp parse_cluster_tls): what a file
// turns into, and that a problem with a CA, client certificate or key file, or with a setting,
// is reported at the config key that named it (file:line:column and key path), as lbd -t shows
// it. Certificates are made at test time (tests/proxy/tls_test_support.hpp).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config.hpp"
#include "tests/proxy/tls_test_support.hpp"

namespace lbd::config {
namespace {

using Lines = std::vector<std::string>;
using tls::test::TestPki;

// As in config_test.cpp: line 1 of the file is the line after R"(.
std::string yaml(std::string_view text) {
  if (text.starts_with('\n')) text.remove_prefix(1);
  return std::string(text);
}

// Lines 1..8; a test's `tls:` block starts on line 9, its first key on line 10 at column 7
// (where a problem of the block map itself is reported), that key's value at column 7 + key
// length + 2.
constexpr std::string_view kHead = R"(listeners:
  - name: web
    listen: 127.0.0.1:8080
    protocol: http
    cluster: web
clusters:
  - name: web
    endpoints: [127.0.0.1:9001]
)";

Lines lines_of(const std::vector<ConfigError>& list) {
  Lines out;
  for (const auto& e : list) out.push_back(e.to_string());
  return out;
}

// The PKI's files and the config share one directory, so relative names in the config resolve
// to the PKI's files.
class ConfigClusterTls : public ::testing::Test {
 protected:
  ConfigClusterTls() : source_(pki_.dir().path() + "/lb.yaml") {
    backend_ = pki_.issue_for("backend", {"backend.test"});
    client_ = pki_.issue_for("client", {"client.test"});
  }

  LoadResult load(std::string_view tls_block) {
    return load_config_string(std::string(kHead) + yaml(tls_block), source_);
  }

  Config load_ok(std::string_view tls_block) {
    auto r = load(tls_block);
    EXPECT_TRUE(r.has_value()) << r.error_report();
    EXPECT_TRUE(r.warnings().empty()) << r.warning_report();
    return r.has_value() ? std::move(r).value() : Config{};
  }

  Lines errors_of(std::string_view tls_block) {
    auto r = load(tls_block);
    EXPECT_FALSE(r.has_value()) << "expected errors, the file loaded";
    return lines_of(r.errors());
  }

  std::string in_dir(const std::string& name) const { return pki_.dir().path() + "/" + name; }
  std::string at(int line, int column) const {
    return source_ + ":" + std::to_string(line) + ":" + std::to_string(column) + ": ";
  }

  TestPki pki_;
  std::string source_;
  TestPki::Issued backend_;
  TestPki::Issued client_;
};

// ---------------------------------------------------------------------------------------------
// Valid blocks

TEST_F(ConfigClusterTls, AnEmptyBlockVerifiesAgainstTheSystemStoreWithoutSni) {
  const Config c = load_ok(R"(
    tls: {}
)");
  ASSERT_EQ(c.clusters.size(), 1u);
  ASSERT_TRUE(c.clusters[0].tls.has_value());
  const ClusterTls& t = *c.clusters[0].tls;
  EXPECT_TRUE(t.client.verify);
  EXPECT_EQ(t.client.ca_file, "");  // the system's store
  EXPECT_EQ(t.client.cert_file, "");
  EXPECT_EQ(t.client.key_file, "");
  EXPECT_EQ(t.client.min_version, tls::TlsVersion::kTls1_2);
  EXPECT_EQ(t.client.alpn, (std::vector<std::string>{"http/1.1"}));
  EXPECT_EQ(t.client.ciphers, "");
  EXPECT_EQ(t.sni, "");  // none sent; the endpoint's IP is verified
}

TEST_F(ConfigClusterTls, NoBlockMeansPlainConnections) {
  auto r = load_config_string(std::string(kHead), source_);
  ASSERT_TRUE(r.has_value()) << r.error_report();
  EXPECT_FALSE(r.value().clusters[0].tls.has_value());
}

TEST_F(ConfigClusterTls, EveryKeyIsReadAndRelativeNamesAreTheConfigDirectorys) {
  const Config c = load_ok(R"(
    tls:
      verify: true
      ca: )" + pki_.ca_file() + R"(
      client_cert: client.pem
      client_key: client.key
      sni: Backend.Test
      min_version: TLSv1.3
      ciphers: "ECDHE-ECDSA-AES128-GCM-SHA256"
      alpn: [http/1.1, http/1.0]
)");
  ASSERT_TRUE(c.clusters[0].tls.has_value());
  const ClusterTls& t = *c.clusters[0].tls;
  EXPECT_TRUE(t.client.verify);
  EXPECT_EQ(t.client.ca_file, pki_.ca_file());  // absolute: kept as it is
  EXPECT_EQ(t.client.cert_file, in_dir("client.pem"));
  EXPECT_EQ(t.client.key_file, in_dir("client.key"));
  EXPECT_EQ(t.sni, "backend.test");  // host names are case-insensitive: stored lowercase
  EXPECT_EQ(t.client.min_version, tls::TlsVersion::kTls1_3);
  EXPECT_EQ(t.client.ciphers, "ECDHE-ECDSA-AES128-GCM-SHA256");
  EXPECT_EQ(t.client.alpn, (std::vector<std::string>{"http/1.1", "http/1.0"}));
}

TEST_F(ConfigClusterTls, VerifyFalseNeedsNoCa) {
  const Config c = load_ok(R"(
    tls: { verify: false, sni: backend.test }
)");
  ASSERT_TRUE(c.clusters[0].tls.has_value());
  EXPECT_FALSE(c.clusters[0].tls->client.verify);
  EXPECT_EQ(c.clusters[0].tls->sni, "backend.test");
}

TEST_F(ConfigClusterTls, TheBlockIsPartOfTheConfigsEquality) {
  // A reload compares configs: a changed tls block is a change of the cluster.
  const Config a = load_ok("    tls: { sni: a.test }\n");
  const Config b = load_ok("    tls: { sni: b.test }\n");
  const Config a2 = load_ok("    tls: { sni: a.test }\n");
  EXPECT_FALSE(a.clusters[0] == b.clusters[0]);
  EXPECT_TRUE(a.clusters[0] == a2.clusters[0]);
}

// ---------------------------------------------------------------------------------------------
// Files

TEST_F(ConfigClusterTls, AMissingCaFileIsAnErrorAtItsKey) {
  EXPECT_EQ(errors_of(R"(
    tls:
      ca: missing-ca.pem
)"),
            (Lines{at(10, 11) + "clusters[0].tls.ca: " + in_dir("missing-ca.pem") + ": no such file"}));
}

TEST_F(ConfigClusterTls, ACaFileThatIsNoCertificateIsAnError) {
  pki_.dir().write("junk.pem", "not a certificate\n");
  EXPECT_EQ(errors_of(R"(
    tls:
      ca: junk.pem
)"),
            (Lines{at(10, 11) + "clusters[0].tls.ca: " + in_dir("junk.pem") +
                   ": not a PEM certificate (no CA certificate that parses)"}));
}

TEST_F(ConfigClusterTls, AClientCertWithoutItsKeyIsAnError) {
  const Lines errors = errors_of(R"(
    tls:
      client_cert: client.pem
)");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], at(10, 7) + "clusters[0].tls: missing required key \"client_key\" (the private key of "
                                  "client_cert)");
}

TEST_F(ConfigClusterTls, AClientKeyWithoutItsCertIsAnError) {
  const Lines errors = errors_of(R"(
    tls:
      client_key: client.key
)");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], at(10, 7) + "clusters[0].tls: missing required key \"client_cert\" (the certificate "
                                  "that goes with client_key)");
}

TEST_F(ConfigClusterTls, AClientKeyThatDoesNotMatchTheCertIsAnErrorAtTheKey) {
  pki_.stray_key("stray");
  EXPECT_EQ(errors_of(R"(
    tls:
      client_cert: client.pem
      client_key: stray.key
)"),
            (Lines{at(11, 19) + "clusters[0].tls.client_key: " + in_dir("stray.key") +
                   ": the private key does not match the certificate in " + in_dir("client.pem")}));
}

TEST_F(ConfigClusterTls, AMissingClientCertFileIsAnErrorAtItsKey) {
  const Lines errors = errors_of(R"(
    tls:
      client_cert: nope.pem
      client_key: client.key
)");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], at(10, 20) + "clusters[0].tls.client_cert: " + in_dir("nope.pem") + ": no such file");
}

TEST_F(ConfigClusterTls, WithVerifyOffTheCaFileIsNotRead) {
  // With verify: false the CA is not used, and not read either: no error for a stale name.
  const Config c = load_ok(R"(
    tls:
      verify: false
      ca: missing-ca.pem
)");
  ASSERT_TRUE(c.clusters[0].tls.has_value());
  EXPECT_FALSE(c.clusters[0].tls->client.verify);
}

// ---------------------------------------------------------------------------------------------
// Settings

TEST_F(ConfigClusterTls, AnSniWithASpaceIsAnError) {
  EXPECT_EQ(errors_of(R"(
    tls:
      sni: "a b"
)"),
            (Lines{at(10, 12) + "clusters[0].tls.sni: expected a host name such as api.example.com, got \"a b\""}));
}

// The listener's reading of these keys, with its checks: a protocol named twice is an error
// (it was silently offered twice before the two readings became one).
TEST_F(ConfigClusterTls, AlpnNamesAreCheckedAsOnListeners) {
  EXPECT_EQ(errors_of(R"(
    tls:
      alpn: [http/1.1, "", http/1.1]
)"),
            (Lines{at(10, 24) + "clusters[0].tls.alpn[1]: a protocol name is 1 to 255 bytes long",
                   at(10, 28) + "clusters[0].tls.alpn[2]: duplicate protocol \"http/1.1\""}));
}

TEST_F(ConfigClusterTls, AnSniWithAPortIsAnError) {
  EXPECT_EQ(errors_of(R"(
    tls:
      sni: "host:443"
)"),
            (Lines{at(10, 12) +
                   "clusters[0].tls.sni: expected a host name such as api.example.com, got \"host:443\""}));
}

TEST_F(ConfigClusterTls, AnEmptySniIsAnError) {
  // No SNI is said by leaving the key out; "" is more likely a template that lost its value.
  const Lines errors = errors_of(R"(
    tls:
      sni: ""
)");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find(at(10, 12) + "clusters[0].tls.sni: "), std::string::npos) << errors[0];
}

TEST_F(ConfigClusterTls, AnUnknownKeyIsAnErrorWithASuggestion) {
  EXPECT_EQ(errors_of(R"(
    tls:
      verfy: false
)"),
            (Lines{at(10, 7) + "clusters[0].tls: unknown key \"verfy\" (did you mean \"verify\"?)"}));
}

TEST_F(ConfigClusterTls, ABadMinVersionIsAnError) {
  const Lines errors = errors_of(R"(
    tls:
      min_version: TLSv9
)");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find(at(10, 20) + "clusters[0].tls.min_version: "), std::string::npos) << errors[0];
}

TEST_F(ConfigClusterTls, UnknownCiphersAreAnError) {
  const Lines errors = errors_of(R"(
    tls:
      ciphers: "NOT-A-CIPHER"
)");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("clusters[0].tls"), std::string::npos) << errors[0];
  EXPECT_NE(errors[0].find("NOT-A-CIPHER"), std::string::npos) << errors[0];
}

TEST_F(ConfigClusterTls, VerifyMustBeABool) {
  const Lines errors = errors_of(R"(
    tls:
      verify: maybe
)");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find(at(10, 15) + "clusters[0].tls.verify: "), std::string::npos) << errors[0];
}

TEST_F(ConfigClusterTls, TlsMustBeAMap) {
  const Lines errors = errors_of(R"(
    tls: true
)");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find(at(9, 10) + "clusters[0].tls: "), std::string::npos) << errors[0];
}

}  // namespace
}  // namespace lbd::config
