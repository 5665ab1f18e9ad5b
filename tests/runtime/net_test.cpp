// TCP, Unix and UDP sockets on the runtime (runtime/net.hpp, runtime/net.cpp). Loopback only.

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <dirent.h>
#include <poll.h>
#include <sys/resource.h>

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/event.hpp"
#include "runtime/net.hpp"
#include "runtime/spawn.hpp"
#include "runtime/timer.hpp"
#include "tests/runtime/runtime_test_support.hpp"

namespace lbd {
namespace {

using namespace std::chrono_literals;
using test::RuntimeTest;

class NetTest : public RuntimeTest {};
LBD_INSTANTIATE_FOR_DRIVERS(NetTest);


Buffer bytes(std::string_view s) { return Buffer::copy_of(s); }

// --- echo with 1,000 concurrent connections ----------------------------------------------------

struct EchoServer {
  int expected = 0;
  int finished = 0;
  int failures = 0;
  Event all_done;
};

/// Echoes until EOF. Odd connections read through read_pooled (provided-buffer ring on
/// io_uring: 256 slots for 1,000 connections, so the ring runs dry and the plain-buffer
/// fallback is exercised too), even ones through read() into their own buffer.
Task<void> echo_conn(TcpStream s, bool pooled, EchoServer* srv) {
  bool ok = true;
  if (pooled) {
    for (;;) {
      auto r = co_await s.read_pooled();
      if (!r) {
        ADD_FAILURE() << "server read_pooled: " << r.error().message();
        ok = false;
        break;
      }
      if (r->empty()) break;
      auto w = co_await s.write_all(std::move(*r));
      if (!w.result) {
        ADD_FAILURE() << "server write_all: " << w.result.error().message();
        ok = false;
        break;
      }
    }
  } else {
    Buffer buf(16 * 1024);
    for (;;) {
      buf.clear();
      auto [res, b] = co_await s.read(std::move(buf));
      buf = std::move(b);
      if (!res) {
        ADD_FAILURE() << "server read: " << res.error().message();
        ok = false;
        break;
      }
      if (*res == 0) break;
      auto [w, b2] = co_await s.write_all(std::move(buf));
      buf = std::move(b2);
      if (!w) {
        ADD_FAILURE() << "server write_all: " << w.error().message();
        ok = false;
        break;
      }
    }
  }
  if (!ok) ++srv->failures;
  if (++srv->finished == srv->expected) srv->all_done.set();
}

Task<void> accept_n(TcpListener* l, int n, EchoServer* srv) {
  for (int i = 0; i < n; ++i) {
    auto s = co_await l->accept();
    if (!s) {
      ADD_FAILURE() << "accept #" << i << ": " << s.error().message();
      co_return;
    }
    (void)spawn(echo_conn(std::move(*s), i % 2 == 1, srv));
  }
}

Task<int> write_then_finish(StreamSocket* s, Buffer data) {
  auto [w, b] = co_await s->write_all(std::move(data));
  co_return w.errno_value();
}

/// One client: sends `size` distinct random bytes while reading the echo, compares.
Task<bool> echo_client(SocketAddress addr, uint32_t seed) {
  auto c = co_await TcpStream::connect(addr);
  if (!c) {
    ADD_FAILURE() << "client " << seed << " connect: " << c.error().message();
    co_return false;
  }
  std::mt19937 rng(seed);
  std::size_t size = 16 * 1024 + rng() % (48 * 1024 + 1);
  std::string data = test::random_bytes(size, seed);
  auto writer = spawn(write_then_finish(&*c, Buffer::copy_of(data)));
  std::string got = co_await test::read_exactly(&*c, size);
  int werr = co_await writer;
  if (werr != 0) {
    ADD_FAILURE() << "client " << seed << " write_all: " << std::strerror(werr);
    co_return false;
  }
  if (got != data) {
    ADD_FAILURE() << "client " << seed << ": sent " << size << " bytes, got " << got.size()
                  << " back; first difference at byte " << test::first_mismatch(got, data);
    co_return false;
  }
  co_return true;
}

Task<void> echo_many(int n) {
  ListenOptions lo;
  lo.backlog = 4096;
  auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0), lo);
  CO_ASSERT_OK(listener);
  auto addr = listener->local_address();
  CO_ASSERT_OK(addr);
  EchoServer srv;
  srv.expected = n;
  auto acceptor = spawn(accept_n(&*listener, n, &srv));
  std::vector<JoinHandle<bool>> clients;
  for (int i = 0; i < n; ++i) clients.push_back(spawn(echo_client(*addr, 1000 + i)));
  int ok = 0;
  for (auto& c : clients) {
    bool good = co_await c;
    ok += good ? 1 : 0;
  }
  co_await acceptor;
  EXPECT_EQ(ok, n);
  // Clients closed their ends; every server connection sees EOF and ends.
  auto done = co_await timeout(srv.all_done.wait(), 10s);
  EXPECT_TRUE(done) << srv.finished << " of " << n << " server connections ended";
  EXPECT_EQ(srv.failures, 0);
}

