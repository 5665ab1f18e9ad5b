// Tests config/loader.cpp and config/config.cpp: what a file turns into, and exactly what the
// user reads when it is wrong.
#include "config/config.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

namespace lbd::config {
namespace {

using namespace std::chrono_literals;

// Tests write YAML as R"(...)" starting on the line after the opening parenthesis; dropping
// that first newline makes line 1 of the file the first line of YAML in the test.
std::string yaml(std::string_view text) {
  if (text.starts_with('\n')) text.remove_prefix(1);
  return std::string(text);
}

Config load_ok(std::string_view text) {
  auto result = load_config_string(yaml(text), "lb.yaml");
  EXPECT_TRUE(result.has_value()) << result.error_report();
  return result.has_value() ? std::move(result).value() : Config{};
}

std::vector<std::string> errors_of(std::string_view text) {
  auto result = load_config_string(yaml(text), "lb.yaml");
  EXPECT_FALSE(result.has_value()) << "expected errors, the file loaded";
  std::vector<std::string> lines;
  for (const auto& e : result.errors()) lines.push_back(e.to_string());
  return lines;
}

SocketAddress addr(std::string_view text) { return SocketAddress::parse(text).value(); }

using Lines = std::vector<std::string>;

// A valid tail for files whose errors are elsewhere.
constexpr std::string_view kOneCluster = R"(
clusters:
  - name: web
    endpoints: [127.0.0.1:9001]
)";

// ---------------------------------------------------------------------------------------------
// Valid files

// The sketch in DESIGN.md, verbatim. It is a sketch: it routes to clusters it does not define
// and shows hash_key on a round_robin cluster. The loader must say exactly that, and nothing
// else.
constexpr std::string_view kDesignSketch = R"(
workers: auto              # threads; auto = one per CPU
io: auto                   # auto | io_uring | epoll
log: { level: info, access_log: stdout, access_log_format: combined }   # or json
admin: { listen: 127.0.0.1:9901 }
shutdown: { drain_timeout: 30s }
listeners:
  - name: web
    listen: 0.0.0.0:8080
    protocol: http
    max_connections: 10000
    timeouts: { header: 10s, idle: 60s }
    limits: { max_request_line: 8KiB, max_header_bytes: 32KiB }
    routes:
      - match: { host: api.example.com, path_prefix: /v1/ }
        cluster: api
      - match: { path_prefix: / }
        cluster: web
  - name: db
    listen: 0.0.0.0:5432
    protocol: tcp
    cluster: pg
clusters:
  - name: web
    balance: round_robin   # round_robin | least_conn | random_two | hash
    hash_key: source_ip    # for hash: source_ip | header:NAME
    endpoints:
      - { address: 10.0.0.11:8080, weight: 3 }
      - { address: 10.0.0.12:8080 }
    timeouts: { connect: 1s, read: 30s, idle: 60s }
    keepalive: { max_idle: 64, idle_timeout: 30s, burst_hold: 250ms }
    max_connections: 1024
    retries: 1
    health_check: { type: http, path: /healthz, interval: 2s, timeout: 1s, rise: 2, fall: 3 }
)";

TEST(DesignSketch, VerbatimReportsOnlyItsThreeGaps) {
  EXPECT_EQ(
      errors_of(kDesignSketch),
      (Lines{
          R"(lb.yaml:15:18: listeners[0].routes[0].cluster: unknown cluster "api" (defined clusters: web))",
          R"(lb.yaml:21:14: listeners[1].cluster: unknown cluster "pg" (defined clusters: web))",
          R"(lb.yaml:25:5: clusters[0].hash_key: only valid with balance: hash (balance is round_robin))",
      }));
}

TEST(DesignSketch, CompletedLoadsEveryValue) {
  // The sketch with its gaps filled: balance: hash, and the two clusters it names.
  std::string text(kDesignSketch);
  text.replace(text.find("balance: round_robin"), 20, "balance: hash       ");
  text += R"(  - name: api
    endpoints: [10.0.1.1:80]
  - name: pg
    balance: least_conn
    endpoints: ["[fd00::5]:5432", unix:/run/pg.sock]
)";
  const Config c = load_ok(text);

  EXPECT_EQ(c.workers, 0);
  EXPECT_EQ(c.io, IoMode::kAuto);
  EXPECT_EQ(c.log.level, LogLevel::kInfo);
  EXPECT_EQ(c.log.access_log, "stdout");
  EXPECT_EQ(c.log.access_log_format, AccessLogFormat::kCombined);
  EXPECT_EQ(c.admin.listen, addr("127.0.0.1:9901"));
  EXPECT_EQ(c.shutdown.drain_timeout, 30s);
  EXPECT_EQ(c.source_path, "lb.yaml");

  ASSERT_EQ(c.listeners.size(), 2u);
  const ListenerConfig& web = c.listeners[0];
  EXPECT_EQ(web.name, "web");
  EXPECT_EQ(web.listen, addr("0.0.0.0:8080"));
  EXPECT_EQ(web.protocol, Protocol::kHttp);
  EXPECT_EQ(web.max_connections, 10000u);
  EXPECT_EQ(web.timeouts.header, 10s);
  EXPECT_EQ(web.timeouts.idle, 60s);
  EXPECT_EQ(web.limits.max_request_line, 8u * 1024);
  EXPECT_EQ(web.limits.max_header_bytes, 32u * 1024);
  ASSERT_EQ(web.routes.size(), 2u);
  EXPECT_EQ(web.routes[0].match.host, "api.example.com");
  EXPECT_EQ(web.routes[0].match.path_prefix, "/v1/");
  EXPECT_EQ(web.routes[0].cluster, "api");
  EXPECT_EQ(web.routes[1].match.host, std::nullopt);
  EXPECT_EQ(web.routes[1].match.path_prefix, "/");
  EXPECT_EQ(web.routes[1].cluster, "web");

  const ListenerConfig& db = c.listeners[1];
  EXPECT_EQ(db.protocol, Protocol::kTcp);
  EXPECT_EQ(db.cluster, "pg");
  EXPECT_EQ(db.listen.port(), 5432);

  ASSERT_EQ(c.clusters.size(), 3u);
  const ClusterConfig& w = c.clusters[0];
  EXPECT_EQ(w.balance, balancer::BalanceKind::kHash);
  EXPECT_EQ(w.hash_key.kind, HashKeyKind::kSourceIp);
  ASSERT_EQ(w.endpoints.size(), 2u);
  EXPECT_EQ(w.endpoints[0].address, addr("10.0.0.11:8080"));
  EXPECT_EQ(w.endpoints[0].weight, 3u);
  EXPECT_EQ(w.endpoints[1].address, addr("10.0.0.12:8080"));
  EXPECT_EQ(w.endpoints[1].weight, 1u);
  EXPECT_EQ(w.timeouts.connect, 1s);
  EXPECT_EQ(w.timeouts.read, 30s);
  EXPECT_EQ(w.timeouts.idle, 60s);
  EXPECT_EQ(w.keepalive.max_idle, 64u);
  EXPECT_EQ(w.keepalive.idle_timeout, 30s);
  EXPECT_EQ(w.keepalive.burst_hold, 250ms);
  EXPECT_EQ(w.max_connections, 1024u);
  EXPECT_EQ(w.retries, 1u);
  ASSERT_TRUE(w.health_check.has_value());
  EXPECT_EQ(w.health_check->type, HealthCheckType::kHttp);
  EXPECT_EQ(w.health_check->path, "/healthz");
  EXPECT_EQ(w.health_check->interval, 2s);
  EXPECT_EQ(w.health_check->timeout, 1s);
  EXPECT_EQ(w.health_check->rise, 2u);
  EXPECT_EQ(w.health_check->fall, 3u);

  const ClusterConfig* pg = c.find_cluster("pg");
  ASSERT_NE(pg, nullptr);
  EXPECT_EQ(pg->balance, balancer::BalanceKind::kLeastConn);
  ASSERT_EQ(pg->endpoints.size(), 2u);
  EXPECT_TRUE(pg->endpoints[0].address.is_ipv6());
  EXPECT_EQ(pg->endpoints[1].address, addr("unix:/run/pg.sock"));
  EXPECT_EQ(c.find_cluster("nope"), nullptr);
}

