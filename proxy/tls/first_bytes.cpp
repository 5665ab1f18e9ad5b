#include "proxy/tls/first_bytes.hpp"

namespace lbd::tls {
namespace {

// RFC 9110 tchar: what an HTTP method is made of.
bool is_tchar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

}  // namespace

FirstBytes classify_first_bytes(std::string_view head) {
  if (head.empty()) return FirstBytes::kNeedMore;
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(head[i]); };
  if (byte(0) == 0x16) {
    // ContentType handshake, then ProtocolVersion {3, x}: every TLS version's ClientHello
    // record starts so (TLS 1.3 too, which writes {3, 1} there).
    if (head.size() < 2) return FirstBytes::kNeedMore;
    return byte(1) == 0x03 ? FirstBytes::kTls : FirstBytes::kOther;
  }
  // The longest registered method is 17 bytes (VERSION-CONTROL, UPDATEREDIRECTREF...);
  // kMaxFirstBytes leaves room for a space after it.
  for (std::size_t i = 0; i < head.size() && i < kMaxFirstBytes; ++i) {
    unsigned char c = byte(i);
    if (c == ' ') return i > 0 ? FirstBytes::kPlainHttp : FirstBytes::kOther;
    if (!is_tchar(c)) return FirstBytes::kOther;
  }
  return head.size() < kMaxFirstBytes ? FirstBytes::kNeedMore : FirstBytes::kOther;
}

}  // namespace lbd::tls
