// The HTTP/1 session: parse a request strictly -> route -> take a pooled upstream connection or
// open one -> stream the request -> stream the response back -> pool the upstream connection
// only after a complete, clean exchange -> next request (keep-alive, pipelining).
//
// Memory per connection stays bounded: request and response bodies move one read at a time
// (a pooled read buffer in, a 16 KiB staging buffer out), whatever their length.

#include "proxy/l7/http_session.hpp"

#include <strings.h>

#include <cerrno>

#include "proxy/balancer/hash_key.hpp"
#include "proxy/core/log.hpp"
#include "proxy/core/worker_state.hpp"
#include "proxy/http/request_parser.hpp"
#include "proxy/http/response_parser.hpp"
#include "proxy/l7/access_log.hpp"
#include "proxy/tcp/tcp_session.hpp"
#include "runtime/timer.hpp"

namespace lbd::proxy {

namespace {

constexpr std::size_t kOutCapacity = 16 * 1024;
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

bool is_idempotent(std::string_view m) {
  return m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "TRACE" || m == "PUT" || m == "DELETE";
}

std::string_view not_found_response() {
  return "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n"
         "Connection: close\r\n\r\nNot Found\n";
}

/// Parsers are borrowed per exchange (response) or per request (request) from a per-worker
/// cache, so that a keep-alive connection idling between requests holds neither: with
/// thousands of idle clients that is most of their memory. Only a parser that ended cleanly,
/// between messages, goes back.
template <class Parser>
class ParserCache {
 public:
  static std::unique_ptr<Parser> take(const HttpParserLimits& limits) {
    auto& free = list();
    for (std::size_t i = free.size(); i-- > 0;) {
      if (free[i].limits.max_request_line == limits.max_request_line &&
          free[i].limits.max_header_bytes == limits.max_header_bytes) {
        auto p = std::move(free[i].parser);
        free[i] = std::move(free.back());
        free.pop_back();
        return p;
      }
    }
    return std::make_unique<Parser>(limits);
  }
  static void give(std::unique_ptr<Parser> p, const HttpParserLimits& limits) {
    auto& free = list();
    if (p && free.size() < kMaxCached) free.push_back({std::move(p), limits});
  }

 private:
  static constexpr std::size_t kMaxCached = 256;
  struct Entry {
    std::unique_ptr<Parser> parser;
    HttpParserLimits limits;
  };
  static std::vector<Entry>& list() {
    thread_local std::vector<Entry> free;
    return free;
  }
};

/// How reading a request head ended.
enum class HeadOutcome { kHead, kClosed, kRejected };

/// How one exchange ended.
struct ExchangeEnd {
  bool keep_client = false;  // the client connection can carry another request
};

/// How relaying a response ended.
enum class RelayOutcome {
  kDone,         // complete; the client connection may continue per `keep_client`
  kRetryable,    // the upstream failed before sending anything (stale keep-alive connection)
  kFailed,       // answered with an error status, or aborted; close the client
  kUpgraded,     // a tunnel ran and ended; close
};

class HttpSession {
 public:
  HttpSession(TcpStream* client, const SessionEnv* env, CancelSource* kill)
      : client_(*client),
        env_(*env),
        kill_(kill),
        limits_{env_.listener->limits.max_request_line, env_.listener->limits.max_header_bytes} {}
  ~HttpSession() {
    // Parsers of a connection that ends mid-message are dropped, not cached; one whose last
    // request closed the connection is restarted and kept (a connection per request would
    // otherwise build a parser every time).
    if (parser_ && (clean_boundary_ || parser_->restart()))
      ParserCache<HttpRequestParser>::give(std::move(parser_), limits_);
  }

  Task<void> run() {
    bool first = true;
    for (;;) {
      HeadOutcome h = co_await read_head(first);
      first = false;
      if (h != HeadOutcome::kHead) co_return;
      ++env_.stats->requests;
      ExchangeEnd end = co_await exchange();
      if (!end.keep_client) co_return;
    }
  }

 private:
  // --- client input --------------------------------------------------------------------------

