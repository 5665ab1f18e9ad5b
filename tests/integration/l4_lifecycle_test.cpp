// lbd's life as an operator sees it: SIGTERM drains (listeners close, running transfers finish,
// exit 0), shutdown.drain_timeout ends sessions that would not, SIGINT stops at once, SIGHUP
// reloads (a broken file is reported with its position and changes nothing; a good one sends
// new connections to the new cluster while old ones carry on), SIGUSR1 reopens the log file.

#include <sys/socket.h>

#include <cstring>
#include <latch>
#include <regex>

#include "tests/integration/lbd_fixture.hpp"

namespace lbd::it {
namespace {

class L4Lifecycle : public LbdTest {
 protected:
  /// Waits until a connect to `port` is refused; a connect that still succeeds is closed at
  /// once. Returns whether it was refused within `limit`.
  static bool wait_refused(uint16_t port, Ms limit) {
    return wait_until(
        [&] {
          auto c = connect_to(port, "", 1000ms);
          return !c.fd && c.error == ECONNREFUSED;
        },
        limit, 10ms);
  }
};

constexpr std::size_t kRound = 64 * 1024;

/// One client of the drain test: echo round trips of its own stream, checked byte by byte.
struct EchoClient {
  Fd fd;
  ByteStream out;
  StreamChecker in;
  uint64_t rounds = 0;
  std::string error;

  EchoClient(Fd f, uint64_t seed) : fd(std::move(f)), out(seed), in(seed) {}