TEST(MinimalFile, GetsTheDocumentedDefaults) {
  const Config c = load_ok(R"(
listeners:
  - name: in
    listen: 127.0.0.1:8080
    protocol: http
    cluster: web
clusters:
  - name: web
    endpoints: [127.0.0.1:9001]
    health_check: {}
)");
  EXPECT_EQ(c.workers, 0);
  EXPECT_EQ(c.io, IoMode::kAuto);
  EXPECT_EQ(c.log.level, LogLevel::kInfo);
  EXPECT_EQ(c.log.access_log, "stdout");
  EXPECT_EQ(c.log.access_log_format, AccessLogFormat::kCombined);
  EXPECT_EQ(c.log.error_log, "stderr");
  EXPECT_FALSE(c.admin.listen.has_value());
  EXPECT_EQ(c.shutdown.drain_timeout, 30s);

  ASSERT_EQ(c.listeners.size(), 1u);
  const ListenerConfig& l = c.listeners[0];
  EXPECT_EQ(l.max_connections, 10000u);
  EXPECT_EQ(l.backlog, 511);
  EXPECT_EQ(l.timeouts.header, 60s);
  EXPECT_EQ(l.timeouts.idle, 60s);
  EXPECT_EQ(l.timeouts.request_body, 60s);
  EXPECT_EQ(l.limits.max_request_line, 8192u);
  EXPECT_EQ(l.limits.max_header_bytes, 32768u);
  EXPECT_EQ(l.limits.max_body_size, 0u);
  EXPECT_TRUE(l.forwarded_headers.x_forwarded_for);
  EXPECT_TRUE(l.forwarded_headers.x_forwarded_proto);
  EXPECT_TRUE(l.forwarded_headers.x_forwarded_host);
  EXPECT_TRUE(l.routes.empty());

  ASSERT_EQ(c.clusters.size(), 1u);
  const ClusterConfig& w = c.clusters[0];
  EXPECT_EQ(w.balance, balancer::BalanceKind::kRoundRobin);
  EXPECT_EQ(w.endpoints[0].weight, 1u);
  EXPECT_EQ(w.timeouts.connect, 5s);
  EXPECT_EQ(w.timeouts.read, 60s);
  EXPECT_EQ(w.timeouts.write, 60s);
  EXPECT_EQ(w.timeouts.idle, 10min);
  EXPECT_EQ(w.keepalive.max_idle, 32u);
  EXPECT_EQ(w.keepalive.idle_timeout, 60s);
  EXPECT_EQ(w.keepalive.burst_hold, 1s);
  EXPECT_EQ(w.max_connections, 0u);
  EXPECT_EQ(w.retries, 1u);
  ASSERT_TRUE(w.health_check.has_value());  // present but empty: all check defaults
  EXPECT_EQ(w.health_check->type, HealthCheckType::kTcp);
  EXPECT_EQ(w.health_check->path, "/");
  EXPECT_EQ(w.health_check->interval, 2s);
  EXPECT_EQ(w.health_check->timeout, 1s);
  EXPECT_EQ(w.health_check->rise, 2u);
  EXPECT_EQ(w.health_check->fall, 3u);
  EXPECT_EQ(w.health_check->host, "");
  EXPECT_EQ(w.health_check->expect_status, (std::vector<StatusRange>{{200, 399}}));
  EXPECT_EQ(w.health_check->jitter, 0s);
  EXPECT_EQ(w.outlier, std::nullopt);  // absent: no passive ejection
  EXPECT_EQ(c.admin.token, std::nullopt);
  EXPECT_EQ(c.shutdown.ready_delay, 0s);
}

TEST(MinimalFile, TcpListenerIdleDefaultsToTenMinutesUnlessSet) {
  const Config c = load_ok(R"(
listeners:
  - { name: a, listen: 127.0.0.1:5000, protocol: tcp, cluster: web }
  - { name: b, listen: 127.0.0.1:5001, protocol: tcp, cluster: web, timeouts: { idle: 5s } }
  - { name: c, listen: 127.0.0.1:5002, protocol: http, cluster: web }
clusters:
  - name: web
    endpoints: [127.0.0.1:9001]
)");
  EXPECT_EQ(c.listeners[0].timeouts.idle, 10min);
  EXPECT_EQ(c.listeners[1].timeouts.idle, 5s);
  EXPECT_EQ(c.listeners[2].timeouts.idle, 60s);
}

TEST(ValidFile, ReadsRoutesHeadersAndBalancerOptions) {
  const Config c = load_ok(R"(
workers: 4
io: epoll
log: { level: debug, access_log: /var/log/lbd/access.log, access_log_format: json, error_log: stdout }
shutdown: { drain_timeout: 0 }
listeners:
  - name: edge.v1
    listen: "[::1]:8080"
    protocol: http
    backlog: 4096
    timeouts: { header: 250ms, idle: 2m, request_body: 1h }
    limits: { max_request_line: 512B, max_header_bytes: 1MiB, max_body_size: 2GiB }
    forwarded_headers: { x_forwarded_for: false, x_forwarded_host: false }
    routes:
      - match:
          host: "*.Example.COM"
          path_prefix: /api/
          methods: [GET, HEAD]
          headers: { X-Canary: "1", Accept: "" }
        cluster: api
        rewrite_prefix: /
        request_headers: { add: { X-Env: prod, Host: internal }, remove: [X-Debug, Host] }
        response_headers: { remove: [Server] }
      - match: { path: /healthz, method: GET }
        cluster: api
      - cluster: api
  - name: sock
    listen: unix:/run/lbd.sock
    protocol: tcp
    cluster: api
clusters:
  - name: api
    balance: hash
    hash_key: header:X-User-ID
    endpoints: [10.0.0.1:80, { address: 10.0.0.2:80, weight: 256 }]
    keepalive: { max_idle: 0 }
    max_connections: 1
    retries: 0
    health_check: { type: http }
)");
  EXPECT_EQ(c.workers, 4);
  EXPECT_EQ(c.io, IoMode::kEpoll);
  EXPECT_EQ(c.log.level, LogLevel::kDebug);
  EXPECT_EQ(c.log.access_log, "/var/log/lbd/access.log");
  EXPECT_EQ(c.log.access_log_format, AccessLogFormat::kJson);
  EXPECT_EQ(c.log.error_log, "stdout");
  EXPECT_EQ(c.shutdown.drain_timeout, 0ms);

  const ListenerConfig& l = c.listeners[0];
  EXPECT_EQ(l.name, "edge.v1");
  EXPECT_EQ(l.listen, addr("[::1]:8080"));
  EXPECT_EQ(l.backlog, 4096);
  EXPECT_EQ(l.timeouts.header, 250ms);
  EXPECT_EQ(l.timeouts.idle, 2min);
  EXPECT_EQ(l.timeouts.request_body, 1h);
  EXPECT_EQ(l.limits.max_request_line, 512u);
  EXPECT_EQ(l.limits.max_header_bytes, 1u << 20);
  EXPECT_EQ(l.limits.max_body_size, 2ull << 30);
  EXPECT_FALSE(l.forwarded_headers.x_forwarded_for);
  EXPECT_TRUE(l.forwarded_headers.x_forwarded_proto);
  EXPECT_FALSE(l.forwarded_headers.x_forwarded_host);

  ASSERT_EQ(l.routes.size(), 3u);
  const RouteConfig& r = l.routes[0];
  EXPECT_EQ(r.match.host, "*.example.com");  // host patterns are case-insensitive: lowercased
  EXPECT_EQ(r.match.path_prefix, "/api/");
  EXPECT_EQ(r.match.methods, (std::vector<std::string>{"GET", "HEAD"}));
  EXPECT_EQ(r.match.headers, (std::vector<http::FieldLine>{{"x-canary", "1"}, {"accept", ""}}));
  EXPECT_EQ(r.rewrite_prefix, "/");
  EXPECT_EQ(r.request_headers.add,
            (std::vector<http::FieldLine>{{"X-Env", "prod"}, {"Host", "internal"}}));
  EXPECT_EQ(r.request_headers.remove, (std::vector<std::string>{"x-debug", "host"}));
  EXPECT_TRUE(r.response_headers.add.empty());
  EXPECT_EQ(r.response_headers.remove, (std::vector<std::string>{"server"}));
  EXPECT_EQ(l.routes[1].match.path, "/healthz");
  EXPECT_EQ(l.routes[1].match.path_prefix, std::nullopt);
  EXPECT_EQ(l.routes[1].match.methods, (std::vector<std::string>{"GET"}));
  EXPECT_EQ(l.routes[2].match, RouteMatch{});  // no match: every request

  EXPECT_EQ(c.listeners[1].listen, addr("unix:/run/lbd.sock"));

  const ClusterConfig& api = c.clusters[0];
  EXPECT_EQ(api.balance, balancer::BalanceKind::kHash);
  EXPECT_EQ(api.hash_key.kind, HashKeyKind::kHeader);
  EXPECT_EQ(api.hash_key.header_name, "x-user-id");
  EXPECT_EQ(api.endpoints[0].weight, 1u);
  EXPECT_EQ(api.endpoints[1].weight, 256u);
  EXPECT_EQ(api.keepalive.max_idle, 0u);
  EXPECT_EQ(api.max_connections, 1u);
  EXPECT_EQ(api.retries, 0u);
  EXPECT_EQ(api.health_check->type, HealthCheckType::kHttp);
  EXPECT_EQ(api.health_check->path, "/");
}

TEST(ValidFile, AnchorsAndAliasesAreFollowed) {
  const Config c = load_ok(R"(
listeners:
  - { name: a, listen: 127.0.0.1:5000, protocol: tcp, cluster: one }
  - { name: b, listen: 127.0.0.1:5001, protocol: tcp, cluster: two }
clusters:
  - name: one
    endpoints: [127.0.0.1:9001]
    timeouts: &fast { connect: 100ms, read: 1s }
  - name: two
    endpoints: [127.0.0.1:9002]
    timeouts: *fast
)");
  EXPECT_EQ(c.clusters[1].timeouts.connect, 100ms);
  EXPECT_EQ(c.clusters[1].timeouts.read, 1s);
}

