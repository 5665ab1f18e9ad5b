#include "proxy/balancer/balancer.hpp"

#include "proxy/balancer/detail/algorithms.hpp"

namespace lbd::balancer {

std::unique_ptr<Balancer> make_balancer(BalanceKind kind, std::span<EndpointState> endpoints,
                                        uint64_t seed) {
  switch (kind) {
    case BalanceKind::kRoundRobin:
      return detail::make_round_robin(endpoints, seed);
    case BalanceKind::kLeastConn:
      return detail::make_least_conn(endpoints, seed);
    case BalanceKind::kRandomTwo:
      return detail::make_random_two(endpoints, seed);
    case BalanceKind::kHash:
      return detail::make_consistent_hash(endpoints, seed);
  }
  return detail::make_round_robin(endpoints, seed);  // unreachable: every kind is handled above
}

}  // namespace lbd::balancer
