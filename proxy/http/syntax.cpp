#include "proxy/http/syntax.hpp"

namespace lbd::http {

namespace {

constexpr bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

constexpr bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// reg-name = *( unreserved / pct-encoded / sub-delims )  (RFC 3986 §3.2.2)
bool is_reg_name(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (is_alpha(c) || is_digit(c)) continue;
    if (std::string_view("-._~!$&'()*+,;=").find(c) != std::string_view::npos) continue;
    if (c == '%' && i + 2 < s.size() && is_hex(s[i + 1]) && is_hex(s[i + 2])) {
      i += 2;
      continue;
    }
    return false;
  }
  return true;
}

// The inside of an IP-literal, IPv6 only (hex digits, ':' and a dotted IPv4 tail). IPvFuture
// and zone identifiers are refused: nothing sends them to a load balancer.
bool is_ip_literal_body(std::string_view s) {
  if (s.find(':') == std::string_view::npos) return false;
  for (char c : s) {
    if (!is_hex(c) && c != ':' && c != '.') return false;
  }
  return true;
}

bool is_port(std::string_view s) {
  if (s.size() > 5) return false;
  for (char c : s) {
    if (!is_digit(c)) return false;
  }
  return true;
}

}  // namespace

bool is_valid_authority(std::string_view a) {
  if (a.empty()) return true;
  std::string_view port;
  if (a.front() == '[') {
    size_t close = a.find(']');
    if (close == std::string_view::npos || !is_ip_literal_body(a.substr(1, close - 1))) {
      return false;
    }
    std::string_view rest = a.substr(close + 1);
    if (rest.empty()) return true;
    if (rest.front() != ':') return false;
    port = rest.substr(1);
  } else {
    size_t colon = a.find(':');
    std::string_view host = a.substr(0, colon);
    if (host.empty() || !is_reg_name(host)) return false;
    if (colon == std::string_view::npos) return true;
    port = a.substr(colon + 1);
  }
  return is_port(port);
}

}  // namespace lbd::http
