#pragma once
// ClientHellos for the SNI passthrough tests: real ones, written by OpenSSL at test time (a
// client SSL on memory BIOs: what SSL_connect writes is the first flight), and helpers that
// re-frame a hello into other record sizes or build one field by field for the cases OpenSSL
// will not produce.

#include <openssl/ssl.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace lbd::tls::test {

struct HelloSpec {
  std::string sni;                 // empty: no server_name extension
  std::vector<std::string> alpn;   // empty: no ALPN extension
  int max_version = TLS1_3_VERSION;
  std::size_t filler = 0;          // a private extension of this many bytes, for large hellos
  std::size_t max_fragment = 0;    // OpenSSL's own record size limit (512..16384); 0: default
};

namespace detail {
inline constexpr unsigned kFillerExtension = 65000;  // private use, unknown to OpenSSL
inline int add_filler(SSL*, unsigned, unsigned, const unsigned char** out, size_t* outlen, X509*, size_t, int*,
                      void* arg) {
  static const std::string bytes(65535, 'f');
  *out = reinterpret_cast<const unsigned char*>(bytes.data());
  *outlen = *static_cast<std::size_t*>(arg);
  return 1;
}
inline void free_filler(SSL*, unsigned, unsigned, const unsigned char*, void*) {}
}  // namespace detail

/// The bytes an OpenSSL client sends first for `spec`; empty if OpenSSL refused the spec.
inline std::string openssl_client_hello(HelloSpec spec) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  if (!ctx) return {};
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx.get(), spec.max_version);
  if (spec.filler > 0 &&
      SSL_CTX_add_custom_ext(ctx.get(), detail::kFillerExtension, SSL_EXT_CLIENT_HELLO, detail::add_filler,
                             detail::free_filler, &spec.filler, nullptr, nullptr) != 1)
    return {};
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), SSL_free);
  if (!ssl) return {};
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl.get(), in, out);  // the SSL owns both now
  if (!spec.sni.empty() && SSL_set_tlsext_host_name(ssl.get(), spec.sni.c_str()) != 1) return {};
  if (!spec.alpn.empty()) {
    std::string wire;
    for (const std::string& p : spec.alpn) {
      wire += static_cast<char>(p.size());
      wire += p;
    }
    if (SSL_set_alpn_protos(ssl.get(), reinterpret_cast<const unsigned char*>(wire.data()),
                            static_cast<unsigned>(wire.size())) != 0)
      return {};
  }
  if (spec.max_fragment > 0 && SSL_set_max_send_fragment(ssl.get(), spec.max_fragment) != 1) return {};
  int r = SSL_connect(ssl.get());
  if (r == 1 || SSL_get_error(ssl.get(), r) != SSL_ERROR_WANT_READ) return {};
  char* data = nullptr;
  long n = BIO_get_mem_data(out, &data);
  return std::string(data, static_cast<std::size_t>(n));
}

// --- framing ---------------------------------------------------------------------------------

/// `bytes` cut into pieces of `size` bytes each (the last may be shorter): the writes a test
/// client makes of one message.
inline std::vector<std::string> pieces_of(const std::string& bytes, std::size_t size) {
  std::vector<std::string> out;
  for (std::size_t pos = 0; pos < bytes.size(); pos += size) out.push_back(bytes.substr(pos, size));
  return out;
}

/// `bytes` cut into at most `n` pieces of about equal size.
inline std::vector<std::string> split_into(const std::string& bytes, std::size_t n) {
  return pieces_of(bytes, (bytes.size() + n - 1) / n);
}

inline std::string be16(std::size_t n) { return {static_cast<char>((n >> 8) & 0xff), static_cast<char>(n & 0xff)}; }
inline std::string be24(std::size_t n) {
  return {static_cast<char>((n >> 16) & 0xff), static_cast<char>((n >> 8) & 0xff), static_cast<char>(n & 0xff)};
}
inline std::string vec8(const std::string& s) { return static_cast<char>(s.size()) + s; }
inline std::string vec16(const std::string& s) { return be16(s.size()) + s; }

/// One TLS record of `type` around `payload`.
inline std::string record(const std::string& payload, char type = 0x16) {
  return std::string{type, 0x03, 0x01} + be16(payload.size()) + payload;
}

/// The handshake stream inside a flight of handshake records (their payloads joined).
inline std::string handshake_stream(const std::string& records) {
  std::string out;
  for (std::size_t pos = 0; pos + 5 <= records.size();) {
    std::size_t len = (static_cast<unsigned char>(records[pos + 3]) << 8) | static_cast<unsigned char>(records[pos + 4]);
    out.append(records, pos + 5, len);
    pos += 5 + len;
  }
  return out;
}

/// How many records a flight holds.
inline std::size_t record_count(const std::string& records) {
  std::size_t n = 0;
  for (std::size_t pos = 0; pos + 5 <= records.size(); ++n)
    pos += 5 + ((static_cast<unsigned char>(records[pos + 3]) << 8) | static_cast<unsigned char>(records[pos + 4]));
  return n;
}

/// The same handshake stream cut into records of the sizes `sizes` gives, in turn (cycled).
inline std::string reframe(const std::string& records, const std::vector<std::size_t>& sizes) {
  std::string stream = handshake_stream(records);
  std::string out;
  for (std::size_t pos = 0, i = 0; pos < stream.size(); ++i) {
    std::size_t n = std::min(sizes[i % sizes.size()], stream.size() - pos);
    out += record(stream.substr(pos, n));
    pos += n;
  }
  return out;
}

// --- hand-built hellos -----------------------------------------------------------------------

inline std::string extension(uint16_t type, const std::string& data) { return be16(type) + vec16(data); }

/// server_name with the given (name_type, name) entries.
inline std::string server_name_ext(const std::vector<std::pair<uint8_t, std::string>>& entries) {
  std::string list;
  for (const auto& [type, name] : entries) list += static_cast<char>(type) + vec16(name);
  return extension(0, vec16(list));
}
inline std::string server_name_ext(const std::string& host) { return server_name_ext({{0, host}}); }

/// A ClientHello body: TLS 1.2 version, zero random, a 32-byte session id, two suites, null
/// compression, then `extensions` as given (raw bytes after compression_methods: pass
/// vec16(...) for a list, "" for none).
inline std::string hello_body(const std::string& after_compression) {
  std::string b = "\x03\x03";
  b += std::string(32, '\0');
  b += vec8(std::string(32, 's'));
  b += vec16(std::string("\x13\x01\xc0\x2f", 4));
  b += vec8(std::string(1, '\0'));
  b += after_compression;
  return b;
}

/// A handshake message of `type` (1: ClientHello) around `body`.
inline std::string handshake(const std::string& body, char type = 0x01) { return type + be24(body.size()) + body; }

/// One record holding a ClientHello with these extensions.
inline std::string built_hello(const std::string& extensions) {
  return record(handshake(hello_body(vec16(extensions))));
}

}  // namespace lbd::tls::test
