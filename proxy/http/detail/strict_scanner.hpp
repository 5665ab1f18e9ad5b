#pragma once
// StrictScanner: the second pair of eyes on every byte of a message that is not body data.
//
// llhttp 8.1 is strict about much, but even with every lenient flag off it accepts a bare LF as
// the end of the request line and of the header block ("GET / HTTP/1.1\n"), obs-fold, several
// spaces between method and target, HTTP/0.9, versions 2.0 and RTSP/1.0, status codes of two
// digits, a bare LF after the last chunk — and it has no size limits at all. A proxy that lets
// any of that through may disagree with the server behind it about where a message ends. The
// scanner enforces the grammar of RFC 9112 on the start line, the field lines, the chunk framing
// and the trailers: CR and LF only as a CRLF pair, no control characters, tokens where tokens
// belong, single spaces in the request line, and the limits.
//
// The head is scanned before llhttp sees it (so the parser can stop exactly at the first bad
// byte); chunk framing after llhttp has split it from the chunk data. The scanner never sees body
// bytes.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "proxy/http/http_event.hpp"

namespace lbd::http::detail {

class StrictScanner {
 public:
  enum class Role : uint8_t { kRequest, kResponse };

  StrictScanner(Role role, const HttpParserLimits& limits);

  /// The next byte is the first of a new message (empty lines before a start line are allowed).
  void begin_message();
  /// The head just scanned announced a chunked body: the next framing byte starts a chunk size.
  void begin_chunked();

  struct HeadScan {
    size_t accepted = 0;    // bytes accepted, from the start of `bytes`
    bool head_end = false;  // the last accepted byte is the LF of the empty line ending the head
    bool refused = false;   // bytes[accepted] is refused; error() says why
  };
  /// Scans head bytes; stops after the head's final LF, at the first refused byte, or at the end.
  HeadScan scan_head(std::span<const char> bytes);

  /// Scans chunked framing bytes: chunk-size lines, the CRLF after chunk data, trailers. Returns
  /// how many were accepted; fewer than bytes.size() means bytes[result] is refused.
  size_t scan_chunk_framing(std::span<const char> bytes);

  /// Why the last refused byte was refused. `offset` is left 0: the parser knows the stream.
  const HttpError& error() const { return error_; }

 private:
  enum class State : uint8_t {
    kLineStart,  // before the start line; empty lines are skipped
    kLeadingCR,  // CR of an empty line before the start line
    kStartLine,
    kStartLineCR,
    kFieldStart,  // start of a field line, or of the empty line ending the section
    kFieldName,
    kFieldValue,
    kFieldCR,
    kFinalCR,  // CR of the empty line ending the head or the trailers
    kHeadDone,
    kChunkSize,
    kChunkExt,
    kChunkSizeCR,
    kChunkDataEnd,  // chunk data was delivered; CRLF must follow
    kChunkDataCR,
    kDone,
    kRefused,
  };

  bool step(char c);
  bool start_line_byte(unsigned char c);
  bool end_start_line();
  bool field_byte(unsigned char c);
  bool chunk_byte(unsigned char c);
  bool refuse(int request_status, const char* reason);
  bool refuse_framing(const char* reason) { return refuse(400, reason); }
  std::string_view version() const {
    return {version_, token_len_ < sizeof(version_) ? token_len_ : sizeof(version_)};
  }

  Role role_;
  size_t max_start_line_;
  size_t max_section_;  // head or trailer section
  State state_ = State::kLineStart;
  bool in_trailers_ = false;
  size_t section_bytes_ = 0;
  size_t line_bytes_ = 0;
  // Start line: index of the token being read (request: method, target, version; response:
  // version, status code, reason) and its length so far.
  uint8_t token_index_ = 0;
  size_t token_len_ = 0;
  char version_[8] = {};  // the HTTP-version token, while it fits
  // Chunk-size line.
  size_t chunk_digits_ = 0;
  bool chunk_nonzero_ = false;
  HttpError error_;
};

}  // namespace lbd::http::detail
