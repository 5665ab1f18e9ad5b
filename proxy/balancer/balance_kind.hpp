#pragma once
// The balancing algorithms and their config-file spelling, in a header of their own so that
// the config's structs can name them without the balancer interface.

#include <string_view>

namespace lbd::balancer {

enum class BalanceKind { kRoundRobin, kLeastConn, kRandomTwo, kHash };

/// "round_robin", "least_conn", "random_two", "hash": the config spelling, which config/ parses.
constexpr std::string_view to_string(BalanceKind kind) {
  switch (kind) {
    case BalanceKind::kRoundRobin: return "round_robin";
    case BalanceKind::kLeastConn: return "least_conn";
    case BalanceKind::kRandomTwo: return "random_two";
    case BalanceKind::kHash: return "hash";
  }
  return "?";
}

}  // namespace lbd::balancer
