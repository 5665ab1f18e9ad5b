// L4 data path through the real lbd: bulk transfer both ways at once (each forwarding mode),
// auto forwarding's switch to splice, many concurrent clients, half-close passed through, and
// the listener's max_connections.

#include <sys/socket.h>

#include <cstring>
#include <filesystem>
#include <latch>
#include <random>

#include "tests/integration/lbd_fixture.hpp"

namespace lbd::it {
namespace {

/// What the sink/source backend saw on its one connection.
struct BulkSide {
  std::mutex mu;
  bool done = false;
  uint64_t sent = 0;
  uint64_t received = 0;
  uint64_t digest = 0;
  std::optional<uint64_t> mismatch;
  End end = End::kError;
};

/// Sends `n` bytes of stream `down_seed` while checking that it receives `n` bytes of stream
/// `up_seed`, both at the same time; FIN after sending.
Backend::Handler sink_source_handler(std::shared_ptr<BulkSide> side, uint64_t up_seed, uint64_t down_seed,
                                     uint64_t n) {
  return [side, up_seed, down_seed, n](int fd) {
    uint64_t sent = 0;
    std::thread sender([&] {
      sent = send_stream(fd, down_seed, n);
      ::shutdown(fd, SHUT_WR);
    });
    StreamChecker checker(up_seed);
    End end = check_stream(fd, checker);
    sender.join();
    std::lock_guard lock(side->mu);
    side->sent = sent;
    side->received = checker.received();
    side->digest = checker.digest();
    side->mismatch = checker.first_mismatch();
    side->end = end;
    side->done = true;
  };
}

class L4Transfer : public LbdTest {
 protected:
  /// 100 MiB of random bytes each way, at the same time, through one proxied connection.
  void bulk_both_ways(const std::string& forwarding, uint64_t n) {
    std::random_device rd;
    const uint64_t up_seed = (uint64_t{rd()} << 32) | rd();
    const uint64_t down_seed = up_seed ^ 0x5555aaaa5555aaaaull;
    SCOPED_TRACE("seeds " + std::to_string(up_seed) + " / " + std::to_string(down_seed));
    auto side = std::make_shared<BulkSide>();
    Backend backend("bulk", sink_source_handler(side, up_seed, down_seed, n));

    ConfigSpec spec;
    spec.listeners.push_back({.port = free_port(), .forwarding = forwarding});
    spec.clusters.push_back(cluster_of({&backend}));
    ASSERT_EQ(start(spec), "");

    Fd c = connect_or_fail(spec.listeners[0].port);
    ASSERT_TRUE(c);
    uint64_t sent = 0;
    std::thread sender([&] {
      sent = send_stream(c.get(), up_seed, n);
      ::shutdown(c.get(), SHUT_WR);
    });
    StreamChecker checker(down_seed);
    End end = check_stream(c.get(), checker);
    sender.join();
    ASSERT_TRUE(wait_until([&] { std::lock_guard l(side->mu); return side->done; }, 10000ms));

    const uint64_t expected_digest = stream_digest(up_seed, n);
    const uint64_t expected_down_digest = stream_digest(down_seed, n);
    // Client -> backend.
    EXPECT_EQ(sent, n);
    EXPECT_EQ(side->received, n);
    EXPECT_FALSE(side->mismatch) << "first differing byte at offset " << side->mismatch.value_or(0);
    EXPECT_EQ(side->digest, expected_digest);
    EXPECT_EQ(side->end, End::kEof) << to_string(side->end);
    // Backend -> client.
    EXPECT_EQ(side->sent, n);
    EXPECT_EQ(checker.received(), n);
    EXPECT_FALSE(checker.first_mismatch()) << "first differing byte at offset "
                                           << checker.first_mismatch().value_or(0);
    EXPECT_EQ(checker.digest(), expected_down_digest);
    EXPECT_EQ(end, End::kEof) << to_string(end);
  }
};

constexpr uint64_t kMiB = 1024 * 1024;

TEST_P(L4Transfer, HundredMiBEachWayAtOnceByteExact) { bulk_both_ways("copy", 100 * kMiB); }

TEST_P(L4Transfer, HundredMiBEachWayAtOnceByteExactWithSplice) { bulk_both_ways("splice", 100 * kMiB); }

// auto (the default) starts copying and switches each direction to splice mid-stream.
TEST_P(L4Transfer, HundredMiBEachWayAtOnceByteExactWithAuto) { bulk_both_ways("auto", 100 * kMiB); }

/// The file descriptors `pid` has open right now.
std::size_t open_fds(pid_t pid) {
  std::size_t n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++n;
  return n;
}

/// One echo round trip of `msg`; true when it came back unchanged.
bool echo_ok(int fd, const std::string& msg) {
  if (!send_all(fd, msg)) return false;
  return read_exact(fd, msg.size(), 5000ms).data == msg;
}

/// Sends `n` bytes of stream `seed` and reads them back from an echo at the same time; true
/// when every byte came back in order.
bool bulk_echo_ok(int fd, uint64_t seed, uint64_t n) {
  uint64_t sent = 0;
  std::thread sender([&] { sent = send_stream(fd, seed, n); });
  StreamChecker checker(seed);
  auto got = read_exact(fd, n, 30000ms);
  sender.join();
  checker.feed(got.data.data(), got.data.size());
  EXPECT_EQ(sent, n);
  EXPECT_EQ(checker.received(), n) << to_string(got.end);
  EXPECT_FALSE(checker.first_mismatch()) << "first differing byte at offset " << checker.first_mismatch().value_or(0);
  return sent == n && checker.received() == n && !checker.first_mismatch();
}

// An idle or chatty session holds just its two sockets in auto mode (splice mode holds a pipe
// per direction from the start: 6 fds). A bulk exchange on one of them makes each direction
// switch to splice, with a pipe of its own, and small messages still go through afterwards.
TEST_P(L4Transfer, AutoForwardingCreatesPipesOnlyForBulk) {
  constexpr int kIdle = 20;
  auto backend = make_echo();
  ConfigSpec spec;
  spec.listeners.push_back({.name = "adaptive", .port = free_port(), .forwarding = "auto"});
  spec.listeners.push_back({.name = "zero_copy", .port = free_port(), .forwarding = "splice"});
  spec.clusters.push_back(cluster_of({backend.get()}));
  ASSERT_EQ(start(spec), "");
  const pid_t pid = lbd_->pid();

  // Each connection has made a round trip, so both of its directions are running.
  auto open_chatty = [&](uint16_t port, std::vector<Fd>& conns) {
    for (int i = 0; i < kIdle; ++i) {
      Fd c = connect_or_fail(port);
      ASSERT_TRUE(c);
      ASSERT_TRUE(echo_ok(c.get(), "hello " + std::to_string(i)));
      ASSERT_TRUE(echo_ok(c.get(), std::string(300, 'x')));
      conns.push_back(std::move(c));
    }
  };
  std::vector<Fd> auto_conns, splice_conns;
  const std::size_t before = open_fds(pid);
  open_chatty(spec.listeners[0].port, auto_conns);
  if (HasFatalFailure()) return;
  const std::size_t with_auto = open_fds(pid);
  EXPECT_EQ(with_auto - before, 2u * kIdle) << "auto: client and upstream socket per session, no pipe";
  open_chatty(spec.listeners[1].port, splice_conns);
  if (HasFatalFailure()) return;
  EXPECT_EQ(open_fds(pid) - with_auto, 6u * kIdle) << "splice: two sockets and two pipes per session";
  splice_conns.clear();
  ASSERT_TRUE(wait_until([&] { return open_fds(pid) == with_auto; }, 5000ms))
      << "splice sessions still hold " << open_fds(pid) - with_auto << " fds after their clients closed";

  // 16 MiB echoed: reads fill the pooled buffer again and again in both directions.
  int bulk = auto_conns[0].get();
  ASSERT_TRUE(bulk_echo_ok(bulk, 42, 16 * kMiB));
  EXPECT_EQ(open_fds(pid) - with_auto, 4u) << "a pipe (2 fds) for each direction of the bulk session";
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(echo_ok(bulk, "after the switch " + std::to_string(i)));
  ASSERT_TRUE(bulk_echo_ok(bulk, 43, 1 * kMiB));
  for (auto& c : auto_conns) EXPECT_TRUE(echo_ok(c.get(), "still there"));
}

// 200 clients connected at the same time, each doing echo round trips of its own random bytes.
TEST_P(L4Transfer, TwoHundredConcurrentEchoClients) {
  constexpr int kClients = 200;
  constexpr int kRounds = 4;
  constexpr std::size_t kChunk = 16 * 1024;
  auto backend = make_echo();
  ConfigSpec spec;
  spec.workers = 2;
  spec.listeners.push_back({.port = free_port()});
  spec.clusters.push_back(cluster_of({backend.get()}));
  ASSERT_EQ(start(spec), "");

  std::latch all_connected(kClients);
  std::atomic<int> ok{0};
  std::mutex mu;
  std::vector<std::string> failures;
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      auto fail = [&](const std::string& why) {
        std::lock_guard l(mu);
        failures.push_back("client " + std::to_string(i) + ": " + why);
      };
      auto c = connect_to(spec.listeners[0].port, source_ip(i));
      all_connected.count_down();
      if (!c.fd) return fail(std::string("connect: ") + std::strerror(c.error));
      all_connected.wait();  // every client holds its connection before any sends
      ByteStream out(1000 + i);
      StreamChecker in(1000 + i);
      std::string chunk(kChunk, '\0');
      for (int r = 0; r < kRounds; ++r) {
        out.fill(chunk.data(), kChunk);
        if (!send_all(c.fd.get(), chunk)) return fail("send");
        auto got = read_exact(c.fd.get(), kChunk);
        in.feed(got.data.data(), got.data.size());
        if (got.data.size() != kChunk) return fail(std::string("short echo: ") + to_string(got.end));
      }
      if (in.first_mismatch()) return fail("echo differs at offset " + std::to_string(*in.first_mismatch()));
      ::shutdown(c.fd.get(), SHUT_WR);
      auto rest = read_to_end(c.fd.get(), 5000ms);
      if (!rest.data.empty() || rest.end != End::kEof)
        return fail(std::string("expected a clean EOF, got ") + to_string(rest.end));
      ++ok;
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), kClients);
  for (std::size_t i = 0; i < failures.size() && i < 10; ++i) ADD_FAILURE() << failures[i];
  EXPECT_EQ(backend->accepted(), kClients);
}

