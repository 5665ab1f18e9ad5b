#pragma once
// Per-worker counters. Each worker owns its own and only it writes them, so no counter is
// shared or atomic; the admin listener asks each worker for a copy through its mailbox
// (proxy/core/report.hpp) and adds them up.

#include <array>
#include <cstdint>

namespace lbd::proxy {

/// Responses by status class: [0] 1xx .. [4] 5xx.
using StatusClassCounts = std::array<uint64_t, 5>;

/// Counts a response of `status` (100..599) in its class; other values are not counted.
inline void count_status(StatusClassCounts& counts, int status) {
  if (status >= 100 && status < 600) ++counts[static_cast<std::size_t>(status / 100 - 1)];
}

/// Adds `from` into `to`, element by element (also for histograms).
template <std::size_t N>
void add_counts(std::array<uint64_t, N>& to, const std::array<uint64_t, N>& from) {
  for (std::size_t i = 0; i < N; ++i) to[i] += from[i];
}

struct ListenerStats {
  uint64_t accepted = 0;           // connections accepted
  uint64_t active = 0;             // connections open now
  uint64_t rejected_over_limit = 0;  // closed at once: max_connections reached
  uint64_t bytes_from_client = 0;
  uint64_t bytes_to_client = 0;
  // Errors by cause.
  uint64_t connect_refused = 0;    // an endpoint refused (or reset) the connect
  uint64_t connect_timeout = 0;    // an endpoint did not answer within timeouts.connect
  uint64_t connect_other = 0;      // other connect errors (unreachable, no fds, ...)
  uint64_t no_upstream = 0;        // sessions closed because no endpoint was reachable
  uint64_t idle_timeouts = 0;      // sessions closed for passing no bytes for timeouts.idle
  uint64_t client_errors = 0;      // read/write errors on the client side (resets)
  uint64_t upstream_errors = 0;    // read/write errors on the upstream side
  // HTTP listeners.
  uint64_t requests = 0;           // request heads received
  uint64_t http_errors = 0;        // requests answered by lbd itself (4xx/5xx)
  StatusClassCounts responses{};   // responses sent to clients by status class
  // TLS listeners.
  uint64_t tls_handshakes = 0;          // handshakes completed
  uint64_t tls_resumed = 0;             // of them, resumed from a ticket
  uint64_t tls_handshake_failures = 0;  // refused or broken handshakes (no shared version, bad client certificate, ...)
  uint64_t tls_handshake_timeouts = 0;  // not finished within timeouts.handshake
  uint64_t tls_plain_http = 0;          // plain HTTP sent to the TLS port (answered 400)
  uint64_t tls_not_tls = 0;             // first bytes neither TLS nor HTTP (closed)

  /// Counts a response of `status` (100..599) sent to a client.
  void count_response(int status) { count_status(responses, status); }

  ListenerStats& operator+=(const ListenerStats& o) {
    accepted += o.accepted;
    active += o.active;
    rejected_over_limit += o.rejected_over_limit;
    bytes_from_client += o.bytes_from_client;
    bytes_to_client += o.bytes_to_client;
    connect_refused += o.connect_refused;
    connect_timeout += o.connect_timeout;
    connect_other += o.connect_other;
    no_upstream += o.no_upstream;
    idle_timeouts += o.idle_timeouts;
    client_errors += o.client_errors;
    upstream_errors += o.upstream_errors;
    requests += o.requests;
    http_errors += o.http_errors;
    add_counts(responses, o.responses);
    tls_handshakes += o.tls_handshakes;
    tls_resumed += o.tls_resumed;
    tls_handshake_failures += o.tls_handshake_failures;
    tls_handshake_timeouts += o.tls_handshake_timeouts;
    tls_plain_http += o.tls_plain_http;
    tls_not_tls += o.tls_not_tls;
    return *this;
  }
};

/// Upper bounds (seconds) of the response-time histogram's buckets, Prometheus' default ones;
/// a last bucket, +Inf, takes the rest.
inline constexpr std::array<double, 11> kResponseTimeBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                               0.5,   1,    2.5,   5,    10};

/// One worker's counters for one endpoint of one cluster. Kept by the worker per (cluster name,
/// endpoint address), so they survive reloads that keep the endpoint.
struct EndpointStats {
  uint64_t requests = 0;  // http: requests sent to the endpoint; tcp: sessions connected to it
  StatusClassCounts responses{};  // http: responses from the endpoint by class
  uint64_t connect_refused = 0;  // connects refused or reset
  uint64_t connect_timeout = 0;  // connects not answered within timeouts.connect
  uint64_t connect_other = 0;    // other connect errors
  uint64_t failures = 0;         // failures passive health counts (connect errors, resets, 5xx)
  uint64_t ejections = 0;        // times this worker ejected the endpoint (outlier)
  // http: time from the start of the attempt (the pooled connection taken, or the connect
  // begun) to the response head, per kResponseTimeBounds bucket (not cumulative; the last one is
  // +Inf), and their sum.
  std::array<uint64_t, kResponseTimeBounds.size() + 1> response_time{};
  double response_time_sum = 0;  // seconds

  void count_response(int status) { count_status(responses, status); }
  void count_response_time(double seconds) {
    std::size_t b = 0;
    while (b < kResponseTimeBounds.size() && seconds > kResponseTimeBounds[b]) ++b;
    ++response_time[b];
    response_time_sum += seconds;
  }

  EndpointStats& operator+=(const EndpointStats& o) {
    requests += o.requests;
    add_counts(responses, o.responses);
    connect_refused += o.connect_refused;
    connect_timeout += o.connect_timeout;
    connect_other += o.connect_other;
    failures += o.failures;
    ejections += o.ejections;
    add_counts(response_time, o.response_time);
    response_time_sum += o.response_time_sum;
    return *this;
  }
};

}  // namespace lbd::proxy
