#pragma once
// AdminBackend: what the admin listener asks of the daemon. The admin server (admin_server.hpp)
// parses and answers HTTP; everything it shows or changes goes through this interface, which
// cmd/ implements on the control thread (gathering from the workers by mailbox). Tests give the
// server a fake one.

#include <string>

#include "proxy/core/report.hpp"
#include "runtime/task.hpp"

namespace lbd::proxy {

enum class EndpointAction { kDrain, kEnable };

struct AdminAnswer {
  int status = 200;      // 200, or 404 for an unknown cluster or endpoint
  std::string message;   // a line for the response body, e.g. "endpoint 10.0.0.12:8080 of cluster web: DRAIN"
};

class AdminBackend {
 public:
  virtual ~AdminBackend() = default;
  /// Every figure, gathered now from every worker and the health checker.
  virtual Task<Report> report() = 0;
  /// GET /ready: every listener is bound, the config is loaded, and lbd is not draining.
  virtual bool ready() const = 0;
  /// POST /clusters/NAME/endpoints/ADDRESS/{drain,enable}. `address` as written in the URL
  /// (percent-decoded by the server), compared with SocketAddress::to_string of the endpoints.
  virtual Task<AdminAnswer> set_endpoint(std::string cluster, std::string address, EndpointAction action) = 0;
  /// admin.token of the config in effect; empty = POSTs need no token.
  virtual std::string token() const = 0;
};

}  // namespace lbd::proxy
