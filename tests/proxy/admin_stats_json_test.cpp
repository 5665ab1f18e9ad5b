// GET /stats' JSON (proxy/admin/stats_json.cpp) parses back with the figures of the Report.

#include "proxy/admin/stats_json.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/proxy/admin_test_support.hpp"

namespace lbd::proxy {
namespace {

using nlohmann::json;

TEST(AdminStatsJson, ParsesBackWithTheReportsFigures) {
  Report report = test::small_report();
  report.process.report_time = 1700003600.25;
  json j = json::parse(render_json(report));

  const json& p = j.at("process");
  EXPECT_EQ(p.at("version"), "0.1.0");
  EXPECT_EQ(p.at("driver"), "io_uring");
  EXPECT_EQ(p.at("workers"), 2);
  EXPECT_DOUBLE_EQ(p.at("start_time").get<double>(), 1700000000.5);
  EXPECT_DOUBLE_EQ(p.at("time").get<double>(), 1700003600.25);  // the page's clock for rates and uptime
  EXPECT_EQ(p.at("config_generation"), 3);
  EXPECT_EQ(p.at("reloads").at("ok"), 2);
  EXPECT_EQ(p.at("reloads").at("failed"), 1);
  EXPECT_EQ(p.at("ready"), true);
  EXPECT_EQ(p.at("draining"), false);

  ASSERT_EQ(j.at("listeners").size(), 2u);
  const json& web = j.at("listeners").at(0);
  EXPECT_EQ(web.at("name"), "web");
  EXPECT_EQ(web.at("address"), "127.0.0.1:8080");
  EXPECT_EQ(web.at("protocol"), "http");
  EXPECT_EQ(web.at("connections").at("accepted"), 120);
  EXPECT_EQ(web.at("connections").at("active"), 7);
  EXPECT_EQ(web.at("connections").at("rejected_over_limit"), 4);
  EXPECT_EQ(web.at("requests"), 1000);
  EXPECT_EQ(web.at("responses").at("2xx"), 950);
  EXPECT_EQ(web.at("responses").at("5xx"), 10);
  EXPECT_EQ(web.at("bytes").at("received"), 50000);
  EXPECT_EQ(web.at("bytes").at("sent"), 900000);
  EXPECT_EQ(web.at("no_upstream"), 3);
  EXPECT_EQ(web.at("errors").at("client"), 8);
  EXPECT_EQ(web.at("errors").at("idle_timeouts"), 6);
  EXPECT_EQ(web.at("errors").at("connect").at("refused"), 5);
  EXPECT_EQ(j.at("listeners").at(1).at("protocol"), "tcp");

  ASSERT_EQ(j.at("clusters").size(), 2u);
  const json& c = j.at("clusters").at(0);
  EXPECT_EQ(c.at("name"), "web");
  EXPECT_EQ(c.at("balance"), "round_robin");
  EXPECT_EQ(c.at("states"), json({{"UP", 1}, {"DOWN", 1}, {"DRAIN", 1}, {"EJECTED", 1}}));
  ASSERT_EQ(c.at("endpoints").size(), 4u);
  std::vector<std::string> states;
  for (const json& e : c.at("endpoints")) states.push_back(e.at("state"));
  EXPECT_EQ(states, (std::vector<std::string>{"UP", "DOWN", "DRAIN", "EJECTED"}));

  const json& up = c.at("endpoints").at(0);
  EXPECT_EQ(up.at("address"), "127.0.0.1:8081");
  EXPECT_EQ(up.at("weight"), 3);
  EXPECT_EQ(up.at("active"), 4);
  EXPECT_EQ(up.at("idle"), 6);
  EXPECT_EQ(up.at("requests"), 600);
  EXPECT_EQ(up.at("responses").at("2xx"), 590);
  EXPECT_EQ(up.at("connect_errors").at("refused"), 1);
  EXPECT_EQ(up.at("failures"), 3);
  EXPECT_EQ(up.at("check").at("enabled"), true);
  EXPECT_EQ(up.at("check").at("last"), "HTTP 200 in 1.2ms");
  EXPECT_EQ(up.at("response_time").at("count"), 5);
  EXPECT_EQ(up.at("response_time").at("counts").size(), kResponseTimeBounds.size() + 1);
  EXPECT_EQ(up.at("response_time").at("counts").at(0), 2);
  EXPECT_EQ(up.at("response_time").at("counts").back(), 1);
  EXPECT_NEAR(up.at("response_time").at("sum").get<double>(), 20.326, 1e-9);

  const json& down = c.at("endpoints").at(1);
  EXPECT_EQ(down.at("check").at("failures"), 12);
  EXPECT_EQ(down.at("check").at("transitions"), 1);
  EXPECT_EQ(down.at("check").at("last"), "connect: connection refused");
  EXPECT_EQ(c.at("endpoints").at(3).at("ejections"), 2);
  EXPECT_EQ(c.at("endpoints").at(3).at("ejected_in"), 1);

  EXPECT_EQ(j.at("clusters").at(1).at("name"), "we\"ird\\name\nx");
}

TEST(AdminStatsJson, NamesThatAreNotUtf8DoNotBreakTheDocument) {
  Report r;
  ListenerReport l;
  l.name = "bad\xff name";
  r.listeners.push_back(l);
  json j = json::parse(render_json(r));
  EXPECT_EQ(j.at("listeners").at(0).at("name"), "bad\xEF\xBF\xBD name");
}

TEST(AdminStatsJson, AnEmptyReportHasEmptyArrays) {
  json j = json::parse(render_json(Report{}));
  EXPECT_TRUE(j.at("listeners").is_array());
  EXPECT_TRUE(j.at("listeners").empty());
  EXPECT_TRUE(j.at("clusters").is_array());
}

}  // namespace
}  // namespace lbd::proxy
