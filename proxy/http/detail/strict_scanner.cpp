#include "proxy/http/detail/strict_scanner.hpp"

#include <string_view>

#include "proxy/http/syntax.hpp"

namespace lbd::http::detail {

namespace {

constexpr bool is_hex(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// RFC 9112 §2.3: HTTP-version = "HTTP/" DIGIT "." DIGIT.
enum class VersionClass { kSupported, kUnsupported, kMalformed, kNotHttp };

// `v` holds at most the first 8 characters of the token; `longer` says there were more.
VersionClass classify_version(std::string_view v, bool longer) {
  if (longer) return v.starts_with("HTTP/") ? VersionClass::kMalformed : VersionClass::kNotHttp;
  if (v == "HTTP/1.1" || v == "HTTP/1.0") return VersionClass::kSupported;
  if (v.size() == 8 && v.starts_with("HTTP/") && is_digit(v[5]) && v[6] == '.' && is_digit(v[7])) {
    return VersionClass::kUnsupported;
  }
  if (v.starts_with("HTTP/")) return VersionClass::kMalformed;
  return VersionClass::kNotHttp;
}

}  // namespace

StrictScanner::StrictScanner(Role role, const HttpParserLimits& limits)
    : role_(role),
      max_start_line_(role == Role::kRequest ? limits.max_request_line : limits.max_header_bytes),
      max_section_(limits.max_header_bytes) {}

void StrictScanner::begin_message() {
  state_ = State::kLineStart;
  in_trailers_ = false;
  section_bytes_ = 0;
  line_bytes_ = 0;
  token_index_ = 0;
  token_len_ = 0;
}

void StrictScanner::begin_chunked() {
  state_ = State::kChunkSize;
  chunk_digits_ = 0;
  chunk_nonzero_ = false;
  line_bytes_ = 0;
}

bool StrictScanner::refuse(int request_status, const char* reason) {
  error_ = HttpError{role_ == Role::kRequest ? request_status : 502, reason, 0};
  state_ = State::kRefused;
  return false;
}

StrictScanner::HeadScan StrictScanner::scan_head(std::span<const char> bytes) {
  HeadScan r;
  for (char c : bytes) {
    if (!step(c)) {
      r.refused = true;
      return r;
    }
    ++r.accepted;
    if (state_ == State::kHeadDone) {
      r.head_end = true;
      return r;
    }
  }
  return r;
}

size_t StrictScanner::scan_chunk_framing(std::span<const char> bytes) {
  size_t n = 0;
  for (char c : bytes) {
    if (!step(c)) return n;
    ++n;
  }
  return n;
}

bool StrictScanner::step(char ch) {
  auto c = static_cast<unsigned char>(ch);
  switch (state_) {
    case State::kLineStart:
    case State::kLeadingCR:
    case State::kStartLine:
    case State::kStartLineCR:
    case State::kFieldStart:
    case State::kFieldName:
    case State::kFieldValue:
    case State::kFieldCR:
    case State::kFinalCR:
      if (++section_bytes_ > max_section_) {
        if (in_trailers_) return refuse(431, "trailer section too large");
        if (state_ == State::kStartLine && role_ == Role::kRequest) {
          return refuse(414, "request line too long");
        }
        return refuse(431, "header block too large");
      }
      break;
    default:
      break;
  }

  switch (state_) {
    case State::kLineStart:
      if (c == '\r') {
        state_ = State::kLeadingCR;
        return true;
      }
      state_ = State::kStartLine;
      return start_line_byte(c);
    case State::kLeadingCR:
      if (c != '\n') return refuse_framing("bare CR before the start line");
      state_ = State::kLineStart;
      return true;
    case State::kStartLine:
      return start_line_byte(c);
    case State::kStartLineCR:
      if (c != '\n') return refuse_framing("bare CR in the start line");
      state_ = State::kFieldStart;
      return true;
    case State::kFieldStart:
    case State::kFieldName:
    case State::kFieldValue:
    case State::kFieldCR:
    case State::kFinalCR:
      return field_byte(c);
    case State::kChunkSize:
    case State::kChunkExt:
    case State::kChunkSizeCR:
    case State::kChunkDataEnd:
    case State::kChunkDataCR:
      return chunk_byte(c);
    case State::kHeadDone:
    case State::kDone:
      return refuse_framing("bytes after the end of the message head");
    case State::kRefused:
      return false;
  }
  return false;
}

// Request line: method SP request-target SP HTTP-version (RFC 9112 §3), single spaces only.
// Status line: HTTP-version SP 3DIGIT [SP reason-phrase] (§4); the reason may hold spaces and
// HTAB. The SP before an empty reason is optional, as in practice servers omit it.
bool StrictScanner::start_line_byte(unsigned char c) {
  const bool request = role_ == Role::kRequest;
  if (c == '\r') {
    state_ = State::kStartLineCR;
    return end_start_line();
  }
  if (c == '\n') return refuse_framing("bare LF in the start line");
  if (++line_bytes_ > max_start_line_) {
    return refuse(414, request ? "request line too long" : "status line too long");
  }

  const bool in_reason = !request && token_index_ == 2;
  if (c == ' ' && !in_reason) {
    if (token_len_ == 0) return refuse(400, "extra whitespace in the request line");
    if (!request && token_index_ == 0) {
      if (classify_version(version(), false) != VersionClass::kSupported) {
        return refuse(502, "unsupported HTTP version in the status line");
      }
    }
    if (!request && token_index_ == 1 && token_len_ != 3) {
      return refuse(502, "status code is not three digits");
    }
    ++token_index_;
    token_len_ = 0;
    if (request && token_index_ > 2) return refuse(400, "extra whitespace in the request line");
    return true;
  }

  ++token_len_;
  if (request) {
    switch (token_index_) {
      case 0:
        if (!is_tchar(c)) return refuse(400, "invalid character in the method");
        return true;
      case 1:
        // Visible ASCII only: no HTAB, CTL, DEL or raw non-ASCII in a request target.
        if (c <= 0x20 || c >= 0x7f) return refuse(400, "invalid character in the request target");
        return true;
      default:
        if (token_len_ <= sizeof(version_)) version_[token_len_ - 1] = static_cast<char>(c);
        if (c <= 0x20 || c >= 0x7f) return refuse(400, "malformed HTTP version");
        return true;
    }
  }
  switch (token_index_) {
    case 0:
      if (token_len_ <= sizeof(version_)) version_[token_len_ - 1] = static_cast<char>(c);
      if (token_len_ > sizeof(version_)) {
        return refuse(502, "unsupported HTTP version in the status line");
      }
      return true;
    case 1:
      if (!is_digit(static_cast<char>(c)) || token_len_ > 3) {
        return refuse(502, "status code is not three digits");
      }
      return true;
    default:
      if (is_ctl(c) && c != '\t') return refuse(502, "control character in the reason phrase");
      return true;
  }
}

bool StrictScanner::end_start_line() {
  if (role_ == Role::kResponse) {
    if (token_index_ == 0) return refuse(502, "malformed status line");
    if (token_index_ == 1 && token_len_ != 3) return refuse(502, "status code is not three digits");
    return true;
  }
  if (token_len_ == 0) return refuse(400, "extra whitespace in the request line");
  if (token_index_ == 1) return refuse(400, "HTTP/0.9 request (no version)");
  if (token_index_ == 0) return refuse(400, "malformed request line");
  switch (classify_version(version(), token_len_ > sizeof(version_))) {
    case VersionClass::kSupported:
      return true;
    case VersionClass::kUnsupported:
      return refuse(505, "HTTP version not supported");
    case VersionClass::kMalformed:
      return refuse(400, "malformed HTTP version");
    case VersionClass::kNotHttp:
      return refuse(400, "not an HTTP request");
  }
  return true;
}

// Field lines of the head and of the trailer section (RFC 9112 §5):
// field-name ":" OWS field-value OWS CRLF, the name a token directly followed by the colon.
bool StrictScanner::field_byte(unsigned char c) {
  switch (state_) {
    case State::kFieldStart:
      if (c == '\r') {
        state_ = State::kFinalCR;
        return true;
      }
      if (c == '\n') return refuse_framing("bare LF in the header block");
      if (c == ' ' || c == '\t') {
        return refuse(400, "obs-fold (header line starting with whitespace)");
      }
      if (c == ':') return refuse(400, "empty header name");
      if (!is_tchar(c)) return refuse(400, "invalid character in a header name");
      state_ = State::kFieldName;
      return true;
    case State::kFieldName:
      if (c == ':') {
        state_ = State::kFieldValue;
        return true;
      }
      if (c == ' ' || c == '\t') return refuse(400, "whitespace between header name and colon");
      if (c == '\r' || c == '\n') return refuse(400, "header line without a colon");
      if (!is_tchar(c)) return refuse(400, "invalid character in a header name");
      return true;
    case State::kFieldValue:
      if (c == '\r') {
        state_ = State::kFieldCR;
        return true;
      }
      if (c == '\n') return refuse_framing("bare LF in the header block");
      if (c == 0) return refuse(400, "NUL in a header value");
      if (is_ctl(c) && c != '\t') return refuse(400, "control character in a header value");
      return true;
    case State::kFieldCR:
      if (c != '\n') return refuse_framing("bare CR in the header block");
      state_ = State::kFieldStart;
      return true;
    case State::kFinalCR:
      if (c != '\n') return refuse_framing("bare CR in the header block");
      state_ = in_trailers_ ? State::kDone : State::kHeadDone;
      return true;
    default:
      return false;
  }
}

// chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF; last-chunk = 1*"0" [ chunk-ext ] CRLF,
// then the trailer section (RFC 9112 §7.1). llhttp parses the size; the scanner checks the
// line framing around it and bounds the size line, which llhttp does not.
bool StrictScanner::chunk_byte(unsigned char c) {
  switch (state_) {
    case State::kChunkSize:
    case State::kChunkExt:
      if (c == '\r') {
        if (chunk_digits_ == 0) return refuse(400, "invalid chunk size");
        state_ = State::kChunkSizeCR;
        return true;
      }
      if (c == '\n') return refuse_framing("bare LF in chunk framing");
      if (++line_bytes_ > max_section_) return refuse(400, "chunk size line too long");
      if (state_ == State::kChunkSize) {
        if (is_hex(c)) {
          ++chunk_digits_;
          chunk_nonzero_ |= c != '0';
          return true;
        }
        if (c == ';' && chunk_digits_ > 0) {
          state_ = State::kChunkExt;
          return true;
        }
        return refuse(400, "invalid chunk size");
      }
      if (is_ctl(c) && c != '\t') return refuse(400, "control character in a chunk extension");
      return true;
    case State::kChunkSizeCR:
      if (c != '\n') return refuse_framing("bare CR in chunk framing");
      if (chunk_nonzero_) {
        state_ = State::kChunkDataEnd;
      } else {
        state_ = State::kFieldStart;
        in_trailers_ = true;
        section_bytes_ = 0;
      }
      return true;
    case State::kChunkDataEnd:
      if (c != '\r') return refuse(400, "chunk data not followed by CRLF");
      state_ = State::kChunkDataCR;
      return true;
    case State::kChunkDataCR:
      if (c != '\n') return refuse_framing("bare CR in chunk framing");
      begin_chunked();
      return true;
    default:
      return false;
  }
}

}  // namespace lbd::http::detail