TEST_P(NetTest, EchoThousandConcurrentConnectionsByteExact) {
  ASSERT_GE(test::raise_fd_limit(), 2100u) << "need fds for 1,000 connection pairs";
  run(echo_many(1000), 60s);
}

// --- connect errors ----------------------------------------------------------------------------

Task<void> connect_refused() {
  // A bound but not listening socket holds the port, so the refusal is certain.
  UniqueFd holder(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  CO_ASSERT_TRUE(holder.valid());
  auto any = SocketAddress::ipv4_loopback(0);
  CO_ASSERT_TRUE(::bind(holder.get(), any.data(), any.size()) == 0);
  SocketAddress addr;
  *addr.size_ptr() = SocketAddress::capacity();
  CO_ASSERT_TRUE(::getsockname(holder.get(), addr.data(), addr.size_ptr()) == 0);
  auto c = co_await TcpStream::connect(addr);
  CO_ASSERT_TRUE(!c);
  EXPECT_TRUE(c.error().is(ECONNREFUSED)) << c.error().message();
  auto c2 = co_await TcpStream::connect(addr, 2s);  // with a timeout too
  CO_ASSERT_TRUE(!c2);
  EXPECT_TRUE(c2.error().is(ECONNREFUSED)) << c2.error().message();
}

TEST_P(NetTest, ConnectToClosedPortIsRefused) { run(connect_refused()); }

// A listener with backlog 0 that never accepts: once its accept queue holds a connection, the
// kernel drops further SYNs on loopback (LISTENOVERFLOWS), so a connect there hangs in SYN_SENT.
Task<void> connect_times_out() {
  ListenOptions lo;
  lo.backlog = 0;
  auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0), lo);
  CO_ASSERT_OK(listener);
  auto addr = listener->local_address();
  CO_ASSERT_OK(addr);
  constexpr auto kLimit = 200ms;
  std::vector<TcpStream> held;
  bool timed_out = false;
  for (int attempt = 0; attempt < 8 && !timed_out; ++attempt) {
    auto start = Clock::now();
    auto c = co_await TcpStream::connect(*addr, kLimit);
    auto took = Clock::now() - start;
    if (c) {
      held.push_back(std::move(*c));
      continue;
    }
    CO_ASSERT_TRUE(c.error().is(ETIMEDOUT));
    EXPECT_GE(took, kLimit);
    EXPECT_LT(took, kLimit + 5s);
    timed_out = true;
  }
  EXPECT_TRUE(timed_out) << "every connect completed; could not make one hang (" << held.size() << " held)";
  EXPECT_LE(held.size(), 2u);
  // Nothing was left behind by the cancelled connect.
  bool settled = co_await test::settle_ops();
  EXPECT_TRUE(settled) << Runtime::current().ops_in_flight() << " op slots still in use";
}

TEST_P(NetTest, ConnectWithTimeoutFailsWithEtimedout) { run(connect_times_out()); }

// --- reading -----------------------------------------------------------------------------------

Task<void> read_pooled_case() {
  auto pair = co_await test::make_tcp_pair();
  CO_ASSERT_OK(pair);
  auto& [client, server] = *pair;
  std::string payload = test::random_bytes(100 * 1024, 5);
  auto [w, b] = co_await client.write_all(Buffer::copy_of(payload));
  CO_ASSERT_OK(w);
  CO_ASSERT_OK(client.shutdown_write());
  std::string got;
  bool saw_eof = false;
  for (int i = 0; i < 10'000 && !saw_eof; ++i) {
    auto r = co_await server.read_pooled();
    CO_ASSERT_OK(r);
    if (r->empty()) {
      saw_eof = true;
    } else {
      EXPECT_LE(r->size(), r->capacity());
      got.append(r->view());
    }
  }
  EXPECT_TRUE(saw_eof);
  EXPECT_EQ(got.size(), payload.size());
  EXPECT_TRUE(got == payload) << "first difference at " << test::first_mismatch(got, payload);
  // EOF stays EOF.
  auto again = co_await server.read_pooled();
  CO_ASSERT_OK(again);
  EXPECT_TRUE(again->empty());
}

TEST_P(NetTest, ReadPooledReturnsDataThenEmptyBufferAtEof) { run(read_pooled_case()); }

Task<void> read_appends_case() {
  auto pair = co_await test::make_tcp_pair();
  CO_ASSERT_OK(pair);
  auto& [client, server] = *pair;
  auto [w, b] = co_await client.write_all(bytes("abc"));
  CO_ASSERT_OK(w);
  Buffer buf(16);
  buf.append("xy");
  auto [res, back] = co_await server.read(std::move(buf));
  CO_ASSERT_OK(res);
  EXPECT_EQ(*res, 3u);
  EXPECT_EQ(back.view(), "xyabc");  // read appends after what the buffer held
  client.close();
  Buffer buf2(16);
  auto [res2, back2] = co_await server.read(std::move(buf2));
  CO_ASSERT_OK(res2);
  EXPECT_EQ(*res2, 0u);  // EOF
  EXPECT_TRUE(back2.empty());
}

TEST_P(NetTest, ReadAppendsToBufferAndReturnsZeroAtEof) { run(read_appends_case()); }

// --- half-close --------------------------------------------------------------------------------