  std::span<const char> client_rest() const { return {in_.data() + in_pos_, in_.size() - in_pos_}; }

  /// Reads the next chunk from the client (only when the current one is used up). false: EOF.
  Task<Result<bool>> read_client(Duration limit) {
    co_return take_input(co_await client_.read_pooled().with_timeout(limit));
  }

  /// Makes a completed client read the current chunk. false: EOF.
  Result<bool> take_input(Result<Buffer> r) {
    if (!r) return r.error();
    in_ = std::move(*r);
    in_pos_ = 0;
    return !in_.empty();
  }

  /// Waits for and parses the next request head. Timeouts: the first request has
  /// timeouts.header from the connection's start; a keep-alive connection may idle for
  /// timeouts.idle, and once a request's first byte arrived its head must be complete within
  /// timeouts.header (a total deadline, not a gap between reads).
  Task<HeadOutcome> read_head(bool first) {
    const auto& t = env_.listener->timeouts;
    bool got_bytes = !client_rest().empty();
    have_head_ = false;
    auto now = Clock::now();
    Clock::time_point deadline = now + t.header;
    request_start_ = now;
    for (;;) {
      if (client_rest().empty()) {
        in_ = Buffer();  // an idle connection holds no read buffer
        if (!got_bytes && parser_) ParserCache<HttpRequestParser>::give(std::move(parser_), limits_);
        if (!got_bytes && !first && *env_.draining) co_return HeadOutcome::kClosed;
        // One read, awaited here rather than in a helper coroutine: an idle keep-alive
        // connection waits in this frame, and every frame level costs memory per connection.
        const bool idle = !got_bytes && !first;
        const Duration limit = idle ? t.idle : deadline - Clock::now();
        Result<bool> r = errno_error(ETIMEDOUT);
        if (limit > Duration::zero()) {
          // Draining wakes a connection idling between requests, not one inside a request.
          CancelRegion drain(idle ? env_.idle_close : nullptr);  // no frame while idle
          r = take_input(co_await client_.read_pooled().with_timeout(limit));
        }
        if (!r) {
          if (r.error().is(ETIMEDOUT) && got_bytes) {
            co_await reject(408, "request head not complete within timeouts.header");
            co_return HeadOutcome::kRejected;
          }
          co_return HeadOutcome::kClosed;  // idle keep-alive expiry, reset, drain
        }
        if (!*r) {
          if (!parser_) co_return HeadOutcome::kClosed;  // closed between requests
          HttpEvent ev = parser_->finish();
          if (ev.kind == HttpEvent::kError && got_bytes) {
            co_await reject(parser_->error().status, std::string(parser_->error().reason));
            co_return HeadOutcome::kRejected;
          }
          co_return HeadOutcome::kClosed;
        }
        if (!got_bytes) {
          got_bytes = true;
          request_start_ = Clock::now();
          if (!first) deadline = request_start_ + t.header;
        }
      }
      if (!parser_) parser_ = ParserCache<HttpRequestParser>::take(limits_);
      clean_boundary_ = false;
      HttpEvent ev = parser_->parse(client_rest());
      in_pos_ += ev.consumed;
      switch (ev.kind) {
        case HttpEvent::kNeedMore:
          continue;
        case HttpEvent::kHeadComplete:
          co_return HeadOutcome::kHead;
        case HttpEvent::kError:
          co_await reject(parser_->error().status, std::string(parser_->error().reason));
          co_return HeadOutcome::kRejected;
        default:
          co_return HeadOutcome::kClosed;  // not reachable before a head
      }
    }
  }

  // --- client output -------------------------------------------------------------------------

  void ensure_out() {
    if (out_.capacity() == 0) out_ = Buffer(kOutCapacity);
  }

  /// Appends to the staging buffer, writing it to `to` whenever it fills.
  Task<Result<void>> append_out(StreamSocket* to, std::span<const char> data, Duration limit) {
    ensure_out();
    while (!data.empty()) {
      std::size_t n = out_.append(std::string_view(data.data(), data.size()));
      data = data.subspan(n);
      if (!data.empty()) {
        auto r = co_await flush_out(to, limit);
        if (!r) co_return r;
      }
    }
    co_return Result<void>{};
  }