// Client shuts down its sending side: the backend reads EOF, still answers, and the client reads
// the whole answer and then EOF (the FIN is passed on, the connection is not torn down).
TEST_P(L4Transfer, HalfCloseIsPassedThrough) {
  constexpr std::size_t kRequest = 100 * 1024;
  constexpr std::size_t kReply = 256 * 1024;
  struct Seen {
    std::atomic<uint64_t> received{0};
    std::atomic<bool> eof{false};
    std::atomic<bool> replied{false};
  };
  auto seen = std::make_shared<Seen>();
  Backend backend("halfclose", [seen](int fd) {
    StreamChecker in(7);
    char buf[16 * 1024];
    for (;;) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return;
      if (n == 0) break;
      in.feed(buf, static_cast<std::size_t>(n));
      seen->received += static_cast<uint64_t>(n);
    }
    seen->eof = true;
    if (in.first_mismatch()) return;  // no reply: the client's check fails
    // Reply after the EOF: the client must still get every byte.
    seen->replied = send_stream(fd, 8, kReply) == kReply;
  });
  ConfigSpec spec;
  spec.listeners.push_back({.port = free_port()});
  spec.clusters.push_back(cluster_of({&backend}));
  ASSERT_EQ(start(spec), "");

  Fd c = connect_or_fail(spec.listeners[0].port);
  ASSERT_TRUE(c);
  ASSERT_EQ(send_stream(c.get(), 7, kRequest), kRequest);
  ASSERT_TRUE(wait_until([&] { return seen->received.load() == kRequest; }, 5000ms))
      << "backend got " << seen->received.load() << " of " << kRequest << " bytes";
  EXPECT_FALSE(seen->eof.load()) << "the backend saw EOF before the client shut down its side";

  ASSERT_EQ(::shutdown(c.get(), SHUT_WR), 0);
  EXPECT_TRUE(wait_until([&] { return seen->eof.load(); }, 5000ms)) << "the backend never read EOF";

  StreamChecker reply(8);
  End end = check_stream(c.get(), reply, 10000ms);
  EXPECT_TRUE(seen->replied.load());
  EXPECT_EQ(reply.received(), kReply);
  EXPECT_FALSE(reply.first_mismatch());
  EXPECT_EQ(end, End::kEof) << "after the reply the client should read EOF, got " << to_string(end);
}

