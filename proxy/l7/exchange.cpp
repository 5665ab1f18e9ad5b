#include "proxy/l7/exchange.hpp"

#include <cerrno>
#include <chrono>
#include <memory>
#include <utility>

#include "proxy/core/log.hpp"
#include "proxy/http/forward.hpp"
#include "proxy/http/response_parser.hpp"
#include "proxy/l7/access_log.hpp"
#include "proxy/l7/parser_cache.hpp"

namespace lbd::proxy {

using namespace lbd::http;

namespace {

bool is_idempotent(std::string_view m) {
  return m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "TRACE" || m == "PUT" || m == "DELETE";
}

int status_for(const ConnectError& err) {
  switch (err.cause) {
    case ConnectFailure::kTimeout: return 504;
    case ConnectFailure::kNoEndpoint:
    case ConnectFailure::kOverLimit: return 503;
    default: return 502;
  }
}

void write_access(const SessionEnv& env, const RequestHead* head, Clock::time_point request_start,
                  const SocketAddress* upstream, Clock::time_point upstream_start, int status,
                  std::string_view cause, uint64_t bytes) {
  if (!access_log_enabled()) return;  // building a record costs header lookups and formatting
  AccessRecord r;
  r.listener = env.listener->name;
  r.client = &env.peer;
  r.status = status;
  r.bytes_sent = bytes;
  r.cause = cause;
  r.client_subject = env.client_subject;
  const auto now = Clock::now();
  r.request_time = now - request_start;
  if (head) {
    r.method = head->method;
    r.target = head->target;
    r.version = to_string(head->version);
    r.host = head->host;
    r.referer = head->headers.get("referer").value_or("");
    r.user_agent = head->headers.get("user-agent").value_or("");
  }
  if (upstream) {
    r.upstream = upstream->to_string();
    r.upstream_time = now - upstream_start;
  }
  log_access(r);
}

/// How relaying a response ended.
enum class Relayed {
  kDone,       // complete
  kRetryable,  // the upstream failed before sending anything (a stale keep-alive connection)
  kFailed,     // answered with an error status, or cut off
  kUpgraded,   // a 101 was relayed; the connection is a tunnel now
};

/// One exchange's state, made fresh for each request (run_exchange's frame holds it).
class Exchange {
 public:
  Exchange(Downstream* down, const ExchangeContext& ctx)
      : down_(*down), ctx_(ctx), env_(*ctx.env), req_(down->request()), stage_(*ctx.stage) {}

  Task<ExchangeResult> run();

 private:
  /// A failed attempt may go again on a fresh connection only when it failed on a pooled one
  /// (which the backend may have closed meanwhile), once, and for a request that can be sent
  /// twice: idempotent and without a body (whose bytes are gone).
  bool may_retry(const Upstream& up) const { return up.reused && may_retry_on_fresh(); }
  bool may_retry_on_fresh() const { return !retried_ && !req_.framing.has_body() && is_idempotent(req_.method); }
  /// Answers the client with a status of the proxy's own, counting and logging why.
  /// `cause`: the access log's, when not the status's usual one.
  Task<void> fail(int status, std::string reason, std::string_view cause = {});
  void access(int status, std::string_view cause, uint64_t bytes) {
    write_access(env_, &req_, ctx_.request_start, upstream_addr_, upstream_start_, status, cause, bytes);
  }
  /// Streams the request body to the upstream, re-framed (chunked stays chunked, a length
  /// stays a length). false: the client has been answered (or is gone); both sides close.
  Task<bool> forward_request_body(Upstream* up);
  /// Streams the upstream's response to the client. Decides upstream_reusable_.
  Task<Relayed> relay_response(Upstream* up);

