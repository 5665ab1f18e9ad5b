#pragma once
// ProxyWorker: everything one worker thread owns — its listener sockets (SO_REUSEPORT, one per
// listener per worker), its snapshot of the config, its sessions and its counters. It is the
// composition root of proxy/: it picks the session kind for each accepted connection. Other
// threads reach it only through the worker's Mailbox; every method runs on the worker's thread.

#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "proxy/core/drain.hpp"
#include "proxy/core/endpoint_book.hpp"
#include "proxy/core/report.hpp"
#include "proxy/core/session_env.hpp"
#include "proxy/core/stats.hpp"
#include "proxy/worker/snapshot.hpp"
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
  /// What new connections run on: in the worker's current snapshot, updated with it.
  const Snapshot::Listener* listener = nullptr;
  CancelSource stop;  // ends the accept loop
  std::unique_ptr<Event> loop_done = std::make_unique<Event>();
  bool running = false;
};

class ProxyWorker {
 public:
  explicit ProxyWorker(unsigned index) : index_(index) {}
  ProxyWorker(const ProxyWorker&) = delete;

  /// Installs a config: binds listeners that are new, keeps sockets whose address is unchanged,
  /// closes removed ones, and switches new connections to the new snapshot. Returns "" or the
  /// errors (one per line) — e.g. a listener that could not bind.
  /// `keys`: the TLS listeners' ticket keys (the control thread's).
  Task<std::string> apply(std::shared_ptr<const config::Config> cfg, TicketKeyMap keys);
  /// Rotated ticket keys: new TLS sessions are issued under them.
  void set_ticket_keys(TicketKeyMap keys);
  /// Graceful drain: stop accepting (listeners closed), let sessions finish, and cancel those
  /// still open after `limit`. run() returns afterwards.
  Task<void> drain(Duration limit);
  /// Stops at once: listeners closed, every session cancelled.
  void stop_now();
  /// Runs until drain() or stop_now() completes.
  Task<void> run();
  std::size_t active_sessions() const { return sessions_; }

  /// The active health checks' verdict on one endpoint (the control thread's HealthChecker
  /// posts every change to every worker). Unknown names are remembered for a config to come.
  void set_endpoint_down(const std::string& cluster, const SocketAddress& address, bool down);
  /// The operator's drain (admin POST): a drained endpoint gets no new sessions; open ones go
  /// on. false: no such endpoint in the current config.
  bool set_endpoint_drained(const std::string& cluster, const std::string& address, bool drained);
  /// A copy of this worker's counters and endpoint states, for the admin listener.
  WorkerReport report() const;

 private:
  friend class SessionGuard;
  Task<void> accept_loop(ListenerSlot* slot);
  Task<void> run_session(TcpStream client, SessionEnv env, const Snapshot::Listener* listener);
  Result<void> bind_slot(ListenerSlot& slot, const config::ListenerConfig& cfg);
  void close_slot(ListenerSlot& slot);
  void session_ended();

  unsigned index_;
  EndpointBook book_;  // before snapshot_, whose clusters point into it
  std::shared_ptr<const Snapshot> snapshot_;
  TicketKeyMap ticket_keys_;  // the latest from the control thread, for the next snapshot
  std::vector<std::unique_ptr<ListenerSlot>> slots_;
  std::size_t sessions_ = 0;
  CancelSource kill_;    // cancels every session (drain deadline, SIGINT)
  Drain drain_;          // started by drain() and stop_now()
  Event sessions_done_;  // set when sessions_ drops to 0 while draining
  Event stopped_;
};

}  // namespace lbd::proxy
