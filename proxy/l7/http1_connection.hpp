#pragma once
// The HTTP/1 connection of a `protocol: http` listener: reads request heads strictly (llhttp,
// no lenient flags), runs one exchange per request (proxy/l7/exchange.hpp), and keeps the
// connection alive between requests, pipelined ones included. Errors before an exchange (a
// malformed head, one that does not complete in time) are answered here with their status.

#include "proxy/core/byte_stream.hpp"
#include "proxy/core/session_env.hpp"
#include "proxy/l7/router.hpp"
#include "runtime/net.hpp"

namespace lbd::proxy {

/// Serves one client connection, plain or TLS, until it closes, idles out, or the worker
/// drains. `client`'s stream, `env` and `router` (in env's snapshot) belong to the caller and
/// outlive the session;
/// env->kill ends it (and any tunnel). Precondition: the calling task is linked to env->kill.
Task<void> run_http1_session(ByteStream client, const SessionEnv* env, const HttpRouter* router);

}  // namespace lbd::proxy