TEST(ValidFile, PortZeroListenersDoNotClash) {
  // Tests bind port 0; two listeners asking for "any free port" are not the same address.
  const Config c = load_ok(R"(
listeners:
  - { name: a, listen: 127.0.0.1:0, protocol: tcp, cluster: web }
  - { name: b, listen: 127.0.0.1:0, protocol: tcp, cluster: web }
  - { name: c, listen: 0.0.0.0:0, protocol: tcp, cluster: web }
)" + std::string(kOneCluster));
  EXPECT_EQ(c.listeners.size(), 3u);
}

TEST(ValidFile, SameTextLoadsToEqualConfigs) {
  // Reload compares snapshots; equality must see every field.
  const std::string text = R"(
listeners:
  - { name: a, listen: 127.0.0.1:5000, protocol: tcp, cluster: web }
)" + std::string(kOneCluster);
  Config first = load_ok(text);
  const Config second = load_ok(text);
  EXPECT_EQ(first, second);
  first.clusters[0].keepalive.idle_timeout = 1s;
  EXPECT_NE(first, second);
}

std::string source_dir() {
  if (const char* dir = std::getenv("LBD_SOURCE_DIR"); dir && *dir) return dir;
  return LBD_SOURCE_DIR_FALLBACK;
}

TEST(ExampleConfig, LoadsAndItsDefaultMarkersAreTrue) {
  const std::string path = source_dir() + "/deploy/lb.example.yaml";
  auto result = load_config_file(path);
  ASSERT_TRUE(result.has_value()) << result.error_report();
  const Config& c = *result;
  EXPECT_EQ(c.source_path, path);

  // What the quick start relies on.
  EXPECT_EQ(c.admin.listen, addr("127.0.0.1:9901"));
  ASSERT_EQ(c.listeners.size(), 2u);
  const ListenerConfig& http = c.listeners[0];
  EXPECT_EQ(http.listen, addr("127.0.0.1:8080"));
  EXPECT_EQ(http.protocol, Protocol::kHttp);
  ASSERT_FALSE(http.routes.empty());
  EXPECT_EQ(http.routes[0].cluster, "web");
  const ListenerConfig& tcp = c.listeners[1];
  EXPECT_EQ(tcp.listen, addr("127.0.0.1:8443"));
  EXPECT_EQ(tcp.protocol, Protocol::kTcp);
  EXPECT_EQ(tcp.cluster, "tcp_echo");
  const ClusterConfig* web = c.find_cluster("web");
  ASSERT_NE(web, nullptr);
  ASSERT_EQ(web->endpoints.size(), 2u);
  EXPECT_EQ(web->endpoints[0].address, addr("127.0.0.1:9001"));
  EXPECT_EQ(web->endpoints[1].address, addr("127.0.0.1:9002"));
  const ClusterConfig* echo = c.find_cluster("tcp_echo");
  ASSERT_NE(echo, nullptr);
  ASSERT_EQ(echo->endpoints.size(), 1u);
  EXPECT_EQ(echo->endpoints[0].address, addr("127.0.0.1:9001"));

  // The file marks these sections "(default)": they must equal what the code defaults to, or
  // the reference config lies.
  EXPECT_EQ(c.workers, 0);
  EXPECT_EQ(c.io, IoMode::kAuto);
  EXPECT_EQ(c.log, LogConfig{});
  EXPECT_EQ(c.shutdown, ShutdownConfig{});
  EXPECT_EQ(http.max_connections, ListenerConfig{}.max_connections);
  EXPECT_EQ(http.backlog, ListenerConfig{}.backlog);
  EXPECT_EQ(http.timeouts, ListenerTimeouts{});
  EXPECT_EQ(http.limits, Limits{});
  EXPECT_EQ(http.forwarded_headers, ForwardedHeaders{});
  EXPECT_EQ(tcp.timeouts.idle, ListenerTimeouts::kTcpIdleDefault);
  EXPECT_EQ(web->balance, balancer::BalanceKind::kRoundRobin);
  EXPECT_EQ(web->timeouts, ClusterTimeouts{});
  EXPECT_EQ(web->keepalive, Keepalive{});
  EXPECT_EQ(web->max_connections, ClusterConfig{}.max_connections);
  EXPECT_EQ(web->retries, ClusterConfig{}.retries);
  // The example checks over HTTP (type and path are its own); the rest is marked "(default)".
  ASSERT_TRUE(web->health_check.has_value());
  HealthCheck check = *web->health_check;
  EXPECT_EQ(check.type, HealthCheckType::kHttp);
  EXPECT_EQ(check.path, "/healthz");
  check.type = HealthCheck{}.type;
  check.path = HealthCheck{}.path;
  EXPECT_EQ(check, HealthCheck{});
  EXPECT_EQ(web->outlier, Outlier{});
}

// ---------------------------------------------------------------------------------------------
// Invalid files: the exact text the user reads

TEST(Errors, MatchTheFormatInTheDocs) {
  // The example in the issue: file:line:column, key path, what is wrong and what would be right.
  EXPECT_EQ(
      errors_of(R"(
listeners:
  - name: a
    listen: 127.0.0.1:80
    protocol: tcp
    cluster: web
clusters:
  - name: web
    endpoints:
      - 127.0.0.1:9001
  - name: other
    endpoints:
      - address: 10.0.0:80
)"),
      (Lines{
          R"(lb.yaml:12:18: clusters[1].endpoints[0].address: invalid address "10.0.0:80" (expected ip:port, [ipv6]:port or unix:/path))"}));
}

TEST(Errors, YamlSyntaxErrorIsOneErrorWithItsPosition) {
  EXPECT_EQ(errors_of("listeners:\n  - name: [a, b\n"),
            (Lines{"lb.yaml:3:1: invalid YAML: end of sequence flow not found"}));
  EXPECT_EQ(errors_of("workers: 1\n  io: auto\n"),
            (Lines{"lb.yaml:2:5: invalid YAML: illegal map value"}));
}

TEST(Errors, FileLevelShapeProblems) {
  EXPECT_EQ(errors_of(""),
            (Lines{"lb.yaml: empty config (expected a map with listeners and clusters)"}));
  EXPECT_EQ(errors_of("# nothing but a comment\n"),
            (Lines{"lb.yaml: empty config (expected a map with listeners and clusters)"}));
  EXPECT_EQ(errors_of("- listeners\n"), (Lines{"lb.yaml:1:1: expected a map, got a list"}));
  EXPECT_EQ(errors_of("workers: 2\n---\nworkers: 3\n"),
            (Lines{"lb.yaml:3:1: more than one YAML document (a config is exactly one)"}));
  EXPECT_EQ(errors_of("workers: 2\n"), (Lines{R"(lb.yaml:1:1: missing required key "listeners")"}));
  EXPECT_EQ(errors_of("listeners: []\n"),
            (Lines{"lb.yaml:1:12: listeners: expected at least one listener"}));
}

TEST(Errors, UnknownKeysSuggestTheNearestKeyOrListTheValidOnes) {
  EXPECT_EQ(
      errors_of(R"(
wrokers: 2
listeners:
  - name: a
    listen: 127.0.0.1:80
    protocol: tcp
    cluster: web
    timeots: { idle: 1s }
clusters:
  - name: web
    endpoints: [127.0.0.1:9001]
    helth_check: {}
    timeouts: { conect: 1s, frobnicate: 2 }
)"),
      (Lines{
          R"(lb.yaml:1:1: unknown key "wrokers" (did you mean "workers"?))",
          R"(lb.yaml:7:5: listeners[0]: unknown key "timeots" (did you mean "timeouts"?))",
          R"(lb.yaml:11:5: clusters[0]: unknown key "helth_check" (did you mean "health_check"?))",
          R"(lb.yaml:12:17: clusters[0].timeouts: unknown key "conect" (did you mean "connect"?))",
          R"(lb.yaml:12:29: clusters[0].timeouts: unknown key "frobnicate" (valid keys: connect, read, write, idle))",
      }));
}

TEST(Errors, DuplicateKeysAreNotSilentlyDropped) {
  EXPECT_EQ(errors_of(R"(
listeners:
  - name: a
    listen: 127.0.0.1:80
    protocol: tcp
    cluster: web
    listen: 127.0.0.1:81
)" + std::string(kOneCluster)),
            (Lines{R"(lb.yaml:6:5: listeners[0]: duplicate key "listen" (first at line 3))"}));
}

TEST(Errors, WrongTypes) {
  EXPECT_EQ(
      errors_of(R"(
workers: { count: 2 }
io: [epoll]
log: info
listeners:
  - name: [a]
    listen: 127.0.0.1:80
    protocol: tcp
    cluster:
    max_connections: abc
    backlog: 1.5
    timeouts: { idle: yes }
clusters:
  - name: web
    endpoints: 127.0.0.1:9001
)"),
      (Lines{
          R"(lb.yaml:1:10: workers: expected "auto" or an integer between 0 and 1024, got a map)",
          R"(lb.yaml:2:5: io: expected one of auto, io_uring, epoll, got a list)",
          R"(lb.yaml:3:6: log: expected a map, got "info")",
          R"(lb.yaml:5:11: listeners[0].name: expected a string, got a list)",
          R"(lb.yaml:8:5: listeners[0].cluster: expected a string, got an empty value)",
          R"(lb.yaml:9:22: listeners[0].max_connections: expected an integer, got "abc")",
          R"(lb.yaml:10:14: listeners[0].backlog: expected an integer, got "1.5")",
          R"(lb.yaml:11:23: listeners[0].timeouts.idle: invalid duration "yes" (expected a whole number followed by ms, s, m or h, e.g. 250ms or 30s))",
          R"(lb.yaml:14:16: clusters[0].endpoints: expected a list, got "127.0.0.1:9001")",
      }));
}

