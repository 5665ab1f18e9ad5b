// read_client_hello (proxy/l4/sni_preread.cpp) on both drivers: a ClientHello that arrives in
// several writes with gaps (and in 1-byte records) is read whole, with every byte kept for the
// upstream; a client that sends half and stalls is cut at the limit; plain HTTP is told at once;
// a client that closes mid-hello is reported so.

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "proxy/l4/sni_preread.hpp"
#include "runtime/net.hpp"
#include "runtime/spawn.hpp"
#include "runtime/timer.hpp"
#include "tests/proxy/client_hello_support.hpp"
#include "tests/runtime/runtime_test_support.hpp"

namespace lbd::proxy {
namespace {

using namespace std::chrono_literals;
using lbd::test::RuntimeTest;
using tls::ClientHelloOutcome;

class SniPrereadTest : public RuntimeTest {};
LBD_INSTANTIATE_FOR_DRIVERS(SniPrereadTest);

/// Writes `pieces` one by one, `gap` apart, then closes the socket if `close_after`.
Task<void> write_in_pieces(TcpStream* s, std::vector<std::string> pieces, Duration gap, bool close_after) {
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    if (i > 0) co_await sleep_for(gap);
    auto [w, b] = co_await s->write_all(Buffer::copy_of(pieces[i]));
    EXPECT_TRUE(w) << "write " << i;
  }
  if (close_after) s->close();
}

struct Sent {
  std::vector<std::string> pieces;
  bool close_after = false;
};

/// The server end of a loopback pair runs read_client_hello while the client writes `sent`.
Task<SniPreread> preread(Sent sent, Duration limit, Duration* took) {
  SniPreread none;
  auto pair = co_await lbd::test::make_tcp_pair();
  if (!pair) {
    ADD_FAILURE() << "tcp pair: " << pair.error().message();
    co_return std::move(none);
  }
  EXPECT_TRUE(pair->client.set_nodelay(true));  // each write its own segment
  auto writer = spawn(write_in_pieces(&pair->client, std::move(sent.pieces), 30ms, sent.close_after));
  auto start = Clock::now();
  SniPreread got = co_await read_client_hello(&pair->server, limit);
  *took = Clock::now() - start;
  co_await writer;
  bool settled = co_await lbd::test::settle_ops();
  EXPECT_TRUE(settled) << "operations left in flight";
  co_return std::move(got);
}

std::string text_of(const Buffer& b) { return std::string(b.view()); }

TEST_P(SniPrereadTest, HelloInSeveralWritesIsReadWholeAndEveryByteKept) {
  const std::string hello = tls::test::openssl_client_hello({.sni = "pieces.example.test", .alpn = {"h2"}});
  ASSERT_FALSE(hello.empty());
  // Five writes 30 ms apart, the last with what a client sends next (here: early bytes).
  std::vector<std::string> pieces = tls::test::split_into(hello, 5);
  pieces.back() += "after the hello";
  Duration took{};
  SniPreread got = run(preread({pieces}, 5s, &took));
  ASSERT_EQ(got.end, PrereadEnd::kDecided);
  ASSERT_EQ(got.hello.outcome, ClientHelloOutcome::kSni) << got.hello.reason;
  EXPECT_EQ(got.hello.sni, "pieces.example.test");
  EXPECT_EQ(got.hello.alpn, std::vector<std::string>{"h2"});
  EXPECT_EQ(got.hello.consumed, hello.size());
  EXPECT_EQ(text_of(got.bytes), hello + "after the hello");
}

TEST_P(SniPrereadTest, HelloInOneByteRecordsAndManyWritesIsRead) {
  const std::string hello = tls::test::openssl_client_hello({.sni = "tiny.example.test"});
  ASSERT_FALSE(hello.empty());
  const std::string framed = tls::test::reframe(hello, {1});
  Duration took{};
  SniPreread got = run(preread({tls::test::split_into(framed, 12)}, 5s, &took));
  ASSERT_EQ(got.end, PrereadEnd::kDecided);
  ASSERT_EQ(got.hello.outcome, ClientHelloOutcome::kSni) << got.hello.reason;
  EXPECT_EQ(got.hello.sni, "tiny.example.test");
  EXPECT_EQ(text_of(got.bytes), framed);
}

TEST_P(SniPrereadTest, HelloWithoutSniIsDecidedSo) {
  const std::string hello = tls::test::openssl_client_hello({.max_version = TLS1_2_VERSION});
  ASSERT_FALSE(hello.empty());
  Duration took{};
  SniPreread got = run(preread({{hello}}, 5s, &took));
  ASSERT_EQ(got.end, PrereadEnd::kDecided);
  EXPECT_EQ(got.hello.outcome, ClientHelloOutcome::kNoSni);
  EXPECT_EQ(text_of(got.bytes), hello);
}

TEST_P(SniPrereadTest, ClientThatSendsHalfAndStallsIsCutAtTheLimit) {
  const std::string hello = tls::test::openssl_client_hello({.sni = "stall.example.test"});
  ASSERT_FALSE(hello.empty());
  const std::string half = hello.substr(0, hello.size() / 2);
  Duration took{};
  SniPreread got = run(preread({tls::test::split_into(half, 2)}, 300ms, &took));
  EXPECT_EQ(got.end, PrereadEnd::kTimedOut);
  EXPECT_EQ(got.hello.outcome, ClientHelloOutcome::kNeedMore);
  EXPECT_EQ(text_of(got.bytes), half);
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 3s);
}

TEST_P(SniPrereadTest, SilentClientIsCutAtTheLimit) {
  Duration took{};
  SniPreread got = run(preread({}, 200ms, &took));
  EXPECT_EQ(got.end, PrereadEnd::kTimedOut);
  EXPECT_TRUE(got.bytes.empty());
  EXPECT_GE(took, 200ms);
}

TEST_P(SniPrereadTest, PlainHttpIsToldFromItsFirstBytes) {
  const std::string request = "GET / HTTP/1.1\r\nHost: example.test\r\n\r\n";
  Duration took{};
  SniPreread got = run(preread({{request}}, 5s, &took));
  ASSERT_EQ(got.end, PrereadEnd::kDecided);
  EXPECT_EQ(got.hello.outcome, ClientHelloOutcome::kNotTls);
  EXPECT_EQ(text_of(got.bytes), request);
}

TEST_P(SniPrereadTest, ClientThatClosesMidHelloIsReportedSo) {
  const std::string hello = tls::test::openssl_client_hello({.sni = "gone.example.test"});
  ASSERT_FALSE(hello.empty());
  const std::string part = hello.substr(0, 40);
  Duration took{};
  SniPreread got = run(preread({{part}, true}, 5s, &took));
  EXPECT_EQ(got.end, PrereadEnd::kPeerClosed);
  EXPECT_EQ(text_of(got.bytes), part);
  EXPECT_LT(took, 3s);
}

TEST_P(SniPrereadTest, OversizedHelloIsRefusedWithoutReadingItAll) {
  const std::string hello = tls::test::openssl_client_hello({.sni = "huge.example.test", .filler = 30000});
  ASSERT_GT(hello.size(), tls::kMaxClientHelloLength);
  Duration took{};
  SniPreread got = run(preread({{hello}}, 5s, &took));
  ASSERT_EQ(got.end, PrereadEnd::kDecided);
  EXPECT_EQ(got.hello.outcome, ClientHelloOutcome::kMalformed);
  EXPECT_LE(got.bytes.size(), hello.size());
}

}  // namespace
}  // namespace lbd::proxy