Task<void> half_close_case() {
  auto pair = co_await test::make_tcp_pair();
  CO_ASSERT_OK(pair);
  auto& [client, server] = *pair;
  auto [w, b] = co_await client.write_all(bytes("request"));
  CO_ASSERT_OK(w);
  CO_ASSERT_OK(client.shutdown_write());
  std::string req = co_await test::read_to_eof(&server);  // data, then EOF
  EXPECT_EQ(req, "request");
  // The server's direction is still open.
  auto [w2, b2] = co_await server.write_all(bytes("response after FIN"));
  CO_ASSERT_OK(w2);
  CO_ASSERT_OK(server.shutdown_write());
  std::string resp = co_await test::read_to_eof(&client);
  EXPECT_EQ(resp, "response after FIN");
}

TEST_P(NetTest, HalfCloseServerReadsEofAndStillWritesBack) { run(half_close_case()); }

// --- addresses and options ---------------------------------------------------------------------

Task<void> addresses_case(std::string bind_text) {
  auto bind_addr = SocketAddress::parse(bind_text);
  CO_ASSERT_OK(bind_addr);
  auto listener = TcpListener::bind(*bind_addr);
  CO_ASSERT_OK(listener);
  auto listen_addr = listener->local_address();
  CO_ASSERT_OK(listen_addr);
  EXPECT_NE(listen_addr->port(), 0);
  EXPECT_EQ(listen_addr->host_string(), bind_addr->host_string());
  auto client = co_await TcpStream::connect(*listen_addr);
  CO_ASSERT_OK(client);
  auto server = co_await listener->accept();
  CO_ASSERT_OK(server);
  auto c_local = client->local_address();
  auto c_peer = client->peer_address();
  auto s_local = server->local_address();
  auto s_peer = server->peer_address();
  CO_ASSERT_OK(c_local);
  CO_ASSERT_OK(c_peer);
  CO_ASSERT_OK(s_local);
  CO_ASSERT_OK(s_peer);
  EXPECT_EQ(c_peer->to_string(), listen_addr->to_string());
  EXPECT_TRUE(*c_peer == *listen_addr);
  EXPECT_EQ(s_local->to_string(), listen_addr->to_string());
  EXPECT_EQ(s_peer->to_string(), c_local->to_string());
  EXPECT_TRUE(*s_peer == *c_local);
  EXPECT_NE(c_local->port(), listen_addr->port());

  // accept_fd can report the peer itself (from the accept on epoll, getpeername on io_uring).
  auto client2 = co_await TcpStream::connect(*listen_addr);
  CO_ASSERT_OK(client2);
  SocketAddress peer;
  auto fd2 = co_await listener->accept_fd(&peer);
  CO_ASSERT_OK(fd2);
  auto c2_local = client2->local_address();
  CO_ASSERT_OK(c2_local);
  EXPECT_EQ(peer.to_string(), c2_local->to_string());
  EXPECT_TRUE(peer == *c2_local);
}

TEST_P(NetTest, PeerAndLocalAddressesIpv4) { run(addresses_case("127.0.0.1:0")); }

TEST_P(NetTest, PeerAndLocalAddressesIpv6) {
  if (!test::ipv6_loopback_available()) GTEST_SKIP() << "no IPv6 loopback here";
  run(addresses_case("[::1]:0"));
}

int sockopt_int(int fd, int level, int name) {
  int v = -1;
  socklen_t len = sizeof(v);
  if (::getsockopt(fd, level, name, &v, &len) != 0) return -1;
  return v;
}

Task<void> nodelay_case() {
  auto pair = co_await test::make_tcp_pair();
  CO_ASSERT_OK(pair);
  auto& c = pair->client;
  CO_ASSERT_OK(c.set_nodelay(true));
  EXPECT_NE(sockopt_int(c.fd(), IPPROTO_TCP, TCP_NODELAY), 0);
  CO_ASSERT_OK(c.set_nodelay(false));
  EXPECT_EQ(sockopt_int(c.fd(), IPPROTO_TCP, TCP_NODELAY), 0);
  // Errors carry errno: an option on a closed socket fails with EBADF.
  TcpStream closed;
  auto bad = closed.set_nodelay(true);
  EXPECT_FALSE(bad);
  if (!bad) {
    EXPECT_TRUE(bad.error().is(EBADF)) << bad.error().message();
  }
}

TEST_P(NetTest, SetNodelayTogglesTcpNodelay) { run(nodelay_case()); }

/// ListenOptions::tcp_nodelay relies on accepted sockets inheriting TCP_NODELAY from the
/// listener (lbd then sets no option per connection); without it they must not have it.
Task<void> listener_nodelay_case(bool on) {
  ListenOptions opts;
  opts.tcp_nodelay = on;
  auto l = TcpListener::bind(*SocketAddress::parse("127.0.0.1:0"), opts);
  CO_ASSERT_OK(l);
  auto addr = l->local_address();
  CO_ASSERT_OK(addr);
  auto client = co_await TcpStream::connect(*addr);
  CO_ASSERT_OK(client);
  auto accepted = co_await l->accept();
  CO_ASSERT_OK(accepted);
  EXPECT_EQ(sockopt_int(accepted->fd(), IPPROTO_TCP, TCP_NODELAY) != 0, on);
}

