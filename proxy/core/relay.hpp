#pragma once
// Relay: bytes between two connected stream sockets, both ways at once, with half-close (FIN)
// passed through and an idle limit. L4 sessions are a relay; an HTTP/1 connection becomes one
// after a 101 Switching Protocols.

#include <optional>

#include "config/config.hpp"
#include "proxy/core/byte_stream.hpp"
#include "proxy/core/stats.hpp"
#include "runtime/cancel.hpp"
#include "runtime/net.hpp"
#include "runtime/spawn.hpp"

namespace lbd::proxy {

/// How one direction of a relay ended.
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
/// `mode`: kCopy reads into pooled buffers and writes them out; kSplice moves the bytes through
/// a pipe with splice(2), never entering user space; kAuto copies until reads keep filling the
/// whole pooled buffer (bulk), then splices, creating its pipe only then. A TLS side always
/// copies. A pump that ends with an error stops the other direction.
Task<PumpEnd> pump(ByteStream from, ByteStream to, Duration idle, Clock::time_point* last_activity,
                   uint64_t* bytes, PumpPeer* peer, config::Forwarding mode);

/// Both directions of one relay, kept in the relaying coroutine's frame. Either direction must
/// be able to wait on its socket while the other moves bytes, so the upstream -> client
/// direction is a task of its own; the client -> upstream direction runs inline in the relaying
/// task, inside a CancelRegion of `stop_up`, which saves a task (its root frame and join state)
/// per session. A direction that fails stops the other. Used as:
///
///   Relay relay;
///   relay.spawn_down(upstream, client, ...);
///   { CancelRegion region(&relay.stop_up); client_end = co_await relay.up(client, upstream, ...); }
///   upstream_end = co_await *relay.down_task;
struct Relay {
  Clock::time_point last_activity = Clock::now();  // shared by both directions
  std::optional<JoinHandle<PumpEnd>> down_task;
  CancelSource stop_up;  // the down direction stops the inline one through it
  PumpPeer up_peer{.other_task = &down_task};
  PumpPeer down_peer{.other_inline = &stop_up};

  Relay() = default;
  Relay(const Relay&) = delete;  // the peers point into it

  /// Starts the upstream -> client direction; `kill` is linked to its task.
  void spawn_down(ByteStream upstream, ByteStream client, Duration idle, uint64_t* bytes, CancelSource* kill,
                  config::Forwarding mode);
  /// The client -> upstream direction, to be awaited inline.
  Task<PumpEnd> up(ByteStream client, ByteStream upstream, Duration idle, uint64_t* bytes,
                   config::Forwarding mode);
};

/// A Relay between `client` and `upstream` until both directions have ended, counting the bytes
/// in `stats`. Precondition: the calling task is linked to `kill` (the worker links every
/// session's task).
Task<void> relay_both_ways(ByteStream client, ByteStream upstream, Duration client_idle, Duration upstream_idle,
                           ListenerStats* stats, CancelSource* kill, config::Forwarding mode, PumpEnd* client_end,
                           PumpEnd* upstream_end);

}  // namespace lbd::proxy
