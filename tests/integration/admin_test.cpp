// The admin listener through the real binary: /metrics that promtool accepts and that counts
// the traffic that went through, /stats as JSON with the same figures, /healthz and /ready
// through a SIGTERM with ready_delay, drain and enable with and without the token (HTTP and
// TCP listeners), bad admin requests, the status page in headless Chromium, and admin.listen
// across reloads and bind errors.

#include <nlohmann/json.hpp>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <atomic>
#include <string>
#include <vector>

#include "tests/integration/http_harness.hpp"
#include "tests/proxy/chromium.hpp"

namespace lbd::it {
namespace {

using Json = nlohmann::json;

/// A socket listening on 127.0.0.1 at a port of the kernel's choosing: an address taken.
struct TakenPort {
  Fd fd;
  uint16_t port = 0;
  TakenPort() : fd(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), len) != 0 || ::listen(fd.get(), 8) != 0 ||
        ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      ADD_FAILURE() << "cannot take a port: " << std::strerror(errno);
      return;
    }
    port = ntohs(a.sin_port);
  }
};

/// A backend that answers /healthz with `health` (switchable) and every other request with
/// 200 "<id>".
class IdBackend {
 public:
  explicit IdBackend(std::string id)
      : id_(std::move(id)), backend_([this](const BackendExchange& ex, const HttpMessage& m) {
          if (m.target == "/healthz") {
            ex.send(http_response(health_.load(), "health", "Connection: close\r\n"));
            return false;
          }
          return ex.send(http_response(200, id_));
        }, id_) {}
  std::string address() const { return backend_.address(); }
  void set_health(int status) { health_ = status; }

 private:
  std::string id_;
  std::atomic<int> health_{200};
  HttpBackend backend_;
};

class AdminIt : public HttpTest {
 protected:
  void SetUp() override {
    HttpTest::SetUp();
    port_ = free_port();
    admin_port_ = free_port();
  }

  /// web_yaml (the harness) with the admin listener on admin_port_ and `admin_extra` (e.g. "token: x").
  std::string yaml(const std::vector<std::string>& endpoints, const std::string& cluster_extra = "",
                   const std::string& admin_extra = "", const std::string& top_extra = "", int workers = 2) const {
    std::string admin = "admin: { listen: 127.0.0.1:" + std::to_string(admin_port_);
    if (!admin_extra.empty()) admin += ", " + admin_extra;
    admin += " }\n";
    return web_yaml(endpoints, cluster_extra, workers, admin + top_extra);
  }
  std::string start_with(const std::string& text) { return start_yaml(text, {port_, admin_port_}); }

  /// One request to the admin listener on a new connection.
  HttpMessage admin(const std::string& method, const std::string& path, const std::string& extra = "",
                    uint16_t port = 0) {
    Fd c = connect_or_fail(port ? port : admin_port_);
    std::string req = method + " " + path + " HTTP/1.1\r\nHost: admin\r\n" + extra;
    if (method == "POST" && extra.find("Content-Length") == std::string::npos) req += "Content-Length: 0\r\n";
    req += "\r\n";
    if (!c || !send_all(c.get(), req)) return HttpMessage{.error = "send failed"};
    HttpReader r(c.get());
    return r.read_response(10000ms, method);
  }
  Json stats() {
    HttpMessage m = admin("GET", "/stats");
    if (m.status != 200) return Json();
    return Json::parse(m.body, nullptr, /*allow_exceptions=*/false);
  }
  /// The endpoint's "state" in /stats ("UP", "DOWN", "DRAIN", "EJECTED"), "" when absent.
  std::string state_of(const std::string& address) {
    Json s = stats();
    if (!s.is_object()) return "";
    for (const auto& c : s["clusters"])
      for (const auto& e : c["endpoints"])
        if (e["address"] == address) return e["state"].get<std::string>();
    return "";
  }

  uint16_t admin_port_ = 0;
};

