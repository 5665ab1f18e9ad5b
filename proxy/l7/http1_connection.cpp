// The HTTP/1 connection: read a request head -> run its exchange (Http1Downstream is its client
// side) -> next request (keep-alive, pipelining), or a tunnel after a 101.
//
// Memory per connection stays bounded: bodies move one read at a time (a pooled read buffer
// in, the 16 KiB output stage out), whatever their length, and an idle keep-alive connection
// holds neither a parser nor a buffer.

#include "proxy/l7/http1_connection.hpp"


#include <cerrno>

#include "proxy/core/relay.hpp"
#include "proxy/http/forward.hpp"
#include "proxy/http/request_parser.hpp"
#include "proxy/l7/exchange.hpp"
#include "proxy/l7/output_stage.hpp"
#include "proxy/l7/parser_cache.hpp"
#include "runtime/cancel.hpp"
#include "runtime/timer.hpp"

namespace lbd::proxy {

using namespace lbd::http;

namespace {

constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
/// How long the drain's close of an idle connection waits for the client to close too.
constexpr Duration kDrainLinger = std::chrono::seconds(2);

/// How reading a request head ended.
enum class HeadOutcome { kHead, kClosed, kRejected };

class Http1Downstream;

class Http1Connection {
 public:
  Http1Connection(ByteStream client, const SessionEnv* env, const HttpRouter* router)
      : client_(client),
        env_(*env),
        router_(router),
        limits_{env_.listener->limits.max_request_line, env_.listener->limits.max_header_bytes} {}
  ~Http1Connection() {
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
      if (!co_await serve_request()) co_return;
    }
  }

 private:
  friend class Http1Downstream;

  std::span<const char> client_rest() const { return {in_.data() + in_pos_, in_.size() - in_pos_}; }

  /// Whether the client's socket holds bytes nobody has read yet (a peek; nothing is taken).
  /// Only for the drain's decision on an idle connection, so it costs a syscall only then.
  bool client_has_bytes() const { return client_.has_unread_input(); }

  /// Makes a completed client read the current chunk. false: EOF.
  Result<bool> take_input(Result<Buffer> r) {
    if (!r) return r.error();
    env_.stats->bytes_from_client += r->size();
    in_ = std::move(*r);
    in_pos_ = 0;
    return !in_.empty();
  }

  /// Waits for and parses the next request head. Timeouts: the first request has
  /// timeouts.header from the connection's start; a keep-alive connection may idle for
  /// timeouts.idle, and once a request's first byte arrived its head must be complete within
  /// timeouts.header (a total deadline, not a gap between reads).
  Task<HeadOutcome> read_head(bool first);
  /// Runs the exchange of the request whose head was just read. true: the connection may
  /// carry the next request.
  Task<bool> serve_request();
  /// After a 101: bytes flow both ways until both sides close (or idle).
  Task<void> tunnel(Upstream* up, std::span<const char> upstream_leftover);
  /// Answers a request the connection refuses before any exchange, and ends the connection.
  Task<void> reject(int status, std::string reason);
  Task<void> send_error_page(int status) {
    const std::string_view page = make_error_response(status, false);
    env_.stats->bytes_to_client += page.size();
    (void)co_await stage_.send(client_, page, env_.listener->timeouts.idle);
  }

  ByteStream client_;          // its socket (and TLS) owned by the worker's session task
  const SessionEnv& env_;      // likewise
  const HttpRouter* router_;   // in env_.snapshot
  HttpParserLimits limits_;
  std::unique_ptr<HttpRequestParser> parser_;  // null while idle between requests
  bool clean_boundary_ = true;  // parser_ sits between two messages
  Buffer in_;                   // the client chunk being parsed
  std::size_t in_pos_ = 0;      // bytes of in_ the parser has taken
  OutputStage stage_;           // the request upstream, then the response to the client
  std::string client_ip_;       // the client's address as text, formatted on first use
  Clock::time_point request_start_;
};

/// The client side of one exchange on an HTTP/1 connection: HTTP/1 framing of the response
/// (re-framed per serialize_response_head), keep-alive decided with it. Made fresh per request.
class Http1Downstream final : public Downstream {
 public:
  explicit Http1Downstream(Http1Connection* conn) : conn_(*conn), req_(conn->parser_->head()) {}

  /// The client connection may carry another request after this response (set by send_head).
  bool keep_alive() const { return keep_client_ && !plan_.close; }

