#include "proxy/admin/metrics.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string_view>

namespace lbd::proxy {

namespace {

constexpr std::string_view kCodeClasses[5] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
constexpr EndpointHealth kStates[] = {EndpointHealth::kUp, EndpointHealth::kDown, EndpointHealth::kDrain,
                                      EndpointHealth::kEjected};

/// Appends `value` as a label value: backslash, double quote and newline escaped, the three the
/// format requires (anything else, UTF-8 included, goes through as it is).
void append_label_value(std::string& out, std::string_view value) {
  for (char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
}

/// `a="x",b="y"`: one object's labels, rendered once and reused for every family.
std::string labels(std::string_view k1, std::string_view v1, std::string_view k2, std::string_view v2) {
  std::string s;
  s.append(k1).append("=\"");
  append_label_value(s, v1);
  s.append("\",").append(k2).append("=\"");
  append_label_value(s, v2);
  s += '"';
  return s;
}

/// Writes families one after the other; a family's samples must be contiguous, so callers loop
/// over objects inside a family, not over families inside an object.
class PromWriter {
 public:
  explicit PromWriter(std::string& out) : out_(out) {}

  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out_.append("# TYPE ").append(name).append(" ").append(type).append("\n");
  }

  /// name{base,extra_key="extra_value"} value. `base` is already rendered (labels()).
  template <class V>
  void sample(std::string_view name, std::string_view base, V value, std::string_view extra_key = {},
              std::string_view extra_value = {}) {
    out_.append(name);
    if (!base.empty() || !extra_key.empty()) {
      out_ += '{';
      out_.append(base);
      if (!extra_key.empty()) {
        if (!base.empty()) out_ += ',';
        out_.append(extra_key).append("=\"");
        append_label_value(out_, extra_value);
        out_ += '"';
      }
      out_ += '}';
    }
    out_ += ' ';
    append_number(value);
    out_ += '\n';
  }

 private:
  void append_number(uint64_t v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof(buf), v);
    out_.append(buf, static_cast<std::size_t>(r.ptr - buf));
  }
  void append_number(double v) {
    if (std::isnan(v)) {
      out_ += "NaN";
      return;
    }
    if (std::isinf(v)) {
      out_ += v > 0 ? "+Inf" : "-Inf";
      return;
    }
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof(buf), v);  // shortest text that reads back exactly
    out_.append(buf, static_cast<std::size_t>(r.ptr - buf));
  }

  std::string& out_;
};

std::string bound_text(double bound) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof(buf), bound);
  return std::string(buf, static_cast<std::size_t>(r.ptr - buf));
}

void render_process(PromWriter& w, const ProcessReport& p) {
  w.family("lbd_build_info", "gauge", "lbd's version and the I/O driver in use; always 1.");
  w.sample("lbd_build_info", labels("version", p.version, "driver", p.driver), uint64_t{1});
  w.family("lbd_start_time_seconds", "gauge", "When lbd started, in seconds since the Unix epoch.");
  w.sample("lbd_start_time_seconds", "", p.start_time);
  w.family("lbd_config_generation", "gauge", "1 for the config lbd started with, +1 per successful reload.");
  w.sample("lbd_config_generation", "", p.config_generation);
  w.family("lbd_reloads_total", "counter", "Config reloads by result: ok, or failed (the old config stays).");
  w.sample("lbd_reloads_total", "", p.reloads_ok, "result", "ok");
  w.sample("lbd_reloads_total", "", p.reloads_failed, "result", "failed");
  w.family("lbd_workers", "gauge", "Worker threads serving traffic.");
  w.sample("lbd_workers", "", uint64_t{p.workers});
  w.family("lbd_ready", "gauge", "1 while GET /ready answers 200: listeners bound, config loaded, not draining.");
  w.sample("lbd_ready", "", uint64_t{p.ready ? 1u : 0u});
  w.family("lbd_draining", "gauge", "1 once a graceful shutdown started.");
  w.sample("lbd_draining", "", uint64_t{p.draining ? 1u : 0u});
}

struct ListenerFamily {
  const char* name;
  const char* type;
  const char* help;
  uint64_t ListenerStats::*field;
};

