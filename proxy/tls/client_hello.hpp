#pragma once
// Reading a client's ClientHello without terminating TLS: the SNI (and ALPN) that SNI
// passthrough routes by, as nginx's ssl_preread and haproxy's req.ssl_sni do. Pure: no I/O, no
// OpenSSL; the caller accumulates what the client sent and asks again after each read.
//
// The ClientHello may come in any number of TCP reads and in any number of TLS records (a
// handshake message may be fragmented across records, RFC 8446 5.1); both are reassembled here.

#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace lbd::tls {

enum class ClientHelloOutcome {
  kNeedMore,   // a TLS handshake so far, not complete yet: read more
  kSni,        // a complete ClientHello with a valid host_name in server_name
  kNoSni,      // a complete, well-formed ClientHello without server_name (or without host_name in it)
  kNotTls,     // the first bytes are not a TLS handshake record (plain HTTP, SSH, SSLv2, garbage)
  kMalformed,  // it starts as TLS but breaks the grammar, is not a ClientHello, or is too large
};

/// "need more", "sni", "no sni", "not tls", "malformed": for logs and counters.
const char* to_string(ClientHelloOutcome o);

/// The largest ClientHello handshake message (its 4-byte header included) we wait for: 16 KiB,
/// nginx's ssl_preread buffer and haproxy's tune.bufsize. Ordinary ClientHellos are 0.3-0.6 KiB;
/// with a post-quantum key share (X25519MLKEM768) about 1.8 KiB; with two such shares and a
/// large ticket still well under 8 KiB.
inline constexpr std::size_t kMaxClientHelloLength = 16 * 1024;

/// The most bytes, record headers included, we read before giving up (kMalformed). Twice the
/// message cap leaves room for the headers of any fragmentation a real client does (a 1.8 KiB
/// ClientHello cut into 1-byte records is 11 KiB); a hello that needs more is cut into
/// pathologically small records and is refused rather than held.
inline constexpr std::size_t kMaxClientHelloWireBytes = 2 * kMaxClientHelloLength;

/// The longest host name (RFC 1035: 253 characters written without the trailing dot).
inline constexpr std::size_t kMaxHostNameLength = 253;

struct ClientHelloPeek {
  ClientHelloOutcome outcome = ClientHelloOutcome::kNeedMore;
  /// kNeedMore: at least this many more bytes are needed before asking again is worth it
  /// (a lower bound; 1 when nothing better is known).
  std::size_t need = 0;
  /// kSni: the host name, lowercased, a trailing dot dropped; letters, digits, '-', '_' and
  /// dots, labels of 1..63 characters, at most kMaxHostNameLength in all.
  std::string sni;
  /// kSni, kNoSni: the protocols of the ALPN extension in the client's order (empty: none).
  std::vector<std::string> alpn;
  /// kSni, kNoSni: the bytes the ClientHello's records took (what followed is not looked at).
  std::size_t consumed = 0;
  /// kMalformed, kNotTls: what was wrong, a static string for the log ("record longer than 2^14").
  const char* reason = "";
};

/// Decides what the first `bytes` a client sent are: a ClientHello (and its SNI), not yet
/// enough, or something else. `bytes` is everything from the connection's first byte on.
/// Bytes beyond kMaxClientHelloWireBytes that still do not complete a ClientHello give
/// kMalformed, so a caller that reads until the outcome is not kNeedMore holds at most that
/// plus one read.
ClientHelloPeek peek_client_hello(std::span<const char> bytes);

}  // namespace lbd::tls
