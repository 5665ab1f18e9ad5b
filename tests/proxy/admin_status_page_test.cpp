// The status page (proxy/admin/status_page.cpp) as a browser renders it: headless Chromium loads
// /status from the admin server, the page's script fetches /stats, and the DOM it builds must
// show every endpoint in the state the backend reports — after a reload and, within one load,
// after the page's own 2 s refresh.

#include <gtest/gtest.h>

#include <string>

#include "runtime/worker.hpp"
#include "tests/proxy/admin_http_client.hpp"
#include "tests/proxy/admin_test_support.hpp"
#include "tests/proxy/chromium.hpp"
#include "tests/runtime/runtime_test_support.hpp"

namespace lbd::proxy {
namespace {

using namespace std::chrono_literals;
using test::AdminHarness;
using test::CommandResult;
using test::FakeBackend;

class AdminStatusPageTest : public test::RuntimeTest {
 protected:
  void SetUp() override {
    if (test::find_chromium().empty()) GTEST_SKIP() << "chromium is not installed (Debian: chromium)";
    test::RuntimeTest::SetUp();
  }
  FakeBackend backend_;
};
LBD_INSTANTIATE_FOR_DRIVERS(AdminStatusPageTest);

std::string row(std::string_view cluster, std::string_view endpoint, std::string_view state) {
  return "data-cluster=\"" + std::string(cluster) + "\" data-endpoint=\"" + std::string(endpoint) + "\" data-state=\"" +
         std::string(state) + "\"";
}

/// Loads the page in Chromium while this runtime keeps serving it.
Task<CommandResult> load(const AdminHarness* h, int virtual_time_ms) {
  std::string url = "http://127.0.0.1:" + std::to_string(h->address().port()) + "/status";
  auto job = [url, virtual_time_ms] { return test::chromium_dump_dom(url, virtual_time_ms); };
  CommandResult r = co_await spawn_blocking(std::move(job));
  co_return r;
}

Task<void> shows_states(FakeBackend* backend) {
  AdminHarness h;
  CO_ASSERT_OK(h.start(backend));

  CommandResult first = co_await load(&h, 3000);
  CO_ASSERT_TRUE(first.ok());
  const std::string& dom = first.output;
  EXPECT_NE(dom.find(row("web", "127.0.0.1:8081", "UP")), std::string::npos) << dom << first.errors;
  EXPECT_NE(dom.find(row("web", "127.0.0.1:8082", "DOWN")), std::string::npos);
  EXPECT_NE(dom.find(row("web", "[::1]:8083", "DRAIN")), std::string::npos);
  EXPECT_NE(dom.find(row("web", "127.0.0.1:8084", "EJECTED")), std::string::npos);
  EXPECT_NE(dom.find("data-listener=\"web\""), std::string::npos);
  EXPECT_NE(dom.find("data-listener=\"db\""), std::string::npos);
  EXPECT_NE(dom.find("HTTP 200 in 1.2ms"), std::string::npos);
  // A name with markup-significant characters arrives as text, not markup.
  EXPECT_NE(dom.find("Cluster we\"ird\\name"), std::string::npos);
  EXPECT_EQ(dom.find("data-samples=\"0\""), std::string::npos) << "the page rendered no /stats sample";

  // The endpoint goes down; the next load shows it.
  backend->reports[0].clusters[0].endpoints[0].down = true;
  CommandResult second = co_await load(&h, 3000);
  CO_ASSERT_TRUE(second.ok());
  EXPECT_NE(second.output.find(row("web", "127.0.0.1:8081", "DOWN")), std::string::npos) << second.output;
  {
    const bool ok = co_await h.stop();
    EXPECT_TRUE(ok);
  }
}
TEST_P(AdminStatusPageTest, ShowsEveryEndpointInItsReportedState) { run(shows_states(&backend_), 120s); }

Task<void> refreshes(FakeBackend* backend) {
  // The first /stats sample has 127.0.0.1:8081 UP, every later one DOWN. lbd's clock says the
  // samples are 4 s apart each time (the page asks every 2 s of the browser's virtual clock) and
  // 4,936 more requests came in, so the rate is 1,234/s; by the browser's clock it would be 2,468.
  Report& first = backend->reports[0];
  first.process.report_time = 1700000100;
  Report later = test::small_report();
  later.process.report_time = 1700000104;
  later.clusters[0].endpoints[0].down = true;
  later.listeners[0].stats.requests = first.listeners[0].stats.requests + 4936;
  backend->reports.push_back(later);
  later.process.report_time += 4;  // the third sample: the same rate
  later.listeners[0].stats.requests += 4936;
  backend->reports.push_back(later);
  AdminHarness h;
  CO_ASSERT_OK(h.start(backend));
  // 5 s of virtual time: samples at 0 s, 2 s and 4 s.
  CommandResult r = co_await load(&h, 5000);
  CO_ASSERT_TRUE(r.ok());
  EXPECT_GE(backend->report_calls, 2);
  EXPECT_NE(r.output.find(row("web", "127.0.0.1:8081", "DOWN")), std::string::npos) << r.output << r.errors;
  EXPECT_EQ(r.output.find(row("web", "127.0.0.1:8081", "UP")), std::string::npos);
  EXPECT_TRUE(r.output.find("data-samples=\"1\"") == std::string::npos &&
              r.output.find("data-samples=\"0\"") == std::string::npos)
      << "the page did not refresh";
  EXPECT_NE(r.output.find(">1,234<"), std::string::npos) << "the request rate is not lbd's: " << r.output;
  {
    const bool ok = co_await h.stop();
    EXPECT_TRUE(ok);
  }
}
TEST_P(AdminStatusPageTest, ThePageRefreshesItselfEveryTwoSeconds) { run(refreshes(&backend_), 120s); }

}  // namespace
}  // namespace lbd::proxy
