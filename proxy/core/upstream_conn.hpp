#pragma once
// UpstreamConn: one connection to an endpoint, plain or TLS (a cluster with `tls:`). It owns
// the socket either way: a TLS connection's socket lives inside its TlsStream. Pooled and
// handed out as one thing, so a TLS connection keeps its session across the requests it
// carries.

#include <optional>
#include <utility>

#include "proxy/core/byte_stream.hpp"
#include "proxy/tls/tls_stream.hpp"
#include "runtime/net.hpp"

namespace lbd::proxy {

class UpstreamConn {
 public:
  UpstreamConn() = default;
  explicit UpstreamConn(TcpStream plain) : plain_(std::move(plain)) {}
  explicit UpstreamConn(tls::TlsStream tls) : tls_(std::move(tls)) {}

  ByteStream io() { return tls_ ? ByteStream(&*tls_) : ByteStream(&plain_); }
  int fd() { return tls_ ? tls_->socket().fd() : plain_.fd(); }
  /// Input has arrived that no read returned: bytes TLS took from the socket. (A pooled
  /// connection with any is unfit; the IdleWatch sees what is still in the socket.)
  bool has_buffered_input() const { return tls_ && tls_->has_buffered_input(); }

 private:
  TcpStream plain_;                     // empty on a TLS connection
  std::optional<tls::TlsStream> tls_;  // set on a TLS connection
};

}  // namespace lbd::proxy
