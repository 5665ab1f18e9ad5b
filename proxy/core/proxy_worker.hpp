#pragma once
// ProxyWorker: everything one worker thread owns — its listener sockets (SO_REUSEPORT, one per
// listener per worker), its routing snapshot, its sessions and its counters. Other threads
// reach it only through the worker's Mailbox; every method runs on the worker's thread.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "proxy/core/session_env.hpp"
#include "proxy/core/stats.hpp"
#include "proxy/core/worker_state.hpp"
#include "runtime/event.hpp"
#include "runtime/net.hpp"

namespace lbd::proxy {

/// One listener of one worker. Survives reloads while its address and protocol stay the same,
/// so the socket (and the connections queued on it) is kept.
class ListenerSlot {
 public:
  std::string name;
  SocketAddress address;
  config::Protocol protocol = config::Protocol::kTcp;
  StreamListener socket;
  ListenerStats stats;
  CancelSource stop;  // ends the accept loop
  std::unique_ptr<Event> loop_done = std::make_unique<Event>();
  bool running = false;
};

struct WorkerStats {
  unsigned worker = 0;
  std::map<std::string, ListenerStats> listeners;  // by listener name
};

class ProxyWorker {
 public:
  explicit ProxyWorker(unsigned index) : index_(index) {}
  ProxyWorker(const ProxyWorker&) = delete;

  /// Installs a config: binds listeners that are new, keeps sockets whose address is unchanged,
  /// closes removed ones, and switches new connections to the new routing. Returns "" or the
  /// errors (one per line) — e.g. a listener that could not bind.
  Task<std::string> apply(std::shared_ptr<const config::Config> cfg);
  /// Graceful drain: stop accepting (listeners closed), let sessions finish, and cancel those
  /// still open after `limit`. run() returns afterwards.
  Task<void> drain(Duration limit);
  /// Stops at once: listeners closed, every session cancelled.
  void stop_now();
  /// Runs until drain() or stop_now() completes.
  Task<void> run();
  WorkerStats stats() const;
  std::size_t active_sessions() const { return sessions_; }

 private:
  friend class SessionGuard;
  Task<void> accept_loop(ListenerSlot* slot);
  Task<void> run_session(TcpStream client, SessionEnv env);
  Result<void> bind_slot(ListenerSlot& slot, const config::ListenerConfig& cfg);
  void close_slot(ListenerSlot& slot);
  void session_ended();

  unsigned index_;
  std::shared_ptr<WorkerState> state_;
  std::vector<std::unique_ptr<ListenerSlot>> slots_;
  std::size_t sessions_ = 0;
  CancelSource kill_;      // cancels every session (drain deadline, SIGINT)
  CancelSource idle_close_;  // wakes HTTP sessions idling between requests when draining
  Event sessions_done_;    // set when sessions_ drops to 0 while draining
  Event stopped_;
  bool draining_ = false;
};

}  // namespace lbd::proxy
