// SocketAddress parsing and formatting (runtime/socket_address.cpp). Pure value code: no
// runtime, so no driver parameter.

#include <arpa/inet.h>

#include <string>

#include "runtime/socket_address.hpp"
#include "tests/runtime/runtime_test_support.hpp"

namespace lbd {
namespace {

TEST(SocketAddressTest, ParsesAndFormatsIpv4) {
  auto a = SocketAddress::parse("127.0.0.1:8080");
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_TRUE(a->is_ipv4());
  EXPECT_FALSE(a->is_ipv6());
  EXPECT_FALSE(a->is_unix());
  EXPECT_EQ(a->family(), AF_INET);
  EXPECT_EQ(a->port(), 8080);
  EXPECT_EQ(a->host_string(), "127.0.0.1");
  EXPECT_EQ(a->to_string(), "127.0.0.1:8080");
  EXPECT_EQ(a->size(), sizeof(sockaddr_in));
  auto* sin = reinterpret_cast<const sockaddr_in*>(a->data());
  EXPECT_EQ(ntohl(sin->sin_addr.s_addr), 0x7f000001u);
  EXPECT_EQ(ntohs(sin->sin_port), 8080);

  for (const char* text : {"0.0.0.0:0", "10.1.2.3:65535", "255.255.255.255:1"}) {
    auto b = SocketAddress::parse(text);
    ASSERT_TRUE(b) << text;
    EXPECT_EQ(b->to_string(), text);
  }
}

TEST(SocketAddressTest, ParsesAndFormatsIpv6) {
  auto a = SocketAddress::parse("[::1]:80");
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_TRUE(a->is_ipv6());
  EXPECT_EQ(a->family(), AF_INET6);
  EXPECT_EQ(a->port(), 80);
  EXPECT_EQ(a->host_string(), "::1");
  EXPECT_EQ(a->to_string(), "[::1]:80");
  EXPECT_EQ(a->size(), sizeof(sockaddr_in6));

  auto b = SocketAddress::parse("[2001:db8:0:0:0:0:0:1]:443");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->to_string(), "[2001:db8::1]:443");  // formatted in canonical form
  auto c = SocketAddress::parse("[::ffff:10.0.0.1]:8080");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->is_ipv6());
  EXPECT_EQ(c->port(), 8080);
  auto any = SocketAddress::parse("[::]:0");
  ASSERT_TRUE(any);
  EXPECT_EQ(any->to_string(), "[::]:0");
}

TEST(SocketAddressTest, ParsesAndFormatsUnixPaths) {
  auto a = SocketAddress::parse("unix:/run/lbd.sock");
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_TRUE(a->is_unix());
  EXPECT_EQ(a->family(), AF_UNIX);
  EXPECT_EQ(a->host_string(), "/run/lbd.sock");
  EXPECT_EQ(a->to_string(), "unix:/run/lbd.sock");
  EXPECT_EQ(a->port(), 0);

  auto b = SocketAddress::parse("/tmp/x.sock");  // a bare absolute path is a Unix address
  ASSERT_TRUE(b);
  EXPECT_TRUE(b->is_unix());
  EXPECT_EQ(b->to_string(), "unix:/tmp/x.sock");
  EXPECT_TRUE(*a != *b);

  auto u = SocketAddress::unix_path("/tmp/y.sock");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->to_string(), "unix:/tmp/y.sock");

  // sun_path holds 107 characters plus the terminator.
  std::string longest = "/" + std::string(106, 'p');
  EXPECT_TRUE(SocketAddress::parse("unix:" + longest));
  EXPECT_FALSE(SocketAddress::parse("unix:" + longest + "p"));
  EXPECT_FALSE(SocketAddress::parse("unix:"));
}

TEST(SocketAddressTest, RejectsMalformedAndNonNumericAddresses) {
  for (const char* bad : {
           "1.2.3.4",          // no port
           "1.2.3.4:99999",    // port out of range
           "1.2.3.4:65536",
           "1.2.3.4:",         // empty port
           "1.2.3.4:-1",
           "1.2.3.4:+80",
           "1.2.3.4:8o",
           "1.2.3.4: 80",
           "1.2.3.4:80 ",
           "[::1]80",          // missing ':' after ']'
           "[::1]:",
           "[::1",
           "::1:80",           // IPv6 needs brackets
           "[1.2.3.4]:80",     // and IPv4 must not have them
           "host:80",          // names are not resolved here (no DNS)
           "localhost:80",
           "256.1.1.1:80",
           "1.2.3:80",
           ":80",
           "",
       }) {
    auto a = SocketAddress::parse(bad);
    EXPECT_FALSE(a) << "\"" << bad << "\" parsed as " << a->to_string();
    if (!a) {
      EXPECT_TRUE(a.error().is(EINVAL) || a.error().is(ENAMETOOLONG)) << bad << ": " << a.error().message();
    }
  }
}

TEST(SocketAddressTest, BuildersPortsAndEquality) {
  auto a = SocketAddress::ipv4_loopback(9000);
  EXPECT_EQ(a.to_string(), "127.0.0.1:9000");
  auto b = SocketAddress::ipv4(0x0a000001u, 53);
  EXPECT_EQ(b.to_string(), "10.0.0.1:53");
  b.set_port(54);
  EXPECT_EQ(b.port(), 54);
  EXPECT_EQ(b.to_string(), "10.0.0.1:54");

  auto parsed = SocketAddress::parse("127.0.0.1:9000");
  ASSERT_TRUE(parsed);
  EXPECT_TRUE(*parsed == a);
  EXPECT_FALSE(*parsed == b);

  auto v6 = SocketAddress::parse("[::1]:1");
  ASSERT_TRUE(v6);
  v6->set_port(2);
  EXPECT_EQ(v6->to_string(), "[::1]:2");

  auto copy = SocketAddress::from_sockaddr(a.data(), a.size());
  EXPECT_TRUE(copy == a);

  SocketAddress unspecified;
  EXPECT_FALSE(unspecified.is_ipv4() || unspecified.is_ipv6() || unspecified.is_unix());
  EXPECT_EQ(unspecified.port(), 0);
  EXPECT_EQ(unspecified.to_string(), "unspecified");
}

}  // namespace
}  // namespace lbd
