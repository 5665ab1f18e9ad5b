#pragma once
// Errors of the TLS layer as std::error_code values, so they travel in Result<T> beside the
// runtime's errno errors (ETIMEDOUT from a handshake deadline, ECONNRESET from the socket).
// The code says what kind of failure it was; TlsStream::error_detail() says why, in OpenSSL's
// words ("unsupported protocol", "certificate verify failed: unable to get local issuer
// certificate").

#include <string>
#include <system_error>

#include "runtime/result.hpp"

namespace lbd::tls {

enum class TlsErrc {
  kHandshakeFailed = 1,    // the peer and we could not agree (version, cipher, ALPN, bad message)
  kCertificateRejected,    // a certificate failed verification, or a required one was missing
  kPeerClosed,             // the peer closed the connection before the handshake ended
  kProtocol,               // a TLS error after the handshake (bad record, unexpected message)
};

const std::error_category& tls_category();

inline Error tls_error(TlsErrc e) { return Error{std::error_code(static_cast<int>(e), tls_category())}; }

/// True when `e` is the TLS error `what`.
inline bool is_tls_error(const Error& e, TlsErrc what) {
  return e.code.category() == tls_category() && e.code.value() == static_cast<int>(what);
}

}  // namespace lbd::tls
