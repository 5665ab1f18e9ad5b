#include "proxy/l4/sni_router.hpp"

#include "proxy/core/host_pattern.hpp"

namespace lbd::proxy {

SniRouter::SniRouter(const config::ListenerConfig& listener, const ClusterLookup& cluster) {
  entries_.reserve(listener.routes.size());
  for (const auto& r : listener.routes) entries_.push_back({r.match.sni.value_or(""), cluster(r.cluster)});
  if (!listener.cluster.empty()) fallback_ = cluster(listener.cluster);
}

Cluster* SniRouter::route(std::string_view sni) const {
  for (const auto& e : entries_)
    if (host_pattern_matches(e.pattern, sni)) return e.cluster;
  return nullptr;
}

}  // namespace lbd::proxy
