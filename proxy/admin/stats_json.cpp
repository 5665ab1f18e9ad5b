#include "proxy/admin/stats_json.hpp"

#include <nlohmann/json.hpp>

namespace lbd::proxy {

namespace {

using nlohmann::json;

json by_class(const std::array<uint64_t, 5>& counts) {
  return {{"1xx", counts[0]}, {"2xx", counts[1]}, {"3xx", counts[2]}, {"4xx", counts[3]}, {"5xx", counts[4]}};
}

json process_json(const ProcessReport& p) {
  return {{"version", p.version},
          {"driver", p.driver},
          {"workers", p.workers},
          {"start_time", p.start_time},
          {"time", p.report_time},
          {"config_generation", p.config_generation},
          {"reloads", {{"ok", p.reloads_ok}, {"failed", p.reloads_failed}}},
          {"ready", p.ready},
          {"draining", p.draining}};
}

json listener_json(const ListenerReport& l) {
  const ListenerStats& s = l.stats;
  json out = {{"name", l.name},
          {"address", l.address},
          {"protocol", l.protocol},
          {"connections", {{"accepted", s.accepted}, {"active", s.active}, {"rejected_over_limit", s.rejected_over_limit}}},
          {"requests", s.requests},
          {"responses", by_class(s.responses)},
          {"http_errors", s.http_errors},
          {"bytes", {{"received", s.bytes_from_client}, {"sent", s.bytes_to_client}}},
          {"no_upstream", s.no_upstream},
          {"errors",
           {{"client", s.client_errors},
            {"upstream", s.upstream_errors},
            {"idle_timeouts", s.idle_timeouts},
            {"connect", {{"refused", s.connect_refused}, {"timeout", s.connect_timeout}, {"other", s.connect_other}}}}}};
  if (l.tls) {
    out["tls"] = {{"handshakes", s.tls_handshakes},      {"resumed", s.tls_resumed},
                  {"failed", s.tls_handshake_failures}, {"timeouts", s.tls_handshake_timeouts},
                  {"plain_http", s.tls_plain_http},     {"not_tls", s.tls_not_tls}};
  }
  if (l.sni) {
    out["sni"] = {{"routed", s.sni_routed},
                  {"default", s.sni_default},
                  {"rejected", s.sni_rejected},
                  {"preread_timeouts", s.preread_timeouts},
                  {"preread_aborted", s.preread_aborted}};
  }
  return out;
}

json endpoint_json(const EndpointReport& e) {
  const EndpointStats& s = e.stats;
  uint64_t count = 0;
  for (uint64_t n : s.response_time) count += n;
  return {{"address", e.address},
          {"state", to_string(e.health())},
          {"weight", e.weight},
          {"active", e.active},
          {"idle", e.idle},
          {"requests", s.requests},
          {"responses", by_class(s.responses)},
          {"connect_errors", {{"refused", s.connect_refused}, {"timeout", s.connect_timeout}, {"other", s.connect_other}}},
          {"failures", s.failures},
          {"ejections", s.ejections},
          {"ejected_in", e.ejected_in},
          {"check",
           {{"enabled", e.checked}, {"last", e.last_check}, {"failures", e.check_failures}, {"transitions", e.transitions}}},
          {"response_time",
           {{"bounds", kResponseTimeBounds}, {"counts", s.response_time}, {"sum", s.response_time_sum}, {"count", count}}}};
}

json cluster_json(const ClusterReport& c) {
  json states = {{"UP", 0}, {"DOWN", 0}, {"DRAIN", 0}, {"EJECTED", 0}};
  json endpoints = json::array();
  for (const EndpointReport& e : c.endpoints) {
    states[to_string(e.health())] = states[to_string(e.health())].get<uint64_t>() + 1;
    endpoints.push_back(endpoint_json(e));
  }
  return {{"name", c.name}, {"balance", c.balance}, {"states", std::move(states)}, {"endpoints", std::move(endpoints)}};
}

}  // namespace

std::string render_json(const Report& r) {
  json listeners = json::array();
  for (const ListenerReport& l : r.listeners) listeners.push_back(listener_json(l));
  json clusters = json::array();
  for (const ClusterReport& c : r.clusters) clusters.push_back(cluster_json(c));
  json doc = {{"process", process_json(r.process)}, {"listeners", std::move(listeners)}, {"clusters", std::move(clusters)}};
  // Names come from the config file, which need not be UTF-8: replace rather than throw.
  return doc.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace lbd::proxy