  bool round_trips(int n) {
    std::string chunk(kRound, '\0');
    for (int i = 0; i < n; ++i) {
      out.fill(chunk.data(), kRound);
      if (!send_all(fd.get(), chunk)) return fail("send failed in round " + std::to_string(rounds));
      auto got = read_exact(fd.get(), kRound, 10000ms);
      in.feed(got.data.data(), got.data.size());
      if (got.data.size() != kRound)
        return fail(std::string("short echo (") + to_string(got.end) + ") in round " + std::to_string(rounds));
      ++rounds;
    }
    if (in.first_mismatch()) return fail("echo differs at offset " + std::to_string(*in.first_mismatch()));
    return true;
  }
  bool fail(std::string why) {
    error = std::move(why);
    return false;
  }
};

// SIGTERM while four transfers are half done: new connects are refused soon after, the
// transfers complete byte-exact, and lbd exits 0 once they end.
TEST_P(L4Lifecycle, SigtermDrainsRunningTransfers) {
  constexpr int kClients = 4;
  auto backend = make_echo();
  ConfigSpec spec;
  spec.workers = 2;
  spec.drain_timeout = "20s";
  spec.listeners.push_back({.port = free_port()});
  spec.clusters.push_back(cluster_of({backend.get()}));
  ASSERT_EQ(start(spec), "");
  const uint16_t port = spec.listeners[0].port;

  std::vector<std::unique_ptr<EchoClient>> clients;
  for (int i = 0; i < kClients; ++i) {
    Fd fd = connect_or_fail(port, source_ip(i));
    ASSERT_TRUE(fd);
    clients.push_back(std::make_unique<EchoClient>(std::move(fd), 500 + i));
  }
  // First part of every transfer (1 MiB each way per client).
  for (auto& c : clients) ASSERT_TRUE(c->round_trips(16)) << c->error;

  std::size_t from = lbd_->log_size();
  ASSERT_TRUE(lbd_->signal(SIGTERM));
  auto t0 = Clock::now();
  EXPECT_TRUE(wait_refused(port, 3000ms)) << "new connections still accepted while draining";
  auto refused_after = std::chrono::duration_cast<Ms>(Clock::now() - t0);
  EXPECT_TRUE(lbd_->wait_log("SIGTERM: draining", 2000ms))
      << "from " << from << ", log size " << lbd_->log().size() << ", found at "
      << static_cast<long>(lbd_->log().find("SIGTERM: draining"));
  EXPECT_TRUE(lbd_->running()) << "lbd exited with transfers still running";

  // The rest of every transfer (4 MiB each way per client), all four at once.
  std::vector<std::thread> threads;
  for (auto& c : clients) threads.emplace_back([&c] { c->round_trips(64); });
  for (auto& t : threads) t.join();
  for (auto& c : clients) {
    EXPECT_EQ(c->error, "");
    EXPECT_EQ(c->rounds, 80u);
    EXPECT_EQ(c->in.received(), 80 * kRound);
    EXPECT_FALSE(c->in.first_mismatch());
    ::shutdown(c->fd.get(), SHUT_WR);
    auto rest = read_to_end(c->fd.get(), 5000ms);
    EXPECT_EQ(rest.end, End::kEof) << to_string(rest.end);
  }
  clients.clear();
  auto status = lbd_->wait_exit(10000ms);
  ASSERT_TRUE(status) << "lbd did not exit after its sessions ended";
  EXPECT_TRUE(status->exited && status->code == 0) << status->to_string();
  EXPECT_NE(lbd_->log().find("drained; exiting", from), std::string::npos);
  RecordProperty("refused_after_ms", static_cast<int>(refused_after.count()));
}

// A session that never ends is closed at shutdown.drain_timeout, and lbd still exits 0.
TEST_P(L4Lifecycle, DrainTimeoutClosesSessionsThatDoNotEnd) {
  auto backend = make_echo();
  ConfigSpec spec;
  spec.drain_timeout = "500ms";
  spec.listeners.push_back({.port = free_port()});
  spec.clusters.push_back(cluster_of({backend.get()}));
  ASSERT_EQ(start(spec), "");

  Fd c = connect_or_fail(spec.listeners[0].port);
  ASSERT_TRUE(c);
  ASSERT_TRUE(send_all(c.get(), "hello"));
  ASSERT_EQ(read_exact(c.get(), 5, 3000ms).data, "hello");

  auto t0 = Clock::now();
  ASSERT_TRUE(lbd_->signal(SIGTERM));
  auto r = read_to_end(c.get(), 5000ms);
  auto waited = std::chrono::duration_cast<Ms>(Clock::now() - t0);
  EXPECT_TRUE(r.end == End::kEof || r.end == End::kReset) << "session not closed: " << to_string(r.end);
  EXPECT_GE(waited, 500ms) << "closed before drain_timeout";
  EXPECT_LE(waited, 5000ms);
  auto status = lbd_->wait_exit(5000ms);
  ASSERT_TRUE(status) << "lbd did not exit after drain_timeout";
  EXPECT_TRUE(status->exited && status->code == 0) << status->to_string();
  EXPECT_NE(lbd_->log().find("drain timeout; closing 1 sessions"), std::string::npos);
}

// SIGINT stops at once, open sessions included.
TEST_P(L4Lifecycle, SigintStopsAtOnce) {
  auto backend = make_echo();
  ConfigSpec spec;
  spec.drain_timeout = "30s";
  spec.listeners.push_back({.port = free_port()});
  spec.clusters.push_back(cluster_of({backend.get()}));
  ASSERT_EQ(start(spec), "");
  Fd c = connect_or_fail(spec.listeners[0].port);
  ASSERT_TRUE(c);
  ASSERT_TRUE(send_all(c.get(), "hi"));
  ASSERT_EQ(read_exact(c.get(), 2, 3000ms).data, "hi");

  auto t0 = Clock::now();
  ASSERT_TRUE(lbd_->signal(SIGINT));
  auto status = lbd_->wait_exit(5000ms);
  ASSERT_TRUE(status) << "lbd did not stop on SIGINT";
  EXPECT_TRUE(status->exited && status->code == 0) << status->to_string();
  EXPECT_LT(std::chrono::duration_cast<Ms>(Clock::now() - t0), 3000ms);
  auto r = read_to_end(c.get(), 3000ms);
  EXPECT_TRUE(r.end == End::kEof || r.end == End::kReset) << to_string(r.end);
}

/// "file:line:col" of the first occurrence of `needle` in `text`.
std::string position_of(const std::string& file, const std::string& text, const std::string& needle) {
  auto pos = text.find(needle);
  int line = 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<long>(pos), '\n'));
  auto line_start = text.rfind('\n', pos);
  int col = static_cast<int>(pos - (line_start == std::string::npos ? 0 : line_start + 1)) + 1;
  return file + ":" + std::to_string(line) + ":" + std::to_string(col);
}

