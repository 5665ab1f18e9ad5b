#include "proxy/http/detail/message_parser.hpp"

#include <algorithm>

namespace lbd::http::detail {

namespace {

MessageParser* self(llhttp_t* p) { return static_cast<MessageParser*>(p->data); }

}  // namespace

const llhttp_settings_t MessageParser::kSettings = [] {
  llhttp_settings_t s;
  llhttp_settings_init(&s);
  s.on_message_begin = &MessageParser::on_message_begin;
  s.on_url = &MessageParser::on_url;
  s.on_status = &MessageParser::on_status;
  s.on_header_field = &MessageParser::on_header_field;
  s.on_header_value = &MessageParser::on_header_value;
  s.on_header_value_complete = &MessageParser::on_header_value_complete;
  s.on_headers_complete = &MessageParser::on_headers_complete;
  s.on_body = &MessageParser::on_body;
  s.on_message_complete = &MessageParser::on_message_complete;
  return s;
}();

MessageParser::MessageParser(Role role, const HttpParserLimits& limits)
    : role_(role), scanner_(role, limits) {
  llhttp_init(&parser_, role == Role::kRequest ? HTTP_REQUEST : HTTP_RESPONSE, &kSettings);
  parser_.data = this;
  // llhttp_init leaves them off already; spelled out because the whole point is that they stay
  // off. (LENIENT_VERSION has no setter in llhttp 8.1 and is never set.)
  llhttp_set_lenient_headers(&parser_, 0);
  llhttp_set_lenient_chunked_length(&parser_, 0);
  llhttp_set_lenient_keep_alive(&parser_, 0);
  llhttp_set_lenient_transfer_encoding(&parser_, 0);
}

HttpEvent MessageParser::parse(std::span<const char> input) {
  switch (state_) {
    case State::kDead:
      return {HttpEvent::kError, 0, {}};
    case State::kNoMoreHttp:
      return fail({502, "parse() after 101 Switching Protocols: the stream is a tunnel now", 0}, 0);
    case State::kAfterMessage:
      state_ = State::kHead;
      scanner_.begin_message();
      return parse_head(input);
    case State::kHead:
      return parse_head(input);
    case State::kBody:
      return parse_body(input);
  }
  return {HttpEvent::kError, 0, {}};
}

// The scanner looks first and llhttp gets only what it accepted, up to the end of the head. An
// error llhttp finds in those bytes comes before the scanner's, so whichever comes first in the
// stream wins, however the stream is split into parse() calls.
HttpEvent MessageParser::parse_head(std::span<const char> input) {
  StrictScanner::HeadScan scan = scanner_.scan_head(input);
  llhttp_errno_t err = execute(input.data(), scan.accepted);
  size_t used = consumed(err, input.data(), scan.accepted);
  if (callback_error_.status != 0) return fail(callback_error_, used);
  if (head_completed_now_) {
    if (err != HPE_PAUSED || !scan.head_end || used != scan.accepted) {
      return fail({400, "llhttp and the scanner disagree on where the head ends", 0}, used);
    }
    state_ = State::kBody;
    if (head_is_chunked()) scanner_.begin_chunked();
    return step(HttpEvent::kHeadComplete, used);
  }
  if (err != HPE_OK) return fail(map_llhttp_error(err), used);
  if (scan.refused) return fail(scanner_.error(), scan.accepted);
  if (scan.head_end) {
    return fail({400, "llhttp and the scanner disagree on where the head ends", 0}, used);
  }
  return step(HttpEvent::kNeedMore, used);
}

// llhttp goes first and splits chunk framing from chunk data; the scanner then checks the
// framing bytes of this step, which all come before the body span that paused llhttp.
HttpEvent MessageParser::parse_body(std::span<const char> input) {
  llhttp_errno_t err = execute(input.data(), input.size());
  size_t used = consumed(err, input.data(), input.size());
  if (head_is_chunked()) {
    size_t framing_end = body_.empty() ? used : static_cast<size_t>(body_.data() - input.data());
    size_t ok = scanner_.scan_chunk_framing(input.first(framing_end));
    if (ok < framing_end) return fail(scanner_.error(), ok);
  }
  if (callback_error_.status != 0) return fail(callback_error_, used);
  if (message_completed_now_) {
    state_ = message_done() ? State::kAfterMessage : State::kNoMoreHttp;
    return step(HttpEvent::kMessageComplete, used);
  }
  if (!body_.empty()) return step(HttpEvent::kBodyData, used, body_);
  if (err == HPE_OK) return step(HttpEvent::kNeedMore, used);
  return fail(map_llhttp_error(err), used);
}

bool MessageParser::restart() {
  if (state_ != State::kAfterMessage) return false;
  llhttp_reset(&parser_);  // keeps the settings, the data pointer and the (strict) lenient flags
  stream_offset_ = 0;
  return true;
}

HttpEvent MessageParser::finish() {
  const HttpError truncated =
      role_ == Role::kRequest
          ? HttpError{400, "connection closed in the middle of a request", 0}
          : HttpError{502, "connection closed in the middle of the response", 0};
  switch (state_) {
    case State::kDead:
      return {HttpEvent::kError, 0, {}};
    case State::kAfterMessage:
    case State::kNoMoreHttp:
      return step(HttpEvent::kClosed, 0);
    case State::kHead:
      return message_started_ ? fail(truncated, 0) : step(HttpEvent::kClosed, 0);
    case State::kBody:
      break;
  }
  // Let llhttp run what needs no input (the completion of a message without body, or the step
  // into a close-delimited body), then tell it the stream ended.
  HttpEvent ev = parse_body({});
  if (ev.kind != HttpEvent::kNeedMore) return ev;
  message_completed_now_ = false;
  llhttp_finish(&parser_);
  if (message_completed_now_) {
    state_ = message_done() ? State::kAfterMessage : State::kNoMoreHttp;
    return step(HttpEvent::kMessageComplete, 0);
  }
  return fail(truncated, 0);
}

llhttp_errno_t MessageParser::execute(const char* data, size_t len) {
  static const char kNothing = 0;
  if (data == nullptr) data = &kNothing;
  if (llhttp_get_errno(&parser_) == HPE_PAUSED) llhttp_resume(&parser_);
  head_completed_now_ = false;
  message_completed_now_ = false;
  body_ = {};
  llhttp_errno_t err = llhttp_execute(&parser_, data, len);
  if (err == HPE_PAUSED_UPGRADE) {
    // Only right after an upgrade request completed and the caller kept parsing: the upgrade
    // did not happen, HTTP goes on.
    const char* pos = llhttp_get_error_pos(&parser_);
    llhttp_resume_after_upgrade(&parser_);
    err = llhttp_execute(&parser_, pos, static_cast<size_t>(data + len - pos));
  }
  return err;
}

size_t MessageParser::consumed(llhttp_errno_t err, const char* data, size_t len) const {
  if (err == HPE_OK) return len;
  const char* pos = llhttp_get_error_pos(&parser_);
  if (pos == nullptr || pos < data) return 0;
  return std::min(static_cast<size_t>(pos - data), len);
}

HttpEvent MessageParser::step(HttpEvent::Kind kind, size_t n, std::span<const char> data) {
  stream_offset_ += n;
  return {kind, n, data};
}

HttpEvent MessageParser::fail(HttpError e, size_t n) {
  error_ = e;
  error_.offset = stream_offset_ + n;
  stream_offset_ += n;
  state_ = State::kDead;
  return {HttpEvent::kError, n, {}};
}

HttpError MessageParser::map_llhttp_error(llhttp_errno_t err) {
  const bool request = role_ == Role::kRequest;
  auto e = [&](int status, const char* reason) {
    return HttpError{request ? status : 502, reason, 0};
  };
  const char* llhttp_reason = llhttp_get_error_reason(&parser_);
  std::string_view why = llhttp_reason ? llhttp_reason : "";
  switch (err) {
    case HPE_INVALID_METHOD:
      return e(501, "unknown method");
    case HPE_INVALID_VERSION:
      // llhttp says "Invalid HTTP version" for a well-formed DIGIT.DIGIT it does not support
      // (1.2, 3.0); its other reasons are syntax errors.
      return why == "Invalid HTTP version" ? e(505, "HTTP version not supported")
                                           : e(400, "malformed HTTP version");
    case HPE_UNEXPECTED_CONTENT_LENGTH:
      // llhttp refuses both "Content-Length with Transfer-Encoding" and any repeated
      // Content-Length, identical values included (RFC 9110 §8.6 allows either choice).
      return e(400, fields_have("Transfer-Encoding") ? "Content-Length with Transfer-Encoding"
                                                     : "repeated Content-Length");
    case HPE_INVALID_CONTENT_LENGTH:
      return e(400, "invalid Content-Length");
    case HPE_INVALID_TRANSFER_ENCODING:
      return e(400, "Transfer-Encoding: chunked is not the final coding");
    case HPE_INVALID_CHUNK_SIZE:
      return e(400, why == "Chunk size overflow" ? "chunk size overflow" : "invalid chunk size");
    case HPE_CLOSED_CONNECTION:
      return e(400, "data after the last message of a connection that closes");
    case HPE_PAUSED_H2_UPGRADE:
      return e(505, "HTTP/2 connection preface");
    default:
      return e(400, llhttp_reason ? llhttp_reason : "malformed message");
  }
}

int MessageParser::on_message_begin(llhttp_t* p) {
  MessageParser* s = self(p);
  s->message_started_ = true;
  s->head_done_ = false;
  s->field_open_ = false;
  s->trailers_.clear();
  s->reset_head();
  return 0;
}

int MessageParser::on_url(llhttp_t* p, const char* at, size_t len) {
  self(p)->append_start_line_text({at, len});
  return 0;
}

int MessageParser::on_status(llhttp_t* p, const char* at, size_t len) {
  self(p)->append_start_line_text({at, len});
  return 0;
}

int MessageParser::on_header_field(llhttp_t* p, const char* at, size_t len) {
  MessageParser* s = self(p);
  HeaderList& fields = s->current_fields();
  if (!s->field_open_) {
    fields.start_field();
    s->field_open_ = true;
  }
  fields.append_name({at, len});
  return 0;
}

int MessageParser::on_header_value(llhttp_t* p, const char* at, size_t len) {
  self(p)->current_fields().append_value({at, len});
  return 0;
}

int MessageParser::on_header_value_complete(llhttp_t* p) {
  MessageParser* s = self(p);
  s->current_fields().end_field();
  s->field_open_ = false;
  return 0;
}

int MessageParser::on_headers_complete(llhttp_t* p) {
  MessageParser* s = self(p);
  s->head_done_ = true;
  s->head_completed_now_ = true;
  HttpError e = s->complete_head(*p);
  if (e.status != 0) {
    s->callback_error_ = e;
    return -1;
  }
  return HPE_PAUSED;
}

int MessageParser::on_body(llhttp_t* p, const char* at, size_t len) {
  // llhttp flushes an open span at the end of every execute, also when it is empty (a
  // close-delimited body at the end of the input): pausing there would make no progress.
  if (len == 0) return 0;
  self(p)->body_ = {at, len};
  return HPE_PAUSED;
}

int MessageParser::on_message_complete(llhttp_t* p) {
  MessageParser* s = self(p);
  // Fields that frame or route a message have no business in trailers (RFC 9110 §6.5.1); llhttp
  // ignores a trailing Content-Length, a server behind us might not.
  for (std::string_view name : {"Content-Length", "Transfer-Encoding", "Host"}) {
    if (s->trailers_.contains(name)) {
      s->callback_error_ = {s->role_ == Role::kRequest ? 400 : 502,
                            "framing or routing field in trailers", 0};
      return -1;
    }
  }
  s->message_started_ = false;
  s->message_completed_now_ = true;
  return HPE_PAUSED;
}

}  // namespace lbd::http::detail