TEST_P(NetTest, AcceptedSocketsInheritTcpNodelayFromListener) {
  run(listener_nodelay_case(true));
  run(listener_nodelay_case(false));
}

TEST_P(NetTest, SocketsAreNonBlockingAndCloseOnExec) {
  auto pair = run(test::make_tcp_pair());
  ASSERT_TRUE(pair);
  for (int fd : {pair->client.fd(), pair->server.fd()}) {
    EXPECT_TRUE(::fcntl(fd, F_GETFL) & O_NONBLOCK);
    EXPECT_TRUE(::fcntl(fd, F_GETFD) & FD_CLOEXEC);
  }
}

// --- write errors ------------------------------------------------------------------------------

// Writing to a peer that closed fails with EPIPE/ECONNRESET; it must not raise SIGPIPE (which
// would kill the test process).
Task<void> write_to_closed_peer() {
  auto pair = co_await test::make_tcp_pair();
  CO_ASSERT_OK(pair);
  pair->server.close();
  std::string chunk(64 * 1024, 'x');
  Result<void> last;
  for (int i = 0; i < 1000 && last; ++i) {
    auto [w, b] = co_await pair->client.write_all(Buffer::copy_of(chunk));
    last = w;
  }
  CO_ASSERT_TRUE(!last);
  EXPECT_TRUE(last.error().is(EPIPE) || last.error().is(ECONNRESET)) << last.error().message();
}

TEST_P(NetTest, WriteToClosedPeerFailsWithoutSigpipe) { run(write_to_closed_peer()); }

struct WriteOutcome {
  Result<void> result;
  std::size_t returned_size = 0;
};

Task<WriteOutcome> write_all_of(TcpStream* s, std::string data) {
  auto [w, b] = co_await s->write_all(Buffer::copy_of(data));
  co_return WriteOutcome{w, b.size()};
}

// 4 MiB through 64 KiB socket buffers: write_all goes on after every short send until the last
// byte is out, and the reader gets every byte in order.
Task<void> write_all_many_sends() {
  auto pair = co_await test::make_tcp_pair();
  CO_ASSERT_OK(pair);
  test::small_socket_buffers(pair->client, pair->server);
  std::string payload = test::random_bytes(4 * 1024 * 1024, 11);
  auto writer = spawn(write_all_of(&pair->client, payload));
  auto reader = spawn(test::read_exactly(&pair->server, payload.size()));
  WriteOutcome w = co_await writer;
  CO_ASSERT_OK(w.result);
  EXPECT_EQ(w.returned_size, payload.size());  // the buffer comes back whole
  std::string got = co_await reader;
  EXPECT_TRUE(got == payload) << "got " << got.size() << " of " << payload.size() << " bytes";
}

TEST_P(NetTest, WriteAllLargerThanSocketBuffersArrivesWhole) { run(write_all_many_sends()); }

// An empty buffer is written at once: success, and the buffer comes back.
Task<void> write_all_empty() {
  auto pair = co_await test::make_tcp_pair();
  CO_ASSERT_OK(pair);
  Buffer empty(128);
  auto [w, b] = co_await pair->client.write_all(std::move(empty));
  CO_ASSERT_OK(w);
  EXPECT_EQ(b.capacity(), 128u);
  EXPECT_EQ(b.size(), 0u);
  // Nothing was sent: the peer sees EOF first.
  CO_ASSERT_OK(pair->client.shutdown_write());
  std::string got = co_await test::read_to_eof(&pair->server);
  EXPECT_EQ(got, "");
}

TEST_P(NetTest, WriteAllOfEmptyBufferSucceedsAndSendsNothing) { run(write_all_empty()); }

// The reader takes 256 KiB of a 4 MiB write_all, then closes with unread bytes (an RST): the
// writer, parked on a full socket buffer, fails with EPIPE or ECONNRESET instead of waiting.
Task<void> write_all_peer_closes_midway() {
  auto pair = co_await test::make_tcp_pair();
  CO_ASSERT_OK(pair);
  test::small_socket_buffers(pair->client, pair->server);
  auto writer = spawn(write_all_of(&pair->client, std::string(4 * 1024 * 1024, 'm')));
  std::string got = co_await test::read_exactly(&pair->server, 256 * 1024);
  EXPECT_GE(got.size(), 256u * 1024);
  pair->server.close();
  WriteOutcome w = co_await writer;
  CO_ASSERT_TRUE(!w.result);
  EXPECT_TRUE(w.result.error().is(EPIPE) || w.result.error().is(ECONNRESET)) << w.result.error().message();
  EXPECT_EQ(w.returned_size, 4u * 1024 * 1024);
}

TEST_P(NetTest, WriteAllFailsWhenPeerClosesMidway) { run(write_all_peer_closes_midway()); }

