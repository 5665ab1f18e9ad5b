#pragma once
// The L4 session: accept -> pick an endpoint -> connect (timeout; another endpoint on failure)
// -> pump both directions -> pass half-close through -> close.

#include <optional>

#include "proxy/core/session_env.hpp"
#include "runtime/net.hpp"

namespace lbd::proxy {

/// Serves one client connection of a `protocol: tcp` listener until both directions end.
/// `client` and `env` belong to the caller and outlive the session; `kill` ends it at once.
Task<void> run_tcp_session(TcpStream* client, const SessionEnv* env, CancelSource* kill);

/// How one direction of a session ended.
enum class PumpEnd { Eof, Idle, ReadError, WriteError, Cancelled };

/// What a pump needs to know of the other direction: its task (to stop it when this one
/// fails) and the worker's kill switch.
struct PumpPeer {
  std::optional<JoinHandle<PumpEnd>>* other;  // not owned: lives in the relaying frame
  CancelSource* kill;                         // not owned: the worker's
  void stop_other();
};

/// Copies `from` -> `to` until `from` reaches EOF (then sends FIN on `to`), an error, or no byte
/// has moved in either direction for `idle` (`last_activity` is shared by both directions).
/// Meant to run as its own task: a pump that ends with an error stops the other direction.
Task<PumpEnd> pump(StreamSocket* from, StreamSocket* to, Duration idle, Clock::time_point* last_activity,
                   uint64_t* bytes, PumpPeer* peer);

/// The same through a pipe with splice(2): the bytes never enter user space.
Task<PumpEnd> splice_pump(StreamSocket* from, StreamSocket* to, Duration idle, Clock::time_point* last_activity,
                          uint64_t* bytes, PumpPeer* peer);

/// Runs both directions between `client` and `upstream` until both have ended.
Task<void> relay_both_ways(StreamSocket* client, StreamSocket* upstream, Duration client_idle, Duration upstream_idle,
                           ListenerStats* stats, CancelSource* kill, bool use_splice, PumpEnd* client_end,
                           PumpEnd* upstream_end);

}  // namespace lbd::proxy
