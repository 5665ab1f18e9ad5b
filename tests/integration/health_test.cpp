// Health checks and passive ejection through the real binary: an endpoint whose check fails
// leaves the rotation and comes back, once per process rather than once per worker; a cluster
// with every endpoint down answers 503 at once (tcp: closes); a reload keeps what the checks
// found; outlier detection ejects an endpoint that fails requests but never the last one; and
// SIGTERM's ready_delay keeps serving before the drain. (The admin listener is tested in admin_test.cpp.)

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "tests/integration/http_harness.hpp"

namespace lbd::it {
namespace {

/// A backend that answers /healthz with `health` (200 or 503, switchable) and every other
/// request with 200 "<id>", recording when each check arrived.
class CheckedBackend {
 public:
  explicit CheckedBackend(std::string id)
      : id_(std::move(id)), backend_([this](const BackendExchange& ex, const HttpMessage& m) {
          if (m.target == "/healthz") {
            {
              std::lock_guard lock(mu_);
              checks_.push_back(Clock::now());
              hosts_.push_back(m.header("host").value_or(""));
            }
            ex.send(http_response(health_.load(), "health", "Connection: close\r\n"));
            return false;
          }
          ++served_;
          return ex.send(http_response(200, id_));
        }, id_) {}

  std::string address() const { return backend_.address(); }
  void set_health(int status) { health_ = status; }
  int served() const { return served_; }
  std::size_t checks() const {
    std::lock_guard lock(mu_);
    return checks_.size();
  }
  std::vector<Clock::time_point> check_times() const {
    std::lock_guard lock(mu_);
    return checks_;
  }
  std::vector<std::string> check_hosts() const {
    std::lock_guard lock(mu_);
    return hosts_;
  }

 private:
  std::string id_;
  std::atomic<int> health_{200};
  std::atomic<int> served_{0};
  mutable std::mutex mu_;
  std::vector<Clock::time_point> checks_;
  std::vector<std::string> hosts_;
  HttpBackend backend_;  // last: its threads stop before the rest goes
};

class HealthIt : public HttpTest {
 protected:
  std::string yaml(const std::vector<std::string>& endpoints, const std::string& cluster_extra, int workers = 1,
                   const std::string& top_extra = "") const {
    return web_yaml(endpoints, cluster_extra, workers, top_extra);
  }
  std::string start_with(const std::string& text) { return start_yaml(text, {port_}); }