// A write_all parked on a full socket buffer is cancelled with its task: ECANCELED, the buffer
// comes back, and no op slot is left behind.
Task<void> write_all_cancelled() {
  auto pair = co_await test::make_tcp_pair();
  CO_ASSERT_OK(pair);
  test::small_socket_buffers(pair->client, pair->server);
  auto writer = spawn(write_all_of(&pair->client, std::string(4 * 1024 * 1024, 'c')));
  // The writer runs on the next turn, fills the socket buffers and parks; this task runs after it.
  co_await yield_now();
  EXPECT_FALSE(writer.is_finished());
  writer.cancel();
  WriteOutcome w = co_await writer;
  CO_ASSERT_TRUE(!w.result);
  EXPECT_TRUE(w.result.error().is(ECANCELED)) << w.result.error().message();
  EXPECT_EQ(w.returned_size, 4u * 1024 * 1024);
  bool settled = co_await test::settle_ops();
  EXPECT_TRUE(settled) << Runtime::current().ops_in_flight() << " op slots still in use";
}

TEST_P(NetTest, WriteAllCancelledWhileParkedFailsWithEcanceled) { run(write_all_cancelled()); }

// --- IdleWatch ----------------------------------------------------------------------------------

struct CountingListener : IdleWatchListener {
  int calls = 0;
  Event called;
  void idle_watch_fired() override {
    ++calls;
    called.set();
  }
};

// A watch on a quiet socket has not fired; bytes from the peer fire it and tell its listener
// once. The bytes stay unread for whoever reads next.
Task<void> idle_watch_bytes_case() {
  auto pair = co_await test::make_tcp_pair();
  CO_ASSERT_OK(pair);
  CountingListener listener;
  IdleWatch watch(pair->client.fd(), &listener);
  EXPECT_FALSE(watch.fired());
  auto [w, b] = co_await pair->server.write_all(bytes("unasked"));
  CO_ASSERT_OK(w);
  auto r = co_await timeout(listener.called.wait(), 5s);
  CO_ASSERT_OK(r);
  EXPECT_TRUE(watch.fired());
  EXPECT_EQ(listener.calls, 1);
  watch.stop();
  std::string got = co_await test::read_exactly(&pair->client, 7);
  EXPECT_EQ(got, "unasked");
}

TEST_P(NetTest, IdleWatchFiresOnUnaskedBytesAndTellsItsListenerOnce) { run(idle_watch_bytes_case()); }

// The peer's FIN fires the watch as well.
Task<void> idle_watch_eof_case() {
  auto pair = co_await test::make_tcp_pair();
  CO_ASSERT_OK(pair);
  CountingListener listener;
  IdleWatch watch(pair->client.fd(), &listener);
  CO_ASSERT_OK(pair->server.shutdown_write());
  auto r = co_await timeout(listener.called.wait(), 5s);
  CO_ASSERT_OK(r);
  EXPECT_TRUE(watch.fired());
  EXPECT_EQ(listener.calls, 1);
}

TEST_P(NetTest, IdleWatchFiresAtPeerEof) { run(idle_watch_eof_case()); }

// A stopped watch tells nobody, even when bytes come afterwards; its slot is freed. A socket
// readable before the watch starts is reported too: by fired() at once (epoll), or through the
// listener soon after (io_uring).
Task<void> idle_watch_stopped_case() {
  auto pair = co_await test::make_tcp_pair();
  CO_ASSERT_OK(pair);
  CountingListener listener;
  {
    IdleWatch watch(pair->client.fd(), &listener);
    watch.stop();
    EXPECT_FALSE(watch.fired());
  }
  bool settled = co_await test::settle_ops();
  EXPECT_TRUE(settled) << Runtime::current().ops_in_flight() << " op slots still in use";
  auto [w, b] = co_await pair->server.write_all(bytes("late"));
  CO_ASSERT_OK(w);
  // The bytes arrived (the loop has seen their readiness) before the listener is checked.
  std::string got = co_await test::read_exactly(&pair->client, 4);
  EXPECT_EQ(got, "late");
  EXPECT_EQ(listener.calls, 0);

  auto [w2, b2] = co_await pair->server.write_all(bytes("early"));
  CO_ASSERT_OK(w2);
  // Wait until the bytes are in the client's receive queue without reading them.
  {
    CountingListener probe;
    IdleWatch waiter(pair->client.fd(), &probe);
    if (!waiter.fired()) {
      auto r = co_await timeout(probe.called.wait(), 5s);
      CO_ASSERT_OK(r);
    }
  }
  IdleWatch watch(pair->client.fd(), &listener);
  if (!watch.fired()) {
    auto r = co_await timeout(listener.called.wait(), 5s);
    CO_ASSERT_OK(r);
    EXPECT_EQ(listener.calls, 1);
  }
  EXPECT_TRUE(watch.fired());
  watch.stop();
  got = co_await test::read_exactly(&pair->client, 5);
  EXPECT_EQ(got, "early");
}

TEST_P(NetTest, StoppedIdleWatchTellsNobodyAndOneOnAReadableSocketFires) { run(idle_watch_stopped_case()); }

