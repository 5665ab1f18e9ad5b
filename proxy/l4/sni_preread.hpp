#pragma once
// SNI passthrough's first step (nginx's ssl_preread, haproxy's req.ssl_sni): read the client's
// ClientHello, without terminating TLS, until it says where the connection goes. Every byte
// read is handed back, to be sent to the chosen upstream before the relay starts, so the
// backend sees the client's TLS from its first byte.

#include "proxy/tls/client_hello.hpp"
#include "runtime/buffer.hpp"
#include "runtime/clock.hpp"
#include "runtime/net.hpp"
#include "runtime/result.hpp"
#include "runtime/task.hpp"

namespace lbd::proxy {

/// Why read_client_hello() stopped reading.
enum class PrereadEnd {
  kDecided,     // `hello` says what the bytes are (its outcome is not kNeedMore)
  kTimedOut,    // the limit passed before the bytes decided
  kPeerClosed,  // the client closed its side before the bytes decided
  kReadFailed,  // a read failed (`error`): a reset, or the task was cancelled (ECANCELED)
};

struct SniPreread {
  PrereadEnd end = PrereadEnd::kDecided;
  /// The last look at the bytes: kSni, kNoSni, kNotTls or kMalformed when kDecided; kNeedMore
  /// otherwise.
  tls::ClientHelloPeek hello;
  /// kReadFailed: why.
  Error error;
  /// Every byte read, in order, the ClientHello and anything after it in the same reads. A heap
  /// buffer (not a pooled read slot), so holding it while the upstream connects pins no ring.
  Buffer bytes;
};

/// Reads from `client` until peek_client_hello() decides or `limit` (a total deadline) passes.
/// `client` belongs to the caller and outlives the task. It holds at most
/// tls::kMaxClientHelloWireBytes plus one read, because the peek says kMalformed beyond that.
Task<SniPreread> read_client_hello(StreamSocket* client, Duration limit);

}  // namespace lbd::proxy
