// Least connections: the endpoint with the lowest (active + 1) / weight among the eligible ones.
//
// `active` is written by the sessions, not through the balancer, so there is no ordered structure
// to keep up to date (HAProxy keeps a tree, which every connection open and close must update);
// each pick scans the endpoints instead, a few nanoseconds apiece: cheap for clusters of tens to
// hundreds of endpoints, and random_two is the choice beyond.
//
// Ties go to the first tied endpoint at or after the one following the last pick, so endpoints
// with equal load take turns rather than the lowest index taking every tie.

#include "proxy/balancer/detail/algorithms.hpp"
#include "proxy/balancer/detail/eligible.hpp"

namespace lbd::balancer::detail {

namespace {

class LeastConnBalancer final : public Balancer {
 public:
  LeastConnBalancer(std::span<EndpointState> endpoints, uint64_t seed)
      : endpoints_(endpoints), next_(endpoints.empty() ? 0 : seed % endpoints.size()) {}

  std::optional<size_t> pick(const PickContext&, const ExcludeSet& exclude) override {
    const size_t n = endpoints_.size();
    Best best{.index = n};
    // From next_ to the end, then from the start to next_: the first of equals wins.
    scan(next_, n, exclude, best);
    scan(0, next_, exclude, best);
    if (best.index == n) return std::nullopt;
    next_ = best.index + 1 == n ? 0 : best.index + 1;
    return best.index;
  }

 private:
  struct Best {
    size_t index;  // endpoints_.size() while nothing eligible was seen
    Load load{EndpointState{}};
  };

  void scan(size_t from, size_t to, const ExcludeSet& exclude, Best& best) const {
    for (size_t i = from; i < to; ++i) {
      if (!eligible(endpoints_[i], i, exclude)) continue;
      const Load load(endpoints_[i]);
      if (best.index == endpoints_.size() || load < best.load) best = {i, load};
    }
  }

  std::span<EndpointState> endpoints_;  // owned by the cluster
  size_t next_;                         // where the tie-breaking scan starts
};

}  // namespace

std::unique_ptr<Balancer> make_least_conn(std::span<EndpointState> endpoints, uint64_t seed) {
  return std::make_unique<LeastConnBalancer>(endpoints, seed);
}

}  // namespace lbd::balancer::detail
