#pragma once
// SniRouter: a tcp listener's SNI routes (`routes: [{ match: { sni: ... }, cluster: ... }]`),
// compiled once per config snapshot with every cluster name resolved. The routes are tried in
// file order and the first whose pattern the ClientHello's server name matches wins; a
// connection no route takes goes to the listener's default cluster, or is closed when it has
// none.

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "proxy/core/cluster.hpp"

namespace lbd::proxy {

class SniRouter {
 public:
  /// Finds the cluster a route names; every name it is asked for exists (the config was
  /// validated).
  using ClusterLookup = std::function<Cluster*(std::string_view name)>;

  /// Precondition: `listener` is a tcp listener with routes, each with match.sni.
  SniRouter(const config::ListenerConfig& listener, const ClusterLookup& cluster);

  /// The cluster of the first route whose pattern matches `sni` (lowercase, as
  /// tls::peek_client_hello gives it); nullptr when none does.
  Cluster* route(std::string_view sni) const;
  /// The listener's default cluster (no SNI, an SNI no route matches, not_tls: default);
  /// nullptr when it has none.
  Cluster* fallback() const { return fallback_; }

 private:
  struct Entry {
    std::string pattern;  // lowercase, from the config
    Cluster* cluster;     // in the same snapshot as the router
  };
  std::vector<Entry> entries_;
  Cluster* fallback_ = nullptr;  // in the same snapshot; null: close
};

}  // namespace lbd::proxy
