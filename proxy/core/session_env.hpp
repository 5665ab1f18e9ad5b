#pragma once
// What a session gets from the worker that accepted it: the snapshot it runs on, its
// listener's settings and counters, the client's address, and the worker's drain and kill
// switch. Sessions of every protocol get the same.

#include <memory>
#include <string>

#include "config/config.hpp"
#include "proxy/core/drain.hpp"
#include "proxy/core/stats.hpp"
#include "runtime/cancel.hpp"
#include "runtime/socket_address.hpp"

namespace lbd::proxy {

struct SessionEnv {
  /// Keeps the snapshot that `listener` and the session's cluster or routes point into alive
  /// while the session runs: a reload builds a new snapshot, and this session finishes on the
  /// one it started with. Type-erased because the snapshot belongs to the worker layer above
  /// the sessions (proxy/worker/snapshot.hpp).
  std::shared_ptr<const void> snapshot;
  const config::ListenerConfig* listener = nullptr;  // in `snapshot`
  ListenerStats* stats = nullptr;  // owned by the worker's listener slot, which outlives its sessions
  SocketAddress peer;              // the client
  Drain* drain = nullptr;          // the worker's; outlives its sessions
  CancelSource* kill = nullptr;    // the worker's kill switch: ends every session at once
  /// The TLS client certificate's subject (RFC 2253), once the handshake verified one; empty
  /// otherwise. For the access log and the backend's header.
  std::string client_subject;
};

}  // namespace lbd::proxy
