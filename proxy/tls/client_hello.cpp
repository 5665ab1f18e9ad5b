#include "proxy/tls/client_hello.hpp"

#include <algorithm>
#include <cstdint>

namespace lbd::tls {
namespace {

constexpr unsigned char kContentHandshake = 0x16;
constexpr unsigned char kHandshakeClientHello = 0x01;
constexpr std::size_t kRecordHeader = 5;
constexpr std::size_t kMaxRecordPayload = 16384;  // 2^14, RFC 8446 5.1
constexpr std::size_t kHandshakeHeader = 4;
constexpr uint16_t kExtServerName = 0;   // RFC 6066 3
constexpr uint16_t kExtAlpn = 16;        // RFC 7301 3.1
constexpr uint8_t kNameTypeHostName = 0;
constexpr std::size_t kMaxLabelLength = 63;

using Bytes = std::span<const unsigned char>;

ClientHelloPeek verdict(ClientHelloOutcome o, const char* reason) {
  ClientHelloPeek p;
  p.outcome = o;
  p.reason = reason;
  return p;
}

ClientHelloPeek malformed(const char* reason) { return verdict(ClientHelloOutcome::kMalformed, reason); }

constexpr const char* kPastTheCap = "no complete ClientHello within the size cap";

/// More is needed: at least `need` bytes beyond the `have` there are. When even that would pass
/// the wire cap, no complete ClientHello can come within it, so say so now.
ClientHelloPeek need_more(std::size_t have, std::size_t need) {
  if (need == 0) need = 1;
  if (have + need > kMaxClientHelloWireBytes) return malformed(kPastTheCap);
  ClientHelloPeek p;
  p.need = need;
  return p;
}

/// A cursor over big-endian TLS vectors. Every read checks the length; a failed read leaves
/// the cursor unusable, and the caller reports the message as malformed.
class Reader {
 public:
  explicit Reader(Bytes b) : b_(b) {}
  bool empty() const { return b_.empty(); }

  bool u8(uint8_t& out) {
    if (b_.empty()) return false;
    out = b_[0];
    b_ = b_.subspan(1);
    return true;
  }
  bool u16(uint16_t& out) {
    if (b_.size() < 2) return false;
    out = static_cast<uint16_t>((b_[0] << 8) | b_[1]);
    b_ = b_.subspan(2);
    return true;
  }
  bool skip(std::size_t n) {
    Bytes unused;
    return take(n, unused);
  }
  bool take(std::size_t n, Bytes& out) {
    if (b_.size() < n) return false;
    out = b_.first(n);
    b_ = b_.subspan(n);
    return true;
  }
  /// A vector with a 1-byte length (opaque x<0..2^8-1>).
  bool vec8(Bytes& out) {
    uint8_t n = 0;
    return u8(n) && take(n, out);
  }
  /// A vector with a 2-byte length (opaque x<0..2^16-1>).
  bool vec16(Bytes& out) {
    uint16_t n = 0;
    return u16(n) && take(n, out);
  }

