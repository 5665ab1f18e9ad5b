#pragma once
// The session of a tcp listener with SNI routes (passthrough, nginx's ssl_preread): read the
// client's ClientHello without terminating TLS -> pick the cluster its SNI routes to -> an L4
// session to it that sends the bytes read so far first. The backend sees the client's TLS from
// its first byte; lbd never decrypts it.

#include "proxy/core/byte_stream.hpp"
#include "proxy/core/session_env.hpp"
#include "proxy/l4/sni_router.hpp"

namespace lbd::proxy {

/// Serves one plain client connection (`client.tls()` is null) of a listener with SNI routes
/// until both directions end, or closes it when its first flight routes nowhere, stalls past
/// timeouts.preread, or ends early (each counted in env->stats). `client`'s stream, `env` and
/// `router` (in env's snapshot) belong to the caller and outlive the session.
/// Precondition: the calling task is linked to env->kill.
Task<void> run_sni_session(ByteStream client, const SessionEnv* env, const SniRouter* router);

}  // namespace lbd::proxy