// Families with one sample per listener; the labelled ones follow in render_listeners.
constexpr ListenerFamily kListenerFamilies[] = {
    {"lbd_listener_connections_accepted_total", "counter", "Client connections accepted.", &ListenerStats::accepted},
    {"lbd_listener_active_connections", "gauge", "Client connections open now.", &ListenerStats::active},
    {"lbd_listener_requests_total", "counter", "HTTP request heads received.", &ListenerStats::requests},
    {"lbd_listener_http_errors_total", "counter", "HTTP requests lbd answered itself with a 4xx or 5xx.",
     &ListenerStats::http_errors},
    {"lbd_listener_received_bytes_total", "counter", "Bytes received from clients.", &ListenerStats::bytes_from_client},
    {"lbd_listener_sent_bytes_total", "counter", "Bytes sent to clients.", &ListenerStats::bytes_to_client},
    {"lbd_listener_no_upstream_total", "counter", "Sessions closed because no endpoint was reachable.",
     &ListenerStats::no_upstream},
    {"lbd_listener_client_errors_total", "counter", "Read or write errors on the client side (resets).",
     &ListenerStats::client_errors},
    {"lbd_listener_upstream_errors_total", "counter", "Read or write errors on the upstream side.",
     &ListenerStats::upstream_errors},
    {"lbd_listener_idle_timeouts_total", "counter", "Sessions closed for passing no bytes for timeouts.idle.",
     &ListenerStats::idle_timeouts},
};

/// One counter of a family labelled by result="...".
struct ResultCounter {
  const char* result;
  uint64_t ListenerStats::*field;
};

constexpr ResultCounter kTlsResults[] = {
    {"ok", &ListenerStats::tls_handshakes},           {"resumed", &ListenerStats::tls_resumed},
    {"failed", &ListenerStats::tls_handshake_failures}, {"timeout", &ListenerStats::tls_handshake_timeouts},
    {"plain_http", &ListenerStats::tls_plain_http},   {"not_tls", &ListenerStats::tls_not_tls},
};
constexpr ResultCounter kSniResults[] = {
    {"routed", &ListenerStats::sni_routed},
    {"default", &ListenerStats::sni_default},
    {"rejected", &ListenerStats::sni_rejected},
    {"preread_timeout", &ListenerStats::preread_timeouts},
    {"preread_aborted", &ListenerStats::preread_aborted},
};

/// A counter family by result, with samples only for the listeners where `only` is set.
template <std::size_t N>
void render_by_result(PromWriter& w, const char* name, const char* help, const ResultCounter (&counters)[N],
                      bool ListenerReport::*only, const std::vector<ListenerReport>& listeners,
                      const std::vector<std::string>& base) {
  w.family(name, "counter", help);
  for (std::size_t i = 0; i < listeners.size(); ++i) {
    if (!(listeners[i].*only)) continue;
    for (const ResultCounter& c : counters) w.sample(name, base[i], listeners[i].stats.*c.field, "result", c.result);
  }
}

