#pragma once
// HttpResponseParser: strict, incremental parsing of the responses an upstream server sends on
// one connection, one event at a time (see http_event.hpp). Framing follows RFC 9112 §6.3:
// no body for a response to HEAD and for 1xx, 204 and 304, whatever the headers say; then
// chunked; then Content-Length; otherwise the body runs until the server closes (finish()).
//
// Interim responses (1xx other than 101) come out as their own kHeadComplete and
// kMessageComplete, followed by the final response's. 101 Switching Protocols ends HTTP on the
// connection: after its kMessageComplete the unconsumed bytes are tunnel bytes.
//
// Every refusal carries status 502: the caller answers the client 502 and does not return the
// connection to the pool. Refused: malformed status line, a version other than HTTP/1.0 and
// 1.1, a status code outside 100-599, conflicting or malformed Content-Length, Content-Length
// with Transfer-Encoding, a transfer coding other than a single chunked (we re-frame bodies and
// could not pass another coding on), Transfer-Encoding on HTTP/1.0, 101 to a request that did
// not ask to upgrade, and everything the request parser refuses in field lines and chunks.

#include <memory>
#include <span>
#include <string_view>

#include "proxy/http/header_list.hpp"
#include "proxy/http/http_event.hpp"
#include "proxy/http/message_head.hpp"

namespace lbd::http {

namespace detail {
class ResponseParserImpl;
}

class HttpResponseParser {
 public:
  explicit HttpResponseParser(HttpParserLimits limits = {});
  ~HttpResponseParser();
  HttpResponseParser(HttpResponseParser&&) noexcept;
  HttpResponseParser& operator=(HttpResponseParser&&) noexcept;

  /// Describes the request the next response answers; call it before feeding that response.
  /// A response to HEAD has no body; a 101 is accepted only if the request asked to upgrade.
  /// It holds until the final (non-1xx) response has completed, then resets to a plain request.
  void expect_response(std::string_view request_method, bool upgrade_requested = false);

  /// Parses from the start of `input` up to the next event. See HttpEvent.
  HttpEvent parse(std::span<const char> input);
  HttpEvent parse(std::string_view input) { return parse(std::span<const char>(input)); }
  /// The server closed its side: completes a close-delimited body (kMessageComplete); kClosed
  /// between responses; kError (502) in the middle of one.
  HttpEvent finish();

  /// The current response's head; valid from kHeadComplete until parse() starts the next one.
  const ResponseHead& head() const;
  /// Trailer fields of a chunked response; valid after its kMessageComplete, like head().
  const HeaderList& trailers() const;
  const HttpError& error() const;

 private:
  std::unique_ptr<detail::ResponseParserImpl> impl_;  // heap: llhttp keeps a pointer to it
};

}  // namespace lbd::http
