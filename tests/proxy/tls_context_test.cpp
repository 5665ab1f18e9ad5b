// Loading TLS contexts (proxy/tls/tls_context.cpp): every problem `lbd -t` must report names the
// file and says what is wrong; SNI lookup (exact, wildcard, default); ticket keys. Certificates
// are made at test time (tls_test_support.hpp). No sockets here: tls_stream_test.cpp does the
// handshakes.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>
#include <vector>

#include "proxy/tls/ticket_keys.hpp"
#include "proxy/tls/tls_context.hpp"
#include "tests/proxy/tls_test_support.hpp"

namespace lbd::tls {
namespace {

using test::CertSpec;
using test::KeyKind;
using test::TestPki;

std::string all_messages(const std::vector<LoadProblem>& ps) {
  std::string out;
  for (const LoadProblem& p : ps) out += p.message + "\n";
  return out;
}

/// The one error loading `opts` gives; fails the test unless there is exactly one.
LoadProblem only_error(const ServerOptions& opts) {
  LoadReport report;
  auto creds = ServerCredentials::load(opts, report);
  EXPECT_EQ(creds, nullptr);
  EXPECT_EQ(report.errors.size(), 1u) << all_messages(report.errors);
  return report.errors.empty() ? LoadProblem{} : report.errors.front();
}

ServerOptions one_cert(const std::string& chain, const std::string& key) {
  ServerOptions opts;
  opts.certificates.push_back({chain, key, {}});
  return opts;
}

TEST(TlsEnumsTest, SpellingsRoundTrip) {
  for (TlsVersion v : {TlsVersion::kTls1_0, TlsVersion::kTls1_1, TlsVersion::kTls1_2, TlsVersion::kTls1_3})
    EXPECT_EQ(parse_tls_version(to_string(v)), v);
  EXPECT_EQ(to_string(TlsVersion::kTls1_2), "TLSv1.2");
  EXPECT_FALSE(parse_tls_version("1.2"));
  for (VerifyClient v : {VerifyClient::kOff, VerifyClient::kOptional, VerifyClient::kRequired})
    EXPECT_EQ(parse_verify_client(to_string(v)), v);
  EXPECT_FALSE(parse_verify_client("yes"));
}

TEST(TlsDefaultsTest, IntermediateProfileAndTls12Floor) {
  ServerOptions opts;
  EXPECT_EQ(opts.min_version, TlsVersion::kTls1_2);
  EXPECT_EQ(opts.groups, "X25519:prime256v1:secp384r1");
  EXPECT_EQ(opts.verify_client, VerifyClient::kOff);
  EXPECT_NE(kIntermediateCiphers.find("ECDHE-ECDSA-AES128-GCM-SHA256"), std::string_view::npos);
  EXPECT_EQ(kIntermediateCiphers.find("-SHA:"), std::string_view::npos) << "no CBC suites in intermediate";
  ClientOptions client;
  EXPECT_TRUE(client.verify);
  EXPECT_EQ(client.alpn, std::vector<std::string>{"http/1.1"});
}

TEST(TlsLoadTest, GoodRsaAndEcdsaCertificatesLoadWithTheirSanNames) {
  TestPki pki;
  auto rsa = pki.issue_for("rsa", {"rsa.test", "www.rsa.test"}, KeyKind::kRsa);
  auto ec = pki.issue_for("ec", {"EC.test", "*.w.test"}, KeyKind::kEcdsa);
  ServerOptions opts;
  opts.certificates.push_back({rsa.chain_file, rsa.key_file, {}});
  opts.certificates.push_back({ec.chain_file, ec.key_file, {}});
  LoadReport report;
  auto creds = ServerCredentials::load(opts, report);
  ASSERT_NE(creds, nullptr) << all_messages(report.errors);
  EXPECT_TRUE(report.warnings.empty()) << all_messages(report.warnings);
  ASSERT_EQ(creds->certificate_count(), 2u);
  EXPECT_EQ(creds->names(0), (std::vector<std::string>{"rsa.test", "www.rsa.test"}));
  EXPECT_EQ(creds->names(1), (std::vector<std::string>{"ec.test", "*.w.test"}));  // lower case
}

TEST(TlsLoadTest, CommonNameServesWhenThereIsNoSan) {
  TestPki pki;
  CertSpec spec;
  spec.cn = "Only-CN.test";
  auto cert = pki.issue("cn", spec);
  LoadReport report;
  auto creds = ServerCredentials::load(one_cert(cert.chain_file, cert.key_file), report);
  ASSERT_NE(creds, nullptr) << all_messages(report.errors);
  EXPECT_EQ(creds->names(0), std::vector<std::string>{"only-cn.test"});
}

TEST(TlsLoadTest, ExplicitNamesReplaceTheCertificates) {
  TestPki pki;
  auto cert = pki.issue_for("a", {"a.test"});
  ServerOptions opts;
  opts.certificates.push_back({cert.chain_file, cert.key_file, {"Alias.test", "*.alias.test"}});
  LoadReport report;
  auto creds = ServerCredentials::load(opts, report);
  ASSERT_NE(creds, nullptr) << all_messages(report.errors);
  EXPECT_EQ(creds->names(0), (std::vector<std::string>{"alias.test", "*.alias.test"}));
}

TEST(TlsLoadTest, MissingFileIsNamed) {
  TestPki pki;
  auto cert = pki.issue_for("a", {"a.test"});
  std::string missing = pki.dir().path() + "/nope.pem";
  LoadProblem p = only_error(one_cert(missing, cert.key_file));
  EXPECT_EQ(p.certificate, 0u);
  EXPECT_EQ(p.file, missing);
  EXPECT_EQ(p.message, missing + ": no such file");
  LoadProblem k = only_error(one_cert(cert.chain_file, pki.dir().path() + "/nope.key"));
  EXPECT_NE(k.message.find("nope.key: no such file"), std::string::npos) << k.message;
}

TEST(TlsLoadTest, UnreadableFileIsNamed) {
  TestPki pki;
  auto cert = pki.issue_for("a", {"a.test"});
  // A directory cannot be read as a file, whoever runs the test (root reads a mode-000 file).
  std::string dir = pki.dir().path() + "/a-directory.pem";
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  LoadProblem p = only_error(one_cert(dir, cert.key_file));
  EXPECT_EQ(p.file, dir);
  EXPECT_NE(p.message.find(dir + ": cannot read"), std::string::npos) << p.message;
}

TEST(TlsLoadTest, NotPemIsNamed) {
  TestPki pki;
  auto cert = pki.issue_for("a", {"a.test"});
  std::string junk = pki.dir().write("junk.pem", "this is not a certificate\n");
  LoadProblem p = only_error(one_cert(junk, cert.key_file));
  EXPECT_NE(p.message.find(junk + ": not a PEM certificate"), std::string::npos) << p.message;
  LoadProblem k = only_error(one_cert(cert.chain_file, junk));
  EXPECT_NE(k.message.find(junk + ": not a PEM private key"), std::string::npos) << k.message;
  // A key where the certificate should be is no certificate either.
  LoadProblem swapped = only_error(one_cert(cert.key_file, cert.key_file));
  EXPECT_NE(swapped.message.find(cert.key_file + ": not a PEM certificate"), std::string::npos) << swapped.message;
}

TEST(TlsLoadTest, KeyThatDoesNotMatchIsNamed) {
  TestPki pki;
  auto cert = pki.issue_for("a", {"a.test"});
  std::string other = pki.stray_key("other");
  LoadProblem p = only_error(one_cert(cert.chain_file, other));
  EXPECT_EQ(p.file, other);
  EXPECT_EQ(p.message, other + ": the private key does not match the certificate in " + cert.chain_file);
}

TEST(TlsLoadTest, ExpiredAndNotYetValidAreErrors) {
  TestPki pki;
  CertSpec expired;
  expired.cn = "old.test";
  expired.valid_from = -30L * 86400;
  expired.valid_to = -86400;
  auto old = pki.issue("old", expired);
  LoadProblem p = only_error(one_cert(old.chain_file, old.key_file));
  EXPECT_NE(p.message.find(old.chain_file + ": certificate expired on "), std::string::npos) << p.message;

  CertSpec future;
  future.cn = "future.test";
  future.valid_from = 86400;
  future.valid_to = 30L * 86400;
  auto later = pki.issue("future", future);
  LoadProblem f = only_error(one_cert(later.chain_file, later.key_file));
  EXPECT_NE(f.message.find(later.chain_file + ": certificate is not valid before "), std::string::npos) << f.message;
}

TEST(TlsLoadTest, ExpiringWithinFourteenDaysIsAWarning) {
  TestPki pki;
  CertSpec soon;
  soon.cn = "soon.test";
  soon.valid_to = 7L * 86400 + 3600;
  auto cert = pki.issue("soon", soon);
  LoadReport report;
  auto creds = ServerCredentials::load(one_cert(cert.chain_file, cert.key_file), report);
  EXPECT_NE(creds, nullptr) << all_messages(report.errors);
  ASSERT_EQ(report.warnings.size(), 1u);
  EXPECT_EQ(report.warnings[0].certificate, 0u);
  EXPECT_NE(report.warnings[0].message.find(cert.chain_file + ": certificate expires on "), std::string::npos);
  EXPECT_NE(report.warnings[0].message.find("in 7 days"), std::string::npos) << report.warnings[0].message;
}

TEST(TlsLoadTest, DuplicateSniNamesAcrossCertificatesAreErrors) {
  TestPki pki;
  auto a = pki.issue_for("a", {"a.test", "shared.test"});
  auto b = pki.issue_for("b", {"b.test", "Shared.test"});
  ServerOptions opts;
  opts.certificates.push_back({a.chain_file, a.key_file, {}});
  opts.certificates.push_back({b.chain_file, b.key_file, {}});
  LoadProblem p = only_error(opts);
  EXPECT_EQ(p.certificate, 1u);
  EXPECT_EQ(p.message, b.chain_file + ": SNI name shared.test is also served by certificate 0 (" + a.chain_file + ")");
}

TEST(TlsLoadTest, EveryProblemIsReportedNotOnlyTheFirst) {
  TestPki pki;
  auto good = pki.issue_for("good", {"good.test"});
  ServerOptions opts;
  opts.certificates.push_back({pki.dir().path() + "/missing1.pem", good.key_file, {}});
  opts.certificates.push_back({good.chain_file, pki.stray_key("stray")});
  opts.ciphers = "NO-SUCH-CIPHER";
  opts.verify_client = VerifyClient::kRequired;
  LoadReport report;
  EXPECT_EQ(ServerCredentials::load(opts, report), nullptr);
  std::string all = all_messages(report.errors);
  EXPECT_EQ(report.errors.size(), 4u) << all;
  EXPECT_NE(all.find("missing1.pem: no such file"), std::string::npos) << all;
  EXPECT_NE(all.find("stray.key: the private key does not match"), std::string::npos) << all;
  EXPECT_NE(all.find("ciphers \"NO-SUCH-CIPHER\""), std::string::npos) << all;
  EXPECT_NE(all.find("verify_client is required but no client_ca file is given"), std::string::npos) << all;
}

TEST(TlsLoadTest, ClientCaFileProblemsAreNamed) {
  TestPki pki;
  auto good = pki.issue_for("good", {"good.test"});
  ServerOptions opts = one_cert(good.chain_file, good.key_file);
  opts.verify_client = VerifyClient::kRequired;
  opts.client_ca_file = pki.dir().path() + "/no-ca.pem";
  LoadProblem p = only_error(opts);
  EXPECT_EQ(p.certificate, LoadProblem::kNoCertificate);
  EXPECT_EQ(p.message, opts.client_ca_file + ": no such file");
}

TEST(TlsLoadTest, ClientContextProblemsAreNamed) {
  TestPki pki;
  ClientOptions opts;
  opts.ca_file = pki.dir().path() + "/missing-ca.pem";
  LoadReport report;
  EXPECT_EQ(ClientContext::load(opts, report), nullptr);
  ASSERT_EQ(report.errors.size(), 1u);
  EXPECT_EQ(report.errors[0].message, opts.ca_file + ": no such file");

  auto cert = pki.issue_for("client", {"client.test"});
  ClientOptions half;
  half.ca_file = pki.ca_file();
  half.cert_file = cert.chain_file;
  LoadReport report2;
  EXPECT_EQ(ClientContext::load(half, report2), nullptr);
  ASSERT_EQ(report2.errors.size(), 1u);
  EXPECT_NE(report2.errors[0].message.find("needs both its chain file and its key file"), std::string::npos);

  ClientOptions good;
  good.ca_file = pki.ca_file();
  good.cert_file = cert.chain_file;
  good.key_file = cert.key_file;
  LoadReport report3;
  EXPECT_NE(ClientContext::load(good, report3), nullptr) << all_messages(report3.errors);
}

// --- SNI lookup ------------------------------------------------------------------------------

TEST(TlsSniTest, ExactThenOneLabelWildcardCaseInsensitiveElseDefault) {
  TestPki pki;
  auto def = pki.issue_for("default", {"default.test"});
  auto a = pki.issue_for("a", {"a.test"});
  auto w = pki.issue_for("w", {"*.w.test"});
  auto exact_in_w = pki.issue_for("x", {"x.w.test"});
  ServerOptions opts;
  for (const auto* c : {&def, &a, &w, &exact_in_w}) opts.certificates.push_back({c->chain_file, c->key_file, {}});
  LoadReport report;
  auto creds = ServerCredentials::load(opts, report);
  ASSERT_NE(creds, nullptr) << all_messages(report.errors);
  auto keys = TicketKeys::generate();
  ASSERT_TRUE(keys);
  auto ctx = ServerContext::create(creds, *keys);
  ASSERT_TRUE(ctx);
  const ServerContext& c = **ctx;
  EXPECT_EQ(c.certificate_for("a.test"), 1u);
  EXPECT_EQ(c.certificate_for("A.Test"), 1u);
  EXPECT_EQ(c.certificate_for("a.test."), 1u);
  EXPECT_EQ(c.certificate_for("y.w.test"), 2u);
  EXPECT_EQ(c.certificate_for("Y.W.TEST"), 2u);
  EXPECT_EQ(c.certificate_for("x.w.test"), 3u) << "an exact name wins over a wildcard";
  EXPECT_EQ(c.certificate_for("deep.y.w.test"), 0u) << "a wildcard covers one label";
  EXPECT_EQ(c.certificate_for("w.test"), 0u);
  EXPECT_EQ(c.certificate_for(".w.test"), 0u);
  EXPECT_EQ(c.certificate_for("unknown.test"), 0u);
  EXPECT_EQ(c.certificate_for(""), 0u);
}

// --- ticket keys -----------------------------------------------------------------------------

TEST(TicketKeysTest, RotationKeepsThePreviousKeyAndDropsTheOneBefore) {
  auto k1 = TicketKeys::generate();
  ASSERT_TRUE(k1);
  auto k2 = (*k1)->rotate();
  ASSERT_TRUE(k2);
  auto k3 = (*k2)->rotate();
  ASSERT_TRUE(k3);
  bool current = false;
  std::span<const unsigned char, 16> n1((*k1)->current().name);
  std::span<const unsigned char, 16> n2((*k2)->current().name);
  EXPECT_NE((*k1)->current().name, (*k2)->current().name);
  EXPECT_NE((*k1)->current().aes, (*k2)->current().aes);
  ASSERT_NE((*k2)->find(n1, &current), nullptr);
  EXPECT_FALSE(current);
  ASSERT_NE((*k2)->find(n2, &current), nullptr);
  EXPECT_TRUE(current);
  EXPECT_EQ((*k3)->find(n1, &current), nullptr);
  EXPECT_NE((*k3)->find(n2, &current), nullptr);
}

}  // namespace
}  // namespace lbd::tls
