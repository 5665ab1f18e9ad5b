// Power of two choices: draw two distinct endpoints at random, each with probability
// proportional to its weight, and take the one with the lower (active + 1) / weight.
//
// Nearly as even as least connections, at a cost per pick that does not grow with the number of
// endpoints, and without its herding: an endpoint that comes back with no connections is offered
// to a share of the picks, not handed every new connection until it has caught up.
//
// A weighted draw is a binary search in the prefix sums of the candidates' weights (endpoints up
// with weight > 0), built by on_state_change(). Endpoints to avoid in one pick (the exclude set,
// then the first choice) are cut out of the range of the draw rather than redrawn on a hit, so a
// pick takes a fixed number of random numbers however much of the weight is excluded.

#include <algorithm>
#include <limits>
#include <vector>

#include "proxy/balancer/detail/algorithms.hpp"
#include "proxy/balancer/detail/eligible.hpp"
#include "proxy/balancer/detail/mix.hpp"

namespace lbd::balancer::detail {

namespace {

constexpr uint32_t kNotCandidate = std::numeric_limits<uint32_t>::max();

// Positions in the candidate list that one pick must avoid, ascending.
class RemovedPositions {
 public:
  void add(uint32_t position, uint64_t weight) {
    size_t i = size_;
    for (; i > 0 && positions_[i - 1] > position; --i) positions_[i] = positions_[i - 1];
    positions_[i] = position;
    ++size_;
    weight_ += weight;
  }
  std::span<const uint32_t> positions() const { return {positions_.data(), size_}; }
  uint64_t weight() const { return weight_; }

 private:
  // The exclude set, plus the first choice. Only the first size_ are ever read.
  std::array<uint32_t, ExcludeSet::kCapacity + 1> positions_;
  size_t size_ = 0;
  uint64_t weight_ = 0;
};

class RandomTwoBalancer final : public Balancer {
 public:
  RandomTwoBalancer(std::span<EndpointState> endpoints, uint64_t seed)
      : endpoints_(endpoints), rng_(mix64(seed)), position_(endpoints.size(), kNotCandidate) {
    candidates_.reserve(endpoints.size());
    prefix_.reserve(endpoints.size());
    rebuild();
  }

  std::optional<size_t> pick(const PickContext& ctx, const ExcludeSet& exclude) override {
    RemovedPositions removed;
    for (uint32_t index : exclude.indices()) {
      if (index < position_.size() && position_[index] != kNotCandidate) {
        removed.add(position_[index], weight_at(position_[index]));
      }
    }
    if (removed.weight() >= total_) return std::nullopt;

    const uint32_t first = draw(removed);
    if (!still_valid(first)) return rebuild_and_pick(ctx, exclude);
    removed.add(first, weight_at(first));
    if (removed.weight() >= total_) return candidates_[first];

    const uint32_t second = draw(removed);
    if (!still_valid(second)) return rebuild_and_pick(ctx, exclude);
    const size_t a = candidates_[first];
    const size_t b = candidates_[second];
    // On equal load keep the first draw: it is as random as the second.
    return Load(endpoints_[b]) < Load(endpoints_[a]) ? b : a;
  }

  void on_state_change() override { rebuild(); }

 private:
  void rebuild() {
    candidates_.clear();
    prefix_.clear();
    std::fill(position_.begin(), position_.end(), kNotCandidate);
    total_ = 0;
    for (size_t i = 0; i < endpoints_.size(); ++i) {
      if (!endpoints_[i].up || endpoints_[i].weight == 0) continue;
      position_[i] = static_cast<uint32_t>(candidates_.size());
      candidates_.push_back(static_cast<uint32_t>(i));
      total_ += endpoints_[i].weight;
      prefix_.push_back(total_);
    }
  }

  // A caller that changed an endpoint but did not call on_state_change() must still never get a
  // down endpoint: each drawn candidate is checked against the live state, which costs a compare.
  bool still_valid(uint32_t position) const {
    const EndpointState& endpoint = endpoints_[candidates_[position]];
    return endpoint.up && endpoint.weight == weight_at(position);
  }

  std::optional<size_t> rebuild_and_pick(const PickContext& ctx, const ExcludeSet& exclude) {
    rebuild();  // afterwards every candidate is valid, so this recurses at most once
    return pick(ctx, exclude);
  }

  uint64_t weight_at(uint32_t position) const {
    return prefix_[position] - (position == 0 ? 0 : prefix_[position - 1]);
  }

  // Weighted draw among the candidates not in `removed`; their weight must be above 0. A point
  // in the shortened range is carried past each removed span that starts at or before it, in
  // ascending order, which lands it on the same candidate as in the full range.
  uint32_t draw(const RemovedPositions& removed) {
    uint64_t point = rng_.below(total_ - removed.weight());
    for (uint32_t position : removed.positions()) {
      if (point < prefix_[position] - weight_at(position)) break;
      point += weight_at(position);
    }
    const auto it = std::upper_bound(prefix_.begin(), prefix_.end(), point);
    return static_cast<uint32_t>(it - prefix_.begin());
  }

  std::span<EndpointState> endpoints_;  // owned by the cluster
  SplitMix64 rng_;
  std::vector<uint32_t> position_;      // endpoint index -> position in candidates_
  std::vector<uint32_t> candidates_;    // endpoint indices, up and weight > 0
  std::vector<uint64_t> prefix_;        // prefix_[p]: sum of candidates' weights through p
  uint64_t total_ = 0;
};

}  // namespace

std::unique_ptr<Balancer> make_random_two(std::span<EndpointState> endpoints, uint64_t seed) {
  return std::make_unique<RandomTwoBalancer>(endpoints, seed);
}

}  // namespace lbd::balancer::detail
