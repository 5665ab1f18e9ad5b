#include "proxy/health/health_check.hpp"

#include <cctype>
#include <cerrno>
#include <chrono>
#include <span>
#include <utility>

#include "proxy/http/response_parser.hpp"
#include "runtime/buffer.hpp"
#include "runtime/net.hpp"
#include "runtime/timer.hpp"

namespace lbd::health {

namespace {

std::string ms_text(Duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + "ms";
}

/// `what` failed with `e`: "connect: connection refused". The deadline of the whole check
/// surfaces as ETIMEDOUT from whichever step was running, so it is named for the check.
CheckResult failure(const Error& e, std::string_view what, const config::HealthCheck& check) {
  if (e.is(ETIMEDOUT)) return {false, "timed out after " + ms_text(check.timeout)};
  if (e.is(ECANCELED)) return {false, "cancelled"};
  std::string text = e.message();  // strerror's "Connection refused"; lowercase inside a line
  if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  return {false, std::string(what) + ": " + text};
}

/// The path the request asks for; "/" for an empty one (the loader requires a leading '/').
std::string_view request_path(const config::HealthCheck& check) {
  return check.path.empty() ? std::string_view("/") : std::string_view(check.path);
}

CheckResult status_verdict(int status, const config::HealthCheck& check) {
  bool expected = false;
  for (const config::StatusRange& range : check.expect_status) expected = expected || range.contains(status);
  return {expected, "HTTP " + std::to_string(status) + " on " + std::string(request_path(check))};
}

/// Sends the check's GET on `stream` and reads until the final response head. Only the head
/// matters: the body is never read, the connection closes after the head.
Task<CheckResult> http_exchange(StreamSocket* stream, config::HealthCheck check, SocketAddress address) {
  auto [sent, unused] = co_await stream->write_all(Buffer::copy_of(check_request(check, address)));
  if (!sent) co_return failure(sent.error(), "send", check);

  http::HttpResponseParser parser;
  parser.expect_response("GET");
  // One buffer, appended to and never cleared: its capacity is the bound on the head.
  Buffer buf(kMaxResponseHead);
  for (;;) {
    if (buf.spare().empty()) co_return CheckResult{false, "response head too large"};
    const std::size_t before = buf.size();
    auto [got, back] = co_await stream->read(std::move(buf));
    buf = std::move(back);
    if (!got) co_return failure(got.error(), "read", check);
    if (*got == 0) {
      co_return CheckResult{false, before == 0 ? "connection closed before a response"
                                               : "connection closed in the middle of the response head"};
    }
    // The parser keeps partial tokens itself: feed it only the bytes it has not seen.
    std::span<const char> input(buf.data() + before, *got);
    for (bool need_more = false; !need_more;) {
      http::HttpEvent ev = parser.parse(input);
      input = input.subspan(ev.consumed);
      switch (ev.kind) {
        case http::HttpEvent::kNeedMore:
          need_more = true;
          break;
        case http::HttpEvent::kHeadComplete:
          // An interim response (100 Continue) is followed by the final one: parse on.
          if (!parser.head().is_interim()) co_return status_verdict(parser.head().status, check);
          break;
        case http::HttpEvent::kError:
          co_return CheckResult{false, "invalid response: " + std::string(parser.error().reason)};
        case http::HttpEvent::kBodyData:
        case http::HttpEvent::kMessageComplete:
        case http::HttpEvent::kClosed:
          break;  // only an interim response's end comes here before the final head
      }
    }
  }
}

Task<CheckResult> attempt(config::HealthCheck check, SocketAddress address) {
  // No connect timeout of its own: the check's deadline (run_health_check) covers it.
  auto stream = co_await TcpStream::connect(address);
  if (!stream) co_return failure(stream.error(), "connect", check);
  if (check.type == config::HealthCheckType::kTcp) co_return CheckResult{true, "connected"};
  co_return co_await http_exchange(&*stream, std::move(check), std::move(address));
}

}  // namespace

std::string check_request(const config::HealthCheck& check, const SocketAddress& address) {
  std::string host = !check.host.empty() ? check.host : address.is_unix() ? "localhost" : address.to_string();
  std::string request;
  request.reserve(96 + check.path.size() + host.size());
  request += "GET ";
  request += request_path(check);
  request += " HTTP/1.1\r\nHost: ";
  request += host;
  request += "\r\nUser-Agent: lbd-health-check\r\nConnection: close\r\n\r\n";
  return request;
}

Task<CheckResult> run_health_check(config::HealthCheck check, SocketAddress address) {
  const auto start = Clock::now();
  const Duration limit = check.timeout;
  CheckResult result = co_await timeout(attempt(std::move(check), std::move(address)), limit);
  result.took = Clock::now() - start;
  co_return result;
}

}  // namespace lbd::health