  /// Writes all of the staging buffer within `limit` (a total deadline). The sends are awaited
  /// here, each with the time left as its own deadline, rather than through write_all() under
  /// timeout(): that costs two coroutine frames and a cancel scope on every flush.
  Task<Result<void>> flush_out(StreamSocket* to, Duration limit) {
    if (out_.empty()) co_return Result<void>{};
    if (to == &client_) client_written_ = true;
    const auto deadline = Clock::now() + limit;
    Result<void> result;
    for (std::size_t done = 0; done < out_.size();) {
      const auto left = deadline - Clock::now();
      if (left <= Duration::zero()) {
        result = errno_error(ETIMEDOUT);
        break;
      }
      auto [sent, back] = co_await to->write(std::move(out_), done).with_timeout(left);
      out_ = std::move(back);
      if (!sent) {
        result = sent.error();
        break;
      }
      if (*sent == 0) {
        result = errno_error(EPIPE);
        break;
      }
      done += *sent;
    }
    out_.clear();
    co_return result;
  }

  /// Answers the client with a proxy-generated error and ends the connection.
  Task<void> reject(int status, std::string reason) {
    ++env_.stats->http_errors;
    log_warn("listener {}: client {}: {} {}: {}", env_.listener->name, env_.peer.to_string(), status,
             status == 404 ? "Not Found" : status_reason(status), reason);
    std::string_view body = status == 404 ? not_found_response() : make_error_response(status, false);
    out_ = Buffer::copy_of(body);
    (void)co_await flush_out(&client_, env_.listener->timeouts.idle);
    access(status, cause_of(status), 0);
  }

  /// The access log's termination cause for a status lbd answered itself.
  static std::string_view cause_of(int status) {
    switch (status) {
      case 404: return "no_route";
      case 408: return "client_timeout";
      case 413: return "body_too_large";
      case 502: return "upstream_error";
      case 503: return "no_upstream";
      case 504: return "upstream_timeout";
      default: return status >= 500 ? "refused" : "bad_request";
    }
  }

  void access(int status, std::string_view cause, uint64_t bytes) {
    if (!access_log_enabled()) return;  // building a record costs header lookups and formatting
    AccessRecord r;
    r.listener = env_.listener->name;
    r.client = &env_.peer;
    r.status = status;
    r.bytes_sent = bytes;
    r.cause = cause;
    r.request_time = Clock::now() - request_start_;
    if (have_head_ && parser_) {
      const RequestHead& req = parser_->head();
      r.method = req.method;
      r.target = req.target;
      r.version = to_string(req.version);
      r.host = req.host;
      r.referer = req.headers.get("referer").value_or("");
      r.user_agent = req.headers.get("user-agent").value_or("");
    }
    if (upstream_addr_) {
      r.upstream = upstream_addr_->to_string();
      r.upstream_time = Clock::now() - upstream_start_;
    }
    log_access(r);
  }

  // --- one exchange --------------------------------------------------------------------------

