#include "proxy/worker/snapshot.hpp"

#include <string_view>

namespace lbd::proxy {

Snapshot::Snapshot(std::shared_ptr<const config::Config> cfg, uint64_t seed, EndpointBook* book)
    : cfg_(std::move(cfg)) {
  for (const auto& c : cfg_->clusters) clusters_.push_back(std::make_unique<Cluster>(c, seed, book));
  // Config validation guarantees that every name a listener or route uses exists.
  auto cluster = [this](std::string_view name) -> Cluster* {
    for (const auto& c : clusters_)
      if (c->name() == name) return c.get();
    return nullptr;
  };
  listeners_.reserve(cfg_->listeners.size());
  for (const auto& l : cfg_->listeners) {
    Listener entry;
    entry.config = &l;
    if (l.protocol == config::Protocol::kTcp) entry.cluster = cluster(l.cluster);
    if (l.protocol == config::Protocol::kHttp) entry.router = std::make_unique<HttpRouter>(l, cluster);
    listeners_.push_back(std::move(entry));
  }
}

}  // namespace lbd::proxy
