// Tests the SNI passthrough keys of config/loader.cpp: routes on tcp listeners (match.sni),
// not_tls and timeouts.preread, and what the user reads when they are misused.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace lbd::config {
namespace {

using namespace std::chrono_literals;
using Lines = std::vector<std::string>;

std::string yaml(std::string_view text) {
  if (text.starts_with('\n')) text.remove_prefix(1);
  return std::string(text);
}

Config load_ok(std::string_view text) {
  auto result = load_config_string(yaml(text), "lb.yaml");
  EXPECT_TRUE(result.has_value()) << result.error_report();
  return result.has_value() ? std::move(result).value() : Config{};
}

Lines errors_of(std::string_view text) {
  auto result = load_config_string(yaml(text), "lb.yaml");
  EXPECT_FALSE(result.has_value()) << "expected errors, the file loaded";
  Lines lines;
  for (const auto& e : result.errors()) lines.push_back(e.to_string());
  return lines;
}

constexpr std::string_view kClusters = R"(
clusters:
  - { name: a, endpoints: [127.0.0.1:9001] }
  - { name: b, endpoints: [127.0.0.1:9002] }
  - { name: fallback, endpoints: [127.0.0.1:9003] }
)";

TEST(SniRoutes, LoadWithTheirDefaults) {
  Config c = load_ok(R"(
listeners:
  - name: edge
    listen: 127.0.0.1:8443
    protocol: tcp
    cluster: fallback
    routes:
      - { match: { sni: "A.Example.com" }, cluster: a }
      - { match: { sni: "*.example.com" }, cluster: b }
)" + std::string(kClusters));
  ASSERT_EQ(c.listeners.size(), 1u);
  const ListenerConfig& l = c.listeners[0];
  EXPECT_EQ(l.cluster, "fallback");
  ASSERT_EQ(l.routes.size(), 2u);
  EXPECT_EQ(l.routes[0].match.sni, "a.example.com");  // lowercase, like match.host
  EXPECT_EQ(l.routes[0].cluster, "a");
  EXPECT_EQ(l.routes[1].match.sni, "*.example.com");
  EXPECT_EQ(l.routes[1].cluster, "b");
  EXPECT_EQ(l.timeouts.preread, 10s);
  EXPECT_EQ(l.not_tls, NotTls::kClose);
  EXPECT_EQ(describe(c).find("listener edge 127.0.0.1:8443 tcp\n  sni a.example.com -> a\n"
                             "  sni *.example.com -> b\n  otherwise -> fallback\n") != std::string::npos,
            true)
      << describe(c);
}

TEST(SniRoutes, DefaultClusterIsOptionalAndKeysAreRead) {
  Config c = load_ok(R"(
listeners:
  - name: edge
    listen: 127.0.0.1:8443
    protocol: tcp
    routes:
      - { match: { sni: a.example.com }, cluster: a }
    timeouts: { preread: 2s, idle: 30s }
    not_tls: default
)" + std::string(kClusters));
  const ListenerConfig& l = c.listeners[0];
  EXPECT_TRUE(l.cluster.empty());
  EXPECT_EQ(l.timeouts.preread, 2s);
  EXPECT_EQ(l.timeouts.idle, 30s);
  EXPECT_EQ(l.not_tls, NotTls::kDefault);
}

