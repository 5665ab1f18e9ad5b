#pragma once
// What the first bytes on a TLS port are, before any TLS: so that plain HTTP sent to an HTTPS
// port gets a 400 that says so (as nginx answers) and other garbage is closed quietly.

#include <cstddef>
#include <string_view>

namespace lbd::tls {

enum class FirstBytes {
  kNeedMore,   // too few bytes to tell; read more (kMaxFirstBytes is always enough)
  kTls,        // a TLS handshake record: 0x16, then major version 3
  kPlainHttp,  // an HTTP method token and a space ("GET ", "PROPFIND ")
  kOther,
};

/// The most bytes classify_first_bytes() needs to decide.
inline constexpr std::size_t kMaxFirstBytes = 24;

/// Looks at the start of what a client sent. Pure: no I/O.
FirstBytes classify_first_bytes(std::string_view head);

}  // namespace lbd::tls
