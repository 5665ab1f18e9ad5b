#include "proxy/http/request_parser.hpp"

#include "proxy/http/detail/framing_fields.hpp"
#include "proxy/http/detail/message_parser.hpp"
#include "proxy/http/syntax.hpp"

namespace lbd::http {

namespace detail {

class RequestParserImpl final : public MessageParser {
 public:
  explicit RequestParserImpl(const HttpParserLimits& limits)
      : MessageParser(Role::kRequest, limits) {}

  RequestHead head_;

 protected:
  void reset_head() override { head_.clear(); }
  void append_start_line_text(std::string_view piece) override { head_.target.append(piece); }
  HeaderList& head_fields() override { return head_.headers; }
  bool head_is_chunked() const override {
    return head_.framing.kind == BodyFraming::Kind::kChunked;
  }
  HttpError complete_head(llhttp_t& p) override;

 private:
  HttpError classify_target();
};

namespace {

HttpError refuse(int status, const char* reason) { return HttpError{status, reason, 0}; }

void assign_lowercase(std::string& out, std::string_view in) {
  out.resize(in.size());
  for (size_t i = 0; i < in.size(); ++i) out[i] = to_lower(in[i]);
}

}  // namespace

// Origin-form ("/p?q"), asterisk-form ("*", OPTIONS only) or absolute-form ("http://h/p?q").
// Authority-form belongs to CONNECT, refused before we get here.
HttpError RequestParserImpl::classify_target() {
  std::string_view t = head_.target;
  if (t.find('#') != std::string_view::npos) return refuse(400, "fragment in the request target");
  if (t.starts_with('/')) {
    head_.target_form = TargetForm::kOrigin;
    return {};
  }
  if (t == "*") {
    if (head_.method != "OPTIONS") {
      return refuse(400, "asterisk-form target on a method other than OPTIONS");
    }
    head_.target_form = TargetForm::kAsterisk;
    return {};
  }
  size_t sep = t.find("://");
  if (sep == std::string_view::npos) return refuse(400, "invalid request target");
  std::string_view scheme = t.substr(0, sep);
  if (!iequals(scheme, "http") && !iequals(scheme, "https")) {
    return refuse(400, "request target with a scheme other than http or https");
  }
  std::string_view rest = t.substr(sep + 3);
  size_t path = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, path);
  if (authority.empty() || !is_valid_authority(authority)) {
    return refuse(400, "invalid authority in the request target");
  }
  head_.target_form = TargetForm::kAbsolute;
  assign_lowercase(head_.host, authority);
  std::string_view origin = path == std::string_view::npos ? std::string_view() : rest.substr(path);
  head_.absolute_origin.clear();
  if (origin.empty() || origin.front() == '?') head_.absolute_origin.push_back('/');
  head_.absolute_origin.append(origin);
  return {};
}

HttpError RequestParserImpl::complete_head(llhttp_t& p) {
  RequestHead& h = head_;
  // The scanner admitted only HTTP/1.0 and HTTP/1.1; llhttp's reading must agree.
  if (p.http_major != 1 || p.http_minor > 1) return refuse(505, "HTTP version not supported");
  h.version = p.http_minor == 0 ? HttpVersion::kHttp10 : HttpVersion::kHttp11;
  const bool http11 = h.version == HttpVersion::kHttp11;
  h.method = llhttp_method_name(static_cast<llhttp_method_t>(p.method));
  if (p.method == HTTP_CONNECT) return refuse(501, "CONNECT is not supported");
  if (p.method == HTTP_PRI) return refuse(505, "HTTP/2 connection preface");
  if (HttpError e = classify_target(); e.status != 0) return e;

  // One pass over the fields for everything that decides routing and framing.
  size_t host_count = 0;
  std::string_view host_value;
  bool has_upgrade = false;
  bool expect_100 = false;
  const FramingFields ff = scan_framing_fields(h.headers, [&](HeaderField f) {
    if (iequals(f.name, "Host")) {
      ++host_count;
      host_value = f.value;
    } else if (iequals(f.name, "Upgrade")) {
      has_upgrade = true;
    } else if (iequals(f.name, "Expect")) {
      expect_100 |= list_contains(f.value, "100-continue");
    }
  });

  // Host (RFC 9112 §3.2): exactly one on HTTP/1.1, valid, and overridden by an absolute-form
  // target's authority.
  if (host_count > 1) return refuse(400, "repeated Host");
  if (host_count == 0 && http11) return refuse(400, "missing Host");
  if (host_count == 1 && !is_valid_authority(host_value)) return refuse(400, "invalid Host");
  if (h.target_form != TargetForm::kAbsolute) assign_lowercase(h.host, host_value);

  // Framing (RFC 9112 §6.1-6.3). Anything ambiguous is refused, never guessed.
  if (ff.has_transfer_encoding) {
    if (!http11) return refuse(400, "Transfer-Encoding in an HTTP/1.0 request");
    if (ff.content_length_count > 0) return refuse(400, "Content-Length with Transfer-Encoding");
    if (ff.codings == 0) return refuse(400, "empty Transfer-Encoding");
    if (ff.chunked_not_last) {
      return refuse(400, "Transfer-Encoding: chunked is not the final coding");
    }
    if (ff.unknown_coding) return refuse(501, "unsupported transfer coding");
    h.framing = BodyFraming::chunked();
  } else if (ff.content_length_count > 1) {
    return refuse(400, "repeated Content-Length");
  } else if (ff.content_length_count == 1) {
    std::optional<uint64_t> n = parse_content_length(ff.content_length);
    if (!n) return refuse(400, "invalid Content-Length");
    h.framing = BodyFraming::content_length(*n);
  } else {
    h.framing = BodyFraming::none();
  }
  // llhttp delimits the body; it must have read the same framing from the same fields.
  const bool llhttp_chunked = (p.flags & F_CHUNKED) != 0;
  const bool llhttp_length = (p.flags & F_CONTENT_LENGTH) != 0;
  const bool agree =
      h.framing.kind == BodyFraming::Kind::kChunked
          ? llhttp_chunked && !llhttp_length
          : !llhttp_chunked &&
                llhttp_length == (h.framing.kind == BodyFraming::Kind::kContentLength) &&
                (!llhttp_length || p.content_length == h.framing.length);
  if (!agree) return refuse(400, "ambiguous message framing");

  h.keep_alive = !ff.close && (http11 || ff.keep_alive);
  h.upgrade = http11 && has_upgrade && ff.upgrade;
  h.expect_continue = http11 && expect_100;
  return {};
}

}  // namespace detail

HttpRequestParser::HttpRequestParser(HttpParserLimits limits)
    : impl_(std::make_unique<detail::RequestParserImpl>(limits)) {}
HttpRequestParser::~HttpRequestParser() = default;
HttpRequestParser::HttpRequestParser(HttpRequestParser&&) noexcept = default;
HttpRequestParser& HttpRequestParser::operator=(HttpRequestParser&&) noexcept = default;

HttpEvent HttpRequestParser::parse(std::span<const char> input) { return impl_->parse(input); }
HttpEvent HttpRequestParser::finish() { return impl_->finish(); }
bool HttpRequestParser::restart() { return impl_->restart(); }
const RequestHead& HttpRequestParser::head() const { return impl_->head_; }
const HeaderList& HttpRequestParser::trailers() const { return impl_->trailers(); }
const HttpError& HttpRequestParser::error() const { return impl_->error(); }

}  // namespace lbd::http
