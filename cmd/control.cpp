#include "cmd/control.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>


namespace lbd::cmd {

namespace {

Task<proxy::WorkerReport> report_of(proxy::ProxyWorker* w) { co_return w->report(); }

Task<bool> drain_on(proxy::ProxyWorker* w, std::string cluster, std::string address, bool drained) {
  co_return w->set_endpoint_drained(cluster, address, drained);
}

}  // namespace

Control::Control(std::vector<std::unique_ptr<proxy::ProxyWorker>>* workers, WorkerPool* pool)
    : workers_(workers), pool_(pool), checker_([this](const health::HealthChange& c) { on_health_change(c); }) {}

void Control::on_health_change(const health::HealthChange& change) {
  // Every worker gets the verdict; none asks another (DESIGN.md: workers share nothing).
  for (unsigned i = 0; i < pool_->size(); ++i) {
    proxy::ProxyWorker* w = (*workers_)[i].get();
    pool_->mailbox(i).post([w, cluster = change.cluster, address = change.address, down = !change.up] {
      w->set_endpoint_down(cluster, address, down);
    });
  }
}

std::string Control::apply(std::shared_ptr<const config::Config> cfg) {
  cfg_ = std::move(cfg);
  checker_.apply(*cfg_);
  // The admin server (proxy/admin) has not landed yet: say so rather than pretend to listen.
  if (cfg_->admin.listen)
    spdlog::warn("admin.listen {}: the admin listener is not served yet; nothing listens there",
                 cfg_->admin.listen->to_string());
  return "";
}

Task<void> Control::stop() { co_await checker_.stop(); }

Task<proxy::Report> Control::report() {
  proxy::Report out;
  out.process = process_;
  for (unsigned i = 0; i < pool_->size(); ++i) {
    proxy::ProxyWorker* w = (*workers_)[i].get();
    auto make = [w] { return report_of(w); };  // named: GCC 12 and lambdas in a co_await
    out.add(co_await pool_->mailbox(i).call(std::move(make)));
  }
  for (auto& c : out.clusters) {
    for (auto& e : c.endpoints) {
      auto address = SocketAddress::parse(e.address);
      const health::EndpointCheck* check = address ? checker_.find(c.name, *address) : nullptr;
      if (!check) continue;
      e.down = check->down();
      e.last_check = check->last_check_text();
      e.check_failures = check->check_failures();
      e.transitions = check->transitions();
    }
  }
  co_return out;
}

Task<proxy::AdminAnswer> Control::set_endpoint(std::string cluster, std::string address,
                                               proxy::EndpointAction action) {
  const config::ClusterConfig* c = cfg_ ? cfg_->find_cluster(cluster) : nullptr;
  if (!c) co_return proxy::AdminAnswer{404, "no cluster named \"" + cluster + "\""};
  // Spelled as the config would print it: "127.0.0.1:8080", "[::1]:8080", "unix:/path".
  if (auto parsed = SocketAddress::parse(address)) address = parsed->to_string();
  const bool known = std::any_of(c->endpoints.begin(), c->endpoints.end(),
                                 [&](const config::EndpointConfig& e) { return e.address.to_string() == address; });
  if (!known) co_return proxy::AdminAnswer{404, "cluster " + cluster + " has no endpoint " + address};
  const bool drained = action == proxy::EndpointAction::kDrain;
  for (unsigned i = 0; i < pool_->size(); ++i) {
    proxy::ProxyWorker* w = (*workers_)[i].get();
    auto make = [w, cluster, address, drained] { return drain_on(w, cluster, address, drained); };  // named
    (void)co_await pool_->mailbox(i).call(std::move(make));
  }
  const char* state = drained ? "DRAIN" : "enabled";
  spdlog::info("admin: cluster {} endpoint {} set to {}", cluster, address, drained ? "DRAIN" : "READY");
  co_return proxy::AdminAnswer{200, "cluster " + cluster + " endpoint " + address + ": " + state};
}

}  // namespace lbd::cmd