TEST_P(AdminIt, MetricsPassPromtoolAndCountTheTraffic) {
  IdBackend a("a"), b("b");
  ASSERT_EQ(start_with(yaml({a.address(), b.address()})), "");
  for (int i = 0; i < 6; ++i) ASSERT_EQ(roundtrip(http_get("/", "a")).status, 200);
  ASSERT_EQ(roundtrip(http_get("/bad path", "a")).status, 400);  // a client error, counted as 4xx

  HttpMessage m = admin("GET", "/metrics");
  ASSERT_EQ(m.status, 200) << m.summary();
  EXPECT_EQ(m.header("content-type").value_or(""), "text/plain; version=0.0.4; charset=utf-8");
  // Summed over both workers, whichever took the connections.
  EXPECT_NE(m.body.find("lbd_listener_responses_total{listener=\"web\",protocol=\"http\",code=\"2xx\"} 6\n"),
            std::string::npos) << m.body;
  EXPECT_NE(m.body.find("lbd_listener_responses_total{listener=\"web\",protocol=\"http\",code=\"4xx\"} 1\n"),
            std::string::npos);
  EXPECT_NE(m.body.find("lbd_listener_connections_accepted_total{listener=\"web\",protocol=\"http\"} 7\n"),
            std::string::npos);
  for (const auto& e : {a.address(), b.address()}) {
    std::string labels = "{cluster=\"web\",endpoint=\"" + e + "\"";
    EXPECT_NE(m.body.find("lbd_endpoint_requests_total" + labels + "} 3\n"), std::string::npos) << e;
    EXPECT_NE(m.body.find("lbd_endpoint_response_time_seconds_count" + labels + "} 3\n"), std::string::npos) << e;
  }
  EXPECT_NE(m.body.find("lbd_workers 2\n"), std::string::npos);
  EXPECT_NE(m.body.find("lbd_build_info{version=\"" LBD_VERSION_EXPECTED "\",driver=\"" + io() + "\"} 1\n"),
            std::string::npos);

  if (!have_program("promtool")) GTEST_SKIP() << "promtool is not installed (Debian: prometheus)";
  write_file(dir_.file("metrics.txt"), m.body);
  CommandResult check = run_command({"sh", "-c", "promtool check metrics < " + dir_.file("metrics.txt")}, dir_);
  EXPECT_TRUE(check.status.exited && check.status.code == 0) << check.out << check.err;
}

TEST_P(AdminIt, StatsJsonHasTheSameFigures) {
  IdBackend a("a");
  ASSERT_EQ(start_with(yaml({a.address()})), "");
  for (int i = 0; i < 4; ++i) ASSERT_EQ(roundtrip(http_get("/", "a")).status, 200);
  HttpMessage m = admin("GET", "/stats");
  ASSERT_EQ(m.status, 200) << m.summary();
  EXPECT_EQ(m.header("content-type").value_or(""), "application/json");
  Json s = Json::parse(m.body, nullptr, false);
  ASSERT_TRUE(s.is_object()) << m.body;
  EXPECT_EQ(s["process"]["workers"], 2);
  EXPECT_EQ(s["process"]["driver"], io());
  EXPECT_EQ(s["process"]["ready"], true);
  ASSERT_EQ(s["listeners"].size(), 1u);
  EXPECT_EQ(s["listeners"][0]["name"], "web");
  EXPECT_EQ(s["listeners"][0]["requests"], 4);
  EXPECT_EQ(s["listeners"][0]["responses"]["2xx"], 4);
  ASSERT_EQ(s["clusters"].size(), 1u);
  EXPECT_EQ(s["clusters"][0]["endpoints"][0]["address"], a.address());
  EXPECT_EQ(s["clusters"][0]["endpoints"][0]["requests"], 4);
  EXPECT_EQ(s["clusters"][0]["endpoints"][0]["state"], "UP");
}

TEST_P(AdminIt, ReadyTurns503OnSigtermWhileHealthzStays200) {
  IdBackend a("a");
  ASSERT_EQ(start_with(yaml({a.address()}, "", "", "shutdown: { ready_delay: 3s, drain_timeout: 5s }\n")), "");
  EXPECT_EQ(admin("GET", "/healthz").status, 200);
  EXPECT_EQ(admin("GET", "/ready").status, 200);

  std::size_t from = lbd_->log_size();
  ASSERT_TRUE(lbd_->signal(SIGTERM));
  ASSERT_TRUE(lbd_->wait_log("SIGTERM: not ready", 5000ms, from));
  HttpMessage ready = admin("GET", "/ready");
  EXPECT_EQ(ready.status, 503) << ready.summary();
  EXPECT_EQ(admin("GET", "/healthz").status, 200);
  EXPECT_EQ(roundtrip(http_get("/", "a")).status, 200) << "traffic is still served during the ready_delay";
  EXPECT_EQ(lbd_->log().find("drained; exiting", from), std::string::npos) << "the ready_delay did not hold";
  ASSERT_TRUE(lbd_->wait_log("drained; exiting", 10000ms, from));
  auto exit = lbd_->wait_exit(10000ms);
  ASSERT_TRUE(exit.has_value());
  EXPECT_TRUE(exit->exited && exit->code == 0) << exit->to_string();
}

