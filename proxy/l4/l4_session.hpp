#pragma once
// The L4 session of a `protocol: tcp` listener: pick an endpoint -> connect (timeout; another
// endpoint on failure) -> relay both directions, half-close (FIN) passed through -> close.

#include "proxy/core/byte_stream.hpp"
#include "proxy/core/cluster.hpp"
#include "proxy/core/session_env.hpp"
#include "runtime/net.hpp"

namespace lbd::proxy {

/// Serves one client connection, plain or TLS (its plaintext then goes upstream), until both
/// directions end. `client`'s stream, `env` and `cluster` (in
/// env's snapshot) belong to the caller and outlive the session; `env->kill` ends it at once.
/// Precondition: the calling task is linked to env->kill.
Task<void> run_l4_session(ByteStream client, const SessionEnv* env, Cluster* cluster);

}  // namespace lbd::proxy
