#pragma once
// The access log: one line per HTTP exchange, formatted on the worker and written by spdlog's
// asynchronous logger thread, so a slow disk never stalls a worker. Formats: `combined` (what
// nginx and Apache write, plus lbd's fields at the end) or `json` (one object per line).
//
//   127.0.0.1 - - [25/Nov/2026:06:40:01 +0000] "GET / HTTP/1.1" 200 18 "-" "curl/7.88.1"
//       upstream=127.0.0.1:9001 rt=0.001 urt=0.000 cause=ok listener=web

#include <memory>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "runtime/clock.hpp"
#include "runtime/socket_address.hpp"

namespace spdlog {
class logger;
}

namespace lbd::proxy {

struct AccessRecord {
  std::string_view listener;
  const SocketAddress* client = nullptr;
  std::string_view method;   // empty when no request line was read
  std::string_view target;
  std::string_view version;  // "HTTP/1.1"
  std::string_view host;
  std::string_view referer;
  std::string_view user_agent;
  int status = 0;
  uint64_t bytes_sent = 0;       // response body bytes sent to the client
  std::string upstream;          // "127.0.0.1:9001" or "-"
  Duration request_time{};       // first byte of the request to the last of the response
  Duration upstream_time{-1};    // connect to end of the upstream response; -1: no upstream
  std::string_view cause = "ok";  // how the exchange ended: ok, upstream_refused, client_closed, ...
  std::string_view client_subject;  // the TLS client certificate's subject; empty: none
};

/// Installs the logger exchanges go to (nullptr: access log off). Called by cmd/ at start-up.
void set_access_log(std::shared_ptr<spdlog::logger> logger, config::AccessLogFormat format);
/// Whether an access logger is installed: with it off, callers skip building records.
bool access_log_enabled();
/// Writes one record, if the access log is on.
void log_access(const AccessRecord& r);
/// Formats one record (used by log_access; exposed for tests).
std::string format_access(const AccessRecord& r, config::AccessLogFormat format);

}  // namespace lbd::proxy
