#pragma once
// Per-worker counters. Each worker owns its own and only it writes them, so no counter is
// shared or atomic; whatever reports them (the admin endpoint, not built yet) must ask each
// worker through its mailbox.

#include <cstdint>

namespace lbd::proxy {

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
    return *this;
  }
};

}  // namespace lbd::proxy
