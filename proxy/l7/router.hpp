#pragma once
// HttpRouter: an http listener's routes, compiled once per config snapshot with every cluster
// name resolved. Routes are tried in file order and the first whose every condition holds
// wins; a request no route takes goes to the listener's default cluster, or gets 404 when it
// has none (like an nginx server without a matching location).

#include <functional>
#include <optional>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "proxy/core/cluster.hpp"
#include "proxy/http/forward.hpp"
#include "proxy/http/message_head.hpp"

namespace lbd::proxy {

/// What a request is sent with: the cluster and how the head is rewritten on the way.
struct HttpRoute {
  Cluster* cluster = nullptr;            // in the same snapshot as the router
  http::RequestForwardConfig request;    // X-Forwarded-*, prefix rewrite, header edits
  http::ResponseForwardConfig response;  // header edits on the way back
};

class HttpRouter {
 public:
  /// Finds the cluster a route names; every name it is asked for exists (the config was
  /// validated).
  using ClusterLookup = std::function<Cluster*(std::string_view name)>;

  HttpRouter(const config::ListenerConfig& listener, const ClusterLookup& cluster);

  /// The route for `req`, or nullptr when none applies (answer 404).
  const HttpRoute* route(const http::RequestHead& req) const;

  /// Whether `host` (lowercase, maybe with ":port") matches `pattern` ("a.b" or "*.b").
  static bool host_matches(std::string_view pattern, std::string_view host);

 private:
  struct Entry {
    config::RouteMatch match;
    HttpRoute route;
  };
  static bool matches(const config::RouteMatch& m, const http::RequestHead& req);

  std::vector<Entry> entries_;
  std::optional<HttpRoute> fallback_;  // the listener's default cluster
};

}  // namespace lbd::proxy