TEST(Errors, BadDurationsSizesAndBooleans) {
  EXPECT_EQ(
      errors_of(R"(
shutdown: { drain_timeout: 30 }
listeners:
  - name: a
    listen: 127.0.0.1:80
    protocol: http
    cluster: web
    timeouts: { header: 1.5s, idle: 1d, request_body: 99999999999999999h }
    limits: { max_request_line: 16KB, max_header_bytes: 0, max_body_size: 99999999999999999999 }
    forwarded_headers: { x_forwarded_for: "yes" }
)" + std::string(kOneCluster)),
      (Lines{
          R"(lb.yaml:1:28: shutdown.drain_timeout: invalid duration "30" (expected a whole number followed by ms, s, m or h, e.g. 250ms or 30s))",
          R"(lb.yaml:7:25: listeners[0].timeouts.header: invalid duration "1.5s" (expected a whole number followed by ms, s, m or h, e.g. 250ms or 30s))",
          R"(lb.yaml:7:37: listeners[0].timeouts.idle: invalid duration "1d" (expected a whole number followed by ms, s, m or h, e.g. 250ms or 30s))",
          R"(lb.yaml:7:55: listeners[0].timeouts.request_body: duration "99999999999999999h" is too large)",
          R"(lb.yaml:8:33: listeners[0].limits.max_request_line: invalid size "16KB" (expected a whole number of bytes, optionally followed by B, KiB, MiB or GiB, e.g. 16KiB))",
          R"(lb.yaml:8:57: listeners[0].limits.max_header_bytes: must be greater than 0)",
          R"(lb.yaml:8:75: listeners[0].limits.max_body_size: size "99999999999999999999" is too large)",
          R"(lb.yaml:9:43: listeners[0].forwarded_headers.x_forwarded_for: expected true or false, got "yes")",
      }));
}

TEST(Errors, RequestLineLimitCannotExceedHeaderLimit) {
  const std::string head = R"(
listeners:
  - name: a
    listen: 127.0.0.1:80
    protocol: http
    cluster: web
)";
  EXPECT_EQ(
      errors_of(head + "    limits: { max_request_line: 64KiB }\n" + std::string(kOneCluster)),
      (Lines{"lb.yaml:6:33: listeners[0].limits.max_request_line: must not exceed "
             "max_header_bytes (64KiB > 32KiB)"}));
  EXPECT_EQ(errors_of(head + "    limits: { max_header_bytes: 4KiB }\n" + std::string(kOneCluster)),
            (Lines{"lb.yaml:6:33: listeners[0].limits.max_header_bytes: must be at least "
                   "max_request_line (4KiB < 8KiB)"}));
}

TEST(Errors, OutOfRangeValues) {
  EXPECT_EQ(
      errors_of(R"(
workers: 1025
listeners:
  - name: a
    listen: 127.0.0.1:80
    protocol: tcp
    cluster: web
    max_connections: 0
    backlog: 65536
    timeouts: { idle: 0s }
clusters:
  - name: web
    endpoints:
      - { address: 127.0.0.1:9001, weight: 0 }
      - { address: 127.0.0.1:9002, weight: 257 }
      - { address: 127.0.0.1:9003, weight: -1 }
    timeouts: { connect: 0ms }
    keepalive: { idle_timeout: 0 }
    max_connections: 99999999999999999999
    retries: 11
    health_check: { interval: 0s, rise: 0, fall: 0 }
)"),
      (Lines{
          R"(lb.yaml:1:10: workers: expected "auto" or an integer between 0 and 1024, got "1025")",
          R"(lb.yaml:7:22: listeners[0].max_connections: must be at least 1, got 0)",
          R"(lb.yaml:8:14: listeners[0].backlog: must be between 1 and 65535, got 65536)",
          R"(lb.yaml:9:23: listeners[0].timeouts.idle: must be greater than 0)",
          R"(lb.yaml:13:44: clusters[0].endpoints[0].weight: must be between 1 and 256, got 0)",
          R"(lb.yaml:14:44: clusters[0].endpoints[1].weight: must be between 1 and 256, got 257)",
          R"(lb.yaml:15:44: clusters[0].endpoints[2].weight: must be between 1 and 256, got -1)",
          R"(lb.yaml:16:26: clusters[0].timeouts.connect: must be greater than 0)",
          R"(lb.yaml:17:32: clusters[0].keepalive.idle_timeout: must be greater than 0)",
          R"(lb.yaml:18:22: clusters[0].max_connections: must be at least 0, got 99999999999999999999)",
          R"(lb.yaml:19:14: clusters[0].retries: must be between 0 and 10, got 11)",
          R"(lb.yaml:20:31: clusters[0].health_check.interval: must be greater than 0)",
          R"(lb.yaml:20:41: clusters[0].health_check.rise: must be at least 1, got 0)",
          R"(lb.yaml:20:50: clusters[0].health_check.fall: must be at least 1, got 0)",
      }));
}

TEST(Errors, WorkersAcceptsAutoAndZeroToMax) {
  const std::string rest = R"(
listeners:
  - { name: a, listen: 127.0.0.1:80, protocol: tcp, cluster: web }
)" + std::string(kOneCluster);
  EXPECT_EQ(load_ok("workers: auto" + rest).workers, 0);
  EXPECT_EQ(load_ok("workers: 0" + rest).workers, 0);
  EXPECT_EQ(load_ok("workers: 1024" + rest).workers, 1024);
  EXPECT_EQ(
      errors_of("workers: -1" + rest),
      (Lines{
          R"(lb.yaml:1:10: workers: expected "auto" or an integer between 0 and 1024, got "-1")"}));
}

TEST(Errors, InvalidEnumValuesListTheValidOnes) {
  EXPECT_EQ(
      errors_of(R"(
io: uring
log: { level: verbose, access_log_format: apache }
listeners:
  - { name: a, listen: 127.0.0.1:80, protocol: udp, cluster: web }
clusters:
  - name: web
    balance: leastconn
    endpoints: [127.0.0.1:9001]
    health_check: { type: grpc }
)"),
      (Lines{
          R"(lb.yaml:1:5: io: invalid value "uring" (expected one of: auto, io_uring, epoll))",
          R"(lb.yaml:2:15: log.level: invalid value "verbose" (expected one of: trace, debug, info, warn, error, critical, off))",
          R"(lb.yaml:2:43: log.access_log_format: invalid value "apache" (expected one of: combined, json))",
          R"(lb.yaml:4:48: listeners[0].protocol: invalid value "udp" (expected one of: tcp, http))",
          R"(lb.yaml:7:14: clusters[0].balance: invalid value "leastconn" (expected one of: round_robin, least_conn, random_two, hash))",
          R"(lb.yaml:9:27: clusters[0].health_check.type: invalid value "grpc" (expected one of: tcp, http))",
      }));
}

TEST(Errors, BadAddresses) {
  EXPECT_EQ(
      errors_of(R"(
admin: { listen: localhost:9901 }
listeners:
  - { name: a, listen: "127.0.0.1", protocol: tcp, cluster: web }
  - { name: b, listen: "[::1]80", protocol: tcp, cluster: web }
  - { name: c, listen: 127.0.0.1:65536, protocol: tcp, cluster: web }
clusters:
  - name: web
    endpoints: [127.0.0.1:0, "unix:", { address: { ip: 127.0.0.1 } }]
)"),
      (Lines{
          R"(lb.yaml:1:18: admin.listen: invalid address "localhost:9901" (expected ip:port, [ipv6]:port or unix:/path))",
          R"(lb.yaml:3:24: listeners[0].listen: invalid address "127.0.0.1" (expected ip:port, [ipv6]:port or unix:/path))",
          R"(lb.yaml:4:24: listeners[1].listen: invalid address "[::1]80" (expected ip:port, [ipv6]:port or unix:/path))",
          R"(lb.yaml:5:24: listeners[2].listen: invalid address "127.0.0.1:65536" (expected ip:port, [ipv6]:port or unix:/path))",
          R"(lb.yaml:8:17: clusters[0].endpoints[0]: port 0 is not valid for an endpoint)",
          R"(lb.yaml:8:30: clusters[0].endpoints[1]: invalid address "unix:" (expected ip:port, [ipv6]:port or unix:/path))",
          R"(lb.yaml:8:50: clusters[0].endpoints[2].address: expected an address, got a map)",
      }));
}

