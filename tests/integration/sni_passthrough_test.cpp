// SNI passthrough through the real lbd: a tcp listener with SNI routes reads each client's
// ClientHello without terminating TLS and sends the connection, every byte of it from the first,
// to the cluster the SNI routes to. The backends here are not TLS servers: each records what
// arrives until the client's FIN and answers "<id>\n" followed by those bytes, so a test sees
// both where its connection went and that the backend got exactly what the client sent.

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/integration/lbd_fixture.hpp"
#include "tests/proxy/client_hello_support.hpp"

namespace lbd::it {
namespace {

using tls::test::HelloSpec;
using tls::test::openssl_client_hello;

/// Reads until the client's FIN, then writes "<id>\n" and every byte it read.
Backend::Handler recorder(const std::string& id) {
  return [id](int fd) {
    ReadResult got = read_to_end(fd, 10000ms);
    send_all(fd, id + "\n" + got.data);
  };
}

class SniPassthrough : public LbdTest {
 protected:
  void SetUp() override {
    LbdTest::SetUp();
    if (IsSkipped()) return;
    for (const char* id : {"a", "b", "fallback"})
      backends_.push_back(std::make_unique<Backend>(id, recorder(id)));
  }

  /// Starts lbd with the listener of the issue: a.example.com -> a, *.example.com -> b, the rest
  /// to fallback (or closed when `with_default` is false). `extra`: more listener keys.
  void start_edge(const std::string& extra, bool with_default = true) {
    port_ = free_port();
    std::string yaml = "workers: 1\nlog: { level: info, access_log: off }\nlisteners:\n"
                       "  - name: edge\n    listen: 127.0.0.1:" + std::to_string(port_) +
                       "\n    protocol: tcp\n";
    if (with_default) yaml += "    cluster: fallback\n";
    yaml += "    routes:\n"
            "      - { match: { sni: a.example.com }, cluster: a }\n"
            "      - { match: { sni: \"*.example.com\" }, cluster: b }\n";
    yaml += extra;
    if (admin_port_) yaml += "admin: { listen: 127.0.0.1:" + std::to_string(admin_port_) + " }\n";
    yaml += "clusters:\n";
    for (const auto& b : backends_)
      yaml += "  - { name: " + b->id() + ", endpoints: [" + b->address() + "] }\n";
    std::vector<uint16_t> ports = {port_};
    if (admin_port_) ports.push_back(admin_port_);
    ASSERT_EQ(start_yaml(yaml, ports), "");
  }

