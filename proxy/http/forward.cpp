#include "proxy/http/forward.hpp"

#include <array>
#include <charconv>

#include "proxy/http/syntax.hpp"

namespace lbd::http {


namespace {

constexpr std::string_view kCrlf = "\r\n";

// Dropped from every forwarded message whatever its Connection field lists (RFC 9110 §7.6.1;
// Proxy-Connection is the pre-standard spelling some clients still send).
constexpr std::string_view kHopByHopFields[] = {
    "Connection", "Keep-Alive", "Proxy-Connection", "TE", "Transfer-Encoding", "Upgrade",
};

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ").append(value).append(kCrlf);
}

void append_uint(std::string& out, uint64_t v) {
  char buf[20];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  (void)ec;  // 20 digits always fit a uint64_t
  out.append(buf, end);
}

bool is_removed(std::string_view name, const HeaderEdits& edits) {
  for (const std::string& r : edits.remove) {
    if (iequals(name, r)) return true;
  }
  return false;
}

void append_added(std::string& out, const HeaderEdits& edits) {
  for (const auto& [name, value] : edits.add) append_field(out, name, value);
}

// Writes `target` with the first matching rewrite applied.
void append_target(std::string& out, std::string_view target,
                   const std::vector<PathRewrite>& rewrites) {
  if (target == "*") {
    out.append(target);
    return;
  }
  for (const PathRewrite& r : rewrites) {
    if (!target.starts_with(r.from)) continue;
    std::string_view rest = target.substr(r.from.size());
    std::string_view first = r.to.empty() ? rest : std::string_view(r.to);
    if (first.empty() || first.front() != '/') out.push_back('/');
    out.append(r.to).append(rest);
    return;
  }
  out.append(target);
}

// is_hop_by_hop() for serializers that ask for every field of a message: `has_connection` says
// whether the message has a Connection field at all, which spares the scan in the usual case.
bool hop_by_hop(std::string_view name, const HeaderList& fields, bool has_connection) {
  for (std::string_view h : kHopByHopFields) {
    if (iequals(name, h)) return true;
  }
  // A client naming Host in Connection must not make the request lose it.
  if (!has_connection || iequals(name, "Host")) return false;
  for (HeaderField f : fields) {
    if (iequals(f.name, "Connection") && list_contains(f.value, name)) return true;
  }
  return false;
}

}  // namespace

bool is_hop_by_hop(std::string_view name, const HeaderList& fields) {
  return hop_by_hop(name, fields, true);
}

bool is_proxy_managed_field(std::string_view name) {
  for (std::string_view h : kHopByHopFields) {
    if (iequals(name, h)) return true;
  }
  return iequals(name, "Content-Length") || iequals(name, "Trailer");
}

