// Saves a screenshot of the admin status page with a realistic fake report:
//   admin_status_screenshot docs/status-page.png
// The page in the README is made with this; it is a tool, not a test.

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "runtime/runtime.hpp"
#include "runtime/spawn.hpp"
#include "runtime/worker.hpp"
#include "tests/proxy/admin_http_client.hpp"
#include "tests/proxy/admin_test_support.hpp"
#include "tests/proxy/chromium.hpp"

namespace {

using namespace lbd;

/// Three samples 2 s apart, each with the traffic of those 2 s added, so the page shows rates.
std::vector<proxy::Report> samples() {
  proxy::Report base = test::realistic_report();
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  base.process.start_time = now - (3 * 86400 + 4 * 3600 + 17 * 60);
  std::vector<proxy::Report> out;
  for (int k = 0; k < 4; ++k) {
    proxy::Report r = base;
    r.process.report_time = now + 2.0 * k;  // 2 s apart, whatever the browser's clock says
    const uint64_t per_listener[] = {2 * 1840, 2 * 610, 2 * 3};
    for (std::size_t i = 0; i < r.listeners.size(); ++i) {
      auto& s = r.listeners[i].stats;
      uint64_t add = per_listener[i] * static_cast<uint64_t>(k);
      if (r.listeners[i].protocol == "http") {
        s.requests += add;
        s.responses[1] += add;
      } else {
        s.accepted += add;
      }
    }
    for (auto& c : r.clusters)
      for (std::size_t i = 0; i < c.endpoints.size(); ++i) {
        auto& e = c.endpoints[i];
        if (e.health() != proxy::EndpointHealth::kUp) continue;
        e.stats.requests += static_cast<uint64_t>(k) * (2 * 590 + 40 * i);
      }
    out.push_back(r);
  }
  return out;
}

Task<int> shoot(std::string png) {
  test::FakeBackend backend;
  backend.reports = samples();
  test::AdminHarness h;
  if (auto r = h.start(&backend); !r) {
    std::fprintf(stderr, "admin server: %s\n", r.error().message().c_str());
    co_return 1;
  }
  std::string url = "http://127.0.0.1:" + std::to_string(h.address().port()) + "/status";
  auto job = [url, png] { return test::chromium_screenshot(url, png, 1200, 800, 5000); };
  test::CommandResult r = co_await spawn_blocking(std::move(job));
  (void)co_await h.stop();
  if (!r.ok()) {
    std::fprintf(stderr, "chromium failed (exit %d%s):\n%s\n", r.exit_code, r.timed_out ? ", timed out" : "",
                 r.errors.c_str());
    co_return 1;
  }
  std::printf("wrote %s\n", png.c_str());
  co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT.png\n", argv[0]);
    return 2;
  }
  std::string png = argv[1];
  if (!png.empty() && png[0] != '/') png = std::filesystem::absolute(png).string();  // chromium's cwd is its own
  Runtime rt;
  return rt.block_on(shoot(png));
}
