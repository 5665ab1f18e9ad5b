// Consistent hashing with a Maglev lookup table (Eisenbud et al., NSDI 2016), weighted.
//
// Each endpoint walks its own permutation of the table's slots, derived from its identity
// (hash_id, or its index); in turns, it takes the next slot of its permutation that is still
// free. An endpoint takes turns in proportion to its weight, so its share of the slots, and of
// the keys, follows its weight. A key goes to the endpoint owning slot key % size. The table
// depends on identities and weights only, not on which endpoints are up, and on nothing
// per-worker, so every worker maps a key to the same endpoint.
//
// An endpoint that is down, excluded or at weight 0 keeps its slots; a key that lands on it is
// rehashed to other slots, in a sequence fixed by the key, until an eligible endpoint comes up.
// So taking one of N endpoints down moves only its own keys (about 1/N of them), spread over the
// others by weight; the other endpoints' keys stay put; and bringing it back restores the old
// mapping exactly. A change of weight rebuilds the table, which moves some keys between endpoints
// that stay up, as Maglev's minimal disruption allows.

#include <algorithm>
#include <vector>

#include "proxy/balancer/detail/algorithms.hpp"
#include "proxy/balancer/detail/eligible.hpp"
#include "proxy/balancer/detail/mix.hpp"

namespace lbd::balancer::detail {

namespace {

// Prime, so every skip in [1, size) walks all slots. Maglev wants the size above 100x the
// endpoint count for shares within about 1% of the weights, which 65537 gives up to ~650
// endpoints. Slots hold uint16_t endpoint indices (128 KiB per table); endpoints past index
// 65535 get no slots and are reached only by the fallback scan.
constexpr uint32_t kTableSize = 65537;
constexpr size_t kMaxTabledEndpoints = 65536;

// Rehashes of a key, after its own slot, before giving up on the table. A probe lands on an
// unavailable endpoint with probability equal to that endpoint's share of slots; with 4 of 5
// equal endpoints unavailable, all 33 probes fail for fewer than 1 key in 1000, which then takes
// the scan.
constexpr uint64_t kMaxProbes = 32;

class ConsistentHashBalancer final : public Balancer {
 public:
  ConsistentHashBalancer(std::span<EndpointState> endpoints, uint64_t seed)
      : endpoints_(endpoints), rng_(mix64(seed)) {
    build();
  }

  std::optional<size_t> pick(const PickContext& ctx, const ExcludeSet& exclude) override {
    if (endpoints_.empty()) return std::nullopt;
    // Without a key, a random one: a weighted random pick.
    const uint64_t key = mix64(ctx.hash_key ? *ctx.hash_key : rng_.next());
    if (!table_.empty()) {
      for (uint64_t probe = 0; probe <= kMaxProbes; ++probe) {
        const uint64_t h = probe == 0 ? key : mix64(key + probe * kGoldenGamma);
        const size_t index = table_[h % kTableSize];
        if (eligible(endpoints_[index], index, exclude)) return index;
      }
    }
    // Nearly all the weight is unavailable (or no endpoint has slots): the first eligible
    // endpoint from a start fixed by the key, so the choice is still the same in every worker.
    const size_t n = endpoints_.size();
    for (size_t k = 0, i = key % n; k < n; ++k, i = (i + 1 == n) ? 0 : i + 1) {
      if (eligible(endpoints_[i], i, exclude)) return i;
    }
    return std::nullopt;
  }

  // Up and down need nothing (see the top of the file); only new weights or identities rebuild.
  void on_state_change() override {
    for (size_t i = 0; i < endpoints_.size(); ++i) {
      if (endpoints_[i].weight != built_weights_[i] || identity(i) != built_identities_[i]) {
        build();
        return;
      }
    }
  }

 private:
  uint64_t identity(size_t index) const {
    const uint64_t id = endpoints_[index].hash_id;
    return id != 0 ? id : mix64(index + 1);
  }

  // One endpoint's walk through the slots while the table fills.
  struct Filler {
    uint16_t index;
    uint32_t slot;  // next slot of its permutation to try
    uint32_t skip;  // 1..kTableSize-1
    uint32_t weight;
    uint64_t turns = 0;
  };

  void build() {
    built_weights_.clear();
    built_identities_.clear();
    std::vector<Filler> fillers;
    uint32_t max_weight = 0;
    for (size_t i = 0; i < endpoints_.size(); ++i) {
      built_weights_.push_back(endpoints_[i].weight);
      built_identities_.push_back(identity(i));
      if (endpoints_[i].weight == 0 || i >= kMaxTabledEndpoints) continue;
      const uint64_t id = identity(i);
      const auto offset = static_cast<uint32_t>(mix64(id + kGoldenGamma) % kTableSize);
      const auto skip = static_cast<uint32_t>(mix64(id + 2 * kGoldenGamma) % (kTableSize - 1) + 1);
      fillers.push_back({.index = static_cast<uint16_t>(i),
                         .slot = offset,
                         .skip = skip,
                         .weight = endpoints_[i].weight});
      max_weight = std::max(max_weight, endpoints_[i].weight);
    }
    table_.clear();
    if (fillers.empty()) return;

    table_.assign(kTableSize, 0);
    std::vector<bool> taken(kTableSize, false);
    uint32_t filled = 0;
    // In round r an endpoint takes a turn while it has had fewer than r * weight / max_weight:
    // the heaviest takes one every round, one of half its weight every other round. The heaviest
    // guarantees progress, so the loop ends.
    for (uint64_t round = 1; filled < kTableSize; ++round) {
      for (Filler& f : fillers) {
        if (f.turns * max_weight >= round * f.weight) continue;
        while (taken[f.slot]) f.slot = next_slot(f.slot, f.skip);
        table_[f.slot] = f.index;
        taken[f.slot] = true;
        f.slot = next_slot(f.slot, f.skip);
        ++f.turns;
        if (++filled == kTableSize) break;
      }
    }
  }

  static uint32_t next_slot(uint32_t slot, uint32_t skip) {
    const uint32_t next = slot + skip;  // both below 2^17: no overflow
    return next >= kTableSize ? next - kTableSize : next;
  }

  std::span<EndpointState> endpoints_;  // owned by the cluster
  SplitMix64 rng_;                      // keys for picks that come without one
  std::vector<uint16_t> table_;         // slot -> endpoint index; empty when no endpoint has weight
  std::vector<uint32_t> built_weights_;      // what table_ was built from, per endpoint
  std::vector<uint64_t> built_identities_;
};

}  // namespace

std::unique_ptr<Balancer> make_consistent_hash(std::span<EndpointState> endpoints, uint64_t seed) {
  return std::make_unique<ConsistentHashBalancer>(endpoints, seed);
}

}  // namespace lbd::balancer::detail