TEST(Errors, DuplicateNamesAndListenAddresses) {
  EXPECT_EQ(
      errors_of(R"(
admin: { listen: 127.0.0.1:9901 }
listeners:
  - { name: a, listen: 127.0.0.1:8080, protocol: tcp, cluster: web }
  - { name: a, listen: 127.0.0.1:8081, protocol: tcp, cluster: web }
  - { name: b, listen: 127.0.0.1:8080, protocol: tcp, cluster: web }
  - { name: c, listen: 0.0.0.0:8080, protocol: tcp, cluster: web }
  - { name: d, listen: 127.0.0.1:9901, protocol: tcp, cluster: web }
  - { name: e, listen: unix:/run/a.sock, protocol: tcp, cluster: web }
  - { name: f, listen: unix:/run/a.sock, protocol: tcp, cluster: web }
  - { name: g, listen: "[::]:8080", protocol: tcp, cluster: web }
clusters:
  - name: web
    endpoints: [127.0.0.1:9001, 127.0.0.1:9002, 127.0.0.1:9001]
  - name: web
    endpoints: [127.0.0.1:9001]
)"),
      (Lines{
          R"(lb.yaml:4:13: listeners[1].name: duplicate listener name "a" (first defined at line 3))",
          R"(lb.yaml:5:24: listeners[2].listen: address 127.0.0.1:8080 is already used by listener "a" at line 3)",
          R"(lb.yaml:6:24: listeners[3].listen: address 0.0.0.0:8080 overlaps 127.0.0.1:8080 of listener "a" at line 3)",
          R"(lb.yaml:7:24: listeners[4].listen: address 127.0.0.1:9901 is already used by admin.listen at line 1)",
          R"(lb.yaml:9:24: listeners[6].listen: address unix:/run/a.sock is already used by listener "e" at line 8)",
          R"(lb.yaml:13:49: clusters[0].endpoints[2]: duplicate endpoint 127.0.0.1:9001 (first at line 13))",
          R"(lb.yaml:14:11: clusters[1].name: duplicate cluster name "web" (first defined at line 12))",
      }));
}

TEST(Errors, ReferencesToMissingClusters) {
  const std::string listeners = R"(
listeners:
  - { name: a, listen: 127.0.0.1:80, protocol: tcp, cluster: wbe }
  - name: b
    listen: 127.0.0.1:81
    protocol: http
    cluster: api
    routes:
      - cluster: payments
)";
  EXPECT_EQ(
      errors_of(listeners + std::string(kOneCluster)),
      (Lines{
          R"(lb.yaml:2:62: listeners[0].cluster: unknown cluster "wbe" (did you mean "web"?))",
          R"(lb.yaml:6:14: listeners[1].cluster: unknown cluster "api" (defined clusters: web))",
          R"(lb.yaml:8:18: listeners[1].routes[0].cluster: unknown cluster "payments" (defined clusters: web))",
      }));
  EXPECT_EQ(
      errors_of(listeners),
      (Lines{
          R"(lb.yaml:2:62: listeners[0].cluster: unknown cluster "wbe" (no clusters are defined))",
          R"(lb.yaml:6:14: listeners[1].cluster: unknown cluster "api" (no clusters are defined))",
          R"(lb.yaml:8:18: listeners[1].routes[0].cluster: unknown cluster "payments" (no clusters are defined))",
      }));
}

TEST(Errors, ListenerProtocolRules) {
  EXPECT_EQ(
      errors_of(R"(
listeners:
  - name: tcp_with_http_routes
    listen: 127.0.0.1:80
    protocol: tcp
    routes:
      - { match: { path_prefix: / }, cluster: web }
    limits: { max_body_size: 1MiB }
    forwarded_headers: {}
    timeouts: { header: 1s, idle: 1s, request_body: 1s }
  - name: http_with_nothing
    listen: 127.0.0.1:81
    protocol: http
    routes: []
  - name: no_protocol
    listen: 127.0.0.1:82
)" + std::string(kOneCluster)),
      (Lines{
          R"(lb.yaml:6:18: listeners[0].routes[0].match: missing required key "sni" (a tcp listener's route matches an SNI))",
          R"(lb.yaml:6:20: listeners[0].routes[0].match.path_prefix: only valid for http listeners' routes (a tcp listener's routes match only sni))",
          R"(lb.yaml:7:5: listeners[0].limits: only valid for http listeners (this listener is tcp))",
          R"(lb.yaml:8:5: listeners[0].forwarded_headers: only valid for http listeners (this listener is tcp))",
          R"(lb.yaml:9:17: listeners[0].timeouts.header: only valid for http listeners (this listener is tcp))",
          R"(lb.yaml:9:39: listeners[0].timeouts.request_body: only valid for http listeners (this listener is tcp))",
          R"(lb.yaml:10:5: listeners[1]: an http listener needs routes, a default cluster, or both)",
          R"(lb.yaml:14:5: listeners[2]: missing required key "protocol")",
      }));
}

TEST(Errors, ClusterRules) {
  EXPECT_EQ(
      errors_of(R"(
listeners:
  - { name: a, listen: 127.0.0.1:80, protocol: tcp, cluster: empty }
clusters:
  - name: empty
    endpoints: []
  - name: missing_endpoints
  - name: hashless
    balance: least_conn
    hash_key: source_ip
    endpoints: [127.0.0.1:9001]
  - name: implicit_round_robin
    hash_key: header:X-User
    endpoints: [127.0.0.1:9001]
  - name: bad_keys
    balance: hash
    hash_key: cookie
    endpoints: [127.0.0.1:9001]
  - name: bad_header
    balance: hash
    hash_key: "header:"
    endpoints: [127.0.0.1:9001]
  - name: tcp_check_path
    endpoints: [127.0.0.1:9001]
    health_check: { path: /healthz }
  - name: http_check_path
    endpoints: [127.0.0.1:9001]
    health_check: { type: http, path: healthz }
  - name: bad endpoint
    endpoints: [{ weight: 2 }, { address: 127.0.0.1:9001, wieght: 2 }]
)"),
      (Lines{
          R"(lb.yaml:5:16: clusters[0].endpoints: expected at least one endpoint)",
          R"(lb.yaml:6:5: clusters[1]: missing required key "endpoints")",
          R"(lb.yaml:9:5: clusters[2].hash_key: only valid with balance: hash (balance is least_conn))",
          R"(lb.yaml:12:5: clusters[3].hash_key: only valid with balance: hash (balance is round_robin))",
          R"(lb.yaml:16:15: clusters[4].hash_key: invalid hash_key "cookie" (expected source_ip or header:NAME))",
          R"(lb.yaml:20:15: clusters[5].hash_key: invalid hash_key "header:" (expected source_ip or header:NAME))",
          R"(lb.yaml:24:21: clusters[6].health_check.path: only valid with type: http)",
          R"(lb.yaml:27:39: clusters[7].health_check.path: must start with '/', got "healthz")",
          R"(lb.yaml:28:11: clusters[8].name: invalid name "bad endpoint" (use letters, digits, '_', '-' or '.'))",
          R"(lb.yaml:29:17: clusters[8].endpoints[0]: missing required key "address")",
          R"(lb.yaml:29:59: clusters[8].endpoints[1]: unknown key "wieght" (did you mean "weight"?))",
      }));
}

TEST(Errors, RouteMatchRules) {
  EXPECT_EQ(
      errors_of(R"(
listeners:
  - name: a
    listen: 127.0.0.1:80
    protocol: http
    routes:
      - match: { host: "*.*.example.com" }
        cluster: web
      - match: { host: "example.com:8080" }
        cluster: web
      - match: { host: "*" }
        cluster: web
      - match: { host: "example..com" }
        cluster: web
      - match: { host: "example.com." }
        cluster: web
      - match: { path_prefix: api/ }
        cluster: web
      - match: { path: "/a b" }
        cluster: web
      - match: { path_prefix: /a, path: /a/b }
        cluster: web
      - match: { method: get }
        cluster: web
      - match: { method: GET, methods: [POST] }
        cluster: web
      - match: { methods: [] }
        cluster: web
      - match: { headers: { "X Y": a, X-Z: "a\nb" } }
        cluster: web
      - match: { path: /a }
        rewrite_prefix: /b
        cluster: web
)" + std::string(kOneCluster)),
      (Lines{
          R"(lb.yaml:6:24: listeners[0].routes[0].match.host: invalid host pattern "*.*.example.com" (expected a host name like api.example.com or a wildcard like *.example.com))",
          R"(lb.yaml:8:24: listeners[0].routes[1].match.host: invalid host pattern "example.com:8080" (expected a host name like api.example.com or a wildcard like *.example.com))",
          R"(lb.yaml:10:24: listeners[0].routes[2].match.host: invalid host pattern "*" (expected a host name like api.example.com or a wildcard like *.example.com))",
          R"(lb.yaml:12:24: listeners[0].routes[3].match.host: invalid host pattern "example..com" (expected a host name like api.example.com or a wildcard like *.example.com))",
          R"(lb.yaml:14:24: listeners[0].routes[4].match.host: invalid host pattern "example.com." (expected a host name like api.example.com or a wildcard like *.example.com))",
          R"(lb.yaml:16:31: listeners[0].routes[5].match.path_prefix: must start with '/', got "api/")",
          R"(lb.yaml:18:24: listeners[0].routes[6].match.path: invalid path "/a b" (spaces, control characters, '?' and '#' are not allowed))",
          R"(lb.yaml:20:35: listeners[0].routes[7].match.path: cannot be combined with path_prefix)",
          R"(lb.yaml:22:26: listeners[0].routes[8].match.method: invalid method "get" (expected an uppercase token such as GET or POST))",
          R"(lb.yaml:24:31: listeners[0].routes[9].match.methods: cannot be combined with method)",
          R"(lb.yaml:26:27: listeners[0].routes[10].match.methods: expected at least one method)",
          R"(lb.yaml:28:29: listeners[0].routes[11].match.headers: invalid header name "X Y")",
          R"(lb.yaml:28:44: listeners[0].routes[11].match.headers.X-Z: header value must not contain CR, LF or NUL)",
          R"(lb.yaml:31:9: listeners[0].routes[12].rewrite_prefix: requires match.path_prefix (the part it replaces))",
      }));
}

