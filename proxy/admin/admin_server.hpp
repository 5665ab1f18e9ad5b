#pragma once
// The admin listener: a small HTTP/1.1 server on the control thread's runtime that shows what
// lbd is doing and lets an operator drain an endpoint. It never touches the data plane: every
// answer comes from the AdminBackend (admin_backend.hpp), which gathers from the workers.
//
//   GET  /metrics   Prometheus text (metrics.hpp)          GET /healthz  200 "ok" while running
//   GET  /stats     JSON (stats_json.hpp)                  GET /ready    200, or 503 when not ready
//   GET  /status    the HTML status page (status_page.hpp)
//   POST /clusters/NAME/endpoints/ADDRESS/drain   and   .../enable
//
// HEAD is answered wherever GET is. NAME and ADDRESS are percent-decoded ("127.0.0.1%3A8080",
// "127.0.0.1:8080" and "[::1]:8080" all work). With a token (AdminBackend::token), every POST
// needs `Authorization: Bearer TOKEN` (401 otherwise); GETs stay open, since they only read.
// Refused requests: malformed 400, unknown path 404, wrong method 405 (with Allow), body over
// max_body_bytes 413, head over max_head_bytes 431, not complete within read_timeout 408; the
// connection closes after each of them except 404, 405 and 401, whose request was read whole.

#include <chrono>
#include <cstddef>

#include "proxy/admin/admin_backend.hpp"
#include "runtime/cancel.hpp"
#include "runtime/clock.hpp"
#include "runtime/net.hpp"
#include "runtime/task.hpp"

namespace lbd::proxy {

struct AdminServerOptions {
  /// A connection idle this long between requests closes; a request must arrive whole within it.
  Duration read_timeout = std::chrono::seconds(10);
  /// Longest request head (request line included): beyond it, 431 (414 for the line alone).
  std::size_t max_head_bytes = 8 * 1024;
  /// Longest request body: beyond it, 413. The admin API takes no body; this bounds what it reads.
  std::size_t max_body_bytes = 64 * 1024;
};

/// Accepts admin connections on `listener` and serves each as a task of its own on the current
/// runtime, until `stop` is cancelled: then the accept loop ends, open admin connections are
/// interrupted (a request being answered is cut short), and the call returns once every one of
/// them has closed. Preconditions: `listener`, `backend` and `stop` outlive the call and belong
/// to this thread; `stop` is not cancelled from within a backend call of this server.
Task<void> serve_admin(StreamListener* listener, AdminBackend* backend, CancelSource* stop,
                       AdminServerOptions options = {});

}  // namespace lbd::proxy