TEST(SniRoutes, HttpMatchKeysOnATcpListenerAreNamed) {
  EXPECT_EQ(errors_of(R"(
listeners:
  - name: edge
    listen: 127.0.0.1:8443
    protocol: tcp
    routes:
      - match: { sni: a.example.com, host: a.example.com, path: /x, method: GET }
        cluster: a
        rewrite_prefix: /
      - match: { headers: { x: y } }
        cluster: b
      - cluster: b
      - { match: { sni: "a..b" }, cluster: b }
)" + std::string(kClusters)),
            (Lines{
                R"(lb.yaml:6:38: listeners[0].routes[0].match.host: only valid for http listeners' routes (a tcp listener's routes match only sni))",
                R"(lb.yaml:6:59: listeners[0].routes[0].match.path: only valid for http listeners' routes (a tcp listener's routes match only sni))",
                R"(lb.yaml:6:69: listeners[0].routes[0].match.method: only valid for http listeners' routes (a tcp listener's routes match only sni))",
                R"(lb.yaml:8:9: listeners[0].routes[0].rewrite_prefix: only valid for http listeners (this listener is tcp))",
                R"(lb.yaml:9:16: listeners[0].routes[1].match: missing required key "sni" (a tcp listener's route matches an SNI))",
                R"(lb.yaml:9:18: listeners[0].routes[1].match.headers: only valid for http listeners' routes (a tcp listener's routes match only sni))",
                R"(lb.yaml:11:9: listeners[0].routes[2]: missing required key "match" (a tcp listener's route matches an SNI: match: { sni: NAME }))",
                R"(lb.yaml:12:25: listeners[0].routes[3].match.sni: invalid host pattern "a..b" (expected a host name like api.example.com or a wildcard like *.example.com))",
            }));
}

TEST(SniRoutes, MisplacedKeysAreErrors) {
  EXPECT_EQ(errors_of(R"(
listeners:
  - name: web
    listen: 127.0.0.1:80
    protocol: http
    routes:
      - { match: { sni: a.example.com }, cluster: a }
    not_tls: close
    timeouts: { preread: 1s }
  - name: plain_tcp
    listen: 127.0.0.1:81
    protocol: tcp
    cluster: a
    not_tls: default
    timeouts: { preread: 1s }
  - name: no_cluster_no_routes
    listen: 127.0.0.1:82
    protocol: tcp
  - name: bad_value
    listen: 127.0.0.1:83
    protocol: tcp
    routes: [{ match: { sni: a.example.com }, cluster: a }]
    not_tls: pass
  - name: empty_routes
    listen: 127.0.0.1:84
    protocol: tcp
    routes: []
)" + std::string(kClusters)),
            (Lines{
                R"(lb.yaml:6:20: listeners[0].routes[0].match.sni: only valid for tcp listeners' routes (an http listener's route matches match.host))",
                R"(lb.yaml:7:5: listeners[0].not_tls: only valid for tcp listeners with SNI routes (routes, and no tls))",
                R"(lb.yaml:8:17: listeners[0].timeouts.preread: only valid for tcp listeners with SNI routes (routes, and no tls))",
                R"(lb.yaml:13:5: listeners[1].not_tls: only valid for tcp listeners with SNI routes (routes, and no tls))",
                R"(lb.yaml:14:17: listeners[1].timeouts.preread: only valid for tcp listeners with SNI routes (routes, and no tls))",
                R"(lb.yaml:15:5: listeners[2]: missing required key "cluster" (a tcp listener forwards every connection to one cluster, or routes them by SNI))",
                R"(lb.yaml:22:14: listeners[3].not_tls: invalid value "pass" (expected one of: close, default))",
                R"(lb.yaml:26:13: listeners[4].routes: expected at least one route)",
            }));
}

TEST(SniRoutes, WithTlsTerminationAreRefusedForNow) {
  Lines errors = errors_of(R"(
listeners:
  - name: edge
    listen: 127.0.0.1:8443
    protocol: tcp
    tls: { cert: /nonexistent/cert.pem, key: /nonexistent/key.pem }
    routes:
      - { match: { sni: a.example.com }, cluster: a }
    not_tls: default
)" + std::string(kClusters));
  // Besides the certificate files' own errors.
  auto has = [&](const std::string& line) { return std::find(errors.begin(), errors.end(), line) != errors.end(); };
  EXPECT_TRUE(has(R"(lb.yaml:6:5: listeners[0].routes: routes on a tcp listener route by SNI without terminating TLS; with tls (routing on the terminated handshake's SNI) they are not supported yet)"))
      << ::testing::PrintToString(errors);
  EXPECT_TRUE(has(R"(lb.yaml:8:5: listeners[0].not_tls: only valid for tcp listeners with SNI routes (routes, and no tls))"))
      << ::testing::PrintToString(errors);
}

}  // namespace
}  // namespace lbd::config
