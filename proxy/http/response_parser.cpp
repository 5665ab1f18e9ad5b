#include "proxy/http/response_parser.hpp"

#include "proxy/http/detail/framing_fields.hpp"
#include "proxy/http/detail/message_parser.hpp"
#include "proxy/http/syntax.hpp"

namespace lbd::http {

namespace detail {

class ResponseParserImpl final : public MessageParser {
 public:
  explicit ResponseParserImpl(const HttpParserLimits& limits)
      : MessageParser(Role::kResponse, limits) {}

  ResponseHead head_;
  bool head_request_ = false;
  bool upgrade_requested_ = false;

 protected:
  void reset_head() override { head_.clear(); }
  void append_start_line_text(std::string_view piece) override { head_.reason.append(piece); }
  HeaderList& head_fields() override { return head_.headers; }
  bool head_is_chunked() const override {
    return head_.framing.kind == BodyFraming::Kind::kChunked;
  }
  HttpError complete_head(llhttp_t& p) override;
  bool message_done() override {
    if (head_.is_interim()) return true;
    head_request_ = false;
    upgrade_requested_ = false;
    return !head_.is_switching_protocols();
  }
};

namespace {

HttpError refuse(const char* reason) { return HttpError{502, reason, 0}; }

}  // namespace

HttpError ResponseParserImpl::complete_head(llhttp_t& p) {
  ResponseHead& h = head_;
  if (p.http_major != 1 || p.http_minor > 1) {
    return refuse("unsupported HTTP version in the status line");
  }
  h.version = p.http_minor == 0 ? HttpVersion::kHttp10 : HttpVersion::kHttp11;
  const bool http11 = h.version == HttpVersion::kHttp11;
  h.status = p.status_code;
  if (h.status < 100 || h.status > 599) return refuse("status code outside 100-599");
  if (h.is_switching_protocols() && !upgrade_requested_) {
    return refuse("101 Switching Protocols to a request that did not ask to upgrade");
  }

  const FramingFields ff = scan_framing_fields(h.headers, [](HeaderField) {});

  // Whatever the framing fields say, these responses end with their head (RFC 9112 §6.3 1.).
  // Their fields are still checked: a server that sends nonsense is not pooled.
  const bool no_body =
      head_request_ || (h.status >= 100 && h.status < 200) || h.status == 204 || h.status == 304;
  if (ff.has_transfer_encoding) {
    if (!http11) return refuse("Transfer-Encoding in an HTTP/1.0 response");
    if (ff.content_length_count > 0) return refuse("Content-Length with Transfer-Encoding");
    if (ff.codings != 1 || !ff.chunked_last) return refuse("unsupported transfer coding");
    h.framing = BodyFraming::chunked();
  } else if (ff.content_length_count > 1) {
    return refuse("repeated Content-Length");
  } else if (ff.content_length_count == 1) {
    std::optional<uint64_t> n = parse_content_length(ff.content_length);
    if (!n) return refuse("invalid Content-Length");
    h.framing = BodyFraming::content_length(*n);
  } else {
    h.framing = BodyFraming::until_close();
  }
  if (no_body) {
    h.framing = BodyFraming::none();
    // llhttp reads a body for 204/304 with Content-Length; F_SKIPBODY is what its
    // on_headers_complete return value 1 would set, and we are returning HPE_PAUSED instead.
    p.flags |= F_SKIPBODY;
  } else {
    const bool llhttp_chunked = (p.flags & F_CHUNKED) != 0;
    const bool llhttp_length = (p.flags & F_CONTENT_LENGTH) != 0;
    bool agree = false;
    switch (h.framing.kind) {
      case BodyFraming::Kind::kChunked:
        agree = llhttp_chunked && !llhttp_length;
        break;
      case BodyFraming::Kind::kContentLength:
        agree = !llhttp_chunked && llhttp_length && p.content_length == h.framing.length;
        break;
      default:
        agree = !llhttp_chunked && !llhttp_length;
        break;
    }
    if (!agree) return refuse("ambiguous message framing");
  }
  h.keep_alive = h.framing.kind != BodyFraming::Kind::kUntilClose && !ff.close &&
                 (http11 || ff.keep_alive);
  return {};
}

}  // namespace detail

HttpResponseParser::HttpResponseParser(HttpParserLimits limits)
    : impl_(std::make_unique<detail::ResponseParserImpl>(limits)) {}
HttpResponseParser::~HttpResponseParser() = default;
HttpResponseParser::HttpResponseParser(HttpResponseParser&&) noexcept = default;
HttpResponseParser& HttpResponseParser::operator=(HttpResponseParser&&) noexcept = default;

void HttpResponseParser::expect_response(std::string_view request_method, bool upgrade_requested) {
  impl_->head_request_ = request_method == "HEAD";
  impl_->upgrade_requested_ = upgrade_requested;
}

HttpEvent HttpResponseParser::parse(std::span<const char> input) { return impl_->parse(input); }
HttpEvent HttpResponseParser::finish() { return impl_->finish(); }
const ResponseHead& HttpResponseParser::head() const { return impl_->head_; }
const HeaderList& HttpResponseParser::trailers() const { return impl_->trailers(); }
const HttpError& HttpResponseParser::error() const { return impl_->error(); }

}  // namespace lbd::http