// A connection pooled and taken again within one loop turn: the peer's FIN arrived after the
// watch started but before the loop looked at any event, so the watch has not fired; quiet()
// asks the kernel and says the connection is unfit. (Before quiet(), a pool handed such a
// connection to the next request: a POST sent on it got 502.)
Task<void> idle_watch_quiet_case() {
  auto pair = co_await test::make_tcp_pair();
  CO_ASSERT_OK(pair);
  IdleWatch watch(pair->client.fd());
  EXPECT_TRUE(watch.quiet());  // nothing has arrived
  CO_ASSERT_OK(pair->server.shutdown_write());
  pollfd p{pair->client.fd(), POLLIN | POLLRDHUP, 0};
  EXPECT_EQ(::poll(&p, 1, 5000), 1) << "the FIN did not reach the socket";  // no loop turn
  EXPECT_FALSE(watch.fired());
  EXPECT_FALSE(watch.quiet());

  // A watch older than the loop's last turn relies on what the kernel told the loop.
  auto pair2 = co_await test::make_tcp_pair();
  CO_ASSERT_OK(pair2);
  IdleWatch old(pair2->client.fd());
  co_await yield_now();
  EXPECT_TRUE(old.quiet());
}

TEST_P(NetTest, IdleWatchQuietAsksTheKernelInTheTurnItStarted) { run(idle_watch_quiet_case()); }

// --- Unix stream -------------------------------------------------------------------------------

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/lbd-rt-test-XXXXXX";
    if (char* p = ::mkdtemp(tmpl)) path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

Task<void> unix_echo_server(UnixListener* l) {
  auto s = co_await l->accept();
  CO_ASSERT_OK(s);
  std::string got = co_await test::read_to_eof(&*s);
  auto [w, b] = co_await s->write_all(Buffer::copy_of("echo:" + got));
  CO_ASSERT_OK(w);
}

Task<void> unix_case(std::string path) {
  auto addr = SocketAddress::parse("unix:" + path);
  CO_ASSERT_OK(addr);
  for (int round = 0; round < 2; ++round) {  // round 2 binds over the stale socket file
    auto listener = UnixListener::bind(*addr);
    CO_ASSERT_OK(listener);
    auto server = spawn(unix_echo_server(&*listener));
    auto c = co_await UnixStream::connect(*addr);
    CO_ASSERT_OK(c);
    auto peer = c->peer_address();
    CO_ASSERT_OK(peer);
    EXPECT_TRUE(peer->is_unix());
    EXPECT_EQ(peer->host_string(), path);
    std::string msg = "over unix " + std::to_string(round) + test::random_bytes(50'000, round);
    auto [w, b] = co_await c->write_all(Buffer::copy_of(msg));
    CO_ASSERT_OK(w);
    CO_ASSERT_OK(c->shutdown_write());
    std::string back = co_await test::read_to_eof(&*c);
    EXPECT_TRUE(back == "echo:" + msg) << "got " << back.size() << " bytes";
    co_await server;
  }
}

TEST_P(NetTest, UnixStreamEcho) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  run(unix_case(dir.path() + "/echo.sock"));
}

Task<void> unix_connect_missing(std::string path) {
  auto addr = SocketAddress::parse(path);
  CO_ASSERT_OK(addr);
  auto c = co_await UnixStream::connect(*addr);
  CO_ASSERT_TRUE(!c);
  EXPECT_TRUE(c.error().is(ENOENT)) << c.error().message();
}

TEST_P(NetTest, UnixConnectToMissingPathFails) {
  TempDir dir;
  run(unix_connect_missing(dir.path() + "/nobody.sock"));
}

// --- UDP ---------------------------------------------------------------------------------------

Task<DatagramResult> recv_one(UdpSocket* s) { co_return co_await s->recv_from(Buffer(1500)); }

Task<void> udp_case(std::string bind_text) {
  auto bind_addr = SocketAddress::parse(bind_text);
  CO_ASSERT_OK(bind_addr);
  auto a = UdpSocket::bind(*bind_addr);
  auto b = UdpSocket::bind(*bind_addr);
  CO_ASSERT_OK(a);
  CO_ASSERT_OK(b);
  auto a_addr = a->local_address();
  auto b_addr = b->local_address();
  CO_ASSERT_OK(a_addr);
  CO_ASSERT_OK(b_addr);

  auto [sres, sbuf] = co_await a->send_to(bytes("ping"), *b_addr);
  CO_ASSERT_OK(sres);
  EXPECT_EQ(*sres, 4u);
  EXPECT_EQ(sbuf.view(), "ping");  // the buffer comes back
  auto got = co_await b->recv_from(Buffer(1500));
  CO_ASSERT_OK(got.result);
  EXPECT_EQ(got.buf.view(), "ping");
  EXPECT_EQ(got.from.to_string(), a_addr->to_string());
  EXPECT_TRUE(got.from == *a_addr);

  // recv_from waits when nothing is there yet: start it first, then reply.
  auto pending = spawn(recv_one(&*a));
  co_await yield_now();
  auto [rres, rbuf] = co_await b->send_to(bytes("pong!"), got.from);
  CO_ASSERT_OK(rres);
  auto reply = co_await pending;
  CO_ASSERT_OK(reply.result);
  EXPECT_EQ(*reply.result, 5u);
  EXPECT_EQ(reply.buf.view(), "pong!");
  EXPECT_TRUE(reply.from == *b_addr);
}

