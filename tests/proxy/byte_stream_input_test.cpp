// ByteStream::await_input (proxy/core/byte_stream.cpp) over TLS, on both drivers: an idle
// keep-alive connection waits for the ciphertext there, with no coroutine frame of TLS, and the
// read after it decrypts what came. The request's record may arrive in pieces (the read then
// waits for the rest), the wait has its limit, and a client's close_notify reads as the end.
//
// The client's ciphertext goes through a relay of the test's, which can hold back the rest of
// a record until the server has seen its first bytes.

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "proxy/core/byte_stream.hpp"
#include "proxy/tls/ticket_keys.hpp"
#include "proxy/tls/tls_context.hpp"
#include "proxy/tls/tls_stream.hpp"
#include "runtime/event.hpp"
#include "runtime/net.hpp"
#include "runtime/spawn.hpp"
#include "tests/proxy/tls_test_support.hpp"
#include "tests/runtime/runtime_test_support.hpp"

namespace lbd::proxy {
namespace {

using namespace std::chrono_literals;
using lbd::test::RuntimeTest;

struct Contexts {
  std::unique_ptr<tls::ServerContext> server;
  std::unique_ptr<tls::ClientContext> client;
};

Contexts& contexts() {
  static tls::test::TestPki pki;  // its directory is removed at exit
  static Contexts c = [] {
    Contexts made;
    auto cert = pki.issue_for("input", {"input.test"}, tls::test::KeyKind::kEcdsa);
    tls::ServerOptions sopts;
    sopts.certificates.push_back({cert.chain_file, cert.key_file, {}});
    tls::LoadReport report;
    auto creds = tls::ServerCredentials::load(sopts, report);
    auto keys = tls::TicketKeys::generate();
    if (creds && keys) {
      auto s = tls::ServerContext::create(creds, *keys);
      if (s) made.server = std::move(*s);
    }
    tls::ClientOptions copts;
    copts.ca_file = pki.ca_file();
    made.client = tls::ClientContext::load(copts, report);
    return made;
  }();
  return c;
}

/// The client's ciphertext on its way to the server. While `split` is set, the next bytes go
/// in two writes: the first 3, then the rest once `resume` is set.
struct Relay {
  bool split = false;
  Event resume;
};

/// Copies `from` to `to` until EOF (then FIN), splitting as `relay` says (null: never).
Task<void> pump(TcpStream* from, TcpStream* to, Relay* relay) {
  for (;;) {
    auto got = co_await from->read_pooled(10s);
    if (!got || got->empty()) break;
    std::string bytes(got->view());
    std::size_t off = 0;
    if (relay && relay->split && bytes.size() > 3) {
      relay->split = false;
      auto [w, b] = co_await to->write_all(Buffer::copy_of(bytes.substr(0, 3)));
      if (!w) break;
      Result<void> waited = co_await relay->resume.wait();
      if (!waited) break;
      off = 3;
    }
    auto [w, b] = co_await to->write_all(Buffer::copy_of(bytes.substr(off)));
    if (!w) break;
  }
  (void)to->shutdown_write();
}

Task<Result<void>> handshake_of(tls::TlsStream* s) { co_return co_await s->handshake(5s); }

/// A client and a server TLS stream, handshaken, with the relay between them.
struct Link {
  lbd::test::TcpPair near;  // client <-> relay
  lbd::test::TcpPair far;   // relay <-> server
  std::optional<tls::TlsStream> client;
  std::optional<tls::TlsStream> server;
  Relay relay;
  std::optional<JoinHandle<void>> up;
  std::optional<JoinHandle<void>> down;
};

Task<bool> open_link(Link* l) {
  auto near = co_await lbd::test::make_tcp_pair();
  auto far = co_await lbd::test::make_tcp_pair();
  if (!near || !far) co_return false;
  l->near = std::move(*near);
  l->far = std::move(*far);
  l->up.emplace(spawn(pump(&l->near.server, &l->far.client, &l->relay)));
  l->down.emplace(spawn(pump(&l->far.client, &l->near.server, nullptr)));
  auto server = tls::TlsStream::accept(std::move(l->far.server), *contexts().server);
  auto client = tls::TlsStream::connect(std::move(l->near.client), *contexts().client, "input.test");
  if (!server || !client) co_return false;
  l->server.emplace(std::move(*server));
  l->client.emplace(std::move(*client));
  auto srv = spawn(handshake_of(&*l->server));
  Result<void> c = co_await l->client->handshake(5s);
  Result<void> s = co_await srv;
  co_return c && s;
}

/// Ends the link: both ends close, the relay's pumps see EOF and end.
Task<void> close_link(Link* l) {
  l->client->socket().close();
  l->server->socket().close();
  l->relay.resume.set();
  co_await *l->up;
  co_await *l->down;
}

class ByteStreamInputTest : public RuntimeTest {};
LBD_INSTANTIATE_FOR_DRIVERS(ByteStreamInputTest);

// A request whose record arrives in two pieces: the wait ends at the first bytes, and the read
// after it waits for the rest of the record and returns the whole request.
Task<void> split_record_is_read_whole() {
  Link l;
  bool opened = co_await open_link(&l);
  CO_ASSERT_TRUE(opened);
  ByteStream server(&*l.server);
  EXPECT_FALSE(l.server->has_buffered_input());
  const std::string request = "GET /next HTTP/1.1\r\nHost: input.test\r\n\r\n";
  l.relay.split = true;
  auto [w, b] = co_await l.client->write_all(Buffer::copy_of(request));
  CO_ASSERT_OK(w);
  Result<void> arrived = co_await server.await_input(5s);
  CO_ASSERT_OK(arrived);
  EXPECT_FALSE(l.relay.split) << "the relay did not split the record";
  EXPECT_TRUE(l.server->has_buffered_input()) << "the ciphertext is the TLS stream's to decrypt";
  l.relay.resume.set();  // the rest of the record now
  std::string got;
  while (got.size() < request.size()) {
    Result<Buffer> r = co_await server.read(5s);
    CO_ASSERT_OK(r);
    if (r->empty()) break;
    got.append(r->view());
  }
  EXPECT_EQ(got, request);
  co_await close_link(&l);
}

TEST_P(ByteStreamInputTest, ARecordThatArrivesInPiecesIsReadWhole) { run(split_record_is_read_whole()); }

// Nothing arrives within the limit: ETIMEDOUT, and the connection still carries the next
// request. A client's close_notify then reads as the end (an empty read).
Task<void> limit_then_request_then_close() {
  Link l;
  bool opened = co_await open_link(&l);
  CO_ASSERT_TRUE(opened);
  ByteStream server(&*l.server);
  Result<void> idle = co_await server.await_input(100ms);
  CO_ASSERT_TRUE(!idle);
  EXPECT_TRUE(idle.error().is(ETIMEDOUT)) << idle.error().message();
  auto [w, b] = co_await l.client->write_all(Buffer::copy_of("ping"));
  CO_ASSERT_OK(w);
  Result<void> arrived = co_await server.await_input(5s);
  CO_ASSERT_OK(arrived);
  Result<Buffer> r = co_await server.read(5s);
  CO_ASSERT_OK(r);
  EXPECT_EQ(r->view(), "ping");
  (void)co_await l.client->shutdown();
  Result<void> closing = co_await server.await_input(5s);
  CO_ASSERT_OK(closing);
  Result<Buffer> end = co_await server.read(5s);
  CO_ASSERT_OK(end);
  EXPECT_TRUE(end->empty());
  EXPECT_TRUE(l.server->peer_sent_close_notify());
  co_await close_link(&l);
}

TEST_P(ByteStreamInputTest, TheWaitHasItsLimitAndAClosedClientReadsAsTheEnd) {
  run(limit_then_request_then_close());
}

// A plain stream has nothing to wait for: its read waits in no frame already.
Task<void> plain_is_ready_at_once() {
  auto pair = co_await lbd::test::make_tcp_pair();
  CO_ASSERT_OK(pair);
  ByteStream server(&pair->server);
  auto input = server.await_input(5s);
  EXPECT_TRUE(input.await_ready());
  Result<void> r = co_await std::move(input);
  EXPECT_TRUE(r);
}

TEST_P(ByteStreamInputTest, APlainStreamIsReadyAtOnce) { run(plain_is_ready_at_once()); }

}  // namespace
}  // namespace lbd::proxy