void serialize_request_head(const RequestHead& req, const RequestForwardConfig& config,
                            const RequestForwardContext& ctx, std::string& out) {
  const bool upgrading = req.upgrade && config.allow_upgrade;
  const bool append_xff = config.x_forwarded_for && !ctx.client_ip.empty();
  const bool has_connection = req.headers.contains("Connection");
  auto forwarded = [&](std::string_view name) {
    return !hop_by_hop(name, req.headers, has_connection) && !is_removed(name, config.headers);
  };

  out.append(req.method).push_back(' ');
  append_target(out, req.origin_target(), config.path_rewrites);
  out.append(" HTTP/1.1\r\n");

  bool host_written = false;
  bool xff_written = false;
  for (HeaderField f : req.headers) {
    if (iequals(f.name, "Upgrade")) {
      if (upgrading) append_field(out, f.name, f.value);
      continue;
    }
    // Content-Length is rewritten from the framing below.
    if (iequals(f.name, "Content-Length") || !forwarded(f.name)) continue;
    if (iequals(f.name, "Host")) {
      // RFC 9112 §3.2.2: for an absolute-form target, Host is rebuilt from the target.
      append_field(out, f.name, req.target_form == TargetForm::kAbsolute ? req.host : f.value);
      host_written = true;
      continue;
    }
    if (append_xff && iequals(f.name, "X-Forwarded-For")) {
      if (xff_written) continue;
      // One field: every X-Forwarded-For line the client sent, in order, then the client.
      out.append(f.name).append(": ");
      for (HeaderField x : req.headers) {
        if (iequals(x.name, "X-Forwarded-For") && !x.value.empty()) {
          out.append(x.value).append(", ");
        }
      }
      out.append(ctx.client_ip).append(kCrlf);
      xff_written = true;
      continue;
    }
    if (config.x_forwarded_proto && iequals(f.name, "X-Forwarded-Proto")) continue;
    if (config.x_forwarded_host && iequals(f.name, "X-Forwarded-Host")) continue;
    if (!config.client_subject_header.empty() && iequals(f.name, config.client_subject_header)) continue;
    // An HTTP/1.0 client's expectation is ignored (RFC 9110 §10.1.1); passing it on would make
    // the server send a 100 that must not reach that client.
    if (req.version == HttpVersion::kHttp10 && iequals(f.name, "Expect")) continue;
    append_field(out, f.name, f.value);
  }
  // HTTP/1.1 requires Host; an HTTP/1.0 request may lack one, and then it is empty (§3.2).
  if (!host_written) append_field(out, "Host", req.host);

  switch (req.framing.kind) {
    case BodyFraming::Kind::kContentLength:
      out.append("Content-Length: ");
      append_uint(out, req.framing.length);
      out.append(kCrlf);
      break;
    case BodyFraming::Kind::kChunked:
    case BodyFraming::Kind::kUntilClose:  // not for requests; chunked is the safe reading
      out.append("Transfer-Encoding: chunked\r\n");
      break;
    case BodyFraming::Kind::kNone:
      break;
  }
  if (upgrading) out.append("Connection: upgrade\r\n");
  if (append_xff && !xff_written) append_field(out, "X-Forwarded-For", ctx.client_ip);
  if (config.x_forwarded_proto) append_field(out, "X-Forwarded-Proto", ctx.scheme);
  if (config.x_forwarded_host && !req.host.empty()) append_field(out, "X-Forwarded-Host", req.host);
  if (!config.client_subject_header.empty() && !ctx.client_subject.empty())
    append_field(out, config.client_subject_header, ctx.client_subject);
  append_added(out, config.headers);
  out.append(kCrlf);
}

ResponseForwardPlan serialize_response_head(const ResponseHead& resp,
                                            const ResponseForwardConfig& config,
                                            const ResponseForwardContext& ctx, std::string& out) {
  const bool switching = resp.is_switching_protocols();
  const bool interim = resp.is_interim();
  ResponseForwardPlan plan;
  if (!interim && !switching) {
    switch (resp.framing.kind) {
      case BodyFraming::Kind::kNone:
        break;
      case BodyFraming::Kind::kContentLength:
        plan.body = ResponseForwardPlan::Body::kContentLength;
        plan.length = resp.framing.length;
        break;
      case BodyFraming::Kind::kChunked:
      case BodyFraming::Kind::kUntilClose:
        plan.body = ctx.client_version == HttpVersion::kHttp11
                        ? ResponseForwardPlan::Body::kChunked
                        : ResponseForwardPlan::Body::kUntilClose;
        break;
    }
    plan.close = !ctx.keep_alive || plan.body == ResponseForwardPlan::Body::kUntilClose;
  }

  out.append("HTTP/1.1 ");
  append_uint(out, static_cast<uint64_t>(resp.status));
  out.push_back(' ');
  out.append(resp.reason).append(kCrlf);

  const bool has_connection = resp.headers.contains("Connection");
  for (HeaderField f : resp.headers) {
    if (iequals(f.name, "Upgrade")) {
      if (switching) append_field(out, f.name, f.value);
      continue;
    }
    if (hop_by_hop(f.name, resp.headers, has_connection) || is_removed(f.name, config.headers)) {
      continue;
    }
    // A body's length is rewritten below; a body-less response (HEAD, 304) keeps the server's
    // Content-Length, which describes the representation, not this message.
    if (iequals(f.name, "Content-Length") && resp.framing.kind != BodyFraming::Kind::kNone) {
      continue;
    }
    append_field(out, f.name, f.value);
  }
  switch (plan.body) {
    case ResponseForwardPlan::Body::kContentLength:
      out.append("Content-Length: ");
      append_uint(out, plan.length);
      out.append(kCrlf);
      break;
    case ResponseForwardPlan::Body::kChunked:
      out.append("Transfer-Encoding: chunked\r\n");
      break;
    default:
      break;
  }
  if (switching) {
    out.append("Connection: upgrade\r\n");
  } else if (!interim) {
    if (plan.close) {
      out.append("Connection: close\r\n");
    } else if (ctx.client_version == HttpVersion::kHttp10) {
      out.append("Connection: keep-alive\r\n");
    }
  }
  append_added(out, config.headers);
  out.append(kCrlf);
  return plan;
}

