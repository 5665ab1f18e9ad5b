#pragma once
// Balancers choose the endpoint of a cluster that gets the next connection or request. One file
// per algorithm, as HAProxy's lb_*.c: round_robin.cpp, least_conn.cpp, random_two.cpp,
// consistent_hash.cpp.
//
// Each worker owns its balancers and the EndpointState array they read, so nothing here is
// locked or atomic. pick() runs once per connection or request: it does not allocate.

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include "proxy/balancer/balance_kind.hpp"

namespace lbd::balancer {

inline constexpr uint32_t kMaxEndpointWeight = 256;

/// What a balancer knows of one endpoint. The cluster owns one array of these per worker and
/// updates it; balancers only read it.
struct EndpointState {
  /// 0..kMaxEndpointWeight. 0 drains the endpoint: it keeps its open connections but gets no new
  /// ones.
  uint32_t weight = 1;
  /// False keeps the endpoint out of every pick. The daemon's cluster sets it from the active
  /// checks, the operator's drain and outlier ejection (proxy/core/cluster.hpp).
  bool up = true;
  /// Connections (or requests in flight) this worker has open to the endpoint. The caller keeps
  /// the count; pick() never changes it.
  uint32_t active = 0;
  /// Identity for consistent hashing, e.g. hash_bytes("10.0.0.11:8080"). With it, a key keeps its
  /// endpoint across workers, and almost always across reloads that add or remove other
  /// endpoints: the rebuilt Maglev table moves the removed endpoint's keys and, as Maglev's
  /// minimal disruption allows, a fraction of a percent of the others' (about 0.14 % when one
  /// of three goes). 0 means "use the endpoint's index", which is stable only while the
  /// endpoint list is.
  uint64_t hash_id = 0;
};

/// Per-pick input.
struct PickContext {
  /// For the hash balancer: hash_source_address() of the client, or hash_bytes() of a header
  /// value. Other balancers ignore it. Without a key the hash balancer picks at random, weighted.
  std::optional<uint64_t> hash_key;
};

/// Endpoints already tried for this request, which a retry must avoid when another endpoint is
/// available. A short list rather than a bitset: it holds at most retries + 1 entries and is
/// usually empty, and a list has no upper bound on the endpoint index.
class ExcludeSet {
 public:
  static constexpr size_t kCapacity = 15;

  /// Returns false, and records nothing, when the set is full: callers keep retries below
  /// kCapacity (config validation caps them at 10).
  bool insert(size_t index) {
    if (contains(index)) return true;
    if (size_ == kCapacity) return false;
    indices_[size_++] = static_cast<uint32_t>(index);
    return true;
  }
  bool contains(size_t index) const {
    for (size_t i = 0; i < size_; ++i) {
      if (indices_[i] == index) return true;
    }
    return false;
  }
  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  std::span<const uint32_t> indices() const { return {indices_.data(), size_}; }
  void clear() { size_ = 0; }

 private:
  std::array<uint32_t, kCapacity> indices_{};
  uint8_t size_ = 0;
};

class Balancer {
 public:
  virtual ~Balancer() = default;

  /// Picks the index of an endpoint that is up, has a weight above 0 and is not in `exclude`.
  /// nullopt when there is none.
  virtual std::optional<size_t> pick(const PickContext& ctx, const ExcludeSet& exclude) = 0;

  /// Call after changing any endpoint's `weight`, `up` or `hash_id`, before the next pick, so
  /// that balancers which precompute from them (random_two, hash) rebuild. Changes to `active`
  /// need no call.
  virtual void on_state_change() {}
};

/// `endpoints` is owned by the cluster and must outlive the balancer; its size is fixed for the
/// balancer's life (a reload builds a new balancer). `seed` differs per worker: it keeps workers
/// from all starting their round robin on the same endpoint and drives the random choices. It
/// never changes where the hash balancer sends a key, so a client keeps its endpoint whichever
/// worker accepted it.
std::unique_ptr<Balancer> make_balancer(BalanceKind kind, std::span<EndpointState> endpoints,
                                        uint64_t seed);

}  // namespace lbd::balancer