TEST_P(L4Lifecycle, SighupReloads) {
  auto a = make_identify("A");
  auto b = make_identify("B");
  ConfigSpec spec;
  spec.workers = 2;
  spec.listeners.push_back({.port = free_port(), .cluster = "ca"});
  spec.clusters.push_back(cluster_of({a.get()}, "round_robin", "ca"));
  spec.clusters.push_back(cluster_of({b.get()}, "round_robin", "cb"));
  ASSERT_EQ(start(spec), "");
  const uint16_t port = spec.listeners[0].port;

  // Opened before any reload; it must keep working with backend A throughout.
  Fd old = connect_or_fail(port);
  ASSERT_TRUE(old);
  ASSERT_EQ(read_line(old.get()).data, "A\n");

  // 1. A syntax error: reported with file:line:col, the old config keeps serving.
  const std::string broken = "workers: 1\nlisteners: [\n  - name: t\n";
  std::string out = reload(broken);
  ASSERT_NE(out, "") << "no reload outcome in the log";
  EXPECT_NE(out.find("reload failed"), std::string::npos) << out;
  EXPECT_NE(out.find(config_path() + ":3:3: "), std::string::npos) << "no file:line:col in: " << out;
  EXPECT_EQ(identify_once(port, ""), "A");

  // 2. Valid YAML naming an unknown cluster: same.
  ConfigSpec unknown = spec;
  unknown.listeners[0].cluster = "nope";
  std::string yaml = unknown.to_yaml();
  out = reload(yaml);
  ASSERT_NE(out, "") << "no reload outcome in the log";
  EXPECT_NE(out.find("reload failed"), std::string::npos) << out;
  EXPECT_NE(out.find(position_of(config_path(), yaml, "nope") + ": listeners[0].cluster: unknown cluster \"nope\""),
            std::string::npos)
      << out;
  EXPECT_EQ(identify_once(port, ""), "A");

  // 3. A good config sending the listener to cluster cb: new connections reach B, the
  //    connection opened before the reload still talks to A.
  ConfigSpec next = spec;
  next.listeners[0].cluster = "cb";
  out = reload(next.to_yaml());
  ASSERT_NE(out.find("reload done"), std::string::npos) << out;
  EXPECT_EQ(out.find("reload failed"), std::string::npos) << out;
  for (int i = 0; i < 10; ++i) EXPECT_EQ(identify_once(port, source_ip(i)), "B");
  EXPECT_EQ(b->accepted(), 10) << "B got a connection it should not have";
  ASSERT_TRUE(send_all(old.get(), "still A?"));
  EXPECT_EQ(read_exact(old.get(), 8, 3000ms).data, "still A?");
  // The probes above closed their connections to A; the one opened first is still there.
  EXPECT_TRUE(wait_until([&] { return a->active() == 1; }, 3000ms)) << a->active() << " connections open on A";
  EXPECT_TRUE(lbd_->running());
}

// SIGUSR1 reopens the error log file, as logrotate expects: after the file was moved away,
// lbd writes to a new file at the configured path.
TEST_P(L4Lifecycle, SigusrOneReopensTheLogFile) {
  auto backend = make_echo();
  const std::string error_log = dir_.file("error.log");
  ConfigSpec spec;
  spec.error_log = error_log;
  spec.listeners.push_back({.port = free_port()});
  spec.clusters.push_back(cluster_of({backend.get()}));
  write_file(config_path(), spec.to_yaml());
  lbd_ = std::make_unique<LbdProcess>(std::vector<std::string>{"--config", config_path(), "--io", io()},
                                      dir_.file("stdout.log"), io());
  ASSERT_TRUE(wait_until([&] { return read_file(error_log).find(" started: ") != std::string::npos; }, 10000ms))
      << read_file(error_log);
  ASSERT_EQ(::rename(error_log.c_str(), (error_log + ".1").c_str()), 0);
  ASSERT_TRUE(lbd_->signal(SIGUSR1));
  EXPECT_TRUE(wait_until([&] { return read_file(error_log).find("log files reopened") != std::string::npos; },
                         5000ms))
      << "no new log file at " << error_log;
  EXPECT_EQ(read_file(error_log + ".1").find("log files reopened"), std::string::npos);
  ASSERT_TRUE(lbd_->signal(SIGTERM));
  auto status = lbd_->wait_exit(5000ms);
  ASSERT_TRUE(status);
  EXPECT_TRUE(status->exited && status->code == 0) << status->to_string();
}

LBD_INSTANTIATE_DRIVERS(L4Lifecycle);

}  // namespace
}  // namespace lbd::it