  const RequestHead& request() const override { return req_; }

  BodyPiece next_body_piece() override {
    HttpRequestParser& parser = *conn_.parser_;
    if (request_done_) return {BodyPiece::Kind::kEnd, {}, &parser.trailers()};
    HttpEvent ev = parser.parse(conn_.client_rest());
    conn_.in_pos_ += ev.consumed;
    switch (ev.kind) {
      case HttpEvent::kBodyData:
        return {BodyPiece::Kind::kData, ev.data};
      case HttpEvent::kMessageComplete:
        request_done_ = true;
        return {BodyPiece::Kind::kEnd, {}, &parser.trailers()};
      case HttpEvent::kNeedMore:
        return {BodyPiece::Kind::kNeedMore};
      case HttpEvent::kError:
        return {BodyPiece::Kind::kMalformed, {}, nullptr, parser.error().status, parser.error().reason};
      default:  // kHeadComplete, kClosed: not after a head
        return {BodyPiece::Kind::kMalformed, {}, nullptr, 400, "unexpected end of the request"};
    }
  }

  Task<Result<bool>> receive_body() override {
    co_return conn_.take_input(
        co_await conn_.client_.read(conn_.env_.listener->timeouts.request_body));
  }

  Task<Result<void>> send_continue() override {
    auto c = co_await conn_.client_.write_all(Buffer::copy_of(kContinue), client_limit());
    co_return c.result;
  }

  // The senders below hand back the stage's own task (they are not coroutines themselves), so
  // a response costs no extra coroutine frame per call.
  Task<Result<void>> send_interim(const ResponseHead& head) override {
    std::string& text = conn_.stage_.scratch();
    serialize_interim_head(head, text);
    return conn_.stage_.append(conn_.client_, text, client_limit());
  }

  Task<Result<void>> send_head(const ResponseHead& head, const ResponseForwardConfig& edits) override {
    keep_client_ = req_.keep_alive && !conn_.env_.drain->started();
    std::string& text = conn_.stage_.scratch();
    plan_ = serialize_response_head(head, edits, ResponseForwardContext{req_.version, keep_client_}, text);
    conn_.env_.stats->count_response(head.status);
    conn_.env_.stats->bytes_to_client += text.size();
    return conn_.stage_.append(conn_.client_, text, client_limit());
  }

  Task<Result<void>> send_body(std::span<const char> data) override {
    conn_.env_.stats->bytes_to_client += data.size();
    if (plan_.body == ResponseForwardPlan::Body::kChunked)
      return conn_.stage_.append_chunk(conn_.client_, data, client_limit());
    return conn_.stage_.append(conn_.client_, data, client_limit());
  }

  Task<Result<void>> end_response(const HeaderList* trailers) override {
    if (plan_.body == ResponseForwardPlan::Body::kChunked) {
      std::string& text = conn_.stage_.scratch();
      append_last_chunk(text, trailers);
      (void)co_await conn_.stage_.append(conn_.client_, text, client_limit());  // the flush reports a failure
    }
    co_return co_await flush();
  }

  Task<Result<void>> flush() override {
    if (!conn_.stage_.empty()) response_started_ = true;
    return conn_.stage_.flush(conn_.client_, client_limit());
  }

  bool response_started() const override { return response_started_; }

  Task<void> send_error(int status) override { co_await conn_.send_error_page(status); }

 private:
  Duration client_limit() const { return conn_.env_.listener->timeouts.idle; }