 private:
  Bytes b_;
};

/// Lowercases `raw` into `out` and checks it is a host name a route can match: no NUL or other
/// byte outside [A-Za-z0-9._-], labels of 1..63, at most 253 in all. One trailing dot (a fully
/// qualified name, which RFC 6066 says not to send but some clients do) is dropped, so that
/// "example.com." routes as "example.com".
bool host_name_of(Bytes raw, std::string& out) {
  std::size_t n = raw.size();
  if (n > 0 && raw[n - 1] == '.') --n;
  if (n == 0 || n > kMaxHostNameLength) return false;
  out.resize(n);
  std::size_t label = 0;
  for (std::size_t i = 0; i < n; ++i) {
    unsigned char c = raw[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<unsigned char>(c - 'A' + 'a');
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
    } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_') {
      if (++label > kMaxLabelLength) return false;
    } else {
      return false;
    }
    out[i] = static_cast<char>(c);
  }
  return label > 0;
}

/// RFC 6066 3: ServerNameList server_name_list<1..2^16-1>, each entry a NameType and, for
/// host_name, HostName<1..2^16-1>. Entries of other types are skipped as Go's crypto/tls does
/// (none is defined); two host names are an error (the RFC forbids two of one type, and a
/// router and a backend that picked different ones would disagree about the destination).
const char* parse_server_name(Bytes data, std::string& host) {
  Reader r(data);
  Bytes list;
  if (!r.vec16(list) || !r.empty()) return "server_name extension length does not match its list";
  if (list.empty()) return "server_name list is empty";
  Reader entries(list);
  bool found = false;
  while (!entries.empty()) {
    uint8_t type = 0;
    Bytes name;
    if (!entries.u8(type) || !entries.vec16(name)) return "server_name entry runs past its list";
    if (type != kNameTypeHostName) continue;
    if (found) return "server_name holds two host names";
    if (!host_name_of(name, host)) return "server_name is not a valid host name";
    found = true;
  }
  return nullptr;
}

/// RFC 7301 3.1: ProtocolNameList protocol_name_list<2..2^16-1>, each ProtocolName<1..2^8-1>.
const char* parse_alpn(Bytes data, std::vector<std::string>& out) {
  Reader r(data);
  Bytes list;
  if (!r.vec16(list) || !r.empty()) return "ALPN extension length does not match its list";
  if (list.empty()) return "ALPN list is empty";
  Reader names(list);
  while (!names.empty()) {
    Bytes name;
    if (!names.vec8(name)) return "ALPN entry runs past its list";
    if (name.empty()) return "ALPN holds an empty protocol name";
    out.emplace_back(reinterpret_cast<const char*>(name.data()), name.size());
  }
  return nullptr;
}

/// The ClientHello's body (after the 4-byte handshake header), RFC 8446 4.1.2 and RFC 5246
/// 7.4.1.2: every length must agree with what encloses it.
ClientHelloPeek parse_body(Bytes body) {
  Reader r(body);
  uint16_t version = 0;
  Bytes session_id, suites, compression, extensions;
  if (!r.u16(version) || !r.skip(32)) return malformed("ClientHello shorter than its fixed fields");
  if ((version >> 8) != 3) return malformed("ClientHello version is not 3.x");
  if (!r.vec8(session_id) || session_id.size() > 32) return malformed("bad legacy_session_id");
  if (!r.vec16(suites) || suites.size() < 2 || suites.size() % 2 != 0) return malformed("bad cipher_suites");
  if (!r.vec8(compression) || compression.empty()) return malformed("bad compression_methods");

  ClientHelloPeek p;
  p.outcome = ClientHelloOutcome::kNoSni;
  if (r.empty()) return p;  // TLS 1.2 and older may send no extensions at all
  if (!r.vec16(extensions)) return malformed("extensions run past the ClientHello");
  if (!r.empty()) return malformed("bytes after the ClientHello's extensions");

  Reader ext(extensions);
  bool seen_sni = false;
  bool seen_alpn = false;
  while (!ext.empty()) {
    uint16_t type = 0;
    Bytes data;
    if (!ext.u16(type) || !ext.vec16(data)) return malformed("an extension runs past the extension list");
    if (type == kExtServerName) {
      if (seen_sni) return malformed("two server_name extensions");
      seen_sni = true;
      if (const char* why = parse_server_name(data, p.sni)) return malformed(why);
    } else if (type == kExtAlpn) {
      if (seen_alpn) return malformed("two ALPN extensions");
      seen_alpn = true;
      if (const char* why = parse_alpn(data, p.alpn)) return malformed(why);
    }
  }
  if (!p.sni.empty()) p.outcome = ClientHelloOutcome::kSni;
  return p;
}

uint32_t u24(Bytes b) { return (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3]; }

}  // namespace

const char* to_string(ClientHelloOutcome o) {
  switch (o) {
    case ClientHelloOutcome::kNeedMore: return "need more";
    case ClientHelloOutcome::kSni: return "sni";
    case ClientHelloOutcome::kNoSni: return "no sni";
    case ClientHelloOutcome::kNotTls: return "not tls";
    case ClientHelloOutcome::kMalformed: return "malformed";
  }
  return "?";
}