TEST(Errors, HeaderEditsRules) {
  EXPECT_EQ(
      errors_of(R"(
listeners:
  - name: a
    listen: 127.0.0.1:80
    protocol: http
    routes:
      - cluster: web
        request_headers:
          add: { Content-Length: "0", "Bad Name": x }
          remove: [Transfer-Encoding, X-Ok]
          replace: {}
        response_headers: { add: [X-Frame-Options] }
)" + std::string(kOneCluster)),
      (Lines{
          R"(lb.yaml:8:18: listeners[0].routes[0].request_headers.add: header "Content-Length" is managed by the proxy and cannot be edited)",
          R"(lb.yaml:8:39: listeners[0].routes[0].request_headers.add: invalid header name "Bad Name")",
          R"(lb.yaml:9:20: listeners[0].routes[0].request_headers.remove[0]: header "Transfer-Encoding" is managed by the proxy and cannot be edited)",
          R"(lb.yaml:10:11: listeners[0].routes[0].request_headers: unknown key "replace" (valid keys: add, remove))",
          R"(lb.yaml:11:34: listeners[0].routes[0].response_headers.add: expected a map of header names to values, got a list)",
      }));
}

TEST(Errors, LogOutputsMustBeUsable) {
  EXPECT_EQ(
      errors_of(R"(
log: { access_log: "", error_log: off }
listeners:
  - { name: a, listen: 127.0.0.1:80, protocol: tcp, cluster: web }
)" + std::string(kOneCluster)),
      (Lines{
          R"(lb.yaml:1:20: log.access_log: must not be empty (use stdout, stderr, off or a file path))",
          R"(lb.yaml:1:35: log.error_log: must be stderr, stdout or a file path (errors cannot be turned off))",
      }));
}

TEST(Errors, EverySectionsErrorsAreReportedTogetherInFileOrder) {
  // One mistake per section, spread over the file; the clusters come after the listener that
  // references them, so reference errors must still be sorted into place.
  EXPECT_EQ(
      errors_of(R"(
workers: many
log: { level: loud }
listeners:
  - name: web
    listen: 127.0.0.1:8080
    protocol: http
    routes:
      - match: { path_prefix: v1 }
        cluster: api
      - cluster: web
    timeouts: { header: 10 }
clusters:
  - name: web
    balance: round_robin
    endpoints:
      - { address: 10.0.0.1:80, weight: 300 }
      - 10.0.0:80
    retries: 99
)"),
      (Lines{
          R"(lb.yaml:1:10: workers: expected "auto" or an integer between 0 and 1024, got "many")",
          R"(lb.yaml:2:15: log.level: invalid value "loud" (expected one of: trace, debug, info, warn, error, critical, off))",
          R"(lb.yaml:8:31: listeners[0].routes[0].match.path_prefix: must start with '/', got "v1")",
          R"(lb.yaml:9:18: listeners[0].routes[0].cluster: unknown cluster "api" (defined clusters: web))",
          R"(lb.yaml:11:25: listeners[0].timeouts.header: invalid duration "10" (expected a whole number followed by ms, s, m or h, e.g. 250ms or 30s))",
          R"(lb.yaml:16:41: clusters[0].endpoints[0].weight: must be between 1 and 256, got 300)",
          R"(lb.yaml:17:9: clusters[0].endpoints[1]: invalid address "10.0.0:80" (expected ip:port, [ipv6]:port or unix:/path))",
          R"(lb.yaml:18:14: clusters[0].retries: must be between 0 and 10, got 99)",
      }));
}

TEST(Errors, DeepNestingIsReportedNotACrash) {
  // yaml-cpp recurses per level and stops itself with an exception; the loader turns that
  // into an error a user can act on.
  const std::string deep = std::string(5000, '[') + std::string(5000, ']');
  auto result = load_config_string(deep, "lb.yaml");
  ASSERT_FALSE(result.has_value());
  ASSERT_EQ(result.errors().size(), 1u);
  EXPECT_EQ(result.errors()[0].message, "invalid YAML: nested too deeply");
}

TEST(Errors, NoExceptionEscapesOnHostileInput) {
  // Odd and hostile inputs: several make yaml-cpp throw (nesting limit, bad escapes, binary
  // bytes, bare `?` keys). Each must come back as an error, never as an exception.
  const std::string deep = std::string(10000, '[') + std::string(10000, ']');
  const std::string inputs[] = {
      deep,      "\"\\q\"", std::string("\0\xff\xfe:", 4), "key: !!binary \"@@@\"",
      "&a [*a]", "? ? ? ?"};
  for (const std::string& input : inputs) {
    std::optional<LoadResult> result;
    EXPECT_NO_THROW(result.emplace(load_config_string(input, "lb.yaml"))) << input.substr(0, 20);
    ASSERT_TRUE(result.has_value());
    EXPECT_FALSE(result->has_value()) << input.substr(0, 20);
    EXPECT_FALSE(result->errors().empty()) << input.substr(0, 20);
  }
}

// ---------------------------------------------------------------------------------------------
// Files, formatting and the summary

class TempFile {
 public:
  explicit TempFile(std::string_view content) {
    path_ = testing::TempDir() + "lbd_config_test_" + std::to_string(::getpid()) + "_" +
            std::to_string(counter_++) + ".yaml";
    std::ofstream(path_) << content;
  }
  ~TempFile() { ::unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  std::string path_;
};

TEST(LoadFile, MissingFileNamesTheFileAndTheReason) {
  auto result = load_config_file("/nonexistent/lb.yaml");
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error_report(),
            "/nonexistent/lb.yaml: cannot open: No such file or directory\n");
}

TEST(LoadFile, DirectoryIsAnError) {
  auto result = load_config_file("/");
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error_report(), "/: cannot read: Is a directory\n");
}

TEST(LoadFile, ErrorsNameThePathAsGiven) {
  TempFile file("listeners: []\n");
  auto result = load_config_file(file.path());
  ASSERT_FALSE(result.has_value());
  ASSERT_EQ(result.errors().size(), 1u);
  EXPECT_EQ(result.errors()[0],
            (ConfigError{file.path(), 1, 12, "listeners", "expected at least one listener"}));
}

