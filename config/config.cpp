#include "config/config.hpp"

#include <algorithm>

#include "config/detail/enum_names.hpp"

namespace lbd::config {

std::string_view to_string(LogLevel v) {
  return detail::enum_name<LogLevel>(detail::kLogLevelNames, v);
}
std::optional<LogLevel> parse_log_level(std::string_view text) {
  for (const auto& entry : detail::kLogLevelNames)
    if (entry.name == text) return entry.value;
  return std::nullopt;
}
std::vector<std::string> log_level_names() {
  std::vector<std::string> names;
  for (const auto& entry : detail::kLogLevelNames) names.emplace_back(entry.name);
  return names;
}
std::string_view to_string(AccessLogFormat v) {
  return detail::enum_name<AccessLogFormat>(detail::kAccessLogFormatNames, v);
}
std::string_view to_string(Protocol v) {
  return detail::enum_name<Protocol>(detail::kProtocolNames, v);
}
std::string_view to_string(HashKeyKind v) {
  return detail::enum_name<HashKeyKind>(detail::kHashKeyKindNames, v);
}
std::string_view to_string(HealthCheckType v) {
  return detail::enum_name<HealthCheckType>(detail::kHealthCheckTypeNames, v);
}

std::string_view to_string(Forwarding v) {
  return detail::enum_name<Forwarding>(detail::kForwardingNames, v);
}

const ClusterConfig* Config::find_cluster(std::string_view name) const {
  auto it = std::find_if(clusters.begin(), clusters.end(),
                         [&](const ClusterConfig& c) { return c.name == name; });
  return it == clusters.end() ? nullptr : &*it;
}

std::string ConfigError::to_string() const {
  std::string out = file;
  if (line > 0) {
    out += ':';
    out += std::to_string(line);
    out += ':';
    out += std::to_string(column);
  }
  out += ": ";
  if (!key_path.empty()) {
    out += key_path;
    out += ": ";
  }
  out += message;
  return out;
}

LoadResult::LoadResult(Config config, std::vector<ConfigError> warnings)
    : config_(std::move(config)), warnings_(std::move(warnings)) {}
LoadResult::LoadResult(std::vector<ConfigError> errors, std::vector<ConfigError> warnings)
    : errors_(std::move(errors)), warnings_(std::move(warnings)) {}

std::string LoadResult::error_report() const {
  std::string out;
  for (const auto& e : errors_) out += e.to_string() + "\n";
  return out;
}

std::string LoadResult::warning_report() const {
  std::string out;
  for (const auto& w : warnings_) out += "warning: " + w.to_string() + "\n";
  return out;
}

namespace {

std::string plural(std::size_t n, std::string_view word) {
  return std::to_string(n) + " " + std::string(word) + (n == 1 ? "" : "s");
}

std::string describe_match(const RouteMatch& m) {
  std::string out;
  auto add = [&](std::string_view key, const std::string& value) {
    if (!out.empty()) out += ' ';
    out += key;
    out += ' ';
    out += value;
  };
  if (m.host) add("host", *m.host);
  if (m.path_prefix) add("path_prefix", *m.path_prefix);
  if (m.path) add("path", *m.path);
  if (!m.methods.empty()) {
    std::string methods;
    for (const auto& method : m.methods) methods += (methods.empty() ? "" : ",") + method;
    add("method", methods);
  }
  for (const auto& h : m.headers) add("header", h.name + "=" + h.value);
  return out.empty() ? "any request" : out;
}

}  // namespace

std::string describe(const Config& config) {
  std::string out = config.source_path.empty() ? "config" : config.source_path;
  out += ": " + plural(config.listeners.size(), "listener") + ", " +
         plural(config.clusters.size(), "cluster") + "; workers " +
         (config.workers == 0 ? std::string("auto") : std::to_string(config.workers)) + ", io " +
         std::string(to_string(config.io)) + ", admin " +
         (config.admin.listen ? config.admin.listen->to_string() : std::string("off")) +
         (config.admin.token ? " (token set)" : "") + "\n";
  for (const auto& l : config.listeners) {
    out += "listener " + l.name + " " + l.listen.to_string() + " " +
           std::string(to_string(l.protocol));
    if (l.tls)
      out += " tls (" + plural(l.tls->server.certificates.size(), "certificate") + ")";
    if (l.protocol == Protocol::kTcp) {
      out += " -> " + l.cluster + "\n";
      continue;
    }
    out += "\n";
    for (const auto& r : l.routes) {
      out += "  " + describe_match(r.match) + " -> " + r.cluster;
      if (r.rewrite_prefix) out += " (rewrite to " + *r.rewrite_prefix + ")";
      out += "\n";
    }
    if (!l.cluster.empty()) out += "  otherwise -> " + l.cluster + "\n";
  }
  for (const auto& c : config.clusters) {
    out += "cluster " + c.name + " " + std::string(to_string(c.balance));
    if (c.balance == balancer::BalanceKind::kHash)
      out += c.hash_key.kind == HashKeyKind::kSourceIp ? " on source_ip"
                                                      : " on header:" + c.hash_key.header_name;
    out += ", " + plural(c.endpoints.size(), "endpoint");
    if (c.health_check) {
      out += ", health check " + std::string(to_string(c.health_check->type));
      if (c.health_check->type == HealthCheckType::kHttp) out += " " + c.health_check->path;
    }
    if (c.outlier) {
      out += ", outlier after " + plural(c.outlier->consecutive_failures, "failure");
      if (!c.outlier->http_5xx) out += " (5xx not counted)";
    }
    out += "\n";
  }
  return out;
}

}  // namespace lbd::config
