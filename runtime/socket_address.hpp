#pragma once
// SocketAddress: an IPv4, IPv6 or Unix socket address, with parsing and formatting.
//   "127.0.0.1:8080", "[::1]:8080", "0.0.0.0:80", "unix:/run/lbd.sock", "/run/lbd.sock"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "runtime/result.hpp"

namespace lbd {

class SocketAddress {
 public:
  SocketAddress();

  /// Parses "ip:port", "[ipv6]:port", "unix:/path" or "/path". No name resolution.
  static Result<SocketAddress> parse(std::string_view text);
  static SocketAddress ipv4(uint32_t host_order_ip, uint16_t port);
  static SocketAddress ipv4_loopback(uint16_t port) { return ipv4(0x7f000001u, port); }
  static Result<SocketAddress> unix_path(std::string_view path);
  /// Copies a kernel-filled address (accept, getsockname).
  static SocketAddress from_sockaddr(const sockaddr* sa, socklen_t len);

  int family() const { return storage_.ss_family; }
  bool is_ipv4() const { return family() == AF_INET; }
  bool is_ipv6() const { return family() == AF_INET6; }
  bool is_unix() const { return family() == AF_UNIX; }
  /// Port in host order; 0 for Unix addresses.
  uint16_t port() const;
  void set_port(uint16_t port);

  const sockaddr* data() const { return reinterpret_cast<const sockaddr*>(&storage_); }
  sockaddr* data() { return reinterpret_cast<sockaddr*>(&storage_); }
  socklen_t size() const { return len_; }
  socklen_t* size_ptr() { return &len_; }
  static constexpr socklen_t capacity() { return sizeof(sockaddr_storage); }

  /// "127.0.0.1:8080", "[::1]:8080", "unix:/path".
  std::string to_string() const;
  /// The IP alone ("127.0.0.1", "::1"); the path for Unix addresses.
  std::string host_string() const;

  friend bool operator==(const SocketAddress& a, const SocketAddress& b);

 private:
  sockaddr_storage storage_{};
  socklen_t len_ = 0;
};

}  // namespace lbd