TEST_P(NetTest, UdpSendToRecvFromRoundTrip) { run(udp_case("127.0.0.1:0")); }

TEST_P(NetTest, UdpSendToRecvFromRoundTripIpv6) {
  if (!test::ipv6_loopback_available()) GTEST_SKIP() << "no IPv6 loopback here";
  run(udp_case("[::1]:0"));
}

// --- splice ------------------------------------------------------------------------------------

// Bytes go socket -> pipe -> socket without passing through user memory.
Task<void> splice_case() {
  auto in = co_await test::make_tcp_pair();
  auto out = co_await test::make_tcp_pair();
  CO_ASSERT_OK(in);
  CO_ASSERT_OK(out);
  auto pipe = make_pipe(64 * 1024);
  CO_ASSERT_OK(pipe);
  std::string payload = test::random_bytes(300 * 1024, 42);
  auto writer = spawn(write_then_finish(&in->client, Buffer::copy_of(payload)));
  // Pump: in->server -> pipe -> out->client, until EOF.
  std::size_t moved = 0;
  for (;;) {
    auto n = co_await StreamSocket::splice(in->server.fd(), pipe->second.get(), 64 * 1024, false);
    CO_ASSERT_OK(n);
    if (*n == 0) break;
    std::size_t left = *n;
    while (left > 0) {
      auto m = co_await StreamSocket::splice(pipe->first.get(), out->client.fd(), static_cast<uint32_t>(left), true);
      CO_ASSERT_OK(m);
      CO_ASSERT_TRUE(*m > 0);
      left -= *m;
      moved += *m;
    }
    if (moved == payload.size()) {
      int werr = co_await writer;
      EXPECT_EQ(werr, 0);
      CO_ASSERT_OK(in->client.shutdown_write());
    }
  }
  CO_ASSERT_OK(out->client.shutdown_write());
  std::string got = co_await test::read_to_eof(&out->server);
  EXPECT_EQ(moved, payload.size());
  EXPECT_TRUE(got == payload) << "got " << got.size() << " bytes, first difference at "
                              << test::first_mismatch(got, payload);
}

TEST_P(NetTest, SpliceMovesBytesThroughAPipe) { run(splice_case()); }

// --- closing while others wait -----------------------------------------------------------------

Task<Result<TcpStream>> accept_once(TcpListener* l) { co_return co_await l->accept(); }

// Closing a listener wakes a task blocked in accept() with an error.
Task<void> close_listener_while_accepting() {
  auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
  CO_ASSERT_OK(listener);
  auto h = spawn(accept_once(&*listener));
  for (int i = 0; i < 3; ++i) co_await yield_now();  // the accept is waiting
  CO_ASSERT_TRUE(!h.is_finished());
  listener->close_listener();
  auto r = co_await h;
  CO_ASSERT_TRUE(!r);
  EXPECT_TRUE(r.error().is(ECANCELED) || r.error().is(EBADF)) << r.error().message();
}

// RUNTIME BUG on io_uring (runtime/net.cpp, StreamListener::close_listener + AcceptWait):
// close_listener() cancels the waiting AcceptWait and then frees the AcceptQueue (q_.reset());
// when the accepting task resumes, AcceptWait::await_resume and ~AcceptWait read q_->waiter
// from the freed queue: heap-use-after-free (ASan). In a plain build it usually "works".
TEST_P(NetTest, CloseListenerWakesPendingAccept) { run(close_listener_while_accepting()); }

struct ReadOutcome {
  Result<std::size_t> res = std::size_t{0};
  bool finished = false;
  Event done;
};

Task<void> read_once(TcpStream* s, ReadOutcome* out) {
  auto [res, buf] = co_await s->read(Buffer(64));
  out->res = res;
  out->finished = true;
  out->done.set();
}

// Socket::close() tells the driver first (Driver::forget_fd: "fails ops still waiting on it"),
// so a task reading the socket wakes with an error instead of waiting forever.
//
// Regression test: IoUringDriver::forget_fd used to be empty; the in-flight recv kept its own
// reference to the socket, so close() neither woke the reader nor really closed the connection
// (the peer saw no FIN). Fixed in 9be8484 (cancel the fd's in-flight ops before the close). The
// test waits 2 s for the reader, then closes the peer so a regression fails instead of hanging.
Task<void> close_while_reading() {
  auto pair = co_await test::make_tcp_pair();
  CO_ASSERT_OK(pair);
  ReadOutcome out;
  auto h = spawn(read_once(&pair->server, &out));
  for (int i = 0; i < 3; ++i) co_await yield_now();
  CO_ASSERT_TRUE(!out.finished);
  pair->server.close();
  auto waited = co_await timeout(out.done.wait(), 2s);
  bool woke = waited && out.finished;
  if (!woke) pair->client.close();  // unstick the reader so the test can end
  co_await h;
  EXPECT_TRUE(woke) << "the reader was not woken by close() within 2 s";
  if (woke) {
    EXPECT_FALSE(out.res) << "read returned " << *out.res << " bytes after close";
  }
}

TEST_P(NetTest, ClosingSocketWakesPendingRead) { run(close_while_reading()); }

