#pragma once
// The TLS front of a listener with `tls:`: what happens between accept and the session. The
// first bytes decide (proxy/tls/first_bytes.hpp): a TLS ClientHello goes on to the handshake,
// plain HTTP gets nginx's 400 ("The plain HTTP request was sent to HTTPS port") and a close,
// anything else a close. The handshake, the classification included, has timeouts.handshake in
// all. Failures are counted in the listener's stats and logged at info level, at most once a
// second per kind and worker, so a scanner cannot fill the log.

#include <optional>

#include "proxy/core/session_env.hpp"
#include "proxy/tls/tls_context.hpp"
#include "proxy/tls/tls_stream.hpp"
#include "runtime/net.hpp"
#include "runtime/task.hpp"

namespace lbd::proxy {

/// The established TLS stream over `client`, or nullopt when the connection was answered or
/// closed instead (counted and logged). On success sets env->client_subject from a verified
/// client certificate. `ctx` and `env` outlive the call.
Task<std::optional<tls::TlsStream>> accept_tls(TcpStream client, SessionEnv* env, const tls::ServerContext* ctx);

}  // namespace lbd::proxy
