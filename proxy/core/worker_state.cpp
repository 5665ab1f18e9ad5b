#include "proxy/core/worker_state.hpp"

namespace lbd::proxy {

WorkerState::WorkerState(std::shared_ptr<const config::Config> cfg, uint64_t seed) : cfg_(std::move(cfg)) {
  for (const auto& c : cfg_->clusters) clusters_.emplace(c.name, std::make_unique<Cluster>(c, seed));
  for (const auto& l : cfg_->listeners)
    if (l.protocol == config::Protocol::kHttp) routers_.emplace(l.name, std::make_unique<HttpRouter>(l));
}

const HttpRouter* WorkerState::router(const std::string& listener) const {
  auto it = routers_.find(listener);
  return it == routers_.end() ? nullptr : it->second.get();
}

Cluster* WorkerState::cluster(const std::string& name) const {
  auto it = clusters_.find(name);
  return it == clusters_.end() ? nullptr : it->second.get();
}

}  // namespace lbd::proxy
