#include "proxy/l4/sni_router.hpp"

namespace lbd::proxy {

SniRouter::SniRouter(const config::ListenerConfig& listener, const ClusterLookup& cluster) {
  entries_.reserve(listener.routes.size());
  for (const auto& r : listener.routes) entries_.push_back({r.match.sni.value_or(""), cluster(r.cluster)});
  if (!listener.cluster.empty()) fallback_ = cluster(listener.cluster);
}

bool SniRouter::name_matches(std::string_view pattern, std::string_view name) {
  if (pattern.starts_with("*.")) {
    const std::string_view suffix = pattern.substr(1);  // ".example.com"
    return name.size() > suffix.size() && name.ends_with(suffix);
  }
  return pattern == name;
}

Cluster* SniRouter::route(std::string_view sni) const {
  for (const auto& e : entries_)
    if (name_matches(e.pattern, sni)) return e.cluster;
  return nullptr;
}

}  // namespace lbd::proxy
