// Smooth weighted round robin, the algorithm of nginx's ngx_http_upstream_rr.c.
//
// On every pick each eligible endpoint's credit grows by its weight; the endpoint with the most
// credit wins and pays back the sum of the weights that took part. Over any sum(weights)
// consecutive picks with a stable set, each endpoint is picked exactly `weight` times, and a
// heavy endpoint's turns are spread between the light ones' ({5,1,1} gives a a b a c a a, not
// a a a a a b c), so a burst of connections does not land on one endpoint.
//
// Credit of a down or excluded endpoint is left as it is: the credits of all endpoints always sum
// to zero, which keeps every credit bounded however often endpoints flap.

#include <algorithm>
#include <vector>

#include "proxy/balancer/detail/algorithms.hpp"
#include "proxy/balancer/detail/eligible.hpp"

namespace lbd::balancer::detail {

namespace {

// Skipping ahead costs one O(n) pick per step, paid once per balancer (start-up and reload).
// More start offsets than this gain nothing: there are rarely that many workers.
constexpr uint64_t kMaxSkipAhead = 1024;

class RoundRobinBalancer final : public Balancer {
 public:
  RoundRobinBalancer(std::span<EndpointState> endpoints, uint64_t seed)
      : endpoints_(endpoints), credit_(endpoints.size(), 0) {
    skip_ahead(seed);
  }

  std::optional<size_t> pick(const PickContext&, const ExcludeSet& exclude) override {
    const size_t n = endpoints_.size();
    size_t best = n;
    int64_t best_credit = 0;
    int64_t total = 0;
    for (size_t i = 0; i < n; ++i) {
      if (!eligible(endpoints_[i], i, exclude)) continue;
      const int64_t credit = credit_[i] += endpoints_[i].weight;
      total += endpoints_[i].weight;
      if (best == n || credit > best_credit) {
        best = i;
        best_credit = credit;
      }
    }
    if (best == n) return std::nullopt;
    credit_[best] -= total;
    return best;
  }

 private:
  // Workers that all started at the first step of the same sequence would all send their first
  // connection to the same endpoint; starting each worker `seed` steps in spreads them.
  void skip_ahead(uint64_t seed) {
    uint64_t total = 0;
    for (const auto& endpoint : endpoints_) total += endpoint.up ? endpoint.weight : 0;
    if (total == 0) return;
    const uint64_t steps = seed % std::min(total, kMaxSkipAhead);
    const ExcludeSet none;
    for (uint64_t i = 0; i < steps; ++i) pick({}, none);
  }

  std::span<EndpointState> endpoints_;  // owned by the cluster
  std::vector<int64_t> credit_;         // nginx's current_weight, one per endpoint
};

}  // namespace

std::unique_ptr<Balancer> make_round_robin(std::span<EndpointState> endpoints, uint64_t seed) {
  return std::make_unique<RoundRobinBalancer>(endpoints, seed);
}

}  // namespace lbd::balancer::detail
