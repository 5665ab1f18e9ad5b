#pragma once
// Serializers for what a proxy sends: the request head upstream, the response head back to the
// client, chunked framing, and the small error responses the proxy answers itself.
//
// Heads are rebuilt, never copied through: the start line is regenerated, fields keep their
// order and letter case, hop-by-hop fields are dropped (RFC 9110 §7.6.1: Connection and every
// field it names, Keep-Alive, Proxy-Connection, TE, Transfer-Encoding, Upgrade unless upgrading)
// and the body framing is written from what the parser decided, so that nothing ambiguous the
// client sent can reach the server. Output is appended to a caller-owned std::string that a
// session reuses: no allocation once it has grown.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/http/header_edits.hpp"
#include "proxy/http/header_list.hpp"
#include "proxy/http/message_head.hpp"

namespace lbd::http {

/// Rewrites the start of the path: a target that begins with `from` gets `to` instead
/// ("/api/v1/users" with from "/api", to "" -> "/v1/users"). An empty result becomes "/".
struct PathRewrite {
  std::string from;
  std::string to;
};

/// Per-route configuration of what is sent upstream.
struct RequestForwardConfig {
  /// Append the client address to X-Forwarded-For (creating it if absent).
  bool x_forwarded_for = true;
  /// Set X-Forwarded-Proto and X-Forwarded-Host, replacing what the client sent.
  bool x_forwarded_proto = true;
  bool x_forwarded_host = true;
  /// Pass an Upgrade request on (WebSocket). When false, Upgrade is dropped like any
  /// hop-by-hop field and the request goes on as plain HTTP.
  bool allow_upgrade = true;
  std::vector<PathRewrite> path_rewrites;  // the first whose `from` matches applies
  HeaderEdits headers;
  /// The field that carries a TLS client certificate's subject (lowercase); empty: none. Any
  /// such field from the client is dropped, so only lbd's reaches the backend.
  std::string client_subject_header;
};

/// Per-request facts the serializer cannot know from the head.
struct RequestForwardContext {
  /// Client IP as text ("192.0.2.7", "2001:db8::1"), for X-Forwarded-For.
  std::string_view client_ip;
  /// Scheme the client used, for X-Forwarded-Proto.
  std::string_view scheme = "http";
  /// The TLS client certificate's subject; empty when the client presented none.
  std::string_view client_subject;
};

/// Appends the request head to send upstream: `METHOD origin-target HTTP/1.1`, then the
/// client's fields in order minus hop-by-hop ones, Host (rebuilt from an absolute-form target),
/// the body framing (Content-Length when known, else Transfer-Encoding: chunked), X-Forwarded-*,
/// `Connection: upgrade` with Upgrade when upgrading, and the configured edits. The upstream
/// connection is HTTP/1.1 keep-alive, which needs no Connection field.
void serialize_request_head(const RequestHead& req, const RequestForwardConfig& config,
                            const RequestForwardContext& ctx, std::string& out);

/// Per-listener configuration of what is sent to clients.
struct ResponseForwardConfig {
  HeaderEdits headers;
};

struct ResponseForwardContext {
  /// Version of the client's request: an HTTP/1.0 client cannot read chunked.
  HttpVersion client_version = HttpVersion::kHttp11;
  /// The session means to keep the client connection open after this response (the request
  /// was keep-alive, and the proxy is not draining or over a request limit).
  bool keep_alive = true;
};

/// How the session must send the response body to the client.
struct ResponseForwardPlan {
  enum class Body : uint8_t {
    kNone,           // nothing follows the head
    kContentLength,  // copy `length` bytes as they are
    kChunked,        // encode what the parser delivers with ChunkSizeLine / kLastChunk
    kUntilClose,     // copy bytes, then close the client connection
  };
  Body body = Body::kNone;
  uint64_t length = 0;
  /// Close the client connection once the response is sent (Connection: close was sent).
  bool close = false;
};

/// Appends the response head for the client: `HTTP/1.1 status reason`, the server's fields in
/// order minus hop-by-hop ones, re-framing (a body of unknown length goes chunked to an HTTP/1.1
/// client and close-delimited to an HTTP/1.0 one), `Connection: close` when the client
/// connection will close (`keep-alive` for an HTTP/1.0 client it stays open for), Upgrade and
/// `Connection: upgrade` on a 101, and the configured edits. Content-Length on a response
/// without body (HEAD, 304) is passed on as the server sent it.
ResponseForwardPlan serialize_response_head(const ResponseHead& resp,
                                            const ResponseForwardConfig& config,
                                            const ResponseForwardContext& ctx, std::string& out);

/// Appends an interim (1xx other than 101) response head for the client as the server sent it:
/// `HTTP/1.1 status reason` and every field, in order.
void serialize_interim_head(const ResponseHead& resp, std::string& out);

/// True for the fields the proxy writes itself, which a configured edit must not touch: the
/// hop-by-hop fields every forwarded message loses, and the framing fields Content-Length and
/// Trailer (editing them would make client, proxy and backend disagree on where a message ends).
bool is_proxy_managed_field(std::string_view name);

/// True for the fields a proxy never forwards (RFC 9110 §7.6.1), given the message's fields for
/// the names its Connection fields list. Host is never treated as hop-by-hop.
bool is_hop_by_hop(std::string_view name, const HeaderList& fields);

/// The size line of one chunk ("1a2b\r\n"), built without allocating: a chunk goes out as
/// [size line][data][kChunkDataEnd]. Size must be > 0: a chunk of size 0 ends the body.
class ChunkSizeLine {
 public:
  explicit ChunkSizeLine(uint64_t size);
  std::string_view view() const { return {buf_, len_}; }

 private:
  char buf_[18];  // 16 hex digits + CRLF
  uint8_t len_ = 0;
};

/// Follows the data of every chunk.
inline constexpr std::string_view kChunkDataEnd = "\r\n";
/// Ends a chunked body without trailers.
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

/// Appends one whole chunk (size line, data, CRLF). Appends nothing for empty data.
void append_chunk(std::string& out, std::span<const char> data);
/// Appends the last chunk and the trailer section: "0\r\n", each trailer, "\r\n".
void append_last_chunk(std::string& out, const HeaderList* trailers = nullptr);

/// A complete response for errors the proxy answers itself, with a short text/plain body
/// ("502 Bad Gateway\n"; the 404 page says "Not Found\n"): 400, 404, 408, 413, 414, 431, 501,
/// 502, 503, 504, 505 (any other status gives the 500 one). `Connection: close` unless
/// keep_alive, then `Connection: keep-alive`. Static storage.
std::string_view make_error_response(int status, bool keep_alive = false);

/// Reason phrase for the statuses the proxy uses itself; "Unknown" otherwise.
std::string_view status_reason(int status);

}  // namespace lbd::http