  Http1Connection& conn_;
  const RequestHead& req_;   // in conn_.parser_
  ResponseForwardPlan plan_;  // how the response body goes to the client
  bool keep_client_ = false;
  bool request_done_ = false;      // the request's last byte was parsed
  bool response_started_ = false;  // some bytes of the response reached the client
};

Task<HeadOutcome> Http1Connection::read_head(bool first) {
  const auto& t = env_.listener->timeouts;
  bool got_bytes = !client_rest().empty();
  auto now = Clock::now();
  Clock::time_point deadline = now + t.header;
  request_start_ = now;
  for (;;) {
    if (client_rest().empty()) {
      in_ = Buffer();  // an idle connection holds no read buffer
      in_pos_ = 0;
      if (!got_bytes && parser_) ParserCache<HttpRequestParser>::give(std::move(parser_), limits_);
      const bool idle = !got_bytes && !first;
      // Draining closes a connection idling between requests, unless its next request is in the
      // socket already: the client sent it before it could know, and closing with it unread
      // would reset the connection and lose a request lbd had received. It is served (its
      // response says Connection: close). The close lingers, since a request can still arrive
      // between the peek and the close.
      if (idle && env_.drain->started() && !client_has_bytes()) {
        co_await client_.linger(kDrainLinger);
        co_return HeadOutcome::kClosed;
      }
      // One read, awaited here rather than in a helper coroutine: an idle keep-alive
      // connection waits in this frame, and every frame level costs memory per connection.
      const Duration limit = idle ? t.idle : deadline - Clock::now();
      // Draining wakes a connection idling between requests, not one inside a request.
      const bool wake_on_drain = idle && !env_.drain->started();
      Result<bool> r = errno_error(ETIMEDOUT);
      if (limit > Duration::zero()) {
        CancelRegion drain(wake_on_drain ? env_.drain->idle_wake() : nullptr);  // no frame while idle
        // TLS waits for the ciphertext here too, and decrypts it in the read after (given
        // timeouts.header from then if it was idle: the request has begun).
        Result<void> arrived = co_await client_.await_input(limit);
        const Duration rest = idle ? t.header : deadline - Clock::now();
        if (!arrived)
          r = arrived.error();
        else if (rest > Duration::zero())
          r = take_input(co_await client_.read(rest));
      }
      if (!r) {
        if (r.error().is(ETIMEDOUT) && got_bytes) {
          co_await reject(408, "request head not complete within timeouts.header");
          co_return HeadOutcome::kRejected;
        }
        // Woken by the drain (once: the next read is not tied to it): the check above decides.
        if (wake_on_drain && env_.drain->started() && r.error().is(ECANCELED)) continue;
        co_return HeadOutcome::kClosed;  // idle keep-alive expiry, reset
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

Task<void> Http1Connection::reject(int status, std::string reason) {
  note_refusal(env_, status, reason);
  co_await send_error_page(status);
  log_request(env_, nullptr, request_start_, status, refusal_cause(status), 0);
}

Task<bool> Http1Connection::serve_request() {
  if (client_ip_.empty()) client_ip_ = env_.peer.host_string();  // once per connection
  Http1Downstream down(this);
  ExchangeContext ctx{&env_, router_, &stage_, client_ip_, client_.tls() ? "https" : "http", env_.client_subject,
                      request_start_};
  ExchangeResult result = co_await run_exchange(&down, ctx);
  switch (result.end) {
    case ExchangeResult::End::kFailed:
      co_return false;
    case ExchangeResult::End::kUpgraded:
      co_await tunnel(&*result.upgraded, std::span<const char>(result.upgraded_input.data() + result.upgraded_input_pos,
                                                               result.upgraded_input.size() - result.upgraded_input_pos));
      co_return false;
    case ExchangeResult::End::kDone:
      break;
  }
  // A response delimited by the upstream's close ends the client connection too.
  const bool keep = down.keep_alive() && !result.upstream_closed;
  clean_boundary_ = keep;  // a "close" request leaves llhttp refusing more
  stage_.release();  // between requests a keep-alive connection holds no staging memory
  co_return keep;
}

Task<void> Http1Connection::tunnel(Upstream* up, std::span<const char> upstream_leftover) {
  const Duration idle = env_.listener->timeouts.idle;
  if (!upstream_leftover.empty()) {
    stage_.clear();
    if (!co_await stage_.append(client_, upstream_leftover, idle)) co_return;
    if (!co_await stage_.flush(client_, idle)) co_return;
  }
  if (!client_rest().empty()) {
    stage_.clear();
    if (!co_await stage_.append(up->io(), client_rest(), idle)) co_return;
    if (!co_await stage_.flush(up->io(), idle)) co_return;
    in_pos_ = in_.size();
  }
  stage_.release();
  in_ = Buffer();
  PumpEnd client_end, upstream_end;
  co_await relay_both_ways(client_, up->io(), idle, idle, env_.stats, env_.kill, config::Forwarding::kCopy,
                           &client_end, &upstream_end);
}

}  // namespace

Task<void> run_http1_session(ByteStream client, const SessionEnv* env, const HttpRouter* router) {
  Http1Connection connection(client, env, router);
  co_await connection.run();
}

}  // namespace lbd::proxy
