#include "cmd/control.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "proxy/admin/admin_server.hpp"

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

Task<std::string> Control::apply(std::shared_ptr<const config::Config> cfg) {
  cfg_ = std::move(cfg);
  checker_.apply(*cfg_);
  const std::optional<SocketAddress>& want = cfg_->admin.listen;
  if (admin_ && want && admin_->address == *want) co_return std::string();  // token etc. are read per request
  if (!want) {
    if (admin_) spdlog::info("admin listener {} closed (admin.listen removed)", admin_->address.to_string());
    co_await close_admin();
    co_return std::string();
  }
  // Bound before the old one closes, so a typo in a reload does not leave the operator blind.
  std::unique_ptr<AdminSite> next;
  std::string error = open_admin(*want, &next);
  if (!error.empty()) {
    if (admin_) error += "; the admin listener stays on " + admin_->address.to_string();
    co_return error + "\n";
  }
  co_await close_admin();
  admin_ = std::move(next);
  spdlog::info("admin listener on {} (/metrics /stats /status /healthz /ready)", admin_->address.to_string());
  co_return std::string();
}

std::string Control::open_admin(const SocketAddress& address, std::unique_ptr<AdminSite>* site) {
  ListenOptions opts;
  opts.reuse_port = false;  // one admin listener per process: a second lbd must fail, not share it
  opts.backlog = 64;
  auto out = std::make_unique<AdminSite>();
  out->address = address;
  Result<void> bound;
  if (address.is_unix()) {
    auto l = UnixListener::bind(address, opts);
    if (l) out->listener = std::make_unique<UnixListener>(std::move(*l));
    else bound = l.error();
  } else {
    auto l = TcpListener::bind(address, opts);
    if (l) out->listener = std::make_unique<TcpListener>(std::move(*l));
    else bound = l.error();
  }
  if (!bound) {
    std::string why = bound.error().message();
    if (bound.error().is(EADDRINUSE)) why += " (another process is listening there)";
    if (bound.error().is(EACCES) && !address.is_unix() && address.port() < 1024)
      why += " (ports below 1024 need root or CAP_NET_BIND_SERVICE)";
    return "admin.listen: bind " + address.to_string() + ": " + why;
  }
  out->server.emplace(spawn(proxy::serve_admin(out->listener.get(), this, &out->stop)));
  *site = std::move(out);
  return "";
}

Task<void> Control::close_admin() {
  if (!admin_) co_return;
  admin_->stop.cancel();
  co_await *admin_->server;  // returns once its connections have closed
  admin_->listener->close_listener();
  admin_.reset();
}

Task<void> Control::stop() {
  co_await close_admin();
  co_await checker_.stop();
}

Task<proxy::Report> Control::report() {
  proxy::Report out;
  out.process = process_;
  out.process.report_time =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
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
  co_return proxy::AdminAnswer{200, "cluster " + cluster + " endpoint " + address + ": " + state};
}

}  // namespace lbd::cmd