void render_listeners(PromWriter& w, const std::vector<ListenerReport>& listeners) {
  std::vector<std::string> base;
  base.reserve(listeners.size());
  for (const ListenerReport& l : listeners) base.push_back(labels("listener", l.name, "protocol", l.protocol));

  w.family("lbd_listener_info", "gauge", "A configured listener and the address it is bound to; always 1.");
  for (std::size_t i = 0; i < listeners.size(); ++i)
    w.sample("lbd_listener_info", base[i], uint64_t{1}, "address", listeners[i].address);
  for (const ListenerFamily& f : kListenerFamilies) {
    w.family(f.name, f.type, f.help);
    for (std::size_t i = 0; i < listeners.size(); ++i) w.sample(f.name, base[i], listeners[i].stats.*f.field);
  }
  w.family("lbd_listener_connections_rejected_total", "counter",
           "Client connections closed at once, by reason (max_connections: the listener's limit was reached).");
  for (std::size_t i = 0; i < listeners.size(); ++i)
    w.sample("lbd_listener_connections_rejected_total", base[i], listeners[i].stats.rejected_over_limit, "reason",
             "max_connections");
  w.family("lbd_listener_responses_total", "counter", "HTTP responses sent to clients, by status class.");
  for (std::size_t i = 0; i < listeners.size(); ++i)
    for (std::size_t c = 0; c < 5; ++c)
      w.sample("lbd_listener_responses_total", base[i], listeners[i].stats.responses[c], "code", kCodeClasses[c]);
  w.family("lbd_listener_connect_errors_total", "counter",
           "Failed connects to endpoints for this listener's sessions, by cause (refused, timeout, other).");
  for (std::size_t i = 0; i < listeners.size(); ++i) {
    const ListenerStats& s = listeners[i].stats;
    w.sample("lbd_listener_connect_errors_total", base[i], s.connect_refused, "cause", "refused");
    w.sample("lbd_listener_connect_errors_total", base[i], s.connect_timeout, "cause", "timeout");
    w.sample("lbd_listener_connect_errors_total", base[i], s.connect_other, "cause", "other");
  }
  // TLS listeners only: a plain listener has no handshakes to count.
  render_by_result(w, "lbd_listener_tls_handshakes_total",
                   "TLS handshakes on the listener, by result (ok, resumed: of the ok ones, from a ticket; failed; "
                   "timeout: not finished within timeouts.handshake; plain_http: plain HTTP sent to the TLS port, "
                   "answered 400; not_tls: other bytes, closed).",
                   kTlsResults, &ListenerReport::tls, listeners, base);
  // tcp listeners with SNI routes only.
  render_by_result(w, "lbd_listener_sni_connections_total",
                   "Connections of an SNI-routing tcp listener by where the ClientHello sent them (routed: a route "
                   "matched; default: to the default cluster; rejected: closed, no route and no default or not TLS; "
                   "preread_timeout: no whole ClientHello within timeouts.preread; preread_aborted: the client closed "
                   "before its ClientHello was whole).",
                   kSniResults, &ListenerReport::sni, listeners, base);
}

/// One endpoint with the labels every one of its samples carries.
struct EndpointRow {
  const EndpointReport* e;
  std::string base;  // cluster="…",endpoint="…"
};

struct EndpointFamily {
  const char* name;
  const char* type;
  const char* help;
  uint64_t (*get)(const EndpointReport&);
};

constexpr EndpointFamily kEndpointFamilies[] = {
    {"lbd_endpoint_weight", "gauge", "The endpoint's configured weight.",
     [](const EndpointReport& e) { return uint64_t{e.weight}; }},
    {"lbd_endpoint_requests_total", "counter", "HTTP requests sent to the endpoint; TCP sessions connected to it.",
     [](const EndpointReport& e) { return e.stats.requests; }},
    {"lbd_endpoint_active_connections", "gauge", "Connections (or requests in flight) open to the endpoint now.",
     [](const EndpointReport& e) { return e.active; }},
    {"lbd_endpoint_idle_connections", "gauge", "Pooled keep-alive connections to the endpoint.",
     [](const EndpointReport& e) { return e.idle; }},
    {"lbd_endpoint_failures_total", "counter",
     "Failures passive health counts: connect errors, resets, 5xx responses.",
     [](const EndpointReport& e) { return e.stats.failures; }},
    {"lbd_endpoint_ejections_total", "counter", "Times a worker ejected the endpoint (outlier detection).",
     [](const EndpointReport& e) { return e.stats.ejections; }},
    {"lbd_endpoint_ejected_workers", "gauge", "Workers in which the endpoint is ejected now.",
     [](const EndpointReport& e) { return uint64_t{e.ejected_in}; }},
    {"lbd_endpoint_check_failures_total", "counter", "Failed active health checks since start.",
     [](const EndpointReport& e) { return e.check_failures; }},
    {"lbd_endpoint_check_transitions_total", "counter", "UP <-> DOWN changes decided by active health checks.",
     [](const EndpointReport& e) { return e.transitions; }},
};

