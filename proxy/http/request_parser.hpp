#pragma once
// HttpRequestParser: strict, incremental parsing of the HTTP/1.1 requests a client sends, one
// event at a time (see http_event.hpp for the pumping loop). Built on llhttp with every lenient
// flag off, plus the checks llhttp does not make.
//
// What is refused, and the status the caller answers before closing:
//   400  malformed request line, header or chunk framing; bare CR or LF; NUL or other control
//        characters; non-token header names; whitespace before the colon; obs-fold; missing
//        Host on HTTP/1.1; repeated or invalid Host; Content-Length with Transfer-Encoding;
//        repeated Content-Length (even identical: llhttp refuses it and RFC 9110 §8.6 allows
//        that); invalid Content-Length; Transfer-Encoding where chunked is not the final coding
//        or appears twice; Transfer-Encoding on HTTP/1.0; bad chunk sizes; HTTP/0.9; a protocol
//        other than HTTP (RTSP/1.0); a fragment or a bad absolute-form target
//   414  request line longer than max_request_line
//   431  head (or trailer section) longer than max_header_bytes
//   501  a method llhttp does not know; CONNECT; a transfer coding other than chunked
//   505  HTTP/x.y other than 1.0 and 1.1 (2.0, 1.2, 3.0, the HTTP/2 preface)
// A refused request never produces kHeadComplete.

#include <memory>
#include <span>
#include <string_view>

#include "proxy/http/header_list.hpp"
#include "proxy/http/http_event.hpp"
#include "proxy/http/message_head.hpp"

namespace lbd::http {

namespace detail {
class RequestParserImpl;
}

class HttpRequestParser {
 public:
  explicit HttpRequestParser(HttpParserLimits limits = {});
  ~HttpRequestParser();
  HttpRequestParser(HttpRequestParser&&) noexcept;
  HttpRequestParser& operator=(HttpRequestParser&&) noexcept;

  /// Parses from the start of `input` up to the next event. See HttpEvent.
  HttpEvent parse(std::span<const char> input);
  HttpEvent parse(std::string_view input) { return parse(std::span<const char>(input)); }
  /// The client closed its side. kClosed between requests; kError (400) in the middle of one.
  HttpEvent finish();
  /// After a request completed: ready for a new connection, as if new (also when that request
  /// asked to close its connection), so the parser can be reused. False when mid-request.
  bool restart();

  /// The current request's head; valid from kHeadComplete until parse() starts the next request.
  const RequestHead& head() const;
  /// Trailer fields of a chunked request; valid after its kMessageComplete, like head().
  const HeaderList& trailers() const;
  /// Why the parser refused the input (after kError).
  const HttpError& error() const;

 private:
  std::unique_ptr<detail::RequestParserImpl> impl_;  // heap: llhttp keeps a pointer to it
};

}  // namespace lbd::http
