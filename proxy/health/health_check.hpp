#pragma once
// One active check of one endpoint: what HealthChecker runs every interval.
//
//   tcp:  connect, then close. Success iff the connect completes.
//   http: connect, send a GET, read the response head (never the body), close. Success iff the
//         status is in expect_status.
//
// The whole check (connect, request and response head) has one deadline, `timeout`. Unix-socket
// endpoints work like TCP ones (the connect is made on a socket of the address's family).

#include <cstddef>
#include <string>

#include "config/config.hpp"
#include "runtime/clock.hpp"
#include "runtime/socket_address.hpp"
#include "runtime/task.hpp"

namespace lbd::health {

/// The most of a response head a check reads; a head that does not end within it fails the
/// check ("response head too large"), so a misbehaving backend cannot make a check read on.
inline constexpr std::size_t kMaxResponseHead = 16 * 1024;

struct CheckResult {
  bool success = false;
  /// Why, for logs and the admin page: "HTTP 200 on /healthz", "HTTP 503 on /healthz",
  /// "connected" (tcp), "connect: connection refused", "timed out after 1000ms",
  /// "connection closed before a response", "invalid response: <parser's reason>",
  /// "response head too large".
  std::string cause;
  Duration took{};  // from the start of the connect to the verdict
};

/// The request an http check sends to `address`: GET `path`, Host `host` or, when that is empty,
/// the endpoint's "ip:port" ("localhost" for a Unix socket, which has no host to name), and
/// "Connection: close" so the backend ends the exchange itself.
std::string check_request(const config::HealthCheck& check, const SocketAddress& address);

/// Runs one check of `address` as `check` says, on the current runtime. Never fails as such:
/// every outcome is a CheckResult. A cancellation of the calling task (ECANCELED) ends it at
/// once with an unsuccessful result whose cause says so; the caller discards it.
Task<CheckResult> run_health_check(config::HealthCheck check, SocketAddress address);

}  // namespace lbd::health
