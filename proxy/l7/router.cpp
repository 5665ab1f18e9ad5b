#include "proxy/l7/router.hpp"

#include "proxy/core/host_pattern.hpp"
#include "proxy/http/syntax.hpp"

namespace lbd::proxy {

using namespace lbd::http;

namespace {
RequestForwardConfig request_config(const config::ListenerConfig& l, const config::RouteConfig* r) {
  RequestForwardConfig c;
  c.x_forwarded_for = l.forwarded_headers.x_forwarded_for;
  c.x_forwarded_proto = l.forwarded_headers.x_forwarded_proto;
  c.x_forwarded_host = l.forwarded_headers.x_forwarded_host;
  if (l.tls && l.tls->server.verify_client != tls::VerifyClient::kOff)
    c.client_subject_header = l.tls->client_subject_header;
  if (r) {
    if (r->rewrite_prefix && r->match.path_prefix) c.path_rewrites.push_back({*r->match.path_prefix, *r->rewrite_prefix});
    c.headers = r->request_headers;
  }
  return c;
}

ResponseForwardConfig response_config(const config::RouteConfig* r) {
  ResponseForwardConfig c;
  if (r) c.headers = r->response_headers;
  return c;
}

std::string_view strip_port(std::string_view host) {
  if (host.starts_with('[')) {
    auto end = host.find(']');
    return end == std::string_view::npos ? host : host.substr(0, end + 1);
  }
  auto colon = host.rfind(':');
  return colon == std::string_view::npos ? host : host.substr(0, colon);
}
}  // namespace

HttpRouter::HttpRouter(const config::ListenerConfig& listener, const ClusterLookup& cluster) {
  for (const auto& r : listener.routes)
    entries_.push_back({r.match, HttpRoute{cluster(r.cluster), request_config(listener, &r), response_config(&r)}});
  if (!listener.cluster.empty())
    fallback_ = HttpRoute{cluster(listener.cluster), request_config(listener, nullptr), response_config(nullptr)};
}

bool HttpRouter::host_matches(std::string_view pattern, std::string_view host) {
  return host_pattern_matches(pattern, strip_port(host));
}

bool HttpRouter::matches(const config::RouteMatch& m, const RequestHead& req) {
  if (m.host && !host_matches(*m.host, req.host)) return false;
  std::string_view path = req.path();
  if (m.path && path != *m.path) return false;
  if (m.path_prefix && !path.starts_with(*m.path_prefix)) return false;
  if (!m.methods.empty()) {
    bool any = false;
    for (const auto& method : m.methods) any = any || method == req.method;
    if (!any) return false;
  }
  for (const auto& h : m.headers) {
    auto v = req.headers.get(h.name);
    if (!v || *v != h.value) return false;
  }
  return true;
}

const HttpRoute* HttpRouter::route(const RequestHead& req) const {
  for (const auto& e : entries_)
    if (matches(e.match, req)) return &e.route;
  return fallback_ ? &*fallback_ : nullptr;
}

}  // namespace lbd::proxy
