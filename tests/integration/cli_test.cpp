// The command line: `-t/--check`, `--version`, and start-up failures an operator must be able
// to read (a port already taken names the listener and the address).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "tests/integration/lbd_fixture.hpp"
#include "tests/proxy/tls_test_support.hpp"

namespace lbd::it {
namespace {

class Cli : public ::testing::Test {
 protected:
  TempDir dir_;
};

TEST_F(Cli, CheckAcceptsTheExampleConfig) {
  const std::string example = source_dir() + "/deploy/lb.example.yaml";
  auto r = run_lbd({"-t", "--config", example}, dir_);
  ASSERT_FALSE(r.timed_out);
  EXPECT_TRUE(r.status.exited && r.status.code == 0) << r.status.to_string() << "\n" << r.err;
  EXPECT_NE(r.out.find("lbd: the configuration file " + example + " syntax is ok"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("lbd: configuration file " + example + " test is successful"), std::string::npos) << r.out;
}

TEST_F(Cli, CheckRejectsAnUnknownKeyWithItsPosition) {
  const std::string path = dir_.file("bad.yaml");
  write_file(path,
             "workers: 1\n"
             "listeners:\n"
             "  - name: t\n"
             "    listen: 127.0.0.1:18080\n"
             "    protocol: tcp\n"
             "    cluster: c\n"
             "    bogus: 1\n"
             "clusters:\n"
             "  - name: c\n"
             "    endpoints: [127.0.0.1:9001]\n");
  auto r = run_lbd({"--check", "--config", path}, dir_);
  ASSERT_FALSE(r.timed_out);
  EXPECT_TRUE(r.status.exited && r.status.code == 1) << r.status.to_string();
  // The first line, up to the list of valid keys (which grows as keys are added).
  EXPECT_EQ(r.err.rfind(path + ":7:5: listeners[0]: unknown key \"bogus\" (valid keys: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("\nlbd: configuration file " + path + " test failed\n"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("test is successful"), std::string::npos) << r.out;
}

TEST_F(Cli, CheckRejectsAnUnknownClusterWithItsPosition) {
  const std::string path = dir_.file("bad.yaml");
  write_file(path,
             "workers: 1\n"
             "listeners:\n"
             "  - name: t\n"
             "    listen: 127.0.0.1:18080\n"
             "    protocol: tcp\n"
             "    cluster: nope\n"
             "clusters:\n"
             "  - name: c\n"
             "    endpoints: [127.0.0.1:9001]\n");
  auto r = run_lbd({"-t", "--config", path}, dir_);
  ASSERT_FALSE(r.timed_out);
  EXPECT_TRUE(r.status.exited && r.status.code == 1) << r.status.to_string();
  EXPECT_EQ(r.err, path + ":6:14: listeners[0].cluster: unknown cluster \"nope\" (defined clusters: c)\n" +
                       "lbd: configuration file " + path + " test failed\n");
}

TEST_F(Cli, CheckRejectsBrokenYamlWithItsPosition) {
  const std::string path = dir_.file("bad.yaml");
  write_file(path, "workers: 1\nlisteners: [\n  - name: t\n");
  auto r = run_lbd({"-t", "--config", path}, dir_);
  ASSERT_FALSE(r.timed_out);
  EXPECT_TRUE(r.status.exited && r.status.code == 1) << r.status.to_string();
  EXPECT_EQ(r.err.rfind(path + ":3:3: invalid YAML: ", 0), 0u) << r.err;
}

TEST_F(Cli, MissingConfigFileIsNamed) {
  const std::string path = dir_.file("absent.yaml");
  auto r = run_lbd({"--config", path}, dir_);
  ASSERT_FALSE(r.timed_out);
  EXPECT_TRUE(r.status.exited && r.status.code == 1) << r.status.to_string();
  EXPECT_NE(r.err.find(path), std::string::npos) << r.err;
}

TEST_F(Cli, VersionPrintsTheVersion) {
  auto r = run_lbd({"--version"}, dir_);
  ASSERT_FALSE(r.timed_out);
  EXPECT_TRUE(r.status.exited && r.status.code == 0) << r.status.to_string();
  EXPECT_EQ(r.out, std::string("lbd ") + LBD_VERSION_EXPECTED + "\n");
}

// A tls listener on the certificate `stem`.pem / .key, named relative to the config's directory.
std::string tls_config(const std::string& stem) {
  return "workers: 1\n"
         "listeners:\n"
         "  - name: t\n"
         "    listen: 127.0.0.1:18443\n"
         "    protocol: tcp\n"
         "    cluster: c\n"
         "    tls:\n"
         "      cert: " + stem + ".pem\n"
         "      key: " + stem + ".key\n"
         "clusters:\n"
         "  - name: c\n"
         "    endpoints: [127.0.0.1:9001]\n";
}

TEST_F(Cli, CheckRejectsAnExpiredCertificateWithItsPosition) {
  tls::test::TestPki pki;
  tls::test::CertSpec spec;
  spec.cn = "old.example.com";
  spec.dns = {"old.example.com"};
  spec.valid_from = -30L * 86400;
  spec.valid_to = -86400;
  const std::string cert = pki.issue("old", spec).chain_file;
  const std::string path = pki.dir().write("lb.yaml", tls_config("old"));
  auto r = run_lbd({"-t", "--config", path}, dir_);
  ASSERT_FALSE(r.timed_out);
  EXPECT_TRUE(r.status.exited && r.status.code == 1) << r.status.to_string();
  EXPECT_EQ(r.err.rfind(path + ":8:13: listeners[0].tls.cert: " + cert + ": certificate expired on ", 0), 0u)
      << r.err;
  EXPECT_NE(r.err.find("\nlbd: configuration file " + path + " test failed\n"), std::string::npos) << r.err;
}

TEST_F(Cli, CheckWarnsOfACertificateCloseToExpiryAndPasses) {
  tls::test::TestPki pki;
  tls::test::CertSpec spec;
  spec.cn = "soon.example.com";
  spec.dns = {"soon.example.com"};
  spec.valid_to = 5L * 86400;
  const std::string cert = pki.issue("soon", spec).chain_file;
  const std::string path = pki.dir().write("lb.yaml", tls_config("soon"));
  auto r = run_lbd({"-t", "--config", path}, dir_);
  ASSERT_FALSE(r.timed_out);
  EXPECT_TRUE(r.status.exited && r.status.code == 0) << r.status.to_string() << "\n" << r.err;
  EXPECT_EQ(r.err.rfind("warning: " + path + ":8:13: listeners[0].tls.cert: " + cert + ": certificate expires on ", 0),
            0u)
      << r.err;
  EXPECT_NE(r.out.find("lbd: configuration file " + path + " test is successful"), std::string::npos) << r.out;
}

class CliStart : public LbdTest {};

// A listener whose port another socket holds (without SO_REUSEPORT): lbd exits 1 and says
// which listener and which address.
TEST_P(CliStart, PortInUseExitsWithTheListenerAndAddress) {
  Fd holder(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(::bind(holder.get(), reinterpret_cast<sockaddr*>(&a), len), 0);
  ASSERT_EQ(::listen(holder.get(), 16), 0);
  ::getsockname(holder.get(), reinterpret_cast<sockaddr*>(&a), &len);
  const uint16_t taken = ntohs(a.sin_port);

  auto backend = make_echo();
  ConfigSpec spec;
  spec.listeners.push_back({.name = "busy", .port = taken});
  spec.clusters.push_back(cluster_of({backend.get()}));
  write_file(config_path(), spec.to_yaml());
  lbd_ = std::make_unique<LbdProcess>(std::vector<std::string>{"--config", config_path(), "--io", io()},
                                      dir_.file("lbd.log"), io());
  auto status = lbd_->wait_exit(10000ms);
  ASSERT_TRUE(status) << "lbd kept running with its port taken";
  EXPECT_TRUE(status->exited && status->code == 1) << status->to_string();
  std::string log = lbd_->log();
  EXPECT_NE(log.find("listener busy: bind 127.0.0.1:" + std::to_string(taken) + ": Address already in use"),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find(" started: "), std::string::npos) << "lbd claims to have started";
}

LBD_INSTANTIATE_DRIVERS(CliStart);

}  // namespace
}  // namespace lbd::it