TEST(LoadFile, ValidFileRecordsItsPath) {
  TempFile file(yaml(R"(
listeners:
  - { name: a, listen: 127.0.0.1:80, protocol: tcp, cluster: web }
)") + std::string(kOneCluster));
  auto result = load_config_file(file.path());
  ASSERT_TRUE(result.has_value()) << result.error_report();
  EXPECT_EQ(result->source_path, file.path());
  EXPECT_TRUE(result.errors().empty());
}

TEST(ConfigErrorFormat, LeavesOutWhatIsAbsent) {
  EXPECT_EQ((ConfigError{"lb.yaml", 3, 7, "a.b", "bad"}).to_string(), "lb.yaml:3:7: a.b: bad");
  EXPECT_EQ((ConfigError{"lb.yaml", 3, 7, "", "bad"}).to_string(), "lb.yaml:3:7: bad");
  EXPECT_EQ((ConfigError{"lb.yaml", 0, 0, "", "bad"}).to_string(), "lb.yaml: bad");
}

TEST(EnumNames, UseTheConfigFileSpelling) {
  EXPECT_EQ(to_string(IoMode::kIoUring), "io_uring");
  EXPECT_EQ(to_string(LogLevel::kCritical), "critical");
  EXPECT_EQ(to_string(AccessLogFormat::kJson), "json");
  EXPECT_EQ(to_string(Protocol::kTcp), "tcp");
  EXPECT_EQ(to_string(balancer::BalanceKind::kRandomTwo), "random_two");
  EXPECT_EQ(to_string(HashKeyKind::kSourceIp), "source_ip");
  EXPECT_EQ(to_string(HealthCheckType::kHttp), "http");
}

TEST(Describe, SummarisesListenersAndClusters) {
  const Config c = load_ok(R"(
workers: 2
admin: { listen: 127.0.0.1:9901, token: s3cret }
listeners:
  - name: web
    listen: 0.0.0.0:8080
    protocol: http
    cluster: web
    routes:
      - match: { host: api.example.com, path_prefix: /v1/, method: POST }
        cluster: api
        rewrite_prefix: /
      - match: { headers: { X-Canary: "1" } }
        cluster: web
  - { name: db, listen: 0.0.0.0:5432, protocol: tcp, cluster: pg }
clusters:
  - name: web
    endpoints: [10.0.0.1:80, 10.0.0.2:80]
    health_check: { type: http, path: /healthz }
    outlier: {}
  - name: api
    balance: hash
    hash_key: header:X-User
    endpoints: [10.0.1.1:80]
  - name: pg
    balance: least_conn
    endpoints: [10.0.2.1:5432]
    health_check: {}
    outlier: { consecutive_failures: 1, http_5xx: false }
)");
  // The token's presence is worth a word; its value never appears.
  EXPECT_EQ(describe(c),
            "lb.yaml: 2 listeners, 3 clusters; workers 2, io auto, admin 127.0.0.1:9901 (token "
            "set)\n"
            "listener web 0.0.0.0:8080 http\n"
            "  host api.example.com path_prefix /v1/ method POST -> api (rewrite to /)\n"
            "  header x-canary=1 -> web\n"
            "  otherwise -> web\n"
            "listener db 0.0.0.0:5432 tcp -> pg\n"
            "cluster web round_robin, 2 endpoints, health check http /healthz, outlier after 5 "
            "failures\n"
            "cluster api hash on header:x-user, 1 endpoint\n"
            "cluster pg least_conn, 1 endpoint, health check tcp, outlier after 1 failure (5xx "
            "not counted)\n");
}

TEST(Describe, AdminWithoutTokenSaysNothingAboutIt) {
  const Config c = load_ok(R"(
admin: { listen: 127.0.0.1:9901 }
listeners:
  - { name: a, listen: 127.0.0.1:5000, protocol: tcp, cluster: web }
)" + std::string(kOneCluster));
  EXPECT_EQ(describe(c),
            "lb.yaml: 1 listener, 1 cluster; workers auto, io auto, admin 127.0.0.1:9901\n"
            "listener a 127.0.0.1:5000 tcp -> web\n"
            "cluster web round_robin, 1 endpoint\n");
}

// ---------------------------------------------------------------------------------------------
// forwarding: how a tcp listener moves bytes

TEST(Forwarding, DefaultsToAutoAndAcceptsCopyAndSpliceOnTcpListeners) {
  Config cfg = load_ok(R"(
listeners:
  - name: plain
    listen: 127.0.0.1:80
    protocol: tcp
    cluster: web
  - name: zero_copy
    listen: 127.0.0.1:81
    protocol: tcp
    cluster: web
    forwarding: splice
  - name: user_space
    listen: 127.0.0.1:82
    protocol: tcp
    cluster: web
    forwarding: copy
  - name: adaptive
    listen: 127.0.0.1:83
    protocol: tcp
    cluster: web
    forwarding: auto
)" + std::string(kOneCluster));
  ASSERT_EQ(cfg.listeners.size(), 4u);
  EXPECT_EQ(cfg.listeners[0].forwarding, Forwarding::kAuto);
  EXPECT_EQ(cfg.listeners[1].forwarding, Forwarding::kSplice);
  EXPECT_EQ(cfg.listeners[2].forwarding, Forwarding::kCopy);
  EXPECT_EQ(cfg.listeners[3].forwarding, Forwarding::kAuto);
  EXPECT_EQ(to_string(Forwarding::kSplice), "splice");
  EXPECT_EQ(to_string(Forwarding::kAuto), "auto");
}

TEST(Forwarding, RejectsUnknownValuesAndHttpListeners) {
  EXPECT_EQ(errors_of(R"(
listeners:
  - name: a
    listen: 127.0.0.1:80
    protocol: tcp
    cluster: web
    forwarding: sendfile
  - name: b
    listen: 127.0.0.1:81
    protocol: http
    cluster: web
    forwarding: splice
)" + std::string(kOneCluster)),
            (std::vector<std::string>{
                R"(lb.yaml:6:17: listeners[0].forwarding: invalid value "sendfile" (expected one of: auto, copy, splice))",
                R"(lb.yaml:11:5: listeners[1].forwarding: only valid for tcp listeners (this listener is http))",
            }));
}

// ---------------------------------------------------------------------------------------------
// health_check (host, expect_status, jitter), outlier, admin.token, shutdown.ready_delay

TEST(HealthCheckKeys, HostExpectStatusAndJitterAreRead) {
  const Config c = load_ok(R"(
listeners:
  - { name: a, listen: 127.0.0.1:5000, protocol: http, cluster: one }
clusters:
  - name: one
    endpoints: [127.0.0.1:9001]
    health_check:
      type: http
      path: /healthz
      host: api.example.com:8080
      expect_status: 204
      interval: 5s
      jitter: 4999ms
  - name: two
    endpoints: [127.0.0.1:9002]
    health_check: { type: http, host: "[fd00::1]", expect_status: 200-299, jitter: 0s }
  - name: three
    endpoints: [127.0.0.1:9003]
    health_check: { type: http, host: 10.0.0.7, expect_status: ["200-299", 404, 302-302] }
)");
  const HealthCheck& one = *c.clusters[0].health_check;
  EXPECT_EQ(one.host, "api.example.com:8080");
  EXPECT_EQ(one.expect_status, (std::vector<StatusRange>{{204, 204}}));
  EXPECT_EQ(one.interval, 5s);
  EXPECT_EQ(one.jitter, 4999ms);
  const HealthCheck& two = *c.clusters[1].health_check;
  EXPECT_EQ(two.host, "[fd00::1]");
  EXPECT_EQ(two.expect_status, (std::vector<StatusRange>{{200, 299}}));
  EXPECT_EQ(two.jitter, 0s);
  const HealthCheck& three = *c.clusters[2].health_check;
  EXPECT_EQ(three.host, "10.0.0.7");
  // A given list replaces the default 200-399 rather than adding to it.
  EXPECT_EQ(three.expect_status, (std::vector<StatusRange>{{200, 299}, {404, 404}, {302, 302}}));
  EXPECT_TRUE(three.expect_status[1].contains(404));
  EXPECT_FALSE(three.expect_status[0].contains(301));
  EXPECT_EQ(three.jitter, 0s);
}

TEST(HealthCheckKeys, JitterAppliesToTcpChecksToo) {
  const Config c = load_ok(R"(
listeners:
  - { name: a, listen: 127.0.0.1:5000, protocol: tcp, cluster: web }
clusters:
  - name: web
    endpoints: [127.0.0.1:9001]
    health_check: { jitter: 1500ms }
)");
  EXPECT_EQ(c.clusters[0].health_check->jitter, 1500ms);  // below the default interval, 2s
}

TEST(HealthCheckKeys, BadValuesNameTheirPositionAndKey) {
  EXPECT_EQ(
      errors_of(R"(
listeners:
  - { name: a, listen: 127.0.0.1:80, protocol: tcp, cluster: web }
clusters:
  - name: web
    endpoints: [127.0.0.1:9001]
    health_check: { host: example.com, expect_status: 200 }
  - name: c1
    endpoints: [127.0.0.1:9001]
    health_check:
      type: http
      host: ""
  - name: c2
    endpoints: [127.0.0.1:9001]
    health_check: { type: http, host: "user@example.com" }
  - name: c3
    endpoints: [127.0.0.1:9001]
    health_check: { type: http, host: "a b" }
  - name: c4
    endpoints: [127.0.0.1:9001]
    health_check: { type: http, host: [a] }
  - name: c5
    endpoints: [127.0.0.1:9001]
    health_check: { type: http, expect_status: 99 }
  - name: c6
    endpoints: [127.0.0.1:9001]
    health_check: { type: http, expect_status: "399-200" }
  - name: c7
    endpoints: [127.0.0.1:9001]
    health_check: { type: http, expect_status: [200, 600, ok, "200-", -5, { a: 1 }] }
  - name: c8
    endpoints: [127.0.0.1:9001]
    health_check: { type: http, expect_status: [] }
  - name: c9
    endpoints: [127.0.0.1:9001]
    health_check: { type: http, expect_status: "100-600" }
  - name: c10
    endpoints: [127.0.0.1:9001]
    health_check: { interval: 1s, jitter: 1s }
  - name: c11
    endpoints: [127.0.0.1:9001]
    health_check: { jitter: 3s }
  - name: c12
    endpoints: [127.0.0.1:9001]
    health_check: { jitter: -1s, interval: 0s }
  - name: c13
    endpoints: [127.0.0.1:9001]
    health_check: { type: ftp, host: example.com, expect_status: 200 }
)"),
      (Lines{
          R"(lb.yaml:6:21: clusters[0].health_check.host: only valid with type: http)",
          R"(lb.yaml:6:40: clusters[0].health_check.expect_status: only valid with type: http)",
          R"(lb.yaml:11:13: clusters[1].health_check.host: must not be empty (leave host out to send the endpoint's address))",
          R"(lb.yaml:14:39: clusters[2].health_check.host: invalid host "user@example.com" (expected a Host header value such as api.example.com, 10.0.0.1:8080 or [fd00::1]:80))",
          R"(lb.yaml:17:39: clusters[3].health_check.host: invalid host "a b" (expected a Host header value such as api.example.com, 10.0.0.1:8080 or [fd00::1]:80))",
          R"(lb.yaml:20:39: clusters[4].health_check.host: expected a string, got a list)",
          R"(lb.yaml:23:48: clusters[5].health_check.expect_status: status codes must be between 100 and 599, got 99)",
          R"(lb.yaml:26:48: clusters[6].health_check.expect_status: invalid range "399-200" (the first status must not exceed the last))",
          R"(lb.yaml:29:54: clusters[7].health_check.expect_status[1]: status codes must be between 100 and 599, got 600)",
          R"(lb.yaml:29:59: clusters[7].health_check.expect_status[2]: invalid status "ok" (expected a status code such as 200 or a range such as "200-399"))",
          R"(lb.yaml:29:63: clusters[7].health_check.expect_status[3]: invalid status "200-" (expected a status code such as 200 or a range such as "200-399"))",
          R"(lb.yaml:29:71: clusters[7].health_check.expect_status[4]: invalid status "-5" (expected a status code such as 200 or a range such as "200-399"))",
          R"(lb.yaml:29:75: clusters[7].health_check.expect_status[5]: expected a status code or a range like "200-399", got a map)",
          R"(lb.yaml:32:48: clusters[8].health_check.expect_status: expected at least one status or range)",
          R"(lb.yaml:35:48: clusters[9].health_check.expect_status: status codes must be between 100 and 599, got 100-600)",
          R"(lb.yaml:38:43: clusters[10].health_check.jitter: must be below interval (1s >= 1s))",
          R"(lb.yaml:41:29: clusters[11].health_check.jitter: must be below interval (3s >= 2s))",
          R"(lb.yaml:44:29: clusters[12].health_check.jitter: invalid duration "-1s" (expected a whole number followed by ms, s, m or h, e.g. 250ms or 30s))",
          R"(lb.yaml:44:44: clusters[12].health_check.interval: must be greater than 0)",
          R"(lb.yaml:47:27: clusters[13].health_check.type: invalid value "ftp" (expected one of: tcp, http))",
      }));
}

TEST(Outlier, ValuesAreReadAndEmptyMeansEveryDefault) {
  const Config c = load_ok(R"(
listeners:
  - { name: a, listen: 127.0.0.1:5000, protocol: tcp, cluster: one }
clusters:
  - name: one
    endpoints: [127.0.0.1:9001]
    outlier:
      consecutive_failures: 1000
      base_ejection: 250ms
      max_ejection: 250ms
      http_5xx: false
  - name: two
    endpoints: [127.0.0.1:9002]
    outlier: {}
  - name: three
    endpoints: [127.0.0.1:9003]
    outlier: { max_ejection: 1h }
  - name: four
    endpoints: [127.0.0.1:9004]
)");
  // http_5xx on a cluster that only a tcp listener uses is accepted: it has nothing to count.
  ASSERT_TRUE(c.clusters[0].outlier.has_value());
  const Outlier& one = *c.clusters[0].outlier;
  EXPECT_EQ(one.consecutive_failures, 1000u);
  EXPECT_EQ(one.base_ejection, 250ms);
  EXPECT_EQ(one.max_ejection, 250ms);  // equal to base: every ejection lasts the same
  EXPECT_FALSE(one.http_5xx);

  ASSERT_TRUE(c.clusters[1].outlier.has_value());
  const Outlier& two = *c.clusters[1].outlier;
  EXPECT_EQ(two, Outlier{});
  EXPECT_EQ(two.consecutive_failures, 5u);
  EXPECT_EQ(two.base_ejection, 10s);
  EXPECT_EQ(two.max_ejection, 5min);
  EXPECT_TRUE(two.http_5xx);

  EXPECT_EQ(c.clusters[2].outlier->base_ejection, 10s);
  EXPECT_EQ(c.clusters[2].outlier->max_ejection, 1h);
  EXPECT_EQ(c.clusters[3].outlier, std::nullopt);
}

TEST(Outlier, BadValuesNameTheirPositionAndKey) {
  EXPECT_EQ(
      errors_of(R"(
listeners:
  - { name: a, listen: 127.0.0.1:80, protocol: tcp, cluster: web }
clusters:
  - name: web
    endpoints: [127.0.0.1:9001]
    outlier: { consecutive_failures: 0, base_ejection: 0s, max_ejection: 10, http_5xx: yes }
  - name: c1
    endpoints: [127.0.0.1:9001]
    outlier: { consecutive_failures: 1001 }
  - name: c2
    endpoints: [127.0.0.1:9001]
    outlier: { base_ejection: 1m, max_ejection: 30s }
  - name: c3
    endpoints: [127.0.0.1:9001]
    outlier: { base_ejection: 10m }
  - name: c4
    endpoints: [127.0.0.1:9001]
    outlier: { max_ejection: 5s }
  - name: c5
    endpoints: [127.0.0.1:9001]
    outlier:
  - name: c6
    endpoints: [127.0.0.1:9001]
    outlier: { consecutive: 3 }
)"),
      (Lines{
          R"(lb.yaml:6:38: clusters[0].outlier.consecutive_failures: must be between 1 and 1000, got 0)",
          R"(lb.yaml:6:56: clusters[0].outlier.base_ejection: must be greater than 0)",
          R"(lb.yaml:6:74: clusters[0].outlier.max_ejection: invalid duration "10" (expected a whole number followed by ms, s, m or h, e.g. 250ms or 30s))",
          R"(lb.yaml:6:88: clusters[0].outlier.http_5xx: expected true or false, got "yes")",
          R"(lb.yaml:9:38: clusters[1].outlier.consecutive_failures: must be between 1 and 1000, got 1001)",
          R"(lb.yaml:12:49: clusters[2].outlier.max_ejection: must be at least base_ejection (30s < 1m))",
          R"(lb.yaml:15:31: clusters[3].outlier.base_ejection: must not exceed max_ejection (10m > 5m, the default))",
          R"(lb.yaml:18:30: clusters[4].outlier.max_ejection: must be at least base_ejection (5s < 10s))",
          R"(lb.yaml:21:5: clusters[5].outlier: expected a map, got an empty value)",
          R"(lb.yaml:24:16: clusters[6].outlier: unknown key "consecutive" (valid keys: consecutive_failures, base_ejection, max_ejection, http_5xx))",
      }));
}

TEST(AdminToken, IsReadAndNeedsAnAdminListener) {
  const Config c = load_ok(R"(
admin:
  listen: 127.0.0.1:9901
  token: "Zm9v-bar_baz.~+/=!#$%&'*"
listeners:
  - { name: a, listen: 127.0.0.1:5000, protocol: tcp, cluster: web }
)" + std::string(kOneCluster));
  EXPECT_EQ(c.admin.token, "Zm9v-bar_baz.~+/=!#$%&'*");

  EXPECT_EQ(errors_of(R"(
admin: { token: abc }
listeners:
  - { name: a, listen: 127.0.0.1:5000, protocol: tcp, cluster: web }
)" + std::string(kOneCluster)),
            (Lines{
                R"(lb.yaml:1:8: admin: missing required key "listen" (admin.token needs admin.listen))",
            }));
  EXPECT_EQ(errors_of(R"(
admin: {}
listeners:
  - { name: a, listen: 127.0.0.1:5000, protocol: tcp, cluster: web }
)" + std::string(kOneCluster)),
            (Lines{R"(lb.yaml:1:8: admin: missing required key "listen")"}));
}

TEST(AdminToken, MustBePrintableAsciiWithoutSpacesAndIsNeverEchoed) {
  auto errors_for = [](std::string_view token_yaml) {
    return errors_of("admin:\n  listen: 127.0.0.1:9901\n  token: " + std::string(token_yaml) +
                     "\nlisteners:\n  - { name: a, listen: 127.0.0.1:5000, protocol: tcp, "
                     "cluster: web }\n" +
                     std::string(kOneCluster));
  };
  EXPECT_EQ(errors_for(R"("")"), (Lines{R"(lb.yaml:3:10: admin.token: must not be empty)"}));
  EXPECT_EQ(
      errors_for(R"("Bearer secret")"),
      (Lines{
          R"(lb.yaml:3:10: admin.token: contains a space at character 7 (a token is printable ASCII without spaces: it is sent in an Authorization header))",
      }));
  EXPECT_EQ(
      errors_for(R"("sec\tret")"),
      (Lines{
          R"(lb.yaml:3:10: admin.token: contains the byte 0x09 at character 4 (a token is printable ASCII without spaces: it is sent in an Authorization header))",
      }));
  EXPECT_EQ(
      errors_for("\"s\u00e9cret\""),
      (Lines{
          R"(lb.yaml:3:10: admin.token: contains the byte 0xc3 at character 2 (a token is printable ASCII without spaces: it is sent in an Authorization header))",
      }));
  EXPECT_EQ(errors_for("[a, b]"),
            (Lines{R"(lb.yaml:3:10: admin.token: expected a string, got a list)"}));
}

TEST(ShutdownReadyDelay, IsReadAndZeroIsAllowed) {
  const std::string tail = R"(
listeners:
  - { name: a, listen: 127.0.0.1:5000, protocol: tcp, cluster: web }
)" + std::string(kOneCluster);
  EXPECT_EQ(load_ok("shutdown: { ready_delay: 5s, drain_timeout: 20s }" + tail).shutdown,
            (ShutdownConfig{20s, 5s}));
  EXPECT_EQ(load_ok("shutdown: { ready_delay: 0 }" + tail).shutdown.ready_delay, 0s);
  EXPECT_EQ(
      errors_of("shutdown: { ready_delay: 5 }" + tail),
      (Lines{
          R"(lb.yaml:1:26: shutdown.ready_delay: invalid duration "5" (expected a whole number followed by ms, s, m or h, e.g. 250ms or 30s))",
      }));
  EXPECT_EQ(errors_of("shutdown: { ready_dleay: 5s }" + tail),
            (Lines{
                R"(lb.yaml:1:13: shutdown: unknown key "ready_dleay" (did you mean "ready_delay"?))",
            }));
}

}  // namespace
}  // namespace lbd::config
