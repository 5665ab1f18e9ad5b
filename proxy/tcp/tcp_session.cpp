#include "proxy/tcp/tcp_session.hpp"

#include <cerrno>

#include "proxy/core/log.hpp"
#include "proxy/core/worker_state.hpp"

namespace lbd::proxy {

namespace {
constexpr uint32_t kSpliceChunk = 64 * 1024;

/// The end of a pump whose await failed with `err`, cancelling the other direction if needed.
PumpEnd failed(const Error& err, PumpEnd otherwise, CancelSource* stop) {
  if (err.is(ECANCELED)) return PumpEnd::Cancelled;
  stop->cancel();
  return err.is(ETIMEDOUT) ? PumpEnd::Idle : otherwise;
}
}  // namespace

Task<PumpEnd> pump(StreamSocket* from, StreamSocket* to, Duration idle, Clock::time_point* last_activity,
                   uint64_t* bytes, CancelSource* stop) {
  for (;;) {
    auto r = co_await timeout(from->read_pooled(), idle);
    if (!r) {
      if (r.error().is(ETIMEDOUT)) {
        if (Clock::now() - *last_activity < idle) continue;  // the other direction is busy
        stop->cancel();
        co_return PumpEnd::Idle;
      }
      if (r.error().is(ECANCELED)) co_return PumpEnd::Cancelled;
      stop->cancel();
      co_return PumpEnd::ReadError;
    }
    Buffer buf = std::move(*r);
    if (buf.empty()) {
      (void)to->shutdown_write();  // the peer may be gone already; the other pump finds out
      co_return PumpEnd::Eof;
    }
    *last_activity = Clock::now();
    *bytes += buf.size();
    // A peer that stops reading must not hold the session forever: writes share the budget.
    auto w = co_await timeout(to->write_all(std::move(buf)), idle);
    if (!w.result) co_return failed(w.result.error(), PumpEnd::WriteError, stop);
  }
}


Task<PumpEnd> splice_pump(StreamSocket* from, StreamSocket* to, Duration idle, Clock::time_point* last_activity,
                          uint64_t* bytes, CancelSource* stop) {
  auto pipe = make_pipe(static_cast<int>(kSpliceChunk));
  if (!pipe) {
    log_warn("splice: pipe2: {}; closing the session", pipe.error().message());
    stop->cancel();
    co_return PumpEnd::ReadError;
  }
  auto& [pipe_out, pipe_in] = *pipe;
  for (;;) {
    auto n = co_await timeout(StreamSocket::splice(from->fd(), pipe_in.get(), kSpliceChunk, false), idle);
    if (!n) {
      if (n.error().is(ETIMEDOUT) && Clock::now() - *last_activity < idle) continue;
      co_return failed(n.error(), PumpEnd::ReadError, stop);
    }
    if (*n == 0) {
      (void)to->shutdown_write();
      co_return PumpEnd::Eof;
    }
    *last_activity = Clock::now();
    *bytes += *n;
    for (std::size_t left = *n; left > 0;) {
      auto m = co_await timeout(StreamSocket::splice(pipe_out.get(), to->fd(), static_cast<uint32_t>(left), true), idle);
      if (!m) co_return failed(m.error(), PumpEnd::WriteError, stop);
      if (*m == 0) co_return failed(errno_error(EPIPE), PumpEnd::WriteError, stop);
      left -= *m;
    }
  }
}

namespace {
Task<PumpEnd> guarded_pump(StreamSocket* from, StreamSocket* to, Duration idle, Clock::time_point* last,
                           uint64_t* bytes, CancelSource* stop, bool use_splice) {
  if (use_splice) co_return co_await with_cancel(splice_pump(from, to, idle, last, bytes, stop), stop);
  co_return co_await with_cancel(pump(from, to, idle, last, bytes, stop), stop);
}

void count_end(ListenerStats& st, PumpEnd end, bool from_client) {
  switch (end) {
    case PumpEnd::Idle: ++st.idle_timeouts; break;
    case PumpEnd::ReadError: ++(from_client ? st.client_errors : st.upstream_errors); break;
    case PumpEnd::WriteError: ++(from_client ? st.upstream_errors : st.client_errors); break;
    default: break;
  }
}
}  // namespace

Task<void> run_tcp_session(TcpStream client, SessionEnv env) {
  ListenerStats& st = *env.stats;
  Cluster* cluster = env.state->cluster(env.listener->cluster);
  auto connected = co_await cluster->connect(cluster->pick_context(env.peer), &st);
  if (auto* err = std::get_if<ConnectError>(&connected)) {
    ++st.no_upstream;
    log_warn("listener {}: client {}: no upstream reachable, closing: {}", env.listener->name,
             env.peer.to_string(), err->detail);
    co_return;
  }
  Upstream up = std::move(std::get<Upstream>(connected));
  (void)client.set_nodelay(true);
  (void)up.stream.set_nodelay(true);

  Clock::time_point last_activity = Clock::now();
  CancelSource stop;
  const bool use_splice = env.listener->forwarding == config::Forwarding::Splice;
  auto downstream = spawn(guarded_pump(&up.stream, &client, cluster->config().timeouts.idle, &last_activity,
                                       &st.bytes_to_client, &stop, use_splice));
  PumpEnd up_end = co_await guarded_pump(&client, &up.stream, env.listener->timeouts.idle, &last_activity,
                                         &st.bytes_from_client, &stop, use_splice);
  if (up_end != PumpEnd::Eof) stop.cancel();
  PumpEnd down_end = co_await downstream;
  count_end(st, up_end, true);
  count_end(st, down_end, false);
  if (up_end == PumpEnd::Idle || down_end == PumpEnd::Idle)
    log_debug("listener {}: client {}: closed after {}ms idle", env.listener->name, env.peer.to_string(),
              std::chrono::duration_cast<std::chrono::milliseconds>(env.listener->timeouts.idle).count());
}

}  // namespace lbd::proxy
