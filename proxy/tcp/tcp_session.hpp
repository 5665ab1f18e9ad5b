#pragma once
// The L4 session: accept -> pick an endpoint -> connect (timeout; another endpoint on failure)
// -> pump both directions -> pass half-close through -> close.

#include <optional>

#include "config/config.hpp"
#include "proxy/core/session_env.hpp"
#include "runtime/net.hpp"
#include "runtime/spawn.hpp"

namespace lbd::proxy {

/// Serves one client connection of a `protocol: tcp` listener until both directions end.
/// `client` and `env` belong to the caller and outlive the session; `kill` ends it at once.
Task<void> run_tcp_session(TcpStream* client, const SessionEnv* env, CancelSource* kill);

/// How one direction of a session ended.
enum class PumpEnd { kEof, kIdle, kReadError, kWriteError, kCancelled };

/// How a pump reaches the other direction of its relay, to stop it when this one fails. The
/// other direction is either a spawned task (`other_task`) or runs inline in the relaying task
/// inside a CancelRegion of `other_inline`; exactly one of the two is set.
struct PumpPeer {
  std::optional<JoinHandle<PumpEnd>>* other_task = nullptr;  // not owned: lives in the relaying frame
  CancelSource* other_inline = nullptr;                      // not owned: lives in the relaying frame
  /// The worker's kill switch, linked to the pump's task for its lifetime; null when the task
  /// is linked already (the inline direction runs in the session's task, which is).
  CancelSource* kill = nullptr;
  void stop_other();
};

/// Moves `from` -> `to` until `from` reaches EOF (then sends FIN on `to`), an error, or no byte
/// has moved in either direction for `idle` (`last_activity` is shared by both directions).
/// `mode`: Copy reads into pooled buffers and writes them out; Splice moves the bytes through a
/// pipe with splice(2), never entering user space; Auto copies until reads keep filling the
/// whole pooled buffer (bulk), then splices, creating its pipe only then. A pump that ends with
/// an error stops the other direction.
Task<PumpEnd> pump(StreamSocket* from, StreamSocket* to, Duration idle, Clock::time_point* last_activity,
                   uint64_t* bytes, PumpPeer* peer, config::Forwarding mode);

/// Runs both directions between `client` and `upstream` until both have ended: the
/// upstream -> client direction as a spawned task, the other inline. Precondition: the calling
/// task is linked to `kill` (ProxyWorker::run_session does that).
Task<void> relay_both_ways(StreamSocket* client, StreamSocket* upstream, Duration client_idle, Duration upstream_idle,
                           ListenerStats* stats, CancelSource* kill, config::Forwarding mode, PumpEnd* client_end,
                           PumpEnd* upstream_end);

/// The same with `use_splice` choosing Splice or Copy (the HTTP upgrade tunnel's spelling).
inline Task<void> relay_both_ways(StreamSocket* client, StreamSocket* upstream, Duration client_idle,
                                  Duration upstream_idle, ListenerStats* stats, CancelSource* kill, bool use_splice,
                                  PumpEnd* client_end, PumpEnd* upstream_end) {
  return relay_both_ways(client, upstream, client_idle, upstream_idle, stats, kill,
                         use_splice ? config::Forwarding::kSplice : config::Forwarding::kCopy, client_end,
                         upstream_end);
}

}  // namespace lbd::proxy
