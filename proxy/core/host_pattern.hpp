#pragma once
// The host patterns routes match: an exact name ("a.example.com") or one leading wildcard label
// ("*.example.com": a.example.com and a.b.example.com, not example.com), ASCII case-insensitive.
// HTTP routes match the request's Host with them (match.host), tcp listeners the ClientHello's
// SNI (match.sni). (Certificate selection by SNI is narrower, one label per wildcard as RFC 6125
// has it: proxy/tls.)

#include <string_view>

#include "proxy/http/syntax.hpp"

namespace lbd::proxy {

constexpr bool host_pattern_matches(std::string_view pattern, std::string_view name) {
  using http::iequals;
  if (pattern.starts_with("*.")) {
    const std::string_view suffix = pattern.substr(1);  // ".example.com"
    return name.size() > suffix.size() && iequals(name.substr(name.size() - suffix.size()), suffix);
  }
  return iequals(pattern, name);
}

}  // namespace lbd::proxy