// max_connections: 2 on one worker: two held connections work, a third is closed at once, and
// once one of the two closes a new connection works again.
TEST_P(L4Transfer, MaxConnectionsClosesTheExtraConnection) {
  auto backend = make_echo();
  ConfigSpec spec;
  spec.listeners.push_back({.port = free_port(), .max_connections = 2});
  spec.clusters.push_back(cluster_of({backend.get()}));
  ASSERT_EQ(start(spec), "");
  const uint16_t port = spec.listeners[0].port;

  auto echo_ok = [](int fd, const std::string& msg) {
    if (!send_all(fd, msg)) return false;
    return read_exact(fd, msg.size(), 3000ms).data == msg;
  };
  Fd a = connect_or_fail(port);
  Fd b = connect_or_fail(port);
  ASSERT_TRUE(a && b);
  EXPECT_TRUE(echo_ok(a.get(), "first"));
  EXPECT_TRUE(echo_ok(b.get(), "second"));

  // The third: the kernel completes the handshake, lbd accepts and closes it right away.
  Fd third = connect_or_fail(port);
  ASSERT_TRUE(third);
  auto t0 = Clock::now();
  (void)send_all(third.get(), "third");
  auto r = read_to_end(third.get(), 3000ms);
  auto waited = std::chrono::duration_cast<Ms>(Clock::now() - t0);
  EXPECT_TRUE(r.end == End::kEof || r.end == End::kReset) << to_string(r.end);
  EXPECT_EQ(r.data, "") << "the third connection was served";
  EXPECT_LT(waited, 1000ms) << "the third connection was not closed at once";
  EXPECT_TRUE(lbd_->wait_log("max_connections (2) reached", 2000ms));
  // The two held connections are unaffected.
  EXPECT_TRUE(echo_ok(a.get(), "first again"));
  EXPECT_TRUE(echo_ok(b.get(), "second again"));
  EXPECT_EQ(backend->accepted(), 2);

  // Close one; lbd's session ends once both sides closed, then a new connection is served.
  a.reset();
  bool served = wait_until(
      [&] {
        auto c = connect_to(port);
        return c.fd && echo_ok(c.fd.get(), "fourth");
      },
      5000ms, 20ms);
  EXPECT_TRUE(served) << "no new connection was served after one of the two closed";
  EXPECT_TRUE(echo_ok(b.get(), "second still"));
}

LBD_INSTANTIATE_DRIVERS(L4Transfer);

}  // namespace
}  // namespace lbd::it