// --- running out of file descriptors on accept --------------------------------------------------

std::mutex g_log_mu;
std::vector<std::string> g_log;

void capture_log(int, const std::string& message) {
  std::lock_guard lock(g_log_mu);
  g_log.push_back(message);
}

int count_log(std::string_view needle) {
  std::lock_guard lock(g_log_mu);
  int n = 0;
  for (auto& m : g_log)
    if (m.find(needle) != std::string::npos) ++n;
  return n;
}

/// Lowers RLIMIT_NOFILE to just above the fds in use and fills every free slot below it, so the
/// next fd allocation fails with EMFILE. Undone by restore().
class FdExhaustion {
 public:
  bool exhaust(int dup_source) {
    if (getrlimit(RLIMIT_NOFILE, &old_) != 0) return false;
    rlimit low = old_;
    low.rlim_cur = static_cast<rlim_t>(highest_open_fd() + 8);
    if (setrlimit(RLIMIT_NOFILE, &low) != 0) return false;
    lowered_ = true;
    for (;;) {
      int fd = ::fcntl(dup_source, F_DUPFD_CLOEXEC, 0);
      if (fd < 0) return errno == EMFILE;
      fillers_.emplace_back(fd);
    }
  }
  void restore() {
    fillers_.clear();
    if (lowered_) (void)setrlimit(RLIMIT_NOFILE, &old_);
    lowered_ = false;
  }
  ~FdExhaustion() { restore(); }

 private:
  static int highest_open_fd() {
    int hi = 0;
    if (DIR* d = ::opendir("/proc/self/fd")) {
      while (dirent* e = ::readdir(d))
        if (e->d_name[0] != '.') hi = std::max(hi, std::atoi(e->d_name));
      ::closedir(d);
    }
    return hi;
  }
  rlimit old_{};
  bool lowered_ = false;
  std::vector<UniqueFd> fillers_;
};

// The field notes: "EMFILE on accept: pause the listener briefly and log; never spin". While no
// fd can be allocated, accept() logs and pauses (StreamListener::kAcceptPause) instead of
// failing or spinning; once fds are free again the queued connection is accepted.
Task<void> emfile_pauses_accept() {
  // Warm-up on a separate listener: under UBSan every vptr check made for the first time while
  // the fd table is full fails spuriously ("invalid vptr", "memory cannot be printed": the
  // sanitizer needs a pipe to probe memory). Running the same code paths once beforehand
  // caches those checks. The real test needs a fresh listener: io_uring's accept takes
  // RLIMIT_NOFILE when the SQE is prepared, so a multishot accept armed before the limit was
  // lowered would not see EMFILE.
  {
    auto warm_listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
    CO_ASSERT_OK(warm_listener);
    auto warm_addr = warm_listener->local_address();
    CO_ASSERT_OK(warm_addr);
    auto warm_client = co_await TcpStream::connect(*warm_addr);
    CO_ASSERT_OK(warm_client);
    auto warm = spawn(accept_once(&*warm_listener));
    auto warm_server = co_await warm;
    CO_ASSERT_OK(warm_server);
    (void)co_await sleep_for(1ms);
    co_await yield_now();
  }
  auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
  CO_ASSERT_OK(listener);
  auto addr = listener->local_address();
  CO_ASSERT_OK(addr);
  // The client socket exists before the fds run out; it connects afterwards (connect needs no
  // new fd), and accept() first runs after that.
  UniqueFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  CO_ASSERT_TRUE(client.valid());

  FdExhaustion fds;
  CO_ASSERT_TRUE(fds.exhaust(listener->fd()));
  CO_ASSERT_TRUE(::connect(client.get(), addr->data(), addr->size()) == 0);  // loopback: immediate
  auto h = spawn(accept_once(&*listener));
  auto deadline = Clock::now() + 5s;
  while (count_log("pausing accepts") == 0 && Clock::now() < deadline) co_await yield_now();
  bool paused = count_log("pausing accepts") > 0;
  // Stay out of fds for three pauses' worth: a spinning accept would log far more often.
  (void)co_await sleep_for(3 * StreamListener::kAcceptPause);
  int pauses = count_log("pausing accepts");
  fds.restore();
  auto s = co_await h;
  EXPECT_TRUE(paused) << "accept never reported running out of fds";
  EXPECT_GE(pauses, 1);
  EXPECT_LE(pauses, 6) << "accept retried " << pauses << " times in 300 ms: it spins";
  EXPECT_GE(count_log("Too many open files"), 1);
  CO_ASSERT_OK(s);
  CO_ASSERT_TRUE(::send(client.get(), "after EMFILE", 12, MSG_NOSIGNAL) == 12);
  std::string got = co_await test::read_exactly(&*s, 12);
  EXPECT_EQ(got, "after EMFILE");
}

TEST_P(NetTest, AcceptPausesAndLogsWhenOutOfFds) {
  {
    std::lock_guard lock(g_log_mu);
    g_log.clear();
  }
  set_runtime_log_sink(&capture_log);
  run(emfile_pauses_accept());
  set_runtime_log_sink(nullptr);
}

}  // namespace
}  // namespace lbd
