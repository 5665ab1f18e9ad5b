#include "proxy/tls/tls_error.hpp"

namespace lbd::tls {
namespace {

class TlsCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "tls"; }
  std::string message(int code) const override {
    switch (static_cast<TlsErrc>(code)) {
      case TlsErrc::kHandshakeFailed:
        return "TLS handshake failed";
      case TlsErrc::kCertificateRejected:
        return "TLS certificate rejected";
      case TlsErrc::kPeerClosed:
        return "peer closed the connection during the TLS handshake";
      case TlsErrc::kProtocol:
        return "TLS protocol error";
    }
    return "TLS error " + std::to_string(code);
  }
};

}  // namespace

const std::error_category& tls_category() {
  static const TlsCategory category;
  return category;
}

}  // namespace lbd::tls
