#pragma once
// What the HTTP/1 parsers hand back, one step at a time.
//
// A session pumps a parser like this:
//
//   for (;;) {
//     HttpEvent ev = parser.parse(input);   // input: the bytes read and not yet consumed
//     input = input.subspan(ev.consumed);
//     switch (ev.kind) {
//       case HttpEvent::kNeedMore:        read more bytes into input;            break;
//       case HttpEvent::kHeadComplete:    route on parser.head();                break;
//       case HttpEvent::kBodyData:        forward ev.data;                       break;
//       case HttpEvent::kMessageComplete: finish the exchange;                   break;
//       case HttpEvent::kError:           answer parser.error().status, close;  return;
//       case HttpEvent::kClosed:          (only from finish())                   break;
//     }
//   }
//
// Each call stops at the first event, so the parser is never ahead of its caller: after
// kMessageComplete the unconsumed bytes are the next pipelined request (or, after an upgrade
// the server accepted, the first tunnel bytes), and nothing of them has been looked at.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace lbd::http {

struct HttpEvent {
  enum Kind : uint8_t {
    /// Every byte given was consumed (consumed == input size); feed more. Partial tokens are
    /// kept by the parser, so the caller may reuse its buffer.
    kNeedMore,
    /// The head is complete and valid: head() is filled in. Call parse() again even with no
    /// bytes left: a message without a body completes without further input.
    kHeadComplete,
    /// Decoded body bytes (chunk framing removed). `data` points into the input given to this
    /// parse() call: no copy is made, and it is valid as long as that input is.
    kBodyData,
    /// The message (body and trailers included) ended.
    kMessageComplete,
    /// The input is not acceptable: error() says why and with which status. The parser is dead.
    kError,
    /// finish() at a message boundary: the peer closed cleanly between messages.
    kClosed,
  };

  Kind kind = kNeedMore;
  /// Bytes of the input used by this step.
  size_t consumed = 0;
  /// kBodyData only.
  std::span<const char> data;
};

struct HttpError {
  /// The status to answer: 400, 414, 431, 501 or 505 for a request; always 502 for a response
  /// (the upstream connection is then not reused). 0 when there is no error.
  int status = 0;
  /// What was wrong, for logs: "Content-Length with Transfer-Encoding". Points to static text.
  std::string_view reason;
  /// Offset of the offending byte in the stream the parser was fed since it was created.
  uint64_t offset = 0;
};

struct HttpParserLimits {
  /// Longest request line (method, target and version, without CRLF): beyond it, 414.
  size_t max_request_line = 8 * 1024;
  /// Longest head (start line, header fields and the empty line; trailers likewise): beyond
  /// it, 431 for a request, 502 for a response.
  size_t max_header_bytes = 32 * 1024;
};

}  // namespace lbd::http
