#include "proxy/tcp/tcp_session.hpp"

#include <cerrno>

#include "proxy/core/log.hpp"
#include "proxy/core/worker_state.hpp"

namespace lbd::proxy {

namespace {
// One splice moves up to this much; the pipe is sized to match (F_SETPIPE_SZ), so 2 GiB take
// ~8 k splice pairs instead of 32 k with the default 64 KiB pipe. Unprivileged processes are held
// to fs.pipe-user-pages-soft; past it the pipe keeps the default size and splices move less.
constexpr uint32_t kSpliceChunk = 256 * 1024;
// Auto forwarding switches a direction to splice after this many reads in a row filled the
// whole pooled buffer: one full read happens in chatty traffic too, a run of them is bulk.
constexpr unsigned kBulkReadsInARow = 4;

/// The end of a pump whose await failed with `err`; stops the other direction unless this
/// pump was itself cancelled (then whoever cancelled it is in charge).
PumpEnd failed(const Error& err, PumpEnd otherwise, PumpPeer* peer) {
  if (err.is(ECANCELED)) return PumpEnd::Cancelled;
  peer->stop_other();
  return err.is(ETIMEDOUT) ? PumpEnd::Idle : otherwise;
}

using Pipe = std::pair<UniqueFd, UniqueFd>;  // [0] read end, [1] write end

std::optional<Pipe> open_pipe(const char* consequence) {
  auto pipe = make_pipe(static_cast<int>(kSpliceChunk));
  if (!pipe) {
    log_warn("splice: pipe2: {}; {}", pipe.error().message(), consequence);
    return std::nullopt;
  }
  return std::move(*pipe);
}

/// The splice half of a pump: socket -> pipe -> socket until EOF or an error. `pipe_out` and
/// `pipe_in` belong to the calling pump and are empty whenever a splice into them starts.
Task<PumpEnd> splice_through(StreamSocket* from, StreamSocket* to, int pipe_out, int pipe_in, Duration idle,
                             Clock::time_point* last_activity, uint64_t* bytes, PumpPeer* peer) {
  for (;;) {
    auto n = co_await StreamSocket::splice(from->fd(), pipe_in, kSpliceChunk, false).with_timeout(idle);
    if (!n) {
      if (n.error().is(ETIMEDOUT) && Clock::now() - *last_activity < idle) continue;  // the other way is busy
      co_return failed(n.error(), PumpEnd::ReadError, peer);
    }
    if (*n == 0) {
      (void)to->shutdown_write();  // the peer may be gone already; the other pump finds out
      co_return PumpEnd::Eof;
    }
    *last_activity = Clock::now();
    *bytes += *n;
    for (std::size_t left = *n; left > 0;) {
      auto m = co_await StreamSocket::splice(pipe_out, to->fd(), static_cast<uint32_t>(left), true).with_timeout(idle);
      if (!m) co_return failed(m.error(), PumpEnd::WriteError, peer);
      if (*m == 0) co_return failed(errno_error(EPIPE), PumpEnd::WriteError, peer);
      left -= *m;
    }
  }
}
}  // namespace

void PumpPeer::stop_other() {
  if (other_task && *other_task) (*other_task)->cancel();
  if (other_inline) other_inline->cancel();
}

Task<PumpEnd> pump(StreamSocket* from, StreamSocket* to, Duration idle, Clock::time_point* last_activity,
                   uint64_t* bytes, PumpPeer* peer, config::Forwarding mode) {
  std::optional<CancelLink> link;
  if (peer->kill) link.emplace(peer->kill);
  std::optional<Pipe> pipe;
  if (mode == config::Forwarding::Splice) {
    pipe = open_pipe("closing the session");
    if (!pipe) {
      peer->stop_other();
      co_return PumpEnd::ReadError;
    }
  }
  // Copying. Everything this loop read is written before it hands over to splice, so the
  // switch neither loses nor reorders a byte.
  unsigned full_reads = 0;
  while (!pipe) {
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
    full_reads = buf.size() == buf.capacity() ? full_reads + 1 : 0;
    // Each write has the idle budget: a peer that stops reading must not hold the session
    // forever. An awaiter per write, not timeout(write_all()), keeps this frame small.
    for (std::size_t done = 0; done < buf.size();) {
      auto [w, back] = co_await to->write(std::move(buf), done).with_timeout(idle);
      buf = std::move(back);
      if (!w) co_return failed(w.error(), PumpEnd::WriteError, peer);
      if (*w == 0) co_return failed(errno_error(EPIPE), PumpEnd::WriteError, peer);
      done += *w;
    }
    if (mode == config::Forwarding::Auto && full_reads >= kBulkReadsInARow) {
      pipe = open_pipe("this session keeps copying");
      if (!pipe) mode = config::Forwarding::Copy;
    }
  }
  co_return co_await splice_through(from, to, pipe->first.get(), pipe->second.get(), idle, last_activity, bytes, peer);
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
                           ListenerStats* stats, CancelSource* kill, config::Forwarding mode, PumpEnd* client_end,
                           PumpEnd* upstream_end) {
  // Either direction must be able to wait on its socket while the other moves bytes, so one
  // of them is a task of its own; the other runs in this one, which saves a task (its root
  // frame and join state) per session. A direction that fails stops the other.
  Clock::time_point last_activity = Clock::now();
  std::optional<JoinHandle<PumpEnd>> down_task;
  CancelSource stop_up;
  PumpPeer up_peer{.other_task = &down_task};
  PumpPeer down_peer{.other_inline = &stop_up, .kill = kill};
  down_task.emplace(
      spawn(pump(upstream, client, upstream_idle, &last_activity, &stats->bytes_to_client, &down_peer, mode)));
  {
    CancelRegion region(&stop_up);
    *client_end =
        co_await pump(client, upstream, client_idle, &last_activity, &stats->bytes_from_client, &up_peer, mode);
  }
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
                           env->listener->forwarding, &client_end, &upstream_end);
  count_end(st, client_end, true);
  count_end(st, upstream_end, false);
  if (client_end == PumpEnd::Idle || upstream_end == PumpEnd::Idle)
    log_debug("listener {}: client {}: closed after {}ms idle", env->listener->name, env->peer.to_string(),
              std::chrono::duration_cast<std::chrono::milliseconds>(env->listener->timeouts.idle).count());
}

}  // namespace lbd::proxy
