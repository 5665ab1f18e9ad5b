// Active health checks (proxy/health): the rise/fall state machine alone, then HealthChecker
// against real backends on 127.0.0.1 (and a Unix socket) written with lbd's runtime, on both
// drivers. Intervals are 20 ms; every wait is for an event (a backend served a request, an
// OnChange arrived) with a deadline.

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "proxy/health/check_state.hpp"
#include "proxy/health/health_check.hpp"
#include "proxy/health/health_checker.hpp"
#include "runtime/event.hpp"
#include "runtime/net.hpp"
#include "runtime/spawn.hpp"
#include "runtime/timer.hpp"
#include "tests/runtime/runtime_test_support.hpp"

namespace lbd::health {
namespace {

using namespace std::chrono_literals;
using Change = CheckState::Change;

// --- the state machine -----------------------------------------------------------------------

TEST(CheckStateTest, StartsUp) {
  CheckState s;
  EXPECT_TRUE(s.up());
  EXPECT_EQ(s.checks(), 0u);
  EXPECT_EQ(s.transitions(), 0u);
}

TEST(CheckStateTest, GoesDownAfterFallFailuresInARowAndReportsItOnce) {
  CheckState s;
  EXPECT_EQ(s.record(false, 2, 3), Change::kNone);
  EXPECT_EQ(s.record(false, 2, 3), Change::kNone);
  EXPECT_TRUE(s.up());
  EXPECT_EQ(s.record(false, 2, 3), Change::kWentDown);
  EXPECT_TRUE(s.down());
  EXPECT_EQ(s.failures_in_row(), 3u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(s.record(false, 2, 3), Change::kNone);
  EXPECT_TRUE(s.down());
  EXPECT_EQ(s.transitions(), 1u);
  EXPECT_EQ(s.checks(), 8u);
  EXPECT_EQ(s.failures(), 8u);
}

TEST(CheckStateTest, ASuccessWhileUpBreaksTheRunOfFailures) {
  CheckState s;
  for (int round = 0; round < 10; ++round) {
    EXPECT_EQ(s.record(false, 2, 3), Change::kNone);
    EXPECT_EQ(s.record(false, 2, 3), Change::kNone);
    EXPECT_EQ(s.record(true, 2, 3), Change::kNone);  // flapping: never three in a row
  }
  EXPECT_TRUE(s.up());
  EXPECT_EQ(s.failures(), 20u);
  EXPECT_EQ(s.transitions(), 0u);
}

TEST(CheckStateTest, ComesBackUpAfterRiseSuccessesAndAFailureWhileDownStartsOver) {
  CheckState s;
  EXPECT_EQ(s.record(false, 3, 1), Change::kWentDown);
  EXPECT_EQ(s.record(true, 3, 1), Change::kNone);
  EXPECT_EQ(s.record(true, 3, 1), Change::kNone);
  EXPECT_EQ(s.record(false, 3, 1), Change::kNone);  // the run of successes starts over
  EXPECT_TRUE(s.down());
  EXPECT_EQ(s.record(true, 3, 1), Change::kNone);
  EXPECT_EQ(s.record(true, 3, 1), Change::kNone);
  EXPECT_EQ(s.record(true, 3, 1), Change::kWentUp);
  EXPECT_EQ(s.successes_in_row(), 3u);
  EXPECT_EQ(s.record(true, 3, 1), Change::kNone);
  EXPECT_TRUE(s.up());
  EXPECT_EQ(s.transitions(), 2u);
  EXPECT_EQ(s.failures(), 2u);
}

TEST(CheckStateTest, ZeroRiseOrFallCountsAsOne) {
  CheckState s;
  EXPECT_EQ(s.record(false, 0, 0), Change::kWentDown);
  EXPECT_EQ(s.record(true, 0, 0), Change::kWentUp);
}

TEST(CheckStateTest, LoweredFallTakesARunAlreadyUnderWay) {
  CheckState s;
  EXPECT_EQ(s.record(false, 2, 5), Change::kNone);
  EXPECT_EQ(s.record(false, 2, 5), Change::kNone);
  EXPECT_EQ(s.record(false, 2, 5), Change::kNone);
  EXPECT_EQ(s.record(false, 2, 2), Change::kWentDown);  // a reload set fall: 2
}

TEST(CheckRequestTest, DefaultsHostToTheEndpointAddress) {
  config::HealthCheck hc;
  hc.type = config::HealthCheckType::kHttp;
  hc.path = "/healthz";
  EXPECT_EQ(check_request(hc, SocketAddress::ipv4_loopback(8080)),
            "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: lbd-health-check\r\n"
            "Connection: close\r\n\r\n");
  hc.host = "api.example.com";
  EXPECT_EQ(check_request(hc, SocketAddress::ipv4_loopback(8080)),
            "GET /healthz HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: lbd-health-check\r\n"
            "Connection: close\r\n\r\n");
  hc.host.clear();
  auto unix_addr = SocketAddress::parse("unix:/run/app.sock");
  ASSERT_TRUE(unix_addr);
  EXPECT_NE(check_request(hc, *unix_addr).find("\r\nHost: localhost\r\n"), std::string::npos);
}

// --- backends ----------------------------------------------------------------------------------

/// A backend the test controls: accepts one connection at a time, reads the request head, and
/// answers as `mode` says. Its own task; stop() ends it.
class Backend {
 public:
  enum class Mode {
    kAnswer,       // "HTTP/1.1 <status>" with the next of `statuses` (the last one repeats)
    kSilent,       // reads the request and never answers (the connection is held open)
    kCloseAtOnce,  // reads the request and closes
    kRaw,          // writes `raw` and closes
  };

  static std::unique_ptr<Backend> tcp(Mode mode, std::vector<int> statuses = {200}) {
    auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
    if (!listener) return nullptr;
    auto b = std::unique_ptr<Backend>(new Backend(std::move(*listener), mode, std::move(statuses)));
    b->address_ = *b->listener_.local_address();
    (void)spawn(serve(b.get()));
    return b;
  }
  static std::unique_ptr<Backend> unix_socket(const std::string& path, Mode mode, std::vector<int> statuses) {
    auto addr = SocketAddress::parse("unix:" + path);
    if (!addr) return nullptr;
    auto listener = UnixListener::bind(*addr);
    if (!listener) return nullptr;
    auto b = std::unique_ptr<Backend>(new Backend(std::move(*listener), mode, std::move(statuses)));
    b->address_ = *addr;
    (void)spawn(serve(b.get()));
    return b;
  }

  const SocketAddress& address() const { return address_; }
  /// Request heads received, in order ("" for a connection that sent nothing: a tcp check).
  const std::vector<std::string>& requests() const { return requests_; }
  std::size_t served() const { return requests_.size(); }
  void set_raw(std::string raw) { raw_ = std::move(raw); }

  /// Waits until `n` requests were served; false after `limit`.
  Task<bool> wait_served(std::size_t n, Duration limit = 5s) {
    const auto deadline = Clock::now() + limit;
    while (requests_.size() < n) {
      const auto left = deadline - Clock::now();
      if (left <= Duration::zero()) co_return false;
      served_event_.reset();
      if (!co_await timeout(served_event_.wait(), left)) co_return false;
    }
    co_return true;
  }
  Task<void> stop() {
    stop_.cancel();
    (void)co_await done_.wait();
    held_.clear();
  }

 private:
  Backend(StreamListener listener, Mode mode, std::vector<int> statuses)
      : listener_(std::move(listener)), mode_(mode), statuses_(std::move(statuses)) {}

  static Task<void> serve(Backend* b) {
    {
      CancelLink link(&b->stop_);
      for (;;) {
        auto fd = co_await b->listener_.accept_fd();
        if (!fd) break;
        StreamSocket conn(std::move(*fd));
        std::string head;
        Buffer buf(4096);
        while (head.find("\r\n\r\n") == std::string::npos) {
          buf.clear();
          auto [got, back] = co_await conn.read(std::move(buf));
          buf = std::move(back);
          if (!got || *got == 0) break;
          head.append(buf.view());
        }
        if (b->stop_.is_cancelled()) break;
        const std::size_t index = b->requests_.size();
        b->requests_.push_back(head);
        if (!head.empty()) {
          switch (b->mode_) {
            case Mode::kAnswer: {
              int status = b->statuses_[std::min(index, b->statuses_.size() - 1)];
              std::string answer = "HTTP/1.1 " + std::to_string(status) +
                                   " Whatever\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
              (void)co_await conn.write_all(Buffer::copy_of(answer));
              break;
            }
            case Mode::kSilent:
              b->held_.push_back(std::move(conn));
              break;
            case Mode::kCloseAtOnce:
              break;
            case Mode::kRaw:
              (void)co_await conn.write_all(Buffer::copy_of(b->raw_));
              break;
          }
        }
        b->served_event_.set();
      }
    }
    b->done_.set();
  }

  StreamListener listener_;
  SocketAddress address_;
  Mode mode_;
  std::vector<int> statuses_;
  std::string raw_;
  std::vector<std::string> requests_;
  std::vector<StreamSocket> held_;
  Event served_event_;
  CancelSource stop_;
  Event done_;
};

/// A loopback port nothing listens on: bound, then closed.
SocketAddress closed_port() {
  auto l = TcpListener::bind(SocketAddress::ipv4_loopback(0));
  SocketAddress addr = *l->local_address();
  l->close_listener();
  return addr;
}

// --- the checker ----------------------------------------------------------------------------

/// What OnChange reported, with the backends' request counts at that moment.
struct Changes {
  struct Seen {
    HealthChange change;
    std::size_t served = 0;  // requests the matching watched backend had served then
    bool down_then = false;  // is_down() as seen from inside the callback
  };
  std::vector<Seen> seen;
  Event arrived;
  std::vector<const Backend*> watched;
  HealthChecker* checker = nullptr;  // not owned; set once the checker exists

  HealthChecker::OnChange callback() {
    return [this](const HealthChange& c) {
      Seen s{c};
      for (const Backend* b : watched)
        if (b->address() == c.address) s.served = b->served();
      s.down_then = checker && checker->is_down(c.cluster, c.address);
      seen.push_back(std::move(s));
      arrived.set();
    };
  }
  /// Waits until `n` changes arrived; false after `limit`.
  Task<bool> wait(std::size_t n, Duration limit = 5s) {
    const auto deadline = Clock::now() + limit;
    while (seen.size() < n) {
      const auto left = deadline - Clock::now();
      if (left <= Duration::zero()) co_return false;
      arrived.reset();
      if (!co_await timeout(arrived.wait(), left)) co_return false;
    }
    co_return true;
  }
  const Seen* find(const SocketAddress& addr) const {
    for (const Seen& s : seen)
      if (s.change.address == addr) return &s;
    return nullptr;
  }
};

config::HealthCheck http_check(std::string path = "/healthz") {
  config::HealthCheck hc;
  hc.type = config::HealthCheckType::kHttp;
  hc.path = std::move(path);
  hc.interval = 20ms;
  hc.timeout = 1s;
  hc.rise = 2;
  hc.fall = 3;
  return hc;
}

config::ClusterConfig cluster(std::string name, std::vector<SocketAddress> addrs,
                              std::optional<config::HealthCheck> hc) {
  config::ClusterConfig c;
  c.name = std::move(name);
  for (const SocketAddress& a : addrs) c.endpoints.push_back({a, 1});
  c.health_check = std::move(hc);
  return c;
}

config::Config config_of(std::vector<config::ClusterConfig> clusters) {
  config::Config cfg;
  cfg.clusters = std::move(clusters);
  return cfg;
}

class HealthCheckerTest : public test::RuntimeTest {
 protected:
  // The transitions' log lines are behaviour an operator sees: capture them.
  void SetUp() override {
    test::RuntimeTest::SetUp();
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log_);
    sink->set_pattern("%l %v");
    previous_ = spdlog::default_logger();
    auto logger = std::make_shared<spdlog::logger>("health-test", sink);
    logger->set_level(spdlog::level::info);
    spdlog::set_default_logger(logger);
  }
  void TearDown() override {
    spdlog::set_default_logger(previous_);
    test::RuntimeTest::TearDown();
  }
  std::string log_text() const { return log_.str(); }

  std::ostringstream log_;
  std::shared_ptr<spdlog::logger> previous_;
};
LBD_INSTANTIATE_FOR_DRIVERS(HealthCheckerTest);

Task<void> http_200_stays_up() {
  auto backend = Backend::tcp(Backend::Mode::kAnswer, {200});
  CO_ASSERT_TRUE(backend);
  Changes changes;
  HealthChecker checker(changes.callback());
  changes.checker = &checker;
  checker.apply(config_of({cluster("web", {backend->address()}, http_check())}));
  EXPECT_EQ(checker.size(), 1u);
  // The fourth request comes after the third check's verdict was taken.
  EXPECT_TRUE(co_await backend->wait_served(4));
  const EndpointCheck* check = checker.find("web", backend->address());
  CO_ASSERT_TRUE(check != nullptr);
  EXPECT_FALSE(check->down());
  EXPECT_FALSE(checker.is_down("web", backend->address()));
  EXPECT_GE(check->state.checks(), 3u);
  EXPECT_EQ(check->check_failures(), 0u);
  EXPECT_TRUE(check->last_success);
  EXPECT_EQ(check->last_result, "HTTP 200 on /healthz");
  EXPECT_EQ(check->last_check_text().rfind("HTTP 200 on /healthz in ", 0), 0u) << check->last_check_text();
  EXPECT_TRUE(changes.seen.empty());
  co_await checker.stop();
  co_await backend->stop();
}
TEST_P(HealthCheckerTest, Http200StaysUp) {
  run(http_200_stays_up());
  EXPECT_EQ(log_text().find("is DOWN"), std::string::npos) << log_text();
}

Task<void> down_after_fall_up_after_rise(std::string* address) {
  // Three 503s, then 200s: DOWN at the third check, UP again at the fifth.
  auto backend = Backend::tcp(Backend::Mode::kAnswer, {503, 503, 503, 200});
  CO_ASSERT_TRUE(backend);
  *address = backend->address().to_string();
  Changes changes;
  changes.watched = {backend.get()};
  HealthChecker checker(changes.callback());
  changes.checker = &checker;
  checker.apply(config_of({cluster("web", {backend->address()}, http_check())}));
  CO_ASSERT_TRUE(co_await changes.wait(2));
  const auto& down = changes.seen[0];
  EXPECT_EQ(down.change.cluster, "web");
  EXPECT_EQ(down.change.address, backend->address());
  EXPECT_FALSE(down.change.up);
  EXPECT_EQ(down.change.cause, "HTTP 503 on /healthz");
  EXPECT_EQ(down.served, 3u);
  EXPECT_TRUE(down.down_then);
  const auto& up = changes.seen[1];
  EXPECT_TRUE(up.change.up);
  EXPECT_EQ(up.change.cause, "HTTP 200 on /healthz");
  EXPECT_EQ(up.served, 5u);
  EXPECT_FALSE(up.down_then);
  const EndpointCheck* check = checker.find("web", backend->address());
  CO_ASSERT_TRUE(check != nullptr);
  EXPECT_EQ(check->transitions(), 2u);
  EXPECT_EQ(check->check_failures(), 3u);
  EXPECT_FALSE(checker.is_down("web", backend->address()));
  co_await checker.stop();
  co_await backend->stop();
}
TEST_P(HealthCheckerTest, Http503GoesDownAfterFallChecksAndBackUpAfterRise) {
  std::string address;
  run(down_after_fall_up_after_rise(&address));
  const std::string log = log_text();
  EXPECT_NE(log.find("warning cluster web endpoint " + address + " is DOWN: HTTP 503 on /healthz (3 checks in a row)\n"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("info cluster web endpoint " + address + " is UP: HTTP 200 on /healthz (2 checks in a row)\n"),
            std::string::npos)
      << log;
  // Each transition once.
  EXPECT_EQ(log.find("is DOWN"), log.rfind("is DOWN"));
  EXPECT_EQ(log.find("is UP"), log.rfind("is UP"));
}

Task<void> expect_status_ranges() {
  auto accepted = Backend::tcp(Backend::Mode::kAnswer, {404});
  auto refused = Backend::tcp(Backend::Mode::kAnswer, {302});  // in the default 200-399, not here
  CO_ASSERT_TRUE(accepted && refused);
  config::HealthCheck hc = http_check("/");
  hc.expect_status = {{200, 204}, {404, 404}};
  hc.fall = 1;
  Changes changes;
  HealthChecker checker(changes.callback());
  checker.apply(config_of({cluster("web", {accepted->address(), refused->address()}, hc)}));
  CO_ASSERT_TRUE(co_await changes.wait(1));
  EXPECT_EQ(changes.seen[0].change.address, refused->address());
  EXPECT_EQ(changes.seen[0].change.cause, "HTTP 302 on /");
  EXPECT_TRUE(co_await accepted->wait_served(4));
  EXPECT_FALSE(checker.is_down("web", accepted->address()));
  EXPECT_EQ(checker.find("web", accepted->address())->last_result, "HTTP 404 on /");
  EXPECT_TRUE(checker.is_down("web", refused->address()));
  EXPECT_EQ(changes.seen.size(), 1u);
  co_await checker.stop();
  co_await accepted->stop();
  co_await refused->stop();
}
TEST_P(HealthCheckerTest, ExpectStatusRangesDecideSuccess) { run(expect_status_ranges()); }

Task<void> request_host_and_path() {
  auto named = Backend::tcp(Backend::Mode::kAnswer, {200});
  auto plain = Backend::tcp(Backend::Mode::kAnswer, {200});
  CO_ASSERT_TRUE(named && plain);
  config::HealthCheck with_host = http_check("/status?full=1");
  with_host.host = "health.example.com";
  Changes changes;
  HealthChecker checker(changes.callback());
  checker.apply(config_of({cluster("api", {named->address()}, with_host),
                           cluster("web", {plain->address()}, http_check("/healthz"))}));
  CO_ASSERT_TRUE(co_await named->wait_served(1));
  CO_ASSERT_TRUE(co_await plain->wait_served(1));
  EXPECT_EQ(named->requests()[0],
            "GET /status?full=1 HTTP/1.1\r\nHost: health.example.com\r\nUser-Agent: lbd-health-check\r\n"
            "Connection: close\r\n\r\n");
  EXPECT_EQ(plain->requests()[0], "GET /healthz HTTP/1.1\r\nHost: " + plain->address().to_string() +
                                      "\r\nUser-Agent: lbd-health-check\r\nConnection: close\r\n\r\n");
  co_await checker.stop();
  co_await named->stop();
  co_await plain->stop();
}
TEST_P(HealthCheckerTest, RequestCarriesTheConfiguredHostAndPath) { run(request_host_and_path()); }

Task<void> silent_backend_times_out() {
  auto silent = Backend::tcp(Backend::Mode::kSilent);
  CO_ASSERT_TRUE(silent);
  config::HealthCheck hc = http_check();
  hc.timeout = 50ms;
  hc.fall = 2;
  Changes changes;
  changes.watched = {silent.get()};
  HealthChecker checker(changes.callback());
  checker.apply(config_of({cluster("web", {silent->address()}, hc)}));
  CO_ASSERT_TRUE(co_await changes.wait(1));
  EXPECT_FALSE(changes.seen[0].change.up);
  EXPECT_EQ(changes.seen[0].change.cause, "timed out after 50ms");
  const EndpointCheck* check = checker.find("web", silent->address());
  CO_ASSERT_TRUE(check != nullptr);
  EXPECT_GE(check->last_duration, 50ms);
  EXPECT_LT(check->last_duration, 2s);
  EXPECT_EQ(changes.seen[0].served, 2u);  // the backend did get both requests
  co_await checker.stop();
  co_await silent->stop();
}
TEST_P(HealthCheckerTest, SilentBackendIsATimeout) { run(silent_backend_times_out()); }

Task<void> tcp_check_closed_port() {
  const SocketAddress closed = closed_port();
  auto listening = Backend::tcp(Backend::Mode::kAnswer);
  CO_ASSERT_TRUE(listening);
  config::HealthCheck hc;
  hc.type = config::HealthCheckType::kTcp;
  hc.interval = 20ms;
  hc.timeout = 1s;
  hc.fall = 2;
  Changes changes;
  HealthChecker checker(changes.callback());
  checker.apply(config_of({cluster("db", {closed, listening->address()}, hc)}));
  CO_ASSERT_TRUE(co_await changes.wait(1));
  EXPECT_EQ(changes.seen[0].change.address, closed);
  EXPECT_FALSE(changes.seen[0].change.up);
  EXPECT_EQ(changes.seen[0].change.cause, "connect: connection refused");
  EXPECT_TRUE(checker.is_down("db", closed));
  // The listening one stays up; a tcp check sends nothing.
  CO_ASSERT_TRUE(co_await listening->wait_served(3));
  EXPECT_EQ(listening->requests()[0], "");
  EXPECT_FALSE(checker.is_down("db", listening->address()));
  EXPECT_EQ(checker.find("db", listening->address())->last_result, "connected");
  EXPECT_EQ(changes.seen.size(), 1u);
  co_await checker.stop();
  co_await listening->stop();
}
TEST_P(HealthCheckerTest, TcpCheckOfAClosedPortGoesDown) { run(tcp_check_closed_port()); }

Task<void> bad_responses() {
  auto closing = Backend::tcp(Backend::Mode::kCloseAtOnce);
  auto garbage = Backend::tcp(Backend::Mode::kRaw);
  auto huge = Backend::tcp(Backend::Mode::kRaw);
  CO_ASSERT_TRUE(closing && garbage && huge);
  garbage->set_raw("HELLO THERE\r\n\r\n");
  std::string head = "HTTP/1.1 200 OK\r\n";
  while (head.size() < kMaxResponseHead + 4096) head += "X-Padding: " + std::string(100, 'a') + "\r\n";
  huge->set_raw(head);  // never ends
  config::HealthCheck hc = http_check();
  hc.fall = 1;
  Changes changes;
  HealthChecker checker(changes.callback());
  checker.apply(config_of({cluster("web", {closing->address(), garbage->address(), huge->address()}, hc)}));
  CO_ASSERT_TRUE(co_await changes.wait(3));
  const auto* c = changes.find(closing->address());
  const auto* g = changes.find(garbage->address());
  const auto* h = changes.find(huge->address());
  CO_ASSERT_TRUE(c && g && h);
  EXPECT_EQ(c->change.cause, "connection closed before a response");
  EXPECT_EQ(g->change.cause.rfind("invalid response: ", 0), 0u) << g->change.cause;
  EXPECT_GT(g->change.cause.size(), std::string("invalid response: ").size());
  EXPECT_EQ(h->change.cause, "response head too large");
  co_await checker.stop();
  co_await closing->stop();
  co_await garbage->stop();
  co_await huge->stop();
}
TEST_P(HealthCheckerTest, BadResponsesFailWithTheirCause) { run(bad_responses()); }

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/lbd-health-test-XXXXXX";
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

Task<void> unix_endpoint(std::string path) {
  auto backend = Backend::unix_socket(path, Backend::Mode::kAnswer, {200, 503});
  CO_ASSERT_TRUE(backend);
  config::HealthCheck hc = http_check();
  hc.fall = 1;
  Changes changes;
  changes.watched = {backend.get()};
  HealthChecker checker(changes.callback());
  checker.apply(config_of({cluster("local", {backend->address()}, hc)}));
  CO_ASSERT_TRUE(co_await changes.wait(1));
  EXPECT_EQ(changes.seen[0].change.cause, "HTTP 503 on /healthz");
  EXPECT_EQ(changes.seen[0].served, 2u);
  EXPECT_NE(backend->requests()[0].find("\r\nHost: localhost\r\n"), std::string::npos) << backend->requests()[0];
  co_await checker.stop();
  co_await backend->stop();
}
TEST_P(HealthCheckerTest, UnixSocketEndpointsAreChecked) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  run(unix_endpoint(dir.path() + "/app.sock"));
}

Task<void> reload_keeps_state() {
  auto failing = Backend::tcp(Backend::Mode::kAnswer, {503});
  auto removed = Backend::tcp(Backend::Mode::kAnswer, {200});
  auto added = Backend::tcp(Backend::Mode::kAnswer, {200});
  CO_ASSERT_TRUE(failing && removed && added);
  config::HealthCheck hc = http_check();
  hc.fall = 2;
  Changes changes;
  HealthChecker checker(changes.callback());
  checker.apply(config_of({cluster("web", {failing->address()}, hc),
                           cluster("api", {removed->address()}, hc)}));
  CO_ASSERT_TRUE(co_await changes.wait(1));
  CO_ASSERT_TRUE(checker.is_down("web", failing->address()));
  const uint64_t failures_before = checker.find("web", failing->address())->check_failures();

  // Reload: web keeps its endpoint and gains one (with a longer timeout: new settings); api
  // loses its health_check.
  config::HealthCheck reloaded = hc;
  reloaded.timeout = 2s;
  checker.apply(config_of({cluster("web", {failing->address(), added->address()}, reloaded),
                           cluster("api", {removed->address()}, std::nullopt)}));
  const std::size_t removed_served = removed->served();
  EXPECT_EQ(checker.size(), 2u);
  EXPECT_TRUE(checker.is_down("web", failing->address()));  // no flap back up
  const EndpointCheck* fresh = checker.find("web", added->address());
  CO_ASSERT_TRUE(fresh != nullptr);
  EXPECT_FALSE(fresh->down());
  EXPECT_EQ(fresh->state.checks(), 0u);
  EXPECT_EQ(checker.find("api", removed->address()), nullptr);
  EXPECT_FALSE(checker.is_down("api", removed->address()));
  auto down = checker.down_endpoints();
  CO_ASSERT_TRUE(down.size() == 1u);
  EXPECT_EQ(down[0].cluster, "web");
  EXPECT_EQ(down[0].address, failing->address());
  EXPECT_EQ(down[0].cause, "HTTP 503 on /healthz");

  // The kept loop goes on checking, its counters continue; the new one runs.
  const std::size_t failing_served = failing->served();
  CO_ASSERT_TRUE(co_await failing->wait_served(failing_served + 3));
  CO_ASSERT_TRUE(co_await added->wait_served(3));
  const EndpointCheck* kept = checker.find("web", failing->address());
  EXPECT_TRUE(kept->down());
  EXPECT_GE(kept->check_failures(), failures_before + 2);
  EXPECT_EQ(kept->transitions(), 1u);
  EXPECT_EQ(changes.seen.size(), 1u);
  // A check already connecting when the loop was stopped may still reach the backend; no more.
  EXPECT_LE(removed->served(), removed_served + 1);
  co_await checker.stop();
  co_await failing->stop();
  co_await removed->stop();
  co_await added->stop();
}
TEST_P(HealthCheckerTest, ApplyKeepsTheStateOfKeptEndpointsAndStartsNewOnesUp) { run(reload_keeps_state()); }

Task<void> stop_ends_everything() {
  auto silent = Backend::tcp(Backend::Mode::kSilent);
  auto healthy = Backend::tcp(Backend::Mode::kAnswer, {200});
  CO_ASSERT_TRUE(silent && healthy);
  const std::size_t tasks_before = Runtime::current().live_tasks();
  config::HealthCheck slow = http_check();
  slow.timeout = 10s;  // the silent backend's check is in flight when stop() comes
  Changes changes;
  HealthChecker checker(changes.callback());
  checker.apply(config_of({cluster("web", {silent->address(), healthy->address()}, slow)}));
  EXPECT_GT(Runtime::current().live_tasks(), tasks_before);
  CO_ASSERT_TRUE(co_await silent->wait_served(1));
  CO_ASSERT_TRUE(co_await healthy->wait_served(2));
  const auto started = Clock::now();
  co_await checker.stop();
  EXPECT_LT(Clock::now() - started, 1s);
  EXPECT_EQ(Runtime::current().live_tasks(), tasks_before);
  EXPECT_EQ(checker.size(), 0u);
  EXPECT_EQ(checker.find("web", healthy->address()), nullptr);
  EXPECT_TRUE(changes.seen.empty());  // the abandoned check is no verdict
  co_await silent->stop();
  co_await healthy->stop();
}
TEST_P(HealthCheckerTest, StopEndsEveryLoop) { run(stop_ends_everything()); }

}  // namespace
}  // namespace lbd::health