  /// Sends `pieces` one by one, each in a TCP segment of its own (TCP_NODELAY, and the next
  /// only once lbd's kernel has acknowledged the previous), then FIN, and returns everything
  /// that comes back until lbd closes.
  ReadResult exchange(const std::vector<std::string>& pieces) {
    Fd c = connect_or_fail(port_);
    if (!c) return {};
    int one = 1;
    setsockopt(c.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    for (const std::string& p : pieces) {
      EXPECT_TRUE(send_all(c.get(), p));
      // TIOCOUTQ counts the bytes not yet acknowledged: zero means the piece arrived alone.
      EXPECT_TRUE(wait_until([&] { return unsent(c.get()) == 0; }, 5000ms));
    }
    shutdown(c.get(), SHUT_WR);
    return read_to_end(c.get(), 10000ms);
  }

  static int unsent(int fd) {
    int n = 0;
    ioctl(fd, TIOCOUTQ, &n);
    return n;
  }

  Backend& backend(const std::string& id) {
    for (auto& b : backends_)
      if (b->id() == id) return *b;
    throw std::runtime_error("no backend " + id);
  }

  std::vector<std::unique_ptr<Backend>> backends_;
  uint16_t port_ = 0;
  uint16_t admin_port_ = 0;  // set before start_edge for an admin listener
};

TEST_P(SniPassthrough, EachSniLandsOnItsRouteByteExact) {
  start_edge("");
  const std::string a = openssl_client_hello({.sni = "a.example.com"});
  const std::string b = openssl_client_hello({.sni = "Www.Example.com", .alpn = {"h2", "http/1.1"}});
  const std::string other = openssl_client_hello({.sni = "example.org"});
  const std::string none = openssl_client_hello({});
  ASSERT_FALSE(a.empty());
  // Bytes after the hello (what a client might pipeline) go along, in order.
  EXPECT_EQ(exchange({a + "after"}).data, "a\n" + a + "after");
  EXPECT_EQ(exchange({b}).data, "b\n" + b);
  EXPECT_EQ(exchange({other}).data, "fallback\n" + other);  // no route matches: the default
  EXPECT_EQ(exchange({none}).data, "fallback\n" + none);    // no SNI: the default
}

TEST_P(SniPassthrough, HelloFragmentedOverSegmentsAndRecords) {
  start_edge("");
  const std::string hello = openssl_client_hello({.sni = "a.example.com"});
  ASSERT_FALSE(hello.empty());
  // Over TCP: the record header split, then small pieces.
  std::vector<std::string> pieces = {hello.substr(0, 3)};
  for (auto& p : tls::test::pieces_of(hello.substr(3), 97)) pieces.push_back(p);
  EXPECT_EQ(exchange(pieces).data, "a\n" + hello);
  // Over TLS records: the handshake message cut into 50-byte records, sent in 7-byte pieces.
  const std::string records = tls::test::reframe(hello, {50});
  ASSERT_GT(tls::test::record_count(records), 2u);
  EXPECT_EQ(exchange(tls::test::pieces_of(records, 7)).data, "a\n" + records);
}

TEST_P(SniPassthrough, NoDefaultClusterClosesUnroutedConnections) {
  start_edge("", /*with_default=*/false);
  EXPECT_EQ(exchange({openssl_client_hello({.sni = "example.org"})}).data, "");
  EXPECT_EQ(exchange({openssl_client_hello({})}).data, "");
  EXPECT_TRUE(lbd_->wait_log("matches no route and there is no default cluster"));
  const std::string a = openssl_client_hello({.sni = "a.example.com"});
  EXPECT_EQ(exchange({a}).data, "a\n" + a);
  EXPECT_EQ(backend("fallback").accepted(), 0);
}

TEST_P(SniPassthrough, NotTlsIsClosedByDefault) {
  start_edge("");
  ReadResult r = exchange({"GET / HTTP/1.1\r\nHost: a.example.com\r\n\r\n"});
  EXPECT_EQ(r.data, "");
  EXPECT_TRUE(lbd_->wait_log("first bytes are not tls"));
  // Starts as TLS, then breaks: a handshake record that is not a ClientHello.
  EXPECT_EQ(exchange({tls::test::record(tls::test::handshake("xx", 0x02))}).data, "");
  EXPECT_EQ(backend("fallback").accepted(), 0);
  EXPECT_EQ(backend("a").accepted(), 0);
}

TEST_P(SniPassthrough, NotTlsDefaultGoesToTheDefaultCluster) {
  start_edge("    not_tls: default\n");
  const std::string plain = "SSH-2.0-OpenSSH_9.2\r\n";
  EXPECT_EQ(exchange({plain}).data, "fallback\n" + plain);
}

TEST_P(SniPassthrough, StalledHelloIsClosedAfterPreread) {
  start_edge("    timeouts: { preread: 300ms }\n");
  const std::string hello = openssl_client_hello({.sni = "a.example.com"});
  Fd c = connect_or_fail(port_);
  ASSERT_TRUE(c);
  const auto sent_at = Clock::now();
  ASSERT_TRUE(send_all(c.get(), hello.substr(0, hello.size() / 2)));
  ReadResult r = read_to_end(c.get(), 5000ms);  // lbd closes it; we never send the rest
  const auto waited = Clock::now() - sent_at;
  EXPECT_NE(r.end, End::kTimeout);
  EXPECT_EQ(r.data, "");
  EXPECT_GE(waited, 250ms);  // not before the limit (a little slack for clock granularity)
  EXPECT_TRUE(lbd_->wait_log("no complete ClientHello within 300ms"));
  EXPECT_EQ(backend("a").accepted(), 0);
}

/// The body of GET `path` on the admin listener at `port` ("" if it did not answer).
std::string admin_get(uint16_t port, const std::string& path) {
  Fd c = connect_or_fail(port);
  if (!c || !send_all(c.get(), "GET " + path + " HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")) return "";
  ReadResult r = read_to_end(c.get(), 5000ms);
  const auto body = r.data.find("\r\n\r\n");
  return body == std::string::npos ? "" : r.data.substr(body + 4);
}

// Each way a connection's ClientHello decides it is counted, in /metrics and in /stats.
TEST_P(SniPassthrough, EachOutcomeIsCountedInMetricsAndStats) {
  admin_port_ = free_port();
  start_edge("    timeouts: { preread: 300ms }\n");
  const std::string a = openssl_client_hello({.sni = "a.example.com"});
  EXPECT_EQ(exchange({a}).data, "a\n" + a);                                     // routed
  const std::string b = openssl_client_hello({.sni = "www.example.com"});
  EXPECT_EQ(exchange({b}).data, "b\n" + b);                                     // routed
  const std::string other = openssl_client_hello({.sni = "example.org"});
  EXPECT_EQ(exchange({other}).data, "fallback\n" + other);                      // default
  EXPECT_EQ(exchange({"GET / HTTP/1.1\r\n\r\n"}).data, "");                      // not TLS: rejected
  EXPECT_EQ(exchange({a.substr(0, a.size() / 2)}).data, "");                     // closed mid-hello: aborted
  {
    Fd c = connect_or_fail(port_);  // half a hello, then silence: the preread times out
    ASSERT_TRUE(c);
    ASSERT_TRUE(send_all(c.get(), a.substr(0, a.size() / 2)));
    EXPECT_NE(read_to_end(c.get(), 5000ms).end, End::kTimeout);
  }
  const std::string line = "lbd_listener_sni_connections_total{listener=\"edge\",protocol=\"tcp\",result=";
  std::string metrics;
  EXPECT_TRUE(wait_until([&] {
    metrics = admin_get(admin_port_, "/metrics");
    return metrics.find(line + "\"preread_timeout\"} 1\n") != std::string::npos;
  }, 5000ms)) << metrics;
  EXPECT_NE(metrics.find(line + "\"routed\"} 2\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find(line + "\"default\"} 1\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find(line + "\"rejected\"} 1\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find(line + "\"preread_aborted\"} 1\n"), std::string::npos) << metrics;
  // nlohmann::json writes an object's keys in order.
  const std::string stats = admin_get(admin_port_, "/stats");
  EXPECT_NE(stats.find("\"sni\":{\"default\":1,\"preread_aborted\":1,\"preread_timeouts\":1,\"rejected\":1,"
                       "\"routed\":2}"),
            std::string::npos)
      << stats;
}

LBD_INSTANTIATE_DRIVERS(SniPassthrough);

}  // namespace
}  // namespace lbd::it
