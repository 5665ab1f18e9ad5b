#pragma once
// Integer mixing and a small PRNG shared by the balancers and hash_bytes().

#include <cstdint>

namespace lbd::balancer::detail {

inline constexpr uint64_t kGoldenGamma = 0x9e3779b97f4a7c15ull;

/// The SplitMix64 finalizer: a bijection on 64 bits where every input bit affects every output
/// bit, so `mix64(x) % n` is usable even when x is a counter or a raw IPv4 address.
inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

/// SplitMix64: one word of state, a few cycles a number, good enough statistics for picking
/// endpoints. Not for anything an attacker must not predict.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}

  uint64_t next() {
    state_ += kGoldenGamma;
    return mix64(state_);
  }

  /// Uniform in [0, bound); bound > 0. Multiply-shift instead of `%`: no division, and the bias
  /// (bound / 2^64) is far below anything a balancer can notice.
  uint64_t below(uint64_t bound) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * bound) >> 64);
  }

 private:
  uint64_t state_;
};

}  // namespace lbd::balancer::detail