  Downstream& down_;
  const ExchangeContext ctx_;
  const SessionEnv& env_;    // ctx_.env
  const RequestHead& req_;   // owned by the downstream
  OutputStage& stage_;       // ctx_.stage
  const HttpRoute* route_ = nullptr;   // in the snapshot
  Cluster* cluster_ = nullptr;         // route_->cluster
  const SocketAddress* upstream_addr_ = nullptr;  // owned by the cluster's config
  Clock::time_point upstream_start_;
  std::unique_ptr<HttpResponseParser> resp_parser_;
  bool retried_ = false;
  bool sent_continue_ = false;
  bool upstream_reusable_ = false;  // the response ended cleanly with nothing unasked after it
  bool upstream_closed_ = false;    // the response was delimited by the upstream's close
  Buffer upgraded_input_;           // after a 101: what the upstream sent after its head
  std::size_t upgraded_input_pos_ = 0;
};

Task<void> Exchange::fail(int status, std::string reason, std::string_view cause) {
  note_refusal(env_, status, reason);
  co_await down_.send_error(status);
  access(status, cause.empty() ? refusal_cause(status) : cause, 0);
}

Task<ExchangeResult> Exchange::run() {
  route_ = ctx_.router->route(req_);
  if (!route_) {
    co_await fail(404, "no route matches");
    co_return ExchangeResult{};
  }
  const auto& limits = env_.listener->limits;
  if (limits.max_body_size && req_.framing.kind == BodyFraming::Kind::kContentLength &&
      req_.framing.length > limits.max_body_size) {
    co_await fail(413, "request body larger than limits.max_body_size");
    co_return ExchangeResult{};
  }
  cluster_ = route_->cluster;
  const balancer::PickContext pick = cluster_->pick_context(env_.peer, &req_.headers);
  const bool has_body = req_.framing.has_body();
  const Duration write_limit = cluster_->config().timeouts.write;
  for (;;) {
    upstream_start_ = Clock::now();
    // A pooled connection the backend has just closed costs a request that can go again
    // nothing but a retry; one that cannot must not be sent on it.
    const PoolUse pool = may_retry_on_fresh() ? PoolUse::kUnlessFired : PoolUse::kChecked;
    auto got = co_await cluster_->connect(pick, env_.stats, pool);
    if (auto* err = std::get_if<ConnectError>(&got)) {
      if (err->cause == ConnectFailure::kNoEndpoint) ++env_.stats->no_upstream;
      co_await fail(status_for(*err), err->detail, err->cause == ConnectFailure::kTls ? "upstream_tls" : "");
      co_return ExchangeResult{};
    }
    Upstream up = std::move(std::get<Upstream>(got));
    upstream_addr_ = &cluster_->address(up.endpoint);

    // The request head.
    stage_.clear();
    std::string& head = stage_.scratch();
    serialize_request_head(req_, route_->request, RequestForwardContext{ctx_.client_ip, ctx_.scheme, ctx_.client_subject}, head);
    auto w = co_await stage_.append(up.io(), head, write_limit);
    if (w && !has_body) w = co_await stage_.flush(up.io(), write_limit);
    if (!w) {
      if (may_retry(up)) {
        retried_ = true;  // the pooled connection had gone stale: one fresh attempt
        continue;
      }
      co_await fail(502, "writing the request to " + upstream_addr_->to_string() + ": " + w.error().message());
      co_return ExchangeResult{};
    }

    // The request body, or the end of a message without one.
    if (has_body) {
      if (req_.expect_continue && !sent_continue_) {
        // Answer the client's Expect ourselves, as nginx does, so it sends the body now; a 100
        // the backend sends later is then not passed on twice. The stage holds the upstream's
        // head: send that first, then the 100 to the client.
        auto f = co_await stage_.flush(up.io(), write_limit);
        if (!f) {
          co_await fail(502, "writing the request to " + upstream_addr_->to_string() + ": " + f.error().message());
          co_return ExchangeResult{};
        }
        if (!co_await down_.send_continue()) co_return ExchangeResult{};
        sent_continue_ = true;
      }
      if (!co_await forward_request_body(&up)) co_return ExchangeResult{};
    } else if (down_.next_body_piece().kind != Downstream::BodyPiece::Kind::kEnd) {
      co_await fail(400, "request without body did not complete");
      co_return ExchangeResult{};
    }

    Relayed outcome = co_await relay_response(&up);
    switch (outcome) {
      case Relayed::kRetryable:
        if (may_retry(up)) {
          retried_ = true;
          continue;
        }
        cluster_->record_failure(up.endpoint, "closed the connection before responding");
        co_await fail(502, "upstream " + upstream_addr_->to_string() + " closed the connection before responding");
        co_return ExchangeResult{};
      case Relayed::kFailed:
        co_return ExchangeResult{};
      case Relayed::kUpgraded: {
        ExchangeResult r{ExchangeResult::End::kUpgraded};
        r.upgraded.emplace(std::move(up));
        r.upgraded_input = std::move(upgraded_input_);
        r.upgraded_input_pos = upgraded_input_pos_;
        co_return r;
      }
      case Relayed::kDone:
        break;
    }
    if (upstream_reusable_) {
      cluster_->release_to_pool(std::move(up));
      ParserCache<HttpResponseParser>::give(std::move(resp_parser_), HttpParserLimits{});
    }
    co_return ExchangeResult{ExchangeResult::End::kDone, upstream_closed_};
  }
}

Task<bool> Exchange::forward_request_body(Upstream* up) {
  const bool chunked = req_.framing.kind == BodyFraming::Kind::kChunked;
  const Duration write_limit = cluster_->config().timeouts.write;
  const uint64_t max_body = env_.listener->limits.max_body_size;
  uint64_t total = 0;
  for (;;) {
    Downstream::BodyPiece piece = down_.next_body_piece();
    switch (piece.kind) {
      case Downstream::BodyPiece::Kind::kData: {
        total += piece.data.size();
        if (max_body && total > max_body) {
          co_await fail(413, "request body larger than limits.max_body_size");
          co_return false;
        }
        Result<void> w;  // not `chunked ? co_await ... : co_await ...` (cmake/CheckCoAwait.cmake)
        if (chunked)
          w = co_await stage_.append_chunk(up->io(), piece.data, write_limit);
        else
          w = co_await stage_.append(up->io(), piece.data, write_limit);
        if (!w) {
          co_await fail(502, "sending the request body to " + upstream_addr_->to_string() + ": " + w.error().message());
          co_return false;
        }
        break;
      }
      case Downstream::BodyPiece::Kind::kEnd: {
        if (chunked) {
          std::string& last = stage_.scratch();
          append_last_chunk(last, piece.trailers);
          auto w = co_await stage_.append(up->io(), last, write_limit);
          if (!w) {
            co_await fail(502, "sending the request body: " + w.error().message());
            co_return false;
          }
        }
        auto w = co_await stage_.flush(up->io(), write_limit);
        if (!w) {
          co_await fail(502, "sending the request body: " + w.error().message());
          co_return false;
        }
        co_return true;
      }
      case Downstream::BodyPiece::Kind::kNeedMore: {
        auto f = co_await stage_.flush(up->io(), write_limit);
        if (!f) {
          co_await fail(502, "sending the request body: " + f.error().message());
          co_return false;
        }
        auto r = co_await down_.receive_body();
        if (!r) {
          if (r.error().is(ETIMEDOUT)) {
            co_await fail(408, "request body stalled longer than timeouts.request_body");
          } else {
            log_info("listener {}: client {}: gone during the request body: {}", env_.listener->name,
                     env_.peer.to_string(), r.error().message());
            access(499, "client_closed", 0);
          }
          co_return false;
        }
        if (!*r) {
          log_info("listener {}: client {}: closed during the request body", env_.listener->name,
                   env_.peer.to_string());
          access(499, "client_closed", 0);
          co_return false;
        }
        break;
      }
      case Downstream::BodyPiece::Kind::kMalformed:
        co_await fail(piece.status, std::string(piece.reason));
        co_return false;
    }
  }
}

Task<Relayed> Exchange::relay_response(Upstream* up) {
  upstream_reusable_ = false;
  if (!resp_parser_) resp_parser_ = ParserCache<HttpResponseParser>::take(HttpParserLimits{});
  resp_parser_->expect_response(req_.method, req_.upgrade);
  const Duration read_limit = cluster_->config().timeouts.read;
  Buffer uin;
  std::size_t upos = 0;
  bool got_any = false;
  bool need_input = true;  // the parser asked for more bytes (it may complete on none)
  bool interim = false;
  int status = 0;
  uint64_t bytes = 0;
  int failure_status = 0;
  std::string failure;

  for (;;) {
    if (upos == uin.size() && need_input) {
      if (!co_await down_.flush()) {
        access(status, "client_closed", bytes);
        co_return Relayed::kFailed;
      }
      auto r = co_await up->io().read(read_limit);
      if (!r) {
        if (!got_any && !r.error().is(ETIMEDOUT) && !r.error().is(ECANCELED)) co_return Relayed::kRetryable;
        const bool timed_out = r.error().is(ETIMEDOUT);
        failure_status = timed_out ? 504 : 502;
        failure = "reading the response from " + upstream_addr_->to_string() + ": " +
                  (timed_out ? "timed out (timeouts.read)" : r.error().message());
        break;
      }
      if (r->empty()) {
        HttpEvent ev = resp_parser_->finish();
        if (ev.kind == HttpEvent::kMessageComplete) {
          auto e = co_await down_.end_response(nullptr);
          access(status, e ? "ok" : "client_closed", bytes);
          upstream_closed_ = true;
          co_return e ? Relayed::kDone : Relayed::kFailed;
        }
        if (!got_any) co_return Relayed::kRetryable;
        failure_status = 502;
        failure = "upstream " + upstream_addr_->to_string() + " closed the connection mid-response";
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
      failure_status = 502;
      failure = "malformed response from " + upstream_addr_->to_string() + ": " +
                std::string(resp_parser_->error().reason);
      break;
    }
    if (ev.kind == HttpEvent::kHeadComplete) {
      const ResponseHead& head = resp_parser_->head();
      interim = head.is_interim();
      if (interim) {
        if (head.status == 100 && sent_continue_) continue;
        (void)co_await down_.send_interim(head);
        continue;
      }
      status = head.status;
      cluster_->record_response(up->endpoint, status,
                                std::chrono::duration<double>(Clock::now() - upstream_start_).count());
      if (!co_await down_.send_head(head, route_->response)) {
        access(status, "client_closed", bytes);
        co_return Relayed::kFailed;
      }
      continue;
    }
    if (ev.kind == HttpEvent::kBodyData) {
      bytes += ev.data.size();
      if (!co_await down_.send_body(ev.data)) {
        access(status, "client_closed", bytes);
        co_return Relayed::kFailed;
      }
      continue;
    }
    if (ev.kind == HttpEvent::kMessageComplete) {
      if (interim) continue;
      const ResponseHead& head = resp_parser_->head();
      if (!co_await down_.end_response(&resp_parser_->trailers())) {
        access(status, "client_closed", bytes);
        co_return Relayed::kFailed;
      }
      if (head.is_switching_protocols()) {
        access(status, "upgraded", bytes);
        upgraded_input_ = std::move(uin);
        upgraded_input_pos_ = upos;
        co_return Relayed::kUpgraded;
      }
      // Pool only after a complete, clean exchange with nothing unasked left over.
      upstream_reusable_ = head.keep_alive && upos == uin.size();
      access(status, "ok", bytes);
      co_return Relayed::kDone;
    }
  }

  // The exchange failed. Before anything of the response reached the client, it gets a status;
  // after, it must not see a complete-looking message: it is cut off mid-body.
  if (status == 0) cluster_->record_failure(up->endpoint, failure);  // no response head came
  if (!down_.response_started()) {
    co_await fail(failure_status, std::move(failure));
  } else {
    ++env_.stats->upstream_errors;
    log_warn("listener {}: client {}: aborting the response: {}", env_.listener->name, env_.peer.to_string(),
             failure);
    access(status, "upstream_aborted", bytes);
  }
  co_return Relayed::kFailed;
}

}  // namespace

Task<ExchangeResult> run_exchange(Downstream* down, ExchangeContext ctx) {
  Exchange exchange(down, ctx);
  co_return co_await exchange.run();
}

void note_refusal(const SessionEnv& env, int status, std::string_view reason) {
  ++env.stats->http_errors;
  env.stats->count_response(status);
  log_warn("listener {}: client {}: {} {}: {}", env.listener->name, env.peer.to_string(), status,
           status_reason(status), reason);
}

std::string_view refusal_cause(int status) {
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

void log_request(const SessionEnv& env, const RequestHead* head, Clock::time_point request_start, int status,
                 std::string_view cause, uint64_t bytes) {
  write_access(env, head, request_start, nullptr, {}, status, cause, bytes);
}

}  // namespace lbd::proxy
