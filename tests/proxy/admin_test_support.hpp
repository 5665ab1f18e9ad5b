#pragma once
// What the admin tests share: a fake AdminBackend whose answers the test sets, and Reports to
// render — a small one with every endpoint state and hostile names, and a realistic one for the
// status page's screenshot.

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "proxy/admin/admin_backend.hpp"
#include "proxy/core/report.hpp"

namespace lbd::test {

using proxy::AdminAnswer;
using proxy::ClusterReport;
using proxy::EndpointAction;
using proxy::EndpointReport;
using proxy::ListenerReport;
using proxy::Report;

/// An endpoint in `state` ("UP", "DOWN", "DRAIN", "EJECTED") as the control thread would report it.
inline EndpointReport endpoint(std::string address, std::string_view state, uint32_t weight = 1) {
  EndpointReport e;
  e.address = std::move(address);
  e.weight = weight;
  e.down = state == "DOWN";
  e.drained = state == "DRAIN";
  e.ejected_in = state == "EJECTED" ? 1 : 0;
  return e;
}

/// Two listeners, a cluster "web" with an endpoint in each state, and a cluster whose name
/// needs escaping in every format.
inline Report small_report() {
  Report r;
  r.process.version = "0.1.0";
  r.process.driver = "io_uring";
  r.process.workers = 2;
  r.process.start_time = 1700000000.5;
  r.process.config_generation = 3;
  r.process.reloads_ok = 2;
  r.process.reloads_failed = 1;
  r.process.ready = true;

  ListenerReport web;
  web.name = "web";
  web.address = "127.0.0.1:8080";
  web.protocol = "http";
  web.stats.accepted = 120;
  web.stats.active = 7;
  web.stats.rejected_over_limit = 4;
  web.stats.bytes_from_client = 50000;
  web.stats.bytes_to_client = 900000;
  web.stats.requests = 1000;
  web.stats.responses = {1, 950, 20, 19, 10};
  web.stats.connect_refused = 5;
  web.stats.connect_timeout = 2;
  web.stats.connect_other = 1;
  web.stats.no_upstream = 3;
  web.stats.idle_timeouts = 6;
  web.stats.client_errors = 8;
  web.stats.upstream_errors = 9;
  web.stats.http_errors = 29;
  ListenerReport db;
  db.name = "db";
  db.address = "127.0.0.1:5432";
  db.protocol = "tcp";
  db.stats.accepted = 42;
  db.stats.active = 2;
  r.listeners = {web, db};

  ClusterReport c;
  c.name = "web";
  c.balance = "round_robin";
  EndpointReport up = endpoint("127.0.0.1:8081", "UP", 3);
  up.stats.requests = 600;
  up.stats.responses = {0, 590, 5, 3, 2};
  up.stats.connect_refused = 1;
  up.stats.failures = 3;
  up.active = 4;
  up.idle = 6;
  up.checked = true;
  up.last_check = "HTTP 200 in 1.2ms";
  // 0.003 s x2 (<= 0.005), 0.02 s (<= 0.025), 0.3 s (<= 0.5), 20 s (+Inf).
  for (double s : {0.003, 0.003, 0.02, 0.3, 20.0}) up.stats.count_response_time(s);
  EndpointReport down = endpoint("127.0.0.1:8082", "DOWN");
  down.checked = true;
  down.last_check = "connect: connection refused";
  down.check_failures = 12;
  down.transitions = 1;
  EndpointReport drain = endpoint("[::1]:8083", "DRAIN", 2);
  EndpointReport ejected = endpoint("127.0.0.1:8084", "EJECTED");
  ejected.stats.ejections = 2;
  ejected.stats.failures = 9;
  c.endpoints = {up, down, drain, ejected};

  ClusterReport odd;
  odd.name = "we\"ird\\name\nx";
  odd.balance = "least_conn";
  odd.endpoints = {endpoint("10.0.0.1:80", "UP")};
  r.clusters = {c, odd};
  return r;
}

/// A day's worth of traffic through three listeners and three clusters, for the screenshot.
inline Report realistic_report() {
  Report r = small_report();
  r.process.start_time = 0;  // set by the caller to now minus an uptime
  r.process.workers = 8;
  r.listeners[0].name = "public-http";
  r.listeners[0].address = "0.0.0.0:80";
  r.listeners[0].stats.accepted = 1834201;
  r.listeners[0].stats.active = 412;
  r.listeners[0].stats.requests = 9420117;
  r.listeners[0].stats.responses = {0, 9120332, 210044, 80112, 9629};
  r.listeners[0].stats.bytes_from_client = 3'200'000'000ull;
  r.listeners[0].stats.bytes_to_client = 91'000'000'000ull;
  ListenerReport api = r.listeners[0];
  api.name = "api";
  api.address = "0.0.0.0:8443";
  api.stats.accepted = 220113;
  api.stats.active = 96;
  api.stats.requests = 4410009;
  api.stats.responses = {0, 4300100, 1200, 100400, 8309};
  r.listeners[1].name = "postgres";
  r.listeners[1].address = "0.0.0.0:5432";
  r.listeners[1].stats.accepted = 5120;
  r.listeners[1].stats.active = 38;
  r.listeners[1].stats.bytes_from_client = 880'000'000ull;
  r.listeners[1].stats.bytes_to_client = 14'000'000'000ull;
  r.listeners.insert(r.listeners.begin() + 1, api);

  ClusterReport& web = r.clusters[0];
  const char* checks[] = {"HTTP 200 in 0.8ms", "connect: connection refused", "HTTP 200 in 1.1ms", "HTTP 200 in 0.9ms"};
  for (std::size_t i = 0; i < web.endpoints.size(); ++i) {
    EndpointReport& e = web.endpoints[i];
    e.address = "10.0.1." + std::to_string(11 + i) + ":8080";
    e.stats.requests = 2'300'000 + 17'000 * i;
    e.stats.responses = {0, 2'250'000 + 9000 * i, 30000, 12000, 200 + 900 * i};
    for (int k = 0; k < 200; ++k) e.stats.count_response_time(0.002 + 0.0004 * k);
    e.active = e.health() == proxy::EndpointHealth::kUp ? 40 + 7 * i : 0;
    e.idle = e.health() == proxy::EndpointHealth::kUp ? 12 : 0;
    e.checked = true;
    e.last_check = checks[i];
  }
  ClusterReport api_cluster;
  api_cluster.name = "api";
  api_cluster.balance = "least_conn";
  for (int i = 0; i < 3; ++i) {
    EndpointReport e = endpoint("10.0.2." + std::to_string(21 + i) + ":9000", "UP", 2);
    e.stats.requests = 1'400'000 + 3000 * i;
    e.stats.responses = {0, 1'390'000, 400, 33000, 2500};
    e.active = 20 + i;
    e.idle = 8;
    e.checked = true;
    e.last_check = "HTTP 200 in 2.4ms";
    api_cluster.endpoints.push_back(e);
  }
  ClusterReport pg;
  pg.name = "pg";
  pg.balance = "hash";
  EndpointReport primary = endpoint("10.0.3.5:5432", "UP");
  primary.stats.requests = 5100;
  primary.active = 38;
  primary.checked = true;
  primary.last_check = "connect in 0.3ms";
  pg.endpoints = {primary};
  r.clusters = {web, api_cluster, pg};
  return r;
}

/// An AdminBackend whose answers the test sets, and which records what it was asked.
class FakeBackend final : public proxy::AdminBackend {
 public:
  struct Call {
    std::string cluster;
    std::string address;
    EndpointAction action;
  };

  /// report() answers reports[min(report_calls, size - 1)]: a test can have the state change
  /// from one call to the next.
  std::vector<Report> reports{small_report()};
  bool is_ready = true;
  std::string admin_token;
  AdminAnswer answer{200, "ok"};
  std::vector<Call> calls;
  int report_calls = 0;

  Task<Report> report() override {
    std::size_t i = std::min<std::size_t>(static_cast<std::size_t>(report_calls), reports.size() - 1);
    ++report_calls;
    Report r = reports[i];
    if (r.process.report_time == 0)  // as lbd does: the time it was gathered
      r.process.report_time = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    co_return r;
  }
  bool ready() const override { return is_ready; }
  Task<AdminAnswer> set_endpoint(std::string cluster, std::string address, EndpointAction action) override {
    calls.push_back({cluster, address, action});
    co_return answer;
  }
  std::string token() const override { return admin_token; }
};

}  // namespace lbd::test
