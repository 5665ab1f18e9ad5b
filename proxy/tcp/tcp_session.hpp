#pragma once
// The L4 session: accept -> pick an endpoint -> connect (timeout; another endpoint on failure)
// -> pump both directions -> pass half-close through -> close.

#include "proxy/core/session_env.hpp"
#include "runtime/net.hpp"

namespace lbd::proxy {

/// Serves one client connection of a `protocol: tcp` listener until both directions end.
Task<void> run_tcp_session(TcpStream client, SessionEnv env);

/// How one direction of a session ended.
enum class PumpEnd { Eof, Idle, ReadError, WriteError, Cancelled };

/// Copies `from` -> `to` until `from` reaches EOF (then sends FIN on `to`), an error, or no byte
/// has moved in either direction for `idle` (`last_activity` is shared by both directions).
/// A pump that ends with an error cancels `stop`, which ends the other direction.
Task<PumpEnd> pump(StreamSocket* from, StreamSocket* to, Duration idle, Clock::time_point* last_activity,
                   uint64_t* bytes, CancelSource* stop);

/// The same through a pipe with splice(2): the bytes never enter user space.
Task<PumpEnd> splice_pump(StreamSocket* from, StreamSocket* to, Duration idle, Clock::time_point* last_activity,
                          uint64_t* bytes, CancelSource* stop);

}  // namespace lbd::proxy