void serialize_interim_head(const ResponseHead& resp, std::string& out) {
  out.append("HTTP/1.1 ");
  append_uint(out, static_cast<uint64_t>(resp.status));
  out.push_back(' ');
  out.append(resp.reason).append(kCrlf);
  for (HeaderField f : resp.headers) append_field(out, f.name, f.value);
  out.append(kCrlf);
}

ChunkSizeLine::ChunkSizeLine(uint64_t size) {
  auto [end, ec] = std::to_chars(buf_, buf_ + 16, size, 16);
  (void)ec;  // 16 hex digits always fit a uint64_t
  *end++ = '\r';
  *end++ = '\n';
  len_ = static_cast<uint8_t>(end - buf_);
}

void append_chunk(std::string& out, std::span<const char> data) {
  if (data.empty()) return;
  out.append(ChunkSizeLine(data.size()).view());
  out.append(data.data(), data.size());
  out.append(kChunkDataEnd);
}

void append_last_chunk(std::string& out, const HeaderList* trailers) {
  out.append("0\r\n");
  if (trailers != nullptr) {
    for (HeaderField f : *trailers) append_field(out, f.name, f.value);
  }
  out.append(kCrlf);
}

std::string_view status_reason(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

namespace {

constexpr int kErrorStatuses[] = {400, 404, 408, 413, 414, 431, 500, 501, 502, 503, 504, 505};
constexpr size_t kErrorCount = std::size(kErrorStatuses);

// Built once, read by every worker: [status index][keep_alive].
struct ErrorResponses {
  std::array<std::array<std::string, 2>, kErrorCount> text;

  ErrorResponses() {
    for (size_t i = 0; i < kErrorCount; ++i) {
      for (int keep = 0; keep < 2; ++keep) {
        std::string body = std::to_string(kErrorStatuses[i]);
        body.append(" ").append(status_reason(kErrorStatuses[i])).append("\n");
        if (kErrorStatuses[i] == 404) body = "Not Found\n";  // the page lbd has always sent
        std::string& r = text[i][keep];
        r.append("HTTP/1.1 ").append(std::to_string(kErrorStatuses[i])).append(" ");
        r.append(status_reason(kErrorStatuses[i])).append(kCrlf);
        r.append("Content-Type: text/plain\r\n");
        r.append("Content-Length: ").append(std::to_string(body.size())).append(kCrlf);
        r.append(keep ? "Connection: keep-alive\r\n" : "Connection: close\r\n");
        r.append(kCrlf).append(body);
      }
    }
  }
};

}  // namespace

std::string_view make_error_response(int status, bool keep_alive) {
  static const ErrorResponses responses;
  static constexpr size_t kIndexOf500 = [] {
    for (size_t i = 0; i < kErrorCount; ++i) {
      if (kErrorStatuses[i] == 500) return i;
    }
    return size_t{0};
  }();
  size_t index = kIndexOf500;  // for a status without a page of its own
  for (size_t i = 0; i < kErrorCount; ++i) {
    if (kErrorStatuses[i] == status) index = i;
  }
  return responses.text[index][keep_alive ? 1 : 0];
}

}  // namespace lbd::http
