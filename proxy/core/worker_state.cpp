#include "proxy/core/worker_state.hpp"

namespace lbd::proxy {

WorkerState::WorkerState(std::shared_ptr<const config::Config> cfg, uint64_t seed) : cfg_(std::move(cfg)) {
  for (const auto& c : cfg_->clusters) clusters_.emplace(c.name, std::make_unique<Cluster>(c, seed));
}

Cluster* WorkerState::cluster(const std::string& name) const {
  auto it = clusters_.find(name);
  return it == clusters_.end() ? nullptr : it->second.get();
}

}  // namespace lbd::proxy
