#pragma once
// The exchange: one HTTP request from routing to the end of its response, whatever protocol the
// client speaks — route -> pick an endpoint -> take a pooled upstream connection or open one ->
// forward the request (HTTP/1.1 upstream) -> relay the response -> retry a stale pooled
// connection once -> pool the upstream connection after a complete, clean exchange. The client
// side is a Downstream: the HTTP/1 connection implements it today, an HTTP/2 stream will.

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "proxy/core/cluster.hpp"
#include "proxy/core/session_env.hpp"
#include "proxy/http/header_list.hpp"
#include "proxy/http/message_head.hpp"
#include "proxy/l7/output_stage.hpp"
#include "proxy/l7/router.hpp"
#include "runtime/net.hpp"

namespace lbd::proxy {

/// The client side of one exchange. Calls come in this order: next_body_piece() (with
/// receive_body() whenever it says kNeedMore, and at most one send_continue()) until the
/// request body ends; then the response: send_interim()*, send_head(), send_body()*,
/// end_response(); or, while !response_started(), send_error() instead. flush() may come at any
/// time: the exchange calls it before it waits for the upstream.
class Downstream {
 public:
  /// The request; valid for the whole exchange.
  virtual const http::RequestHead& request() const = 0;

  struct BodyPiece {
    enum class Kind { kData, kEnd, kNeedMore, kMalformed };
    Kind kind = Kind::kNeedMore;
    std::span<const char> data;                // kData: valid until the next call
    const http::HeaderList* trailers = nullptr;  // kEnd: a chunked request's trailers
    int status = 0;                            // kMalformed: the status to answer, and why
    std::string_view reason;
  };
  /// The next piece of the request body from what has arrived, without waiting. After kEnd it
  /// keeps answering kEnd (a retry must not read the request again).
  virtual BodyPiece next_body_piece() = 0;
  /// Waits for more of the request body, at most timeouts.request_body. false: the client
  /// closed; ETIMEDOUT: it stalled.
  virtual Task<Result<bool>> receive_body() = 0;

  /// Answers the client's `Expect: 100-continue` (the proxy's own 100, as nginx sends).
  virtual Task<Result<void>> send_continue() = 0;
  /// An interim (1xx) response of the upstream.
  virtual Task<Result<void>> send_interim(const http::ResponseHead& head) = 0;
  /// The final response's head, with the route's edits.
  virtual Task<Result<void>> send_head(const http::ResponseHead& head, const http::ResponseForwardConfig& edits) = 0;
  /// Body bytes (framing removed).
  virtual Task<Result<void>> send_body(std::span<const char> data) = 0;
  /// The response is complete; `trailers` of a chunked response, or null. Flushes.
  virtual Task<Result<void>> end_response(const http::HeaderList* trailers) = 0;
  /// Writes out what is staged.
  virtual Task<Result<void>> flush() = 0;
  /// Some bytes of the response reached the client: a failure can now only cut it off.
  virtual bool response_started() const = 0;
  /// Answers with a status of the proxy's own (404, 413, 502, ...) instead of a response;
  /// what was staged of the response is dropped. The client side ends after it.
  virtual Task<void> send_error(int status) = 0;

 protected:
  ~Downstream() = default;
};

/// What an exchange needs from the connection or stream it runs on.
struct ExchangeContext {
  const SessionEnv* env = nullptr;     // the session's; outlives the exchange
  const HttpRouter* router = nullptr;  // in env->snapshot
  OutputStage* stage = nullptr;        // where the request is staged on its way upstream (the caller's)
  std::string_view client_ip;          // the client's address as text, for X-Forwarded-For
  std::string_view scheme = "http";    // for X-Forwarded-Proto
  std::string_view client_subject;     // the TLS client certificate's subject; empty: none
  Clock::time_point request_start;     // the request's first byte, for the access log
};

struct ExchangeResult {
  enum class End {
    kDone,      // the response is complete; the client side may carry another request
    kFailed,    // answered with an error status, or cut off; the client side ends
    kUpgraded,  // a 101 was relayed: `upgraded` is now a tunnel
  };
  End end = End::kFailed;
  /// kDone: the response was delimited by the upstream closing its connection.
  bool upstream_closed = false;
  /// kUpgraded: the upstream connection, and what it sent after the 101 head (from
  /// upgraded_input_pos on).
  std::optional<Upstream> upgraded;
  Buffer upgraded_input;
  std::size_t upgraded_input_pos = 0;
};

/// Runs one exchange for the request `down->request()`. Every failure has been answered
/// (through `down`), counted and logged when it returns; every outcome has its access log line.
Task<ExchangeResult> run_exchange(Downstream* down, ExchangeContext ctx);

/// A status the proxy answers itself on its way out, for the connection-level refusals that
/// happen before an exchange (a malformed head, a head that does not complete in time): counts
/// it, logs it (`listener web: client 10.0.0.7:51234: 400 Bad Request: repeated Host`).
void note_refusal(const SessionEnv& env, int status, std::string_view reason);
/// The access log's termination cause for a status lbd answered itself ("no_route", ...).
std::string_view refusal_cause(int status);
/// Writes the access log line of a request that ends without reaching an upstream, or without
/// a head at all (`head` null).
void log_request(const SessionEnv& env, const http::RequestHead* head, Clock::time_point request_start, int status,
                 std::string_view cause, uint64_t bytes);

}  // namespace lbd::proxy
