#pragma once
// MessageParser: what HttpRequestParser and HttpResponseParser share — llhttp driven one event
// at a time, the StrictScanner beside it, field assembly, limits and error mapping. The two
// public parsers derive from it and add the checks and conclusions that differ (Host, framing
// rules, status codes).
//
// Driving llhttp one event at a time: every callback that ends an event returns HPE_PAUSED
// (on_headers_complete, on_body, on_message_complete); llhttp_get_error_pos() then tells how
// many bytes were consumed, and the next parse() resumes. Pausing in on_message_complete is
// what keeps pipelined requests apart: llhttp does not look at the next request until the
// caller asks for it.
//
// Private: only the .cpp files of lbd_http include this header (and so llhttp.h).

#include <llhttp.h>

#include <cstdint>
#include <span>
#include <string_view>

#include "proxy/http/detail/strict_scanner.hpp"
#include "proxy/http/header_list.hpp"
#include "proxy/http/http_event.hpp"

namespace lbd::http::detail {

class MessageParser {
 public:
  using Role = StrictScanner::Role;

  MessageParser(Role role, const HttpParserLimits& limits);
  virtual ~MessageParser() = default;
  MessageParser(const MessageParser&) = delete;
  MessageParser& operator=(const MessageParser&) = delete;

  HttpEvent parse(std::span<const char> input);
  HttpEvent finish();
  /// Between messages (after kMessageComplete): makes the parser ready for a new stream, as
  /// if new, even when the message ended its stream (Connection: close). False otherwise.
  bool restart();
  const HttpError& error() const { return error_; }
  const HeaderList& trailers() const { return trailers_; }

 protected:
  /// A new message begins: reset the head.
  virtual void reset_head() = 0;
  /// A piece of the request target (requests) or of the reason phrase (responses).
  virtual void append_start_line_text(std::string_view piece) = 0;
  /// Where the head's fields go.
  virtual HeaderList& head_fields() = 0;
  /// The head is complete: check it and fill in what derives from it. Returns an error with
  /// status != 0 to refuse the message. May set F_SKIPBODY on `p` when the message has no body
  /// whatever its headers say (HEAD, 1xx, 204, 304).
  virtual HttpError complete_head(llhttp_t& p) = 0;
  /// Framing decided by complete_head(), to know whether chunk framing must be scanned.
  virtual bool head_is_chunked() const = 0;
  /// Called when a message completes; returns false when no HTTP may follow on this stream
  /// (101 Switching Protocols).
  virtual bool message_done() { return true; }

  /// For error mapping: whether the head collected so far has a Transfer-Encoding field.
  bool fields_have(std::string_view name) { return head_fields().contains(name); }

  Role role_;

 private:
  enum class State : uint8_t {
    kHead,          // reading a head (or waiting for a message to start)
    kBody,          // head delivered; body, trailers, or an empty body's completion pending
    kAfterMessage,  // paused at a message's end; the next parse() starts the next message
    kNoMoreHttp,    // after 101: the rest of the stream is not HTTP
    kDead,          // error delivered
  };

  HttpEvent parse_head(std::span<const char> input);
  HttpEvent parse_body(std::span<const char> input);
  /// llhttp_execute, passing over the HPE_PAUSED_UPGRADE that follows an upgrade request whose
  /// caller went on parsing HTTP (the server declined the upgrade).
  llhttp_errno_t execute(const char* data, size_t len);
  size_t consumed(llhttp_errno_t err, const char* data, size_t len) const;
  HttpEvent fail(HttpError e, size_t consumed);
  HttpError map_llhttp_error(llhttp_errno_t err);
  HttpEvent step(HttpEvent::Kind kind, size_t n, std::span<const char> data = {});

  // llhttp callbacks; `p->data` is the MessageParser.
  static int on_message_begin(llhttp_t* p);
  static int on_url(llhttp_t* p, const char* at, size_t len);
  static int on_status(llhttp_t* p, const char* at, size_t len);
  static int on_header_field(llhttp_t* p, const char* at, size_t len);
  static int on_header_value(llhttp_t* p, const char* at, size_t len);
  static int on_header_value_complete(llhttp_t* p);
  static int on_headers_complete(llhttp_t* p);
  static int on_body(llhttp_t* p, const char* at, size_t len);
  static int on_message_complete(llhttp_t* p);
  static const llhttp_settings_t kSettings;

  HeaderList& current_fields() { return head_done_ ? trailers_ : head_fields(); }

  llhttp_t parser_;
  StrictScanner scanner_;
  State state_ = State::kHead;
  HttpError error_;
  HeaderList trailers_;
  uint64_t stream_offset_ = 0;  // bytes consumed before the current parse() call
  // Set by callbacks during one execute.
  bool message_started_ = false;  // llhttp saw the first byte of a message (not an empty line)
  bool head_done_ = false;
  bool head_completed_now_ = false;
  bool message_completed_now_ = false;
  bool field_open_ = false;
  HttpError callback_error_;
  std::span<const char> body_;
};

}  // namespace lbd::http::detail