  void SetUp() override {
    HttpTest::SetUp();
    port_ = free_port();
  }
};

const std::string kChecks = "    health_check: { type: http, path: /healthz, interval: 100ms, timeout: 1s, rise: 2, fall: 2 }\n";

TEST_P(HealthIt, AFailingEndpointLeavesTheRotationAndComesBack) {
  CheckedBackend a("a"), b("b");
  ASSERT_EQ(start_with(yaml({a.address(), b.address()}, kChecks)), "");
  auto before = bodies(6);
  EXPECT_EQ(count(before, "a"), 3);
  EXPECT_EQ(count(before, "b"), 3);

  std::size_t from = lbd_->log_size();
  b.set_health(503);
  ASSERT_TRUE(lbd_->wait_log("cluster web endpoint " + b.address() + " is DOWN: HTTP 503 on /healthz (2 checks in a row)",
                             10000ms, from));
  auto down = bodies(6);
  EXPECT_EQ(count(down, "a"), 6) << "requests still reached the DOWN endpoint";

  from = lbd_->log_size();
  b.set_health(200);
  ASSERT_TRUE(lbd_->wait_log("cluster web endpoint " + b.address() + " is UP: HTTP 200 on /healthz (2 checks in a row)",
                             10000ms, from));
  auto up = bodies(6);
  EXPECT_EQ(count(up, "b"), 3) << "the endpoint did not get its share back";
  EXPECT_EQ(lbd_->count_log(" is DOWN: "), 1) << "a transition was logged more than once";
  // The Host of a check is the endpoint's address when health_check.host is not set.
  auto hosts = b.check_hosts();
  ASSERT_FALSE(hosts.empty());
  EXPECT_EQ(hosts.front(), b.address());
}

TEST_P(HealthIt, OneCheckPerEndpointForTheWholeProcessNotPerWorker) {
  CheckedBackend a("a");
  ASSERT_EQ(start_with(yaml({a.address()}, kChecks, /*workers=*/2)), "");
  ASSERT_TRUE(wait_until([&] { return a.checks() >= 11; }, 10000ms));
  auto t = a.check_times();
  // Ten intervals of 100ms: checks from two workers would come twice as fast.
  auto span = std::chrono::duration_cast<Ms>(t[10] - t[0]);
  EXPECT_GE(span.count(), 900) << "11 checks in " << span.count() << "ms: more than one checker per endpoint";
}

TEST_P(HealthIt, EveryEndpointDownAnswers503AtOnceAndCountsNoUpstream) {
  CheckedBackend a("a");
  a.set_health(503);
  ASSERT_EQ(start_with(yaml({a.address()}, kChecks)), "");
  ASSERT_TRUE(lbd_->wait_log(" is DOWN: HTTP 503 on /healthz", 10000ms));
  auto t0 = Clock::now();
  HttpMessage m = roundtrip(http_get("/", "a"));
  EXPECT_EQ(m.status, 503) << m.summary();
  EXPECT_LT(std::chrono::duration_cast<Ms>(Clock::now() - t0).count(), 2000);
  EXPECT_EQ(a.served(), 0) << "lbd sent the request to a DOWN endpoint";
  EXPECT_TRUE(lbd_->wait_log("503 Service Unavailable: cluster web has no endpoint available", 5000ms));
  EXPECT_EQ(lbd_->count_log("connect 127.0.0.1"), 0) << "a connect was tried although no endpoint is up";
}

TEST_P(HealthIt, TcpListenerClosesWhenEveryEndpointIsDown) {
  CheckedBackend a("a");
  a.set_health(503);
  uint16_t tcp_port = free_port();
  std::string y = yaml({a.address()}, kChecks);
  y.insert(y.find("clusters:"),
           "  - name: raw\n    listen: 127.0.0.1:" + std::to_string(tcp_port) + "\n    protocol: tcp\n    cluster: web\n");
  ASSERT_EQ(start_yaml(y, {port_, tcp_port}), "");
  ASSERT_TRUE(lbd_->wait_log(" is DOWN: HTTP 503 on /healthz", 10000ms));
  Fd c = connect_or_fail(tcp_port);
  ASSERT_TRUE(c);
  HttpReader r(c.get());
  EXPECT_NE(r.wait_end(5000ms), End::kTimeout) << "the connection was not closed";
  EXPECT_EQ(a.served(), 0);
  EXPECT_TRUE(lbd_->wait_log("no upstream reachable, closing", 5000ms));
}

TEST_P(HealthIt, AReloadKeepsTheDownStateOfUnchangedEndpoints) {
  CheckedBackend a("a"), b("b");
  ASSERT_EQ(start_with(yaml({a.address(), b.address()}, kChecks)), "");
  b.set_health(503);
  ASSERT_TRUE(lbd_->wait_log(" is DOWN: HTTP 503 on /healthz", 10000ms));
  std::string changed = yaml({a.address(), b.address()}, kChecks + "    retries: 2\n");
  std::string out = reload(changed);
  ASSERT_NE(out.find("reload done"), std::string::npos) << out;
  // Right after the reload, before any new check could pass: the endpoint is still out.
  auto after = bodies(6);
  EXPECT_EQ(count(after, "a"), 6) << "the reload brought a DOWN endpoint back";
  EXPECT_EQ(lbd_->count_log(" is UP: "), 0);
}

TEST_P(HealthIt, OutlierDetectionEjectsAnEndpointThatFailsRequests) {
  HttpBackend good(respond_ok("good"), "good");
  HttpBackend bad([](const BackendExchange& ex, const HttpMessage&) { return ex.send(http_response(500, "bad")); },
                  "bad");
  ASSERT_EQ(start_with(yaml({good.address(), bad.address()},
                            "    outlier: { consecutive_failures: 3, base_ejection: 30s, max_ejection: 5m }\n")),
            "");
  auto first = bodies(6);  // round robin: three 500s from "bad" in a row eject it
  EXPECT_EQ(count(first, "<500>"), 3);
  ASSERT_TRUE(lbd_->wait_log("cluster web endpoint " + bad.address() + " ejected for 30000ms: 3 failures in a row",
                             5000ms));
  auto later = bodies(6);
  EXPECT_EQ(count(later, "good"), 6) << "an ejected endpoint still got requests";
  EXPECT_EQ(lbd_->count_log(" ejected for "), 1);
}

TEST_P(HealthIt, TheLastLiveEndpointIsNeverEjected) {
  HttpBackend bad([](const BackendExchange& ex, const HttpMessage&) { return ex.send(http_response(500, "bad")); },
                  "bad");
  ASSERT_EQ(start_with(yaml({bad.address()}, "    outlier: { consecutive_failures: 2 }\n")), "");
  auto got = bodies(6);
  EXPECT_EQ(count(got, "<500>"), 6) << "the only endpoint was ejected: clients got lbd's own errors";
  EXPECT_EQ(lbd_->count_log(" ejected for "), 0);
}

TEST_P(HealthIt, SigtermKeepsServingForTheReadyDelayThenDrains) {
  CheckedBackend a("a");
  ASSERT_EQ(start_with(yaml({a.address()}, "", 1, "shutdown: { ready_delay: 2s, drain_timeout: 5s }\n")), "");
  std::size_t from = lbd_->log_size();
  ASSERT_TRUE(lbd_->signal(SIGTERM));
  ASSERT_TRUE(lbd_->wait_log("SIGTERM: not ready", 5000ms, from));
  HttpMessage m = roundtrip(http_get("/", "a"));  // still accepted and served meanwhile
  EXPECT_EQ(m.status, 200) << m.summary();
  EXPECT_EQ(lbd_->log().find("drained; exiting", from), std::string::npos) << "the ready_delay did not hold the drain";
  ASSERT_TRUE(lbd_->wait_log("drained; exiting", 10000ms, from));
  auto exit = lbd_->wait_exit(10000ms);
  ASSERT_TRUE(exit.has_value());
  EXPECT_TRUE(exit->exited && exit->code == 0) << exit->to_string();
}

INSTANTIATE_TEST_SUITE_P(Drivers, HealthIt, ::testing::Values("io_uring", "epoll"), driver_param_name);

}  // namespace
}  // namespace lbd::it
