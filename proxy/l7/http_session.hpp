#pragma once
// The HTTP/1 session of a `protocol: http` listener: strict parsing (llhttp, no lenient flags),
// routing, upstream keep-alive pools, bodies streamed both ways with bounded memory, upgrades
// tunnelled, errors answered with the right status, one access log line per exchange.

#include "proxy/core/session_env.hpp"
#include "runtime/net.hpp"

namespace lbd::proxy {

/// Serves one client connection until it closes, idles out, or the worker drains. `client`
/// and `env` belong to the caller and outlive the session; `kill` ends it (and any tunnel).
Task<void> run_http_session(TcpStream* client, const SessionEnv* env, CancelSource* kill);

}  // namespace lbd::proxy
