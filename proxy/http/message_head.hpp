#pragma once
// The heads of HTTP/1.x requests and responses as the parsers deliver them, with the framing of
// their bodies already decided (RFC 9112 §6.3). The parsers reuse one head per connection and
// clear() keeps every buffer's capacity, so a long keep-alive connection stops allocating.

#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/http/header_list.hpp"

namespace lbd::http {

enum class HttpVersion : uint8_t { kHttp10, kHttp11 };

/// "HTTP/1.0" or "HTTP/1.1".
std::string_view to_string(HttpVersion v);

/// How the body of a message is delimited.
struct BodyFraming {
  enum class Kind : uint8_t {
    kNone,           // no body at all (no Content-Length or Transfer-Encoding; HEAD; 1xx/204/304)
    kContentLength,  // exactly `length` bytes (length may be 0)
    kChunked,        // Transfer-Encoding: chunked
    kUntilClose,     // responses only: the body ends when the server closes the connection
  };
  Kind kind = Kind::kNone;
  uint64_t length = 0;  // for kContentLength

  static BodyFraming none() { return {}; }
  static BodyFraming content_length(uint64_t n) { return {Kind::kContentLength, n}; }
  static BodyFraming chunked() { return {Kind::kChunked, 0}; }
  static BodyFraming until_close() { return {Kind::kUntilClose, 0}; }
  bool has_body() const {
    return kind != Kind::kNone && !(kind == Kind::kContentLength && length == 0);
  }
  friend bool operator==(const BodyFraming&, const BodyFraming&) = default;
};

/// The form of a request target (RFC 9112 §3.2).
enum class TargetForm : uint8_t { kOrigin, kAbsolute, kAsterisk };

struct RequestHead {
  std::string method;  // "GET"; methods are case-sensitive and llhttp knows them all in uppercase
  std::string target;  // as received: "/a?b", "http://example.com/a?b" or "*"
  TargetForm target_form = TargetForm::kOrigin;
  HttpVersion version = HttpVersion::kHttp11;
  HeaderList headers;
  BodyFraming framing;
  /// The connection may carry another request after this one: HTTP/1.1 without
  /// "Connection: close", or HTTP/1.0 with "Connection: keep-alive".
  bool keep_alive = true;
  /// "Expect: 100-continue" on an HTTP/1.1 request (HTTP/1.0 expectations are ignored, RFC 9110
  /// §10.1.1).
  bool expect_continue = false;
  /// An Upgrade header and "upgrade" in Connection, on HTTP/1.1 (RFC 9110 §7.8).
  bool upgrade = false;
  /// host[:port] the request is for, lowercased: taken from an absolute-form target when there
  /// is one (RFC 9112 §3.2.2: the Host header is then ignored), else from the Host header. Empty
  /// for an HTTP/1.0 request without Host.
  std::string host;
  /// For an absolute-form target, its origin-form equivalent ("/path?query", "/" for an empty
  /// path); empty for the other forms. Use origin_target().
  std::string absolute_origin;

  /// The target in origin-form, as it is sent upstream: the target itself for origin-form and
  /// "*", the path and query of an absolute-form target ("/" when its path is empty).
  std::string_view origin_target() const;
  /// origin_target() without its query.
  std::string_view path() const;

  void clear();
};

struct ResponseHead {
  HttpVersion version = HttpVersion::kHttp11;
  int status = 0;
  std::string reason;  // may be empty
  HeaderList headers;
  BodyFraming framing;
  /// The server lets the connection carry another exchange: a delimited body (not
  /// kUntilClose) and HTTP/1.1 without "Connection: close", or HTTP/1.0 with keep-alive.
  bool keep_alive = true;

  /// 1xx other than 101: a final response follows on the same connection.
  bool is_interim() const { return status >= 100 && status < 200 && status != 101; }
  /// 101 Switching Protocols: the bytes after this head belong to the new protocol.
  bool is_switching_protocols() const { return status == 101; }

  void clear();
};

}  // namespace lbd::http