  Task<ExchangeEnd> exchange() {
    have_head_ = true;
    upstream_addr_ = nullptr;
    client_written_ = false;
    sent_continue_ = false;
    const RequestHead& req = parser_->head();
    const HttpRoute* route = env_.state->router(env_.listener->name)->route(req);
    if (!route) {
      co_await reject(404, "no route matches");
      co_return ExchangeEnd{};
    }
    const auto& limits = env_.listener->limits;
    if (limits.max_body_size && req.framing.kind == BodyFraming::Kind::kContentLength &&
        req.framing.length > limits.max_body_size) {
      co_await reject(413, "request body larger than limits.max_body_size");
      co_return ExchangeEnd{};
    }
    Cluster* cluster = env_.state->cluster(route->cluster);
    PickContext pick = cluster->pick_context(env_.peer);
    if (cluster->config().balance == config::Balance::kHash &&
        cluster->config().hash_key.kind == config::HashKeyKind::kHeader) {
      auto v = req.headers.get(cluster->config().hash_key.header_name);
      pick.hash_key = v ? std::optional<uint64_t>(hash_bytes(*v)) : std::nullopt;
    }

    const bool has_body = req.framing.has_body();
    bool retried = false;
    bool message_done = false;
    for (;;) {
      upstream_start_ = Clock::now();
      auto got = co_await cluster->connect(pick, env_.stats, /*use_pool=*/true);
      if (auto* err = std::get_if<ConnectError>(&got)) {
        int status = err->cause == ConnectFailure::kTimeout                                    ? 504
                     : err->cause == ConnectFailure::kNoEndpoint || err->cause == ConnectFailure::kOverLimit ? 503
                                                                                                           : 502;
        co_await reject(status, err->detail);
        co_return ExchangeEnd{};
      }
      Upstream up = std::move(std::get<Upstream>(got));
      upstream_addr_ = &cluster->address(up.endpoint);

      // The request head.
      head_out_.clear();
      if (client_ip_.empty()) client_ip_ = env_.peer.host_string();  // once per connection
      RequestForwardContext fwd{client_ip_, "http"};
      serialize_request_head(req, route->request, fwd, head_out_);
      out_ = Buffer();
      auto w = co_await append_out(&up.stream, head_out_, cluster->config().timeouts.write);
      if (w && !has_body) w = co_await flush_out(&up.stream, cluster->config().timeouts.write);
      if (!w) {
        if (up.reused && !retried && !has_body && is_idempotent(req.method)) {
          retried = true;  // the pooled connection had gone stale: one fresh attempt
          continue;
        }
        co_await reject(502, "writing the request to " + upstream_addr_->to_string() + ": " + w.error().message());
        co_return ExchangeEnd{};
      }

      // The request body, or the end of a message without one.
      if (has_body) {
        if (req.expect_continue && !sent_continue_) {
          // Answer the client's Expect ourselves, as nginx does, so it sends the body now; a
          // 100 the backend sends later is then not passed on twice. The staging buffer holds
          // the upstream's head: send that first, then the 100 straight to the client.
          auto f = co_await flush_out(&up.stream, cluster->config().timeouts.write);
          if (!f) {
            co_await reject(502, "writing the request to " + upstream_addr_->to_string() + ": " + f.error().message());
            co_return ExchangeEnd{};
          }
          auto c = co_await timeout(client_.write_all(Buffer::copy_of(kContinue)), env_.listener->timeouts.idle);
          if (!c.result) co_return ExchangeEnd{};
          sent_continue_ = true;
        }
        auto b = co_await forward_request_body(&up, cluster, req);
        if (!b.ok) co_return ExchangeEnd{};
      } else if (!message_done) {
        HttpEvent ev = parser_->parse(client_rest());
        in_pos_ += ev.consumed;
        if (ev.kind != HttpEvent::kMessageComplete) {
          co_await reject(400, "request without body did not complete");
          co_return ExchangeEnd{};
        }
        message_done = true;  // a retry on a fresh connection must not parse it again
      }

      bool keep_client = req.keep_alive && !*env_.draining;
      RelayOutcome outcome = co_await relay_response(&up, cluster, route, req, keep_client);
      if (outcome == RelayOutcome::kRetryable) {
        if (up.reused && !retried && !has_body && is_idempotent(req.method)) {
          retried = true;
          continue;
        }
        co_await reject(502, "upstream " + upstream_addr_->to_string() + " closed the connection before responding");
        co_return ExchangeEnd{};
      }
      if (outcome != RelayOutcome::kDone) co_return ExchangeEnd{};
      if (upstream_reusable_) {
        cluster->release_to_pool(std::move(up));
        ParserCache<HttpResponseParser>::give(std::move(resp_parser_), HttpParserLimits{});
      }
      resp_parser_.reset();
      clean_boundary_ = keep_client && !response_close_;  // a "close" request leaves llhttp refusing more
      // Between requests a keep-alive connection holds no staging memory.
      out_ = Buffer();
      head_out_.clear();
      head_out_.shrink_to_fit();
      co_return ExchangeEnd{keep_client && !response_close_};
    }
  }

