#include "proxy/core/tls_accept.hpp"

#include <cerrno>
#include <chrono>
#include <string_view>

#include "proxy/core/byte_stream.hpp"
#include "proxy/core/log.hpp"
#include "proxy/tls/first_bytes.hpp"
#include "runtime/clock.hpp"
#include "runtime/timer.hpp"

namespace lbd::proxy {

namespace {

// nginx's answer, so that a user who typed http:// sees the usual explanation.
constexpr std::string_view kPlainHttpBody =
    "<html>\r\n<head><title>400 The plain HTTP request was sent to HTTPS port</title></head>\r\n<body>\r\n"
    "<center><h1>400 Bad Request</h1></center>\r\n<center>The plain HTTP request was sent to HTTPS port</center>\r\n"
    "<hr><center>lbd</center>\r\n</body>\r\n</html>\r\n";

std::string plain_http_response() {
  std::string out = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\nContent-Length: ";
  out += std::to_string(kPlainHttpBody.size());
  out += "\r\nConnection: close\r\n\r\n";
  out += kPlainHttpBody;
  return out;
}

/// At most one message a second; the ones held back are counted into the next.
class LogBudget {
 public:
  /// Whether to log now; `*held_back` is how many were not logged since the last one.
  bool take(uint64_t* held_back) {
    auto now = Clock::now();
    if (now < next_) {
      ++held_back_;
      return false;
    }
    next_ = now + std::chrono::seconds(1);
    *held_back = std::exchange(held_back_, 0);
    return true;
  }

 private:
  Clock::time_point next_{};
  uint64_t held_back_ = 0;
};

// Per worker thread: workers share nothing, and each keeps its own budget.
thread_local LogBudget plain_http_budget;
thread_local LogBudget failure_budget;

void log_refusal(LogBudget& budget, const SessionEnv& env, std::string_view what) {
  uint64_t held_back = 0;
  if (!budget.take(&held_back)) return;
  if (held_back == 0)
    log_info("listener {}: client {}: {}", env.listener->name, env.peer.to_string(), what);
  else
    log_info("listener {}: client {}: {} ({} more like it in the last second, not logged)", env.listener->name,
             env.peer.to_string(), what, held_back);
}

/// Appends `more` to `into`, growing it (rare: a first segment shorter than kMaxFirstBytes).
void append_bytes(Buffer& into, const Buffer& more) {
  if (into.empty()) {
    into = Buffer::copy_of(std::string_view(more.data(), more.size()));
    return;
  }
  Buffer grown(into.size() + more.size());
  grown.append(std::string_view(into.data(), into.size()));
  grown.append(std::string_view(more.data(), more.size()));
  into = std::move(grown);
}

/// Answers plain HTTP, then closes lingering (ByteStream::linger), so that closing with unread
/// bytes does not reset the connection before the client has read the answer.
Task<void> answer_plain_http(TcpStream* client) {
  (void)co_await timeout(client->write_all(Buffer::copy_of(plain_http_response())), std::chrono::seconds(5));
  co_await ByteStream(client).linger(std::chrono::seconds(2));
}

}  // namespace

Task<std::optional<tls::TlsStream>> accept_tls(TcpStream client, SessionEnv* env, const tls::ServerContext* ctx) {
  ListenerStats& st = *env->stats;
  const Duration limit = env->listener->timeouts.handshake;
  const auto deadline = Clock::now() + limit;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(limit).count();

  Buffer first;
  tls::FirstBytes kind = tls::FirstBytes::kNeedMore;
  while (kind == tls::FirstBytes::kNeedMore) {
    const auto left = deadline - Clock::now();
    // Not `cond ? co_await ... : ...`: g++ 12 destroys that expression's Result<Buffer> twice,
    // which gave the pooled slot back twice (two later reads then shared it).
    Result<Buffer> r = errno_error(ETIMEDOUT);
    if (left > Duration::zero()) r = co_await client.read_pooled(left);
    if (!r) {
      if (r.error().is(ETIMEDOUT)) {
        ++st.tls_handshake_timeouts;
        log_refusal(failure_budget, *env, fmt::format("TLS handshake not finished within {} ms; closed", ms));
      }
      co_return std::nullopt;
    }
    if (r->empty()) co_return std::nullopt;  // closed before saying anything: nothing to report
    if (first.empty() && r->size() >= tls::kMaxFirstBytes)
      first = std::move(*r);  // the usual case: the whole ClientHello in one read, no copy
    else
      append_bytes(first, *r);
    kind = tls::classify_first_bytes(std::string_view(first.data(), first.size()));
  }
  switch (kind) {
    case tls::FirstBytes::kPlainHttp:
      ++st.tls_plain_http;
      log_refusal(plain_http_budget, *env, "plain HTTP sent to a TLS port; answered 400");
      co_await answer_plain_http(&client);
      co_return std::nullopt;
    case tls::FirstBytes::kOther:
      ++st.tls_not_tls;
      log_refusal(failure_budget, *env, "first bytes are not TLS; closed");
      co_return std::nullopt;
    default:
      break;
  }

  auto made = tls::TlsStream::accept(std::move(client), *ctx, std::move(first));
  if (!made) {
    ++st.tls_handshake_failures;
    log_warn("listener {}: client {}: cannot start TLS: {}", env->listener->name, env->peer.to_string(),
             made.error().message());
    co_return std::nullopt;
  }
  tls::TlsStream stream = std::move(*made);
  const auto left = deadline - Clock::now();
  Result<void> hs = errno_error(ETIMEDOUT);
  if (left > Duration::zero()) hs = co_await stream.handshake(left);
  if (!hs) {
    if (hs.error().is(ETIMEDOUT)) {
      ++st.tls_handshake_timeouts;
      log_refusal(failure_budget, *env, fmt::format("TLS handshake not finished within {} ms; closed", ms));
    } else {
      ++st.tls_handshake_failures;
      std::string why = stream.error_detail().empty() ? hs.error().message() : stream.error_detail();
      log_refusal(failure_budget, *env, "TLS handshake failed: " + why);
    }
    co_return std::nullopt;
  }
  ++st.tls_handshakes;
  if (stream.resumed()) ++st.tls_resumed;
  env->client_subject = stream.peer_subject();
  co_return std::optional<tls::TlsStream>(std::move(stream));
}

}  // namespace lbd::proxy
