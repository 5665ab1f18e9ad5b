#include "runtime/socket_address.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace lbd {

SocketAddress::SocketAddress() { storage_.ss_family = AF_UNSPEC; }

SocketAddress SocketAddress::ipv4(uint32_t host_order_ip, uint16_t port) {
  SocketAddress a;
  auto* sin = reinterpret_cast<sockaddr_in*>(&a.storage_);
  sin->sin_family = AF_INET;
  sin->sin_addr.s_addr = htonl(host_order_ip);
  sin->sin_port = htons(port);
  a.len_ = sizeof(sockaddr_in);
  return a;
}

Result<SocketAddress> SocketAddress::unix_path(std::string_view path) {
  SocketAddress a;
  auto* sun = reinterpret_cast<sockaddr_un*>(&a.storage_);
  if (path.empty() || path.size() >= sizeof(sun->sun_path)) return errno_error(ENAMETOOLONG);
  sun->sun_family = AF_UNIX;
  std::memcpy(sun->sun_path, path.data(), path.size());
  sun->sun_path[path.size()] = '\0';
  a.len_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return a;
}

SocketAddress SocketAddress::from_sockaddr(const sockaddr* sa, socklen_t len) {
  SocketAddress a;
  if (len > sizeof(a.storage_)) len = sizeof(a.storage_);
  std::memcpy(&a.storage_, sa, len);
  a.len_ = len;
  return a;
}

static Result<uint16_t> parse_port(std::string_view s) {
  unsigned v = 0;
  if (s.empty() || s.size() > 5) return errno_error(EINVAL);
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v > 65535) return errno_error(EINVAL);
  return static_cast<uint16_t>(v);
}

Result<SocketAddress> SocketAddress::parse(std::string_view text) {
  if (text.starts_with("unix:")) return unix_path(text.substr(5));
  if (text.starts_with("/")) return unix_path(text);

  std::string host;
  std::string_view port_text;
  const bool bracketed = text.starts_with("[");  // only an IPv6 literal may be bracketed
  if (bracketed) {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return errno_error(EINVAL);
    host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) return errno_error(EINVAL);
    host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
  }
  auto port = parse_port(port_text);
  if (!port) return port.error();

  SocketAddress a;
  auto* sin = reinterpret_cast<sockaddr_in*>(&a.storage_);
  if (!bracketed && inet_pton(AF_INET, host.c_str(), &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons(*port);
    a.len_ = sizeof(sockaddr_in);
    return a;
  }
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&a.storage_);
  if (inet_pton(AF_INET6, host.c_str(), &sin6->sin6_addr) == 1) {
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(*port);
    a.len_ = sizeof(sockaddr_in6);
    return a;
  }
  return errno_error(EINVAL);
}

uint16_t SocketAddress::port() const {
  if (is_ipv4()) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (is_ipv6()) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  return 0;
}

void SocketAddress::set_port(uint16_t port) {
  if (is_ipv4()) reinterpret_cast<sockaddr_in*>(&storage_)->sin_port = htons(port);
  if (is_ipv6()) reinterpret_cast<sockaddr_in6*>(&storage_)->sin6_port = htons(port);
}

std::string SocketAddress::host_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (is_ipv4()) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf, sizeof(buf));
    return buf;
  }
  if (is_ipv6()) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, buf, sizeof(buf));
    return buf;
  }
  if (is_unix()) return reinterpret_cast<const sockaddr_un*>(&storage_)->sun_path;
  return "unspecified";
}

std::string SocketAddress::to_string() const {
  std::string out;
  if (is_ipv6()) out += '[';
  if (is_unix()) out += "unix:";
  out += host_string();
  if (is_ipv6()) out += ']';
  if (is_ipv4() || is_ipv6()) {
    out += ':';
    out += std::to_string(port());
  }
  return out;
}

bool operator==(const SocketAddress& a, const SocketAddress& b) {
  return a.len_ == b.len_ && std::memcmp(&a.storage_, &b.storage_, a.len_) == 0;
}

}  // namespace lbd