  struct BodyResult {
    bool ok = false;
  };

  /// Streams the request body to the upstream, re-framed (chunked stays chunked, a length
  /// stays a length). On failure the client has been answered (or is gone) and both
  /// connections must close.
  Task<BodyResult> forward_request_body(Upstream* up, Cluster* cluster, const RequestHead& req) {
    const bool chunked = req.framing.kind == BodyFraming::Kind::kChunked;
    const Duration write_limit = cluster->config().timeouts.write;
    const uint64_t max_body = env_.listener->limits.max_body_size;
    uint64_t total = 0;
    for (;;) {
      HttpEvent ev = parser_->parse(client_rest());
      in_pos_ += ev.consumed;
      switch (ev.kind) {
        case HttpEvent::kBodyData: {
          total += ev.data.size();
          if (max_body && total > max_body) {
            co_await reject(413, "request body larger than limits.max_body_size");
            co_return BodyResult{};
          }
          Result<void> w;
          if (chunked) {
            ChunkSizeLine line(ev.data.size());
            w = co_await append_out(&up->stream, line.view(), write_limit);
            if (w) w = co_await append_out(&up->stream, ev.data, write_limit);
            if (w) w = co_await append_out(&up->stream, kChunkDataEnd, write_limit);
          } else {
            w = co_await append_out(&up->stream, ev.data, write_limit);
          }
          if (!w) {
            co_await reject(502, "sending the request body to " + upstream_addr_->to_string() + ": " + w.error().message());
            co_return BodyResult{};
          }
          break;
        }
        case HttpEvent::kMessageComplete: {
          if (chunked) {
            head_out_.clear();
            append_last_chunk(head_out_, &parser_->trailers());
            auto w = co_await append_out(&up->stream, head_out_, write_limit);
            if (!w) {
              co_await reject(502, "sending the request body: " + w.error().message());
              co_return BodyResult{};
            }
          }
          auto w = co_await flush_out(&up->stream, write_limit);
          if (!w) {
            co_await reject(502, "sending the request body: " + w.error().message());
            co_return BodyResult{};
          }
          co_return BodyResult{true};
        }
        case HttpEvent::kNeedMore: {
          auto f = co_await flush_out(&up->stream, write_limit);
          if (!f) {
            co_await reject(502, "sending the request body: " + f.error().message());
            co_return BodyResult{};
          }
          auto r = co_await read_client(env_.listener->timeouts.request_body);
          if (!r) {
            if (r.error().is(ETIMEDOUT)) {
              co_await reject(408, "request body stalled longer than timeouts.request_body");
            } else {
              log_info("listener {}: client {}: gone during the request body: {}", env_.listener->name,
                       env_.peer.to_string(), r.error().message());
              access(499, "client_closed", 0);
            }
            co_return BodyResult{};
          }
          if (!*r) {
            log_info("listener {}: client {}: closed during the request body", env_.listener->name,
                     env_.peer.to_string());
            access(499, "client_closed", 0);
            co_return BodyResult{};
          }
          break;
        }
        case HttpEvent::kError:
          co_await reject(parser_->error().status, std::string(parser_->error().reason));
          co_return BodyResult{};
        default:
          co_return BodyResult{};
      }
    }
  }

