#pragma once
// Rules every balancer applies the same way.

#include <cstddef>
#include <cstdint>

#include "proxy/balancer/balancer.hpp"

namespace lbd::balancer::detail {

/// May `endpoints[index]` take a new connection for a request that already tried `exclude`?
inline bool eligible(const EndpointState& endpoint, size_t index, const ExcludeSet& exclude) {
  return endpoint.up && endpoint.weight > 0 && !exclude.contains(index);
}

/// An endpoint's load relative to its weight: (active + 1) / weight, the load it would carry
/// after taking this connection, as HAProxy's leastconn counts it. With both idle, the heavier
/// endpoint goes first instead of tying with the lighter one at 0. Compared by cross-multiplying
/// in 64 bits: no division, no rounding. The weight must be above 0.
struct Load {
  uint64_t connections;
  uint64_t weight;

  explicit Load(const EndpointState& endpoint)
      : connections(static_cast<uint64_t>(endpoint.active) + 1), weight(endpoint.weight) {}

  friend bool operator<(const Load& a, const Load& b) {
    return a.connections * b.weight < b.connections * a.weight;
  }
};

}  // namespace lbd::balancer::detail
