// GET /metrics' text (proxy/admin/metrics.cpp): what Prometheus' own checker says of it, and the
// samples a dashboard or an alert would query.

#include "proxy/admin/metrics.hpp"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "tests/proxy/admin_test_support.hpp"
#include "tests/proxy/subprocess.hpp"

namespace lbd::proxy {
namespace {

using test::small_report;

bool has_line(const std::string& text, const std::string& line) {
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (l == line) return true;
  return false;
}

TEST(AdminMetrics, PromtoolAcceptsTheOutputWithoutLintComplaints) {
  if (test::find_program("promtool").empty()) GTEST_SKIP() << "promtool is not installed (Debian: prometheus)";
  const std::string text = render_prometheus(small_report());
  test::CommandResult r = test::run_command({"promtool", "check", "metrics"}, text);
  EXPECT_TRUE(r.ok()) << "exit " << r.exit_code << "\n" << r.output << r.errors << "\n--- input:\n" << text;
  // promtool prints lint problems and still exits 0 for some of them: there must be none.
  EXPECT_EQ(r.output + r.errors, "") << text;
}

TEST(AdminMetrics, PromtoolAcceptsAnEmptyReport) {
  if (test::find_program("promtool").empty()) GTEST_SKIP() << "promtool is not installed (Debian: prometheus)";
  const std::string text = render_prometheus(Report{});
  test::CommandResult r = test::run_command({"promtool", "check", "metrics"}, text);
  EXPECT_TRUE(r.ok()) << r.output << r.errors << "\n--- input:\n" << text;
  EXPECT_EQ(r.output + r.errors, "");
}

TEST(AdminMetrics, EveryFamilyHasHelpAndTypeBeforeItsSamples) {
  const std::string text = render_prometheus(small_report());
  EXPECT_NE(text.find("# HELP lbd_listener_requests_total "), std::string::npos);
  EXPECT_NE(text.find("# TYPE lbd_listener_requests_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE lbd_endpoint_state gauge\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE lbd_endpoint_response_time_seconds histogram\n"), std::string::npos);
  EXPECT_EQ(text.back(), '\n');
}

// The TLS handshake and SNI families carry samples only for the listeners they apply to, one
// per result, and promtool accepts them.
TEST(AdminMetrics, TlsAndSniFamiliesOnlyForTheirListeners) {
  Report r = small_report();  // web (http) and db (tcp), neither TLS nor SNI
  ListenerReport api = r.listeners[0];
  api.name = "api";
  api.tls = true;
  api.stats.tls_handshakes = 40;
  api.stats.tls_resumed = 15;
  api.stats.tls_plain_http = 2;
  ListenerReport edge = r.listeners[1];
  edge.name = "edge";
  edge.sni = true;
  edge.stats.sni_routed = 7;
  edge.stats.preread_timeouts = 1;
  r.listeners.push_back(api);
  r.listeners.push_back(edge);
  const std::string text = render_prometheus(r);
  const std::string tls = "lbd_listener_tls_handshakes_total{listener=\"api\",protocol=\"http\",result=";
  EXPECT_TRUE(has_line(text, tls + "\"ok\"} 40")) << text;
  EXPECT_TRUE(has_line(text, tls + "\"resumed\"} 15")) << text;
  EXPECT_TRUE(has_line(text, tls + "\"plain_http\"} 2")) << text;
  EXPECT_TRUE(has_line(text, tls + "\"not_tls\"} 0")) << text;
  const std::string sni = "lbd_listener_sni_connections_total{listener=\"edge\",protocol=\"tcp\",result=";
  EXPECT_TRUE(has_line(text, sni + "\"routed\"} 7")) << text;
  EXPECT_TRUE(has_line(text, sni + "\"preread_timeout\"} 1")) << text;
  EXPECT_TRUE(has_line(text, sni + "\"rejected\"} 0")) << text;
  EXPECT_EQ(text.find("lbd_listener_tls_handshakes_total{listener=\"web\""), std::string::npos) << text;
  EXPECT_EQ(text.find("lbd_listener_sni_connections_total{listener=\"db\""), std::string::npos) << text;
  EXPECT_EQ(text.find("lbd_listener_sni_connections_total{listener=\"api\""), std::string::npos) << text;
  if (test::find_program("promtool").empty()) return;
  test::CommandResult check = test::run_command({"promtool", "check", "metrics"}, text);
  EXPECT_TRUE(check.ok()) << check.output << check.errors;
  EXPECT_EQ(check.output + check.errors, "");
}

TEST(AdminMetrics, ProcessSamples) {
  const std::string text = render_prometheus(small_report());
  EXPECT_TRUE(has_line(text, "lbd_build_info{version=\"0.1.0\",driver=\"io_uring\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "lbd_start_time_seconds 1700000000.5")) << text;
  EXPECT_TRUE(has_line(text, "lbd_config_generation 3"));
  EXPECT_TRUE(has_line(text, "lbd_reloads_total{result=\"ok\"} 2"));
  EXPECT_TRUE(has_line(text, "lbd_reloads_total{result=\"failed\"} 1"));
  EXPECT_TRUE(has_line(text, "lbd_workers 2"));
  EXPECT_TRUE(has_line(text, "lbd_ready 1"));
}

TEST(AdminMetrics, ListenerSamples) {
  const std::string text = render_prometheus(small_report());
  const std::string web = "{listener=\"web\",protocol=\"http\"";
  EXPECT_TRUE(has_line(text, "lbd_listener_connections_accepted_total" + web + "} 120")) << text;
  EXPECT_TRUE(has_line(text, "lbd_listener_active_connections" + web + "} 7"));
  EXPECT_TRUE(has_line(text, "lbd_listener_connections_rejected_total" + web + ",reason=\"max_connections\"} 4"));
  EXPECT_TRUE(has_line(text, "lbd_listener_requests_total" + web + "} 1000"));
  EXPECT_TRUE(has_line(text, "lbd_listener_responses_total" + web + ",code=\"2xx\"} 950"));
  EXPECT_TRUE(has_line(text, "lbd_listener_responses_total" + web + ",code=\"5xx\"} 10"));
  EXPECT_TRUE(has_line(text, "lbd_listener_received_bytes_total" + web + "} 50000"));
  EXPECT_TRUE(has_line(text, "lbd_listener_sent_bytes_total" + web + "} 900000"));
  EXPECT_TRUE(has_line(text, "lbd_listener_no_upstream_total" + web + "} 3"));
  EXPECT_TRUE(has_line(text, "lbd_listener_client_errors_total" + web + "} 8"));
  EXPECT_TRUE(has_line(text, "lbd_listener_upstream_errors_total" + web + "} 9"));
  EXPECT_TRUE(has_line(text, "lbd_listener_idle_timeouts_total" + web + "} 6"));
  EXPECT_TRUE(has_line(text, "lbd_listener_connect_errors_total" + web + ",cause=\"refused\"} 5"));
  EXPECT_TRUE(has_line(text, "lbd_listener_connect_errors_total" + web + ",cause=\"timeout\"} 2"));
  EXPECT_TRUE(has_line(text, "lbd_listener_connect_errors_total" + web + ",cause=\"other\"} 1"));
  EXPECT_TRUE(has_line(text, "lbd_listener_connections_accepted_total{listener=\"db\",protocol=\"tcp\"} 42"));
}

TEST(AdminMetrics, EndpointStateIsOneForTheCurrentStateAndZeroForTheOthers) {
  const std::string text = render_prometheus(small_report());
  struct Case {
    const char* endpoint;
    const char* state;
  };
  for (Case c : {Case{"127.0.0.1:8081", "UP"}, Case{"127.0.0.1:8082", "DOWN"}, Case{"[::1]:8083", "DRAIN"},
                 Case{"127.0.0.1:8084", "EJECTED"}}) {
    for (const char* s : {"UP", "DOWN", "DRAIN", "EJECTED"}) {
      std::string line = std::string("lbd_endpoint_state{cluster=\"web\",endpoint=\"") + c.endpoint + "\",state=\"" + s +
                         "\"} " + (std::string(s) == c.state ? "1" : "0");
      EXPECT_TRUE(has_line(text, line)) << line;
    }
  }
  EXPECT_TRUE(has_line(text, "lbd_cluster_endpoints{cluster=\"web\",state=\"DOWN\"} 1"));
}

TEST(AdminMetrics, EndpointSamples) {
  const std::string text = render_prometheus(small_report());
  const std::string up = "{cluster=\"web\",endpoint=\"127.0.0.1:8081\"";
  EXPECT_TRUE(has_line(text, "lbd_endpoint_requests_total" + up + "} 600"));
  EXPECT_TRUE(has_line(text, "lbd_endpoint_responses_total" + up + ",code=\"2xx\"} 590"));
  EXPECT_TRUE(has_line(text, "lbd_endpoint_connect_errors_total" + up + ",cause=\"refused\"} 1"));
  EXPECT_TRUE(has_line(text, "lbd_endpoint_active_connections" + up + "} 4"));
  EXPECT_TRUE(has_line(text, "lbd_endpoint_idle_connections" + up + "} 6"));
  EXPECT_TRUE(has_line(text, "lbd_endpoint_weight" + up + "} 3"));
  EXPECT_TRUE(has_line(text, "lbd_endpoint_failures_total" + up + "} 3"));
  EXPECT_TRUE(has_line(text, "lbd_endpoint_check_failures_total{cluster=\"web\",endpoint=\"127.0.0.1:8082\"} 12"));
  EXPECT_TRUE(has_line(text, "lbd_endpoint_ejections_total{cluster=\"web\",endpoint=\"127.0.0.1:8084\"} 2"));
}

TEST(AdminMetrics, HistogramBucketsAreCumulativeAndEndWithInfSumAndCount) {
  const std::string text = render_prometheus(small_report());
  const std::string up = "{cluster=\"web\",endpoint=\"127.0.0.1:8081\"";
  const std::string b = "lbd_endpoint_response_time_seconds_bucket" + up;
  // Observed: 0.003, 0.003, 0.02, 0.3, 20.
  EXPECT_TRUE(has_line(text, b + ",le=\"0.005\"} 2")) << text;
  EXPECT_TRUE(has_line(text, b + ",le=\"0.01\"} 2"));
  EXPECT_TRUE(has_line(text, b + ",le=\"0.025\"} 3"));
  EXPECT_TRUE(has_line(text, b + ",le=\"0.25\"} 3"));
  EXPECT_TRUE(has_line(text, b + ",le=\"0.5\"} 4"));
  EXPECT_TRUE(has_line(text, b + ",le=\"10\"} 4"));
  EXPECT_TRUE(has_line(text, b + ",le=\"+Inf\"} 5"));
  EXPECT_TRUE(has_line(text, "lbd_endpoint_response_time_seconds_count" + up + "} 5"));
  EXPECT_NE(text.find("lbd_endpoint_response_time_seconds_sum" + up + "} 20.32"), std::string::npos);
  // Every endpoint has its +Inf bucket, 0 without observations.
  EXPECT_TRUE(has_line(text, "lbd_endpoint_response_time_seconds_bucket{cluster=\"web\",endpoint=\"[::1]:8083\",le=\"+Inf\"} 0"));
}

TEST(AdminMetrics, LabelValuesEscapeBackslashQuoteAndNewline) {
  const std::string text = render_prometheus(small_report());
  EXPECT_TRUE(has_line(text, R"(lbd_endpoint_requests_total{cluster="we\"ird\\name\nx",endpoint="10.0.0.1:80"} 0)")) << text;
  EXPECT_TRUE(has_line(text, R"(lbd_cluster_info{cluster="we\"ird\\name\nx",balance="least_conn"} 1)"));
}

}  // namespace
}  // namespace lbd::proxy