TEST_P(AdminIt, DrainAndEnableNeedTheTokenAndMoveTraffic) {
  IdBackend a("a"), b("b");
  ASSERT_EQ(start_with(yaml({a.address(), b.address()}, "", "token: s3cret")), "");
  const std::string drain = "/clusters/web/endpoints/" + a.address() + "/drain";
  const std::string enable = "/clusters/web/endpoints/" + a.address() + "/enable";

  EXPECT_EQ(admin("POST", drain).status, 401);
  EXPECT_EQ(admin("POST", drain, "Authorization: Bearer wrong\r\n").status, 401);
  EXPECT_EQ(state_of(a.address()), "UP") << "a refused POST changed the endpoint";
  EXPECT_EQ(count(bodies(4), "a"), 2);

  HttpMessage ok = admin("POST", drain, "Authorization: Bearer s3cret\r\n");
  ASSERT_EQ(ok.status, 200) << ok.summary();
  EXPECT_NE(ok.body.find("DRAIN"), std::string::npos) << ok.body;
  EXPECT_EQ(state_of(a.address()), "DRAIN");
  EXPECT_EQ(count(bodies(6), "b"), 6) << "a drained endpoint got new requests";

  ASSERT_EQ(admin("POST", enable, "Authorization: Bearer s3cret\r\n").status, 200);
  EXPECT_EQ(state_of(a.address()), "UP");
  EXPECT_EQ(count(bodies(6), "a"), 3);

  // Unknown names are 404 and change nothing; GETs stay open without the token.
  EXPECT_EQ(admin("POST", "/clusters/nope/endpoints/" + a.address() + "/drain", "Authorization: Bearer s3cret\r\n").status,
            404);
  EXPECT_EQ(admin("POST", "/clusters/web/endpoints/127.0.0.1:1/drain", "Authorization: Bearer s3cret\r\n").status, 404);
  EXPECT_EQ(admin("GET", "/metrics").status, 200);
}

TEST_P(AdminIt, BadAdminRequestsGetTheirStatusAndTheDataPlaneCarriesOn) {
  IdBackend a("a");
  ASSERT_EQ(start_with(yaml({a.address()})), "");
  EXPECT_EQ(admin("GET", "/nothing-here").status, 404);
  HttpMessage wrong_method = admin("GET", "/clusters/web/endpoints/" + a.address() + "/drain");
  EXPECT_EQ(wrong_method.status, 405);
  EXPECT_EQ(wrong_method.header("allow").value_or(""), "POST");
  EXPECT_EQ(admin("DELETE", "/metrics").status, 405);
  EXPECT_EQ(admin("POST", "/clusters/web/endpoints/" + a.address() + "/drain", "Content-Length: 10000000\r\n").status,
            413);
  {
    Fd c = connect_or_fail(admin_port_);
    ASSERT_TRUE(send_all(c.get(), "GET /metrics HTTP/1.1\r\nHost: admin\r\nno colon here\r\n\r\n"));
    HttpReader r(c.get());
    EXPECT_EQ(r.read_response().status, 400);
    EXPECT_EQ(r.wait_end(), End::kEof) << "the admin listener kept a connection after a malformed request";
  }
  EXPECT_EQ(state_of(a.address()), "UP");
  EXPECT_EQ(roundtrip(http_get("/", "a")).status, 200);
}

TEST_P(AdminIt, TcpDrainKeepsOpenSessionsAndSendsNewOnesElsewhere) {
  auto a = Backend::echo_loop("a", "a");
  auto b = Backend::echo_loop("b", "b");
  uint16_t tcp_port = free_port();
  std::string y = "workers: 2\nlog: { level: info, access_log: off }\n";
  y += "admin: { listen: 127.0.0.1:" + std::to_string(admin_port_) + " }\n";
  y += "listeners:\n  - name: db\n    listen: 127.0.0.1:" + std::to_string(tcp_port) +
       "\n    protocol: tcp\n    cluster: db\n";
  y += "clusters:\n  - name: db\n    endpoints:\n      - " + a->address() + "\n      - " + b->address() + "\n";
  ASSERT_EQ(start_yaml(y, {tcp_port, admin_port_}), "");
  auto greeting = [](int fd) { return read_exact(fd, 1).data; };

  // Round robin per worker: among a few sessions, some reach a; keep one of those open.
  std::vector<Fd> open;
  Fd on_a;
  for (int i = 0; i < 8 && !on_a; ++i) {
    Fd c = connect_or_fail(tcp_port);
    if (greeting(c.get()) == "a") on_a = std::move(c);
    else open.push_back(std::move(c));
  }
  ASSERT_TRUE(on_a) << "no session reached endpoint a";

  ASSERT_EQ(admin("POST", "/clusters/db/endpoints/" + a->address() + "/drain").status, 200);
  for (int i = 0; i < 8; ++i) {
    Fd c = connect_or_fail(tcp_port);
    EXPECT_EQ(greeting(c.get()), "b") << "a new session reached the drained endpoint";
  }
  ASSERT_TRUE(send_all(on_a.get(), "still here"));
  EXPECT_EQ(read_exact(on_a.get(), 10).data, "still here") << "draining cut an open session";
}