void render_histogram(PromWriter& w, const std::vector<EndpointRow>& rows) {
  constexpr std::string_view kName = "lbd_endpoint_response_time_seconds";
  w.family(kName, "histogram", "Time from sending a request to the endpoint to its response head.");
  std::string bounds[kResponseTimeBounds.size()];
  for (std::size_t b = 0; b < kResponseTimeBounds.size(); ++b) bounds[b] = bound_text(kResponseTimeBounds[b]);
  for (const EndpointRow& row : rows) {
    const EndpointStats& s = row.e->stats;
    uint64_t cumulative = 0;
    for (std::size_t b = 0; b < kResponseTimeBounds.size(); ++b) {
      cumulative += s.response_time[b];
      w.sample("lbd_endpoint_response_time_seconds_bucket", row.base, cumulative, "le", bounds[b]);
    }
    cumulative += s.response_time.back();
    w.sample("lbd_endpoint_response_time_seconds_bucket", row.base, cumulative, "le", "+Inf");
    w.sample("lbd_endpoint_response_time_seconds_sum", row.base, s.response_time_sum);
    w.sample("lbd_endpoint_response_time_seconds_count", row.base, cumulative);
  }
}

void render_clusters(PromWriter& w, const std::vector<ClusterReport>& clusters) {
  w.family("lbd_cluster_info", "gauge", "A configured cluster and its balancing algorithm; always 1.");
  for (const ClusterReport& c : clusters) {
    std::string l = "cluster=\"";
    append_label_value(l, c.name);
    l += '"';
    w.sample("lbd_cluster_info", l, uint64_t{1}, "balance", c.balance);
  }
  w.family("lbd_cluster_endpoints", "gauge", "The cluster's endpoints by state (UP, DOWN, DRAIN, EJECTED).");
  for (const ClusterReport& c : clusters) {
    std::string l = "cluster=\"";
    append_label_value(l, c.name);
    l += '"';
    for (EndpointHealth h : kStates) {
      uint64_t n = 0;
      for (const EndpointReport& e : c.endpoints) n += e.health() == h ? 1 : 0;
      w.sample("lbd_cluster_endpoints", l, n, "state", to_string(h));
    }
  }

  std::vector<EndpointRow> rows;
  for (const ClusterReport& c : clusters)
    for (const EndpointReport& e : c.endpoints) rows.push_back({&e, labels("cluster", c.name, "endpoint", e.address)});

  w.family("lbd_endpoint_state", "gauge",
           "The endpoint's state: 1 on the sample of the current one (UP, DOWN, DRAIN, EJECTED), 0 on the others.");
  for (const EndpointRow& row : rows) {
    const EndpointHealth current = row.e->health();
    for (EndpointHealth h : kStates)
      w.sample("lbd_endpoint_state", row.base, uint64_t{h == current ? 1u : 0u}, "state", to_string(h));
  }
  for (const EndpointFamily& f : kEndpointFamilies) {
    w.family(f.name, f.type, f.help);
    for (const EndpointRow& row : rows) w.sample(f.name, row.base, f.get(*row.e));
  }
  w.family("lbd_endpoint_responses_total", "counter", "HTTP responses from the endpoint, by status class.");
  for (const EndpointRow& row : rows)
    for (std::size_t c = 0; c < 5; ++c)
      w.sample("lbd_endpoint_responses_total", row.base, row.e->stats.responses[c], "code", kCodeClasses[c]);
  w.family("lbd_endpoint_connect_errors_total", "counter",
           "Failed connects to the endpoint, by cause (refused: refused or reset; timeout: timeouts.connect passed).");
  for (const EndpointRow& row : rows) {
    const EndpointStats& s = row.e->stats;
    w.sample("lbd_endpoint_connect_errors_total", row.base, s.connect_refused, "cause", "refused");
    w.sample("lbd_endpoint_connect_errors_total", row.base, s.connect_timeout, "cause", "timeout");
    w.sample("lbd_endpoint_connect_errors_total", row.base, s.connect_other, "cause", "other");
  }
  render_histogram(w, rows);
}

}  // namespace

std::string render_prometheus(const Report& r) {
  std::string out;
  out.reserve(4096 + 2048 * r.listeners.size() + 4096 * r.clusters.size());
  PromWriter w(out);
  render_process(w, r.process);
  render_listeners(w, r.listeners);
  render_clusters(w, r.clusters);
  return out;
}

}  // namespace lbd::proxy