ClientHelloPeek peek_client_hello(std::span<const char> chars) {
  const Bytes in(reinterpret_cast<const unsigned char*>(chars.data()), chars.size());
  // The first record's header tells TLS from anything else: ContentType handshake, then
  // ProtocolVersion {3, x} (TLS 1.3 writes {3, 1} there too). SSLv2-style hellos are not TLS.
  if (in.empty()) return need_more(0, 1);
  if (in[0] != kContentHandshake) return verdict(ClientHelloOutcome::kNotTls, "first byte is not a TLS handshake record");
  if (in.size() < 2) return need_more(in.size(), 1);
  if (in[1] != 3) return verdict(ClientHelloOutcome::kNotTls, "record version is not 3.x");

  // The handshake stream is the records' payloads one after another. While the ClientHello is
  // in the first record (the usual case) it is parsed in place; once it spans records, their
  // payloads are joined into `joined`.
  std::string joined;
  Bytes stream;
  std::size_t message_length = 0;  // header included; 0 until the handshake header is complete
  std::size_t pos = 0;
  // What the message still lacks beyond the stream so far (a lower bound for kNeedMore): while
  // its header is incomplete, at least the rest of the header.
  auto lacking = [&] { return (message_length ? message_length : kHandshakeHeader) - stream.size(); };
  for (std::size_t records = 0;; ++records) {
    const std::size_t have = in.size() - pos;
    if (have < kRecordHeader) {
      // Check what there is of the next header now: garbage need not wait for more.
      if (have >= 1 && in[pos] != kContentHandshake) return malformed("a non-handshake record inside the ClientHello");
      if (have >= 2 && in[pos + 1] != 3) return malformed("record version is not 3.x");
      return need_more(in.size(), kRecordHeader - have + lacking());
    }
    if (in[pos] != kContentHandshake) return malformed("a non-handshake record inside the ClientHello");
    if (in[pos + 1] != 3) return malformed("record version is not 3.x");
    const std::size_t length = (std::size_t{in[pos + 3]} << 8) | in[pos + 4];
    // RFC 8446 5.1: handshake records are never empty, and no record exceeds 2^14 bytes.
    if (length == 0) return malformed("empty handshake record");
    if (length > kMaxRecordPayload) return malformed("record longer than 2^14 bytes");
    const std::size_t avail = std::min(length, have - kRecordHeader);
    const Bytes fragment = in.subspan(pos + kRecordHeader, avail);
    if (records == 0) {
      stream = fragment;
    } else {
      if (records == 1) joined.assign(reinterpret_cast<const char*>(stream.data()), stream.size());
      joined.append(reinterpret_cast<const char*>(fragment.data()), fragment.size());
      stream = Bytes(reinterpret_cast<const unsigned char*>(joined.data()), joined.size());
    }
    if (message_length == 0 && stream.size() >= kHandshakeHeader) {
      if (stream[0] != kHandshakeClientHello) return malformed("the first handshake message is not a ClientHello");
      message_length = kHandshakeHeader + u24(stream);
      if (message_length > kMaxClientHelloLength) return malformed("ClientHello longer than the size cap");
    }
    if (message_length != 0 && stream.size() >= message_length) {
      // The message's last byte is in this record, `stream.size() - message_length` bytes
      // before the end of what this record has so far.
      const std::size_t consumed = pos + kRecordHeader + avail - (stream.size() - message_length);
      // The same verdict however the bytes were read: all at once or one at a time.
      if (consumed > kMaxClientHelloWireBytes) return malformed(kPastTheCap);
      ClientHelloPeek p = parse_body(stream.subspan(kHandshakeHeader, message_length - kHandshakeHeader));
      p.consumed = consumed;
      return p;
    }
    if (avail < length) {
      // The rest of this record, and when the message goes on past it, another header too.
      const std::size_t rest = length - avail;
      const std::size_t still = lacking();
      return need_more(in.size(), still > rest ? still + kRecordHeader : rest);
    }
    pos += kRecordHeader + length;
  }
}

}  // namespace lbd::tls
