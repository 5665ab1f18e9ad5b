#pragma once
// Character classes and small text helpers shared by the HTTP parsers and serializers
// (RFC 9110 §5.6). Everything here is allocation-free.

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace lbd::http {

constexpr std::array<bool, 256> make_tchar_table() {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}
inline constexpr std::array<bool, 256> kTcharTable = make_tchar_table();

/// tchar of RFC 9110 §5.6.2: the characters of a token (method, header name, coding).
constexpr bool is_tchar(unsigned char c) { return kTcharTable[c]; }
/// CTL: 0x00-0x1F and DEL.
constexpr bool is_ctl(unsigned char c) { return c < 0x20 || c == 0x7f; }
constexpr bool is_ows(char c) { return c == ' ' || c == '\t'; }
constexpr bool is_digit(char c) { return c >= '0' && c <= '9'; }

constexpr char to_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

/// ASCII case-insensitive equality (header names, tokens).
constexpr bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (to_lower(a[i]) != to_lower(b[i])) return false;
  }
  return true;
}

constexpr bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_tchar(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

/// Strips leading and trailing SP / HTAB.
constexpr std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

/// Calls fn(element) for every non-empty element of a comma-separated list (RFC 9110 §5.6.1),
/// trimmed of OWS. Empty elements ("a, ,b") are skipped, as the RFC asks of recipients. fn
/// returns false to stop early.
template <class Fn>
constexpr void for_each_list_element(std::string_view list, Fn&& fn) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view element = trim_ows(list.substr(0, comma));
    if (!element.empty() && !fn(element)) return;
    if (comma == std::string_view::npos) return;
    list.remove_prefix(comma + 1);
  }
}

/// True when the comma-separated `list` holds `token` (case-insensitive).
constexpr bool list_contains(std::string_view list, std::string_view token) {
  bool found = false;
  for_each_list_element(list, [&](std::string_view e) {
    found = iequals(e, token);
    return !found;
  });
  return found;
}

/// Content-Length = 1*DIGIT, no sign, no list, no surrounding junk (OWS already trimmed by the
/// caller). nullopt on anything else, including a value that overflows 64 bits.
constexpr std::optional<uint64_t> parse_content_length(std::string_view s) {
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (!is_digit(c)) return std::nullopt;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

/// The authority of a Host header or of an absolute-form target: host [ ":" port ], where host
/// is a reg-name (unreserved / pct-encoded / sub-delims), an IPv4 address, or an IP-literal in
/// brackets. Userinfo ("user@host") is refused. An empty authority is valid only in a Host
/// header, and the caller decides that.
bool is_valid_authority(std::string_view authority);

}  // namespace lbd::http
