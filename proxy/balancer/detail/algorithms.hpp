#pragma once
// One factory per algorithm file; make_balancer() is the only caller.

#include <cstdint>
#include <memory>
#include <span>

#include "proxy/balancer/balancer.hpp"

namespace lbd::balancer::detail {

std::unique_ptr<Balancer> make_round_robin(std::span<EndpointState> endpoints, uint64_t seed);
std::unique_ptr<Balancer> make_least_conn(std::span<EndpointState> endpoints, uint64_t seed);
std::unique_ptr<Balancer> make_random_two(std::span<EndpointState> endpoints, uint64_t seed);
std::unique_ptr<Balancer> make_consistent_hash(std::span<EndpointState> endpoints, uint64_t seed);

}  // namespace lbd::balancer::detail
