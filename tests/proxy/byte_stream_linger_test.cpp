// ByteStream::linger (proxy/core/byte_stream.cpp) on both drivers: closing with a client's
// bytes unread would reset the connection; lingering sends a FIN first and takes those bytes,
// so the client sees a clean end. It ends when the client closes, or at its limit.

#include <gtest/gtest.h>

#include <string>
#include <utility>

#include "proxy/core/byte_stream.hpp"
#include "runtime/clock.hpp"
#include "runtime/net.hpp"
#include "runtime/spawn.hpp"
#include "tests/runtime/runtime_test_support.hpp"

namespace lbd::proxy {
namespace {

using namespace std::chrono_literals;
using lbd::test::RuntimeTest;

class ByteStreamLingerTest : public RuntimeTest {};
LBD_INSTANTIATE_FOR_DRIVERS(ByteStreamLingerTest);

/// How the client end saw the connection end.
struct ClientEnd {
  bool eof = false;      // a read returned 0: a FIN
  int error = 0;         // errno of a failed read (ECONNRESET: a reset)
  Clock::time_point at;  // when
};

/// Reads until the connection ends; then closes the client end unless `keep_open`.
Task<ClientEnd> client_reads_to_end(TcpStream* client, bool keep_open) {
  ClientEnd end;
  for (;;) {
    auto r = co_await client->read_pooled(5s);
    if (!r) {
      end.error = r.error().value();
      break;
    }
    if (r->empty()) {
      end.eof = true;
      break;
    }
  }
  end.at = Clock::now();
  if (!keep_open) client->close();
  co_return end;
}

/// One linger, timed: the server end of a loopback pair lingers for `limit` after the client
/// sent `unread` (nothing when empty), while the client reads to the end and then closes
/// (unless `keep_open`). How long the linger took and what the client saw go to *out.
struct Lingered {
  Duration took{};
  ClientEnd seen;
};

Task<void> linger_once(std::string unread, bool keep_open, Duration limit, Lingered* out) {
  auto pair = co_await lbd::test::make_tcp_pair();
  CO_ASSERT_OK(pair);
  ByteStream server(&pair->server);
  if (!unread.empty()) {
    auto [w, b] = co_await pair->client.write_all(Buffer::copy_of(unread));
    CO_ASSERT_OK(w);
    EXPECT_TRUE(server.has_unread_input());  // loopback delivers within the write
  }
  auto client = spawn(client_reads_to_end(&pair->client, keep_open));
  const auto start = Clock::now();
  co_await server.linger(limit);
  out->took = Clock::now() - start;
  pair->server.close();
  out->seen = co_await client;
  bool settled = co_await lbd::test::settle_ops();
  EXPECT_TRUE(settled) << "operations left in flight";
}

// The next request a client sent is still unread when the server ends the connection (what a
// drain does to an idle keep-alive connection): the client gets a FIN, not a reset, and the
// linger ends as soon as the client closes too.
TEST_P(ByteStreamLingerTest, UnreadBytesAreTakenSoTheClientSeesAFinNotAReset) {
  Lingered l;
  run(linger_once("GET /next HTTP/1.1\r\nHost: a\r\n\r\n", /*keep_open=*/false, 10s, &l));
  EXPECT_TRUE(l.seen.eof) << "the client's read failed with errno " << l.seen.error;
  EXPECT_EQ(l.seen.error, 0);
  EXPECT_LT(l.took, 5s) << "the linger waited for its limit although the client had closed";
}

// A client that keeps its end open after the FIN holds the server's socket only for the
// linger's limit.
TEST_P(ByteStreamLingerTest, AClientThatStaysOpenIsLeftAtTheLimit) {
  Lingered l;
  run(linger_once("", /*keep_open=*/true, 300ms, &l));
  EXPECT_TRUE(l.seen.eof);  // the FIN came first
  EXPECT_GE(l.took, 300ms);
  EXPECT_LT(l.took, 5s);
}

}  // namespace
}  // namespace lbd::proxy
