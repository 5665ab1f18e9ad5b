#pragma once
// What a session needs from its worker: the routing snapshot it started with, its listener's
// settings and counters, and the worker's session accounting.

#include <memory>

#include "config/config.hpp"
#include "proxy/core/cluster.hpp"
#include "proxy/core/stats.hpp"
#include "runtime/cancel.hpp"

namespace lbd::proxy {

class WorkerState;
class ListenerSlot;

struct SessionEnv {
  std::shared_ptr<WorkerState> state;  // keeps the clusters of this session's snapshot alive
  const config::ListenerConfig* listener = nullptr;  // owned by `state`'s config
  ListenerStats* stats = nullptr;  // owned by the worker's ListenerSlot, which outlives sessions
  SocketAddress peer;
  /// The worker is draining: finish the request in flight, then close (not owned).
  const bool* draining = nullptr;
  /// Cancelled when draining starts: wakes sessions idling between requests (not owned).
  CancelSource* idle_close = nullptr;
};

}  // namespace lbd::proxy