  /// Streams the upstream's response to the client. Decides whether the upstream connection
  /// can be pooled (upstream_reusable_) and whether the client connection must close
  /// (response_close_).
  Task<RelayOutcome> relay_response(Upstream* up, Cluster* cluster, const HttpRoute* route, const RequestHead& req,
                                    bool keep_client) {
    upstream_reusable_ = false;
    response_close_ = false;
    if (!resp_parser_) resp_parser_ = ParserCache<HttpResponseParser>::take(HttpParserLimits{});
    resp_parser_->expect_response(req.method, req.upgrade);
    const Duration read_limit = cluster->config().timeouts.read;
    const Duration client_limit = env_.listener->timeouts.idle;
    Buffer uin;
    std::size_t upos = 0;
    bool got_any = false;
    bool need_input = true;  // the parser asked for more bytes (it may complete on none)
    bool interim = false;
    int status = 0;
    uint64_t bytes = 0;
    ResponseForwardPlan plan;
    ensure_out();

    auto fail = [&](int code, std::string what) -> std::pair<int, std::string> { return {code, std::move(what)}; };
    std::pair<int, std::string> failure;

    for (;;) {
      if (upos == uin.size() && need_input) {
        auto f = co_await flush_out(&client_, client_limit);
        if (!f) {
          access(status, "client_closed", bytes);
          co_return RelayOutcome::kFailed;
        }
        auto r = co_await up->stream.read_pooled().with_timeout(read_limit);
        if (!r) {
          if (!got_any && !r.error().is(ETIMEDOUT) && !r.error().is(ECANCELED)) co_return RelayOutcome::kRetryable;
          failure = fail(r.error().is(ETIMEDOUT) ? 504 : 502,
                         "reading the response from " + upstream_addr_->to_string() + ": " +
                             (r.error().is(ETIMEDOUT) ? "timed out (timeouts.read)" : r.error().message()));
          break;
        }
        if (r->empty()) {
          HttpEvent ev = resp_parser_->finish();
          if (ev.kind == HttpEvent::kMessageComplete) {
            if (plan.body == ResponseForwardPlan::Body::kChunked) {
              head_out_.clear();
              append_last_chunk(head_out_);
              (void)co_await append_out(&client_, head_out_, client_limit);
            }
            auto f2 = co_await flush_out(&client_, client_limit);
            access(status, f2 ? "ok" : "client_closed", bytes);
            response_close_ = true;  // a close-delimited body ends the client connection too
            co_return f2 ? RelayOutcome::kDone : RelayOutcome::kFailed;
          }
          if (!got_any) co_return RelayOutcome::kRetryable;
          failure = fail(502, "upstream " + upstream_addr_->to_string() + " closed the connection mid-response");
          break;
        }
        uin = std::move(*r);
        upos = 0;
        got_any = true;
        need_input = false;
        continue;
      }
      HttpEvent ev = resp_parser_->parse(std::span<const char>(uin.data() + upos, uin.size() - upos));
      upos += ev.consumed;
      need_input = ev.kind == HttpEvent::kNeedMore;
      if (need_input) continue;
      if (ev.kind == HttpEvent::kError) {
        failure = fail(502, "malformed response from " + upstream_addr_->to_string() + ": " +
                                std::string(resp_parser_->error().reason));
        break;
      }
      if (ev.kind == HttpEvent::kHeadComplete) {
        const ResponseHead& head = resp_parser_->head();
        interim = head.is_interim();
        if (interim) {
          if (head.status == 100 && sent_continue_) continue;
          head_out_.clear();
          head_out_.append("HTTP/1.1 ").append(std::to_string(head.status)).append(" ").append(head.reason).append("\r\n");
          for (HeaderField f : head.headers) head_out_.append(f.name).append(": ").append(f.value).append("\r\n");
          head_out_.append("\r\n");
          (void)co_await append_out(&client_, head_out_, client_limit);
          continue;
        }
        status = head.status;
        head_out_.clear();
        ResponseForwardContext ctx{req.version, keep_client};
        plan = serialize_response_head(head, route->response, ctx, head_out_);
        response_close_ = plan.close;
        auto w = co_await append_out(&client_, head_out_, client_limit);
        if (!w) {
          access(status, "client_closed", bytes);
          co_return RelayOutcome::kFailed;
        }
        continue;
      }
      if (ev.kind == HttpEvent::kBodyData) {
        bytes += ev.data.size();
        Result<void> w;
        if (plan.body == ResponseForwardPlan::Body::kChunked) {
          ChunkSizeLine line(ev.data.size());
          w = co_await append_out(&client_, line.view(), client_limit);
          if (w) w = co_await append_out(&client_, ev.data, client_limit);
          if (w) w = co_await append_out(&client_, kChunkDataEnd, client_limit);
        } else {
          w = co_await append_out(&client_, ev.data, client_limit);
        }
        if (!w) {
          access(status, "client_closed", bytes);
          co_return RelayOutcome::kFailed;
        }
        continue;
      }
      if (ev.kind == HttpEvent::kMessageComplete) {
        if (interim) continue;
        const ResponseHead& head = resp_parser_->head();
        if (plan.body == ResponseForwardPlan::Body::kChunked) {
          head_out_.clear();
          append_last_chunk(head_out_, &resp_parser_->trailers());
          (void)co_await append_out(&client_, head_out_, client_limit);
        }
        auto f = co_await flush_out(&client_, client_limit);
        if (!f) {
          access(status, "client_closed", bytes);
          co_return RelayOutcome::kFailed;
        }
        if (head.is_switching_protocols()) {
          access(status, "upgraded", bytes);
          co_await tunnel(up, std::span<const char>(uin.data() + upos, uin.size() - upos));
          co_return RelayOutcome::kUpgraded;
        }
        // Pool only after a complete, clean exchange with nothing unasked left over.
        upstream_reusable_ = head.keep_alive && upos == uin.size();
        access(status, "ok", bytes);
        co_return RelayOutcome::kDone;
      }
    }

    // The exchange failed. Before anything of the response reached the client, it gets a
    // status; after, it must not see a complete-looking message: close it mid-body.
    if (!client_written_) {
      out_.clear();
      co_await reject(failure.first, failure.second);
    } else {
      ++env_.stats->upstream_errors;
      log_warn("listener {}: client {}: aborting the response: {}", env_.listener->name, env_.peer.to_string(),
               failure.second);
      access(status, "upstream_aborted", bytes);
    }
    co_return RelayOutcome::kFailed;
  }

