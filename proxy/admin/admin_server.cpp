// The admin listener's HTTP/1.1 server: one task per connection, which reads a request whole
// (head and body, both bounded), answers it from the AdminBackend, and goes on to the next one
// while the client keeps the connection alive.

#include "proxy/admin/admin_server.hpp"

#include <cerrno>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/admin/metrics.hpp"
#include "proxy/admin/stats_json.hpp"
#include "proxy/admin/status_page.hpp"
#include "proxy/core/log.hpp"
#include "proxy/http/forward.hpp"
#include "proxy/http/request_parser.hpp"
#include "proxy/http/syntax.hpp"
#include "runtime/event.hpp"
#include "runtime/spawn.hpp"
#include "runtime/timer.hpp"

namespace lbd::proxy {

namespace {

using http::HttpEvent;
using http::RequestHead;

constexpr std::string_view kTextPlain = "text/plain; charset=utf-8";
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

struct AdminResponse {
  int status = 200;
  std::string_view content_type = kTextPlain;
  std::string body;
  std::string extra_headers;  // whole lines, CRLF-terminated: Allow, WWW-Authenticate
  bool close = false;         // close the connection after this response
};

AdminResponse text(int status, std::string body, bool close = false) {
  AdminResponse r;
  r.status = status;
  r.body = std::move(body);
  r.close = close;
  return r;
}

std::string_view reason(int status) {
  switch (status) {
    case 302: return "Found";
    case 401: return "Unauthorized";
    case 405: return "Method Not Allowed";
    default: return http::status_reason(status);
  }
}

/// The whole response; the body is left out for HEAD, whose Content-Length still says what GET
/// would have sent (RFC 9110 §9.3.2).
std::string serialize(const AdminResponse& r, bool head_only, bool keep_alive) {
  std::string out;
  out.reserve(160 + r.extra_headers.size() + (head_only ? 0 : r.body.size()));
  out.append("HTTP/1.1 ").append(std::to_string(r.status)).append(" ").append(reason(r.status)).append("\r\n");
  out.append("Content-Type: ").append(r.content_type).append("\r\n");
  out.append("Content-Length: ").append(std::to_string(r.body.size())).append("\r\n");
  // Every answer is a snapshot of now: a cache in between must not serve an old one.
  out.append("Cache-Control: no-store\r\n");
  out.append(r.extra_headers);
  if (!keep_alive) out.append("Connection: close\r\n");
  out.append("\r\n");
  if (!head_only) out.append(r.body);
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// RFC 3986 percent-decoding of one path segment; nullopt for a malformed escape. '+' is a plain
/// character in a path.
std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    int hi = hex_value(s[i + 1]);
    int lo = hex_value(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

/// Compares a presented token with the configured one in time that depends only on the
/// configured one's length, so response times do not tell an attacker how much of a guess was
/// right.
bool same_token(std::string_view given, std::string_view expected) {
  unsigned diff = given.size() == expected.size() ? 0u : 1u;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const unsigned char g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
    diff |= g ^ static_cast<unsigned char>(expected[i]);
  }
  return diff == 0;
}

/// True when the request carries `Authorization: Bearer <token>` (the scheme is
/// case-insensitive, RFC 9110 §11.1).
bool authorized(const RequestHead& req, std::string_view token) {
  if (token.empty()) return true;
  constexpr std::string_view kScheme = "bearer ";
  std::optional<std::string_view> value = req.headers.get("Authorization");
  if (!value || req.headers.count("Authorization") != 1) return false;
  std::string_view v = http::trim_ows(*value);
  if (v.size() < kScheme.size() || !http::iequals(v.substr(0, kScheme.size()), kScheme)) return false;
  return same_token(http::trim_ows(v.substr(kScheme.size())), token);
}

AdminResponse method_not_allowed(std::string_view allow) {
  AdminResponse r = text(405, "Method Not Allowed\n");
  r.extra_headers.append("Allow: ").append(allow).append("\r\n");
  return r;
}

/// POST /clusters/NAME/endpoints/ADDRESS/ACTION, split; nullopt when `path` is not of that shape.
struct EndpointPath {
  std::string_view cluster;
  std::string_view address;
  EndpointAction action;
};
std::optional<EndpointPath> parse_endpoint_path(std::string_view path) {
  constexpr std::string_view kPrefix = "/clusters/";
  if (path.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  std::string_view rest = path.substr(kPrefix.size());
  std::string_view parts[4];
  for (std::size_t i = 0; i < 4; ++i) {
    std::size_t slash = rest.find('/');
    if ((slash == std::string_view::npos) != (i == 3)) return std::nullopt;  // exactly four segments
    parts[i] = rest.substr(0, slash);
    if (parts[i].empty()) return std::nullopt;
    rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
  }
  if (parts[1] != "endpoints") return std::nullopt;
  EndpointAction action;
  if (parts[3] == "drain") {
    action = EndpointAction::kDrain;
  } else if (parts[3] == "enable") {
    action = EndpointAction::kEnable;
  } else {
    return std::nullopt;
  }
  return EndpointPath{parts[0], parts[2], action};
}

/// The answer to one complete request. Reads only the backend.
Task<AdminResponse> answer(const RequestHead* req, AdminBackend* backend) {
  const std::string_view path = req->path();
  const bool get = req->method == "GET" || req->method == "HEAD";

  if (std::optional<EndpointPath> ep = parse_endpoint_path(path)) {
    if (req->method != "POST") co_return method_not_allowed("POST");
    if (!authorized(*req, backend->token())) {
      AdminResponse r = text(401, "Unauthorized: this admin listener needs Authorization: Bearer TOKEN\n");
      r.extra_headers = "WWW-Authenticate: Bearer realm=\"lbd admin\"\r\n";
      co_return r;
    }
    std::optional<std::string> cluster = percent_decode(ep->cluster);
    std::optional<std::string> address = percent_decode(ep->address);
    if (!cluster || !address) co_return text(400, "Bad Request: malformed percent-encoding in the path\n", true);
    const char* verb = ep->action == EndpointAction::kDrain ? "drain" : "enable";
    AdminAnswer a = co_await backend->set_endpoint(*cluster, *address, ep->action);
    log_info("admin: {} endpoint {} of cluster {}: {} {}", verb, *address, *cluster, a.status, a.message);
    co_return text(a.status, a.message + "\n");
  }

  enum class Route { kMetrics, kStats, kStatus, kHealthz, kReady, kRoot };
  Route route;
  if (path == "/metrics") {
    route = Route::kMetrics;
  } else if (path == "/stats") {
    route = Route::kStats;
  } else if (path == "/status") {
    route = Route::kStatus;
  } else if (path == "/healthz") {
    route = Route::kHealthz;
  } else if (path == "/ready") {
    route = Route::kReady;
  } else if (path == "/") {
    route = Route::kRoot;
  } else {
    co_return text(404, "Not Found\n");
  }
  if (!get) co_return method_not_allowed("GET, HEAD");

  AdminResponse r;
  switch (route) {
    case Route::kMetrics: {
      r.content_type = kPrometheusContentType;
      Report report = co_await backend->report();
      r.body = render_prometheus(report);
      break;
    }
    case Route::kStats: {
      r.content_type = "application/json";
      Report report = co_await backend->report();
      r.body = render_json(report);
      break;
    }
    case Route::kStatus:
      r.content_type = "text/html; charset=utf-8";
      r.body = std::string(status_page_html());
      break;
    case Route::kHealthz:
      r.body = "ok\n";
      break;
    case Route::kReady:
      if (backend->ready()) {
        r.body = "ready\n";
      } else {
        r = text(503, "not ready\n");
      }
      break;
    case Route::kRoot:
      // A browser pointed at the admin address lands on the page meant for it.
      r = text(302, "/status\n");
      r.extra_headers = "Location: /status\r\n";
      break;
  }
  co_return r;
}

/// One admin connection: requests one after the other (pipelined ones too, in order).
class AdminConnection {
 public:
  AdminConnection(StreamSocket* stream, AdminBackend* backend, const AdminServerOptions& opts)
      : stream_(*stream),
        backend_(backend),
        opts_(opts),
        parser_(http::HttpParserLimits{opts.max_head_bytes, opts.max_head_bytes}) {}

  Task<void> run() {
    for (;;) {
      // GCC 12 miscompiles some coroutines whose first co_await sits in a condition (the task's
      // body never runs): await into a local first, here and below.
      const bool more = co_await serve_one();
      if (!more) co_return;
    }
  }

 private:
  enum class Fill { kData, kEof, kTimeout, kFailed };

  std::string_view rest() const { return std::string_view(in_).substr(pos_); }

  /// Reads more bytes, waiting until `deadline` at most.
  Task<Fill> fill(Clock::time_point deadline) {
    const Duration limit = deadline - Clock::now();
    if (limit <= Duration::zero()) co_return Fill::kTimeout;
    Result<Buffer> r = co_await stream_.read_pooled(limit);
    if (!r) co_return r.error().is(ETIMEDOUT) ? Fill::kTimeout : Fill::kFailed;
    if (r->empty()) co_return Fill::kEof;
    in_.erase(0, pos_);  // the parser keeps partial tokens itself, so consumed bytes can go
    pos_ = 0;
    in_.append(r->view());
    co_return Fill::kData;
  }

  Task<void> send(AdminResponse r, bool head_only, bool keep_alive) {
    (void)co_await timeout(stream_.write_all(Buffer::copy_of(serialize(r, head_only, keep_alive))), opts_.read_timeout);
  }

  /// Answers a request refused before it was read whole; the connection then ends.
  Task<void> refuse(int status, std::string_view why) {
    log_debug("admin: refused a request with {}: {}", status, why);
    std::string body = std::to_string(status) + " " + std::string(reason(status)) + "\n";
    co_await send(text(status, std::move(body), true), false, false);
  }

  /// Reads one request whole and answers it. true: the connection carries on.
  Task<bool> serve_one() {
    // One deadline for the idle wait and the whole request: an admin client has no reason to
    // dribble, and this bounds what a stalled one holds.
    const Clock::time_point deadline = Clock::now() + opts_.read_timeout;
    bool started = !rest().empty();
    for (;;) {
      if (rest().empty()) {
        const Fill f = co_await fill(deadline);
        if (f == Fill::kTimeout && started) {
          co_await refuse(408, "request not complete within the read timeout");
          co_return false;
        }
        if (f == Fill::kEof && started && parser_.finish().kind == HttpEvent::kError) {
          co_await refuse(parser_.error().status, parser_.error().reason);
          co_return false;
        }
        if (f != Fill::kData) co_return false;
        started = true;
      }
      const HttpEvent ev = parser_.parse(rest());
      pos_ += ev.consumed;
      if (ev.kind == HttpEvent::kNeedMore) continue;
      if (ev.kind == HttpEvent::kHeadComplete) break;
      if (ev.kind == HttpEvent::kError) co_await refuse(parser_.error().status, parser_.error().reason);
      co_return false;  // kClosed is only finish()'s
    }

    const RequestHead& req = parser_.head();
    const http::BodyFraming framing = req.framing;
    if (framing.kind == http::BodyFraming::Kind::kContentLength && framing.length > opts_.max_body_bytes) {
      co_await refuse(413, "request body over the admin limit");
      co_return false;
    }
    if (req.expect_continue && framing.has_body()) {
      BufWriteResult c = co_await timeout(stream_.write_all(Buffer::copy_of(kContinue)), opts_.read_timeout);
      if (!c.result) co_return false;
    }
    // The body is read and dropped: no route takes one, but keep-alive needs it consumed.
    uint64_t body_bytes = 0;
    for (;;) {
      const HttpEvent ev = parser_.parse(rest());
      pos_ += ev.consumed;
      if (ev.kind == HttpEvent::kMessageComplete) break;
      if (ev.kind == HttpEvent::kError) {
        co_await refuse(parser_.error().status, parser_.error().reason);
        co_return false;
      }
      if (ev.kind == HttpEvent::kBodyData) {
        body_bytes += ev.data.size();
        if (body_bytes > opts_.max_body_bytes) {
          co_await refuse(413, "request body over the admin limit");
          co_return false;
        }
        continue;
      }
      const Fill f = co_await fill(deadline);
      if (f == Fill::kTimeout) {
        co_await refuse(408, "request body not complete within the read timeout");
        co_return false;
      }
      if (f != Fill::kData) co_return false;
    }

    AdminResponse r = co_await answer(&req, backend_);
    const bool keep = req.keep_alive && !r.close;
    const bool head_only = req.method == "HEAD";
    co_await send(std::move(r), head_only, keep);
    co_return keep;
  }

  StreamSocket& stream_;    // owned by admin_session's frame
  AdminBackend* backend_;   // not owned; outlives serve_admin
  const AdminServerOptions& opts_;  // in admin_session's frame
  http::HttpRequestParser parser_;
  std::string in_;          // bytes read; the parser has taken in_[0, pos_)
  std::size_t pos_ = 0;
};

/// serve_admin's count of its connections, so it returns only once the last one closed.
struct OpenSessions {
  unsigned count = 0;
  Event none;  // set while count == 0
};

Task<void> admin_session(StreamSocket stream, AdminBackend* backend, CancelSource* stop, AdminServerOptions opts,
                         OpenSessions* open) {
  {
    CancelLink link(stop);  // stop interrupts whatever this connection waits on
    AdminConnection conn(&stream, backend, opts);
    co_await conn.run();
  }
  stream.close();
  if (--open->count == 0) open->none.set();
}

}  // namespace

Task<void> serve_admin(StreamListener* listener, AdminBackend* backend, CancelSource* stop,
                       AdminServerOptions options) {
  OpenSessions open;
  open.none.set();
  // The sessions' own stop: fired when the accept loop ends, for `stop` or because this task
  // itself was cancelled, so they never outlive this frame, which they point into.
  CancelSource sessions_stop;
  {
    CancelRegion region(stop);
    for (;;) {
      Result<UniqueFd> fd = co_await listener->accept_fd();
      if (!fd) {
        if (stop->is_cancelled() || fd.error().is(ECANCELED)) break;
        // accept_fd already pauses on EMFILE and skips transient errors; what reaches here is
        // the listener itself failing, and retrying it at once would spin.
        log_error("admin listener: accept: {}", fd.error().message());
        Result<void> slept = co_await sleep_for(StreamListener::kAcceptPause);
        if (!slept) break;
        continue;
      }
      ++open.count;
      open.none.reset();
      (void)spawn(admin_session(StreamSocket(std::move(*fd)), backend, &sessions_stop, options, &open));
    }
  }
  sessions_stop.cancel();
  while (!open.none.is_set()) {
    // The wait fails at once when this task is cancelled; the sessions still need turns to end.
    Result<void> woken = co_await open.none.wait();
    if (!woken) co_await yield_now();
  }
}

}  // namespace lbd::proxy
