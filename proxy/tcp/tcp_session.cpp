#include "proxy/tcp/tcp_session.hpp"

#include <cerrno>

#include "proxy/core/log.hpp"
#include "proxy/core/worker_state.hpp"

namespace lbd::proxy {

namespace {
constexpr uint32_t kSpliceChunk = 64 * 1024;

/// The end of a pump whose await failed with `err`; stops the other direction unless this
/// pump was itself cancelled (then whoever cancelled it is in charge).
PumpEnd failed(const Error& err, PumpEnd otherwise, PumpPeer* peer) {
  if (err.is(ECANCELED)) return PumpEnd::Cancelled;
  peer->stop_other();
  return err.is(ETIMEDOUT) ? PumpEnd::Idle : otherwise;
}
}  // namespace

void PumpPeer::stop_other() {
  if (other && *other) (*other)->cancel();
}

Task<PumpEnd> pump(StreamSocket* from, StreamSocket* to, Duration idle, Clock::time_point* last_activity,
                   uint64_t* bytes, PumpPeer* peer) {
  CancelLink link(peer->kill);
  for (;;) {
    auto r = co_await from->read_pooled().with_timeout(idle);
    if (!r) {
      if (r.error().is(ETIMEDOUT) && Clock::now() - *last_activity < idle) continue;  // the other way is busy
      co_return failed(r.error(), PumpEnd::ReadError, peer);
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
    if (!w.result) co_return failed(w.result.error(), PumpEnd::WriteError, peer);
  }
}

Task<PumpEnd> splice_pump(StreamSocket* from, StreamSocket* to, Duration idle, Clock::time_point* last_activity,
                          uint64_t* bytes, PumpPeer* peer) {
  CancelLink link(peer->kill);
  auto pipe = make_pipe(static_cast<int>(kSpliceChunk));
  if (!pipe) {
    log_warn("splice: pipe2: {}; closing the session", pipe.error().message());
    peer->stop_other();
    co_return PumpEnd::ReadError;
  }
  auto& [pipe_out, pipe_in] = *pipe;
  for (;;) {
    auto n = co_await StreamSocket::splice(from->fd(), pipe_in.get(), kSpliceChunk, false).with_timeout(idle);
    if (!n) {
      if (n.error().is(ETIMEDOUT) && Clock::now() - *last_activity < idle) continue;
      co_return failed(n.error(), PumpEnd::ReadError, peer);
    }
    if (*n == 0) {
      (void)to->shutdown_write();
      co_return PumpEnd::Eof;
    }
    *last_activity = Clock::now();
    *bytes += *n;
    for (std::size_t left = *n; left > 0;) {
      auto m = co_await StreamSocket::splice(pipe_out.get(), to->fd(), static_cast<uint32_t>(left), true)
                   .with_timeout(idle);
      if (!m) co_return failed(m.error(), PumpEnd::WriteError, peer);
      if (*m == 0) co_return failed(errno_error(EPIPE), PumpEnd::WriteError, peer);
      left -= *m;
    }
  }
}

namespace {
void count_end(ListenerStats& st, PumpEnd end, bool from_client) {
  switch (end) {
    case PumpEnd::Idle: ++st.idle_timeouts; break;
    case PumpEnd::ReadError: ++(from_client ? st.client_errors : st.upstream_errors); break;
    case PumpEnd::WriteError: ++(from_client ? st.upstream_errors : st.client_errors); break;
    default: break;
  }
}
}  // namespace

Task<void> relay_both_ways(StreamSocket* client, StreamSocket* upstream, Duration client_idle, Duration upstream_idle,
                           ListenerStats* stats, CancelSource* kill, bool use_splice, PumpEnd* client_end,
                           PumpEnd* upstream_end) {
  // Each direction is its own task, so either can wait on its socket while the other moves
  // bytes; a direction that fails cancels the other through its handle.
  Clock::time_point last_activity = Clock::now();
  std::optional<JoinHandle<PumpEnd>> up_task, down_task;
  PumpPeer up_peer{&down_task, kill}, down_peer{&up_task, kill};
  auto run = use_splice ? &splice_pump : &pump;
  up_task.emplace(spawn(run(client, upstream, client_idle, &last_activity, &stats->bytes_from_client, &up_peer)));
  down_task.emplace(
      spawn(run(upstream, client, upstream_idle, &last_activity, &stats->bytes_to_client, &down_peer)));
  *client_end = co_await *up_task;
  *upstream_end = co_await *down_task;
}

Task<void> run_tcp_session(TcpStream* client, const SessionEnv* env, CancelSource* kill) {
  ListenerStats& st = *env->stats;
  Cluster* cluster = env->state->cluster(env->listener->cluster);
  auto connected = co_await cluster->connect(cluster->pick_context(env->peer), &st);
  if (auto* err = std::get_if<ConnectError>(&connected)) {
    ++st.no_upstream;
    log_warn("listener {}: client {}: no upstream reachable, closing: {}", env->listener->name,
             env->peer.to_string(), err->detail);
    co_return;
  }
  Upstream up = std::move(std::get<Upstream>(connected));
  (void)client->set_nodelay(true);
  (void)up.stream.set_nodelay(true);

  PumpEnd client_end = PumpEnd::Eof, upstream_end = PumpEnd::Eof;
  co_await relay_both_ways(client, &up.stream, env->listener->timeouts.idle, cluster->config().timeouts.idle, &st, kill,
                           env->listener->forwarding == config::Forwarding::Splice, &client_end, &upstream_end);
  count_end(st, client_end, true);
  count_end(st, upstream_end, false);
  if (client_end == PumpEnd::Idle || upstream_end == PumpEnd::Idle)
    log_debug("listener {}: client {}: closed after {}ms idle", env->listener->name, env->peer.to_string(),
              std::chrono::duration_cast<std::chrono::milliseconds>(env->listener->timeouts.idle).count());
}

}  // namespace lbd::proxy
