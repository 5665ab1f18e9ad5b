#include "proxy/balancer/hash_key.hpp"

#include <netinet/in.h>

#include <bit>
#include <cstring>

#include "proxy/balancer/detail/mix.hpp"

namespace lbd::balancer {

namespace {

// Words are read little-endian whatever the host, so a key hashes the same on every platform.
uint64_t load_le64(const char* p) {
  uint64_t word;
  std::memcpy(&word, p, sizeof word);
  if constexpr (std::endian::native == std::endian::big) word = __builtin_bswap64(word);
  return word;
}

}  // namespace

uint64_t hash_bytes(std::string_view bytes) {
  // Eight bytes per step through a full-avalanche bijection. The length enters first, so inputs
  // that differ only by trailing zero bytes (the zero-padded last word) still differ.
  uint64_t h = detail::mix64(bytes.size() ^ detail::kGoldenGamma);
  const char* p = bytes.data();
  size_t left = bytes.size();
  for (; left >= 8; p += 8, left -= 8) h = detail::mix64(h ^ load_le64(p));
  if (left > 0) {
    char tail[8] = {};
    std::memcpy(tail, p, left);
    h = detail::mix64(h ^ load_le64(tail));
  }
  return detail::mix64(h + detail::kGoldenGamma);
}

std::optional<uint64_t> hash_source_address(const sockaddr& addr) {
  if (addr.sa_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(addr);
    return hash_bytes({reinterpret_cast<const char*>(&in.sin_addr), sizeof in.sin_addr});
  }
  if (addr.sa_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(addr);
    const auto* bytes = reinterpret_cast<const char*>(&in6.sin6_addr);
    if (IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr)) return hash_bytes({bytes + 12, 4});
    return hash_bytes({bytes, sizeof in6.sin6_addr});
  }
  return std::nullopt;
}

}  // namespace lbd::balancer