  /// After a 101: bytes flow both ways until both sides close (or idle).
  Task<void> tunnel(Upstream* up, std::span<const char> upstream_leftover) {
    const Duration idle = env_.listener->timeouts.idle;
    if (!upstream_leftover.empty()) {
      out_.clear();
      if (!co_await append_out(&client_, upstream_leftover, idle)) co_return;
      if (!co_await flush_out(&client_, idle)) co_return;
    }
    if (!client_rest().empty()) {
      out_.clear();
      if (!co_await append_out(&up->stream, client_rest(), idle)) co_return;
      if (!co_await flush_out(&up->stream, idle)) co_return;
      in_pos_ = in_.size();
    }
    out_ = Buffer();
    in_ = Buffer();
    PumpEnd client_end, upstream_end;
    co_await relay_both_ways(&client_, &up->stream, idle, idle, env_.stats, kill_, false, &client_end, &upstream_end);
  }

  TcpStream& client_;       // owned by the worker's session task
  const SessionEnv& env_;   // likewise
  CancelSource* kill_;      // the worker's kill switch (not owned)
  HttpParserLimits limits_;
  std::unique_ptr<HttpRequestParser> parser_;        // null while idle between requests
  std::unique_ptr<HttpResponseParser> resp_parser_;  // only during an exchange
  bool clean_boundary_ = true;  // parser_ sits between two messages
  Buffer in_;               // the client chunk being parsed
  std::size_t in_pos_ = 0;  // bytes of in_ the parser has taken
  Buffer out_;              // staging for writes (client or upstream)
  std::string head_out_;    // serialized heads, reused
  std::string client_ip_;   // the client's address as text, formatted on first use
  Clock::time_point request_start_;
  Clock::time_point upstream_start_;
  const SocketAddress* upstream_addr_ = nullptr;  // owned by the cluster config in env_.state
  bool have_head_ = false;
  bool client_written_ = false;  // some bytes of the current response reached the client
  bool sent_continue_ = false;
  bool upstream_reusable_ = false;
  bool response_close_ = false;
};

}  // namespace

Task<void> run_http_session(TcpStream* client, const SessionEnv* env, CancelSource* kill) {
  HttpSession session(client, env, kill);
  co_await session.run();
}

}  // namespace lbd::proxy
