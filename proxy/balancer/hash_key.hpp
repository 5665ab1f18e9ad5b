#pragma once
// Keys for the hash balancer. Both functions give the same value in every worker and every lbd
// process on the same platform, so a client maps to the same endpoint wherever it lands.
// They are not keyed: a client that controls a header can choose its endpoint anyway.

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string_view>

namespace lbd::balancer {

/// 64-bit hash of `bytes`, e.g. a header value or an endpoint's address text.
uint64_t hash_bytes(std::string_view bytes);

/// Hash of the IP of a client address, port excluded so that all connections of one client share
/// a key. An IPv4-mapped IPv6 address hashes as its IPv4 address (same client on a dual-stack
/// listener). nullopt for other families (Unix sockets): the caller then has no key.
/// `addr` must be backed by storage of its family's size (sockaddr_in / sockaddr_in6).
std::optional<uint64_t> hash_source_address(const sockaddr& addr);

}  // namespace lbd::balancer