TEST_P(AdminIt, StatusPageShowsAnEndpointThatWentDown) {
  if (test::find_chromium().empty()) GTEST_SKIP() << "chromium is not installed (Debian: chromium)";
  IdBackend a("a"), b("b");
  const std::string checks =
      "    health_check: { type: http, path: /healthz, interval: 100ms, timeout: 1s, rise: 1, fall: 1 }\n";
  ASSERT_EQ(start_with(yaml({a.address(), b.address()}, checks)), "");
  const std::string url = "http://127.0.0.1:" + std::to_string(admin_port_) + "/status";
  auto row = [](const std::string& endpoint, const std::string& state) {
    return "data-cluster=\"web\" data-endpoint=\"" + endpoint + "\" data-state=\"" + state + "\"";
  };

  test::CommandResult first = test::chromium_dump_dom(url, 3000);
  ASSERT_TRUE(first.ok()) << first.errors;
  EXPECT_NE(first.output.find(row(b.address(), "UP")), std::string::npos) << first.output;
  EXPECT_NE(first.output.find("data-listener=\"web\""), std::string::npos);

  std::size_t from = lbd_->log_size();
  b.set_health(503);
  ASSERT_TRUE(lbd_->wait_log("endpoint " + b.address() + " is DOWN", 5000ms, from));
  test::CommandResult second = test::chromium_dump_dom(url, 3000);
  ASSERT_TRUE(second.ok()) << second.errors;
  EXPECT_NE(second.output.find(row(b.address(), "DOWN")), std::string::npos) << second.output;
  EXPECT_NE(second.output.find(row(a.address(), "UP")), std::string::npos);
}

TEST_P(AdminIt, ReloadMovesTheAdminListenerAndKeepsItWhenTheNewAddressIsTaken) {
  IdBackend a("a");
  ASSERT_EQ(start_with(yaml({a.address()})), "");
  ASSERT_EQ(admin("GET", "/healthz").status, 200);
  const uint16_t first = admin_port_;

  admin_port_ = free_port();
  std::string log = reload(yaml({a.address()}));
  EXPECT_NE(log.find("reload done"), std::string::npos) << log;
  EXPECT_EQ(admin("GET", "/healthz").status, 200);
  EXPECT_FALSE(connect_to(first).fd) << "the old admin address still accepts";

  // A taken address: the reload reports it, and the admin listener stays where it was.
  TakenPort taken;
  const uint16_t busy = taken.port;
  const uint16_t kept = admin_port_;
  admin_port_ = busy;
  log = reload(yaml({a.address()}));
  EXPECT_NE(log.find("admin.listen: bind 127.0.0.1:" + std::to_string(busy)), std::string::npos) << log;
  EXPECT_NE(log.find("the admin listener stays on 127.0.0.1:" + std::to_string(kept)), std::string::npos) << log;
  EXPECT_EQ(admin("GET", "/healthz", "", kept).status, 200);
  EXPECT_EQ(admin("GET", "/stats", "", kept).status, 200);
  EXPECT_EQ(roundtrip(http_get("/", "a")).status, 200);
}

TEST_P(AdminIt, StartFailsWhenTheAdminAddressIsTaken) {
  IdBackend a("a");
  TakenPort taken;
  admin_port_ = taken.port;
  write_file(config_path(), yaml({a.address()}));
  LbdProcess p({"--config", config_path(), "--io", io()}, log_path(), io());
  auto exit = p.wait_exit(10000ms);
  ASSERT_TRUE(exit.has_value()) << "lbd started with its admin address taken";
  EXPECT_TRUE(exit->exited && exit->code == 1) << exit->to_string();
  EXPECT_NE(p.log().find("admin.listen: bind 127.0.0.1:" + std::to_string(admin_port_) + ": Address already in use"),
            std::string::npos)
      << p.log();
}

LBD_INSTANTIATE_DRIVERS(AdminIt);

}  // namespace
}  // namespace lbd::it
