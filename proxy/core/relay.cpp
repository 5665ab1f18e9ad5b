#include "proxy/core/relay.hpp"

#include <cerrno>

#include "proxy/core/log.hpp"

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
  if (err.is(ECANCELED)) return PumpEnd::kCancelled;
  peer->stop_other();
  return err.is(ETIMEDOUT) ? PumpEnd::kIdle : otherwise;
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
      co_return failed(n.error(), PumpEnd::kReadError, peer);
    }
    if (*n == 0) {
      (void)to->shutdown_write();  // the peer may be gone already; the other pump finds out
      co_return PumpEnd::kEof;
    }
    *last_activity = Clock::now();
    *bytes += *n;
    for (std::size_t left = *n; left > 0;) {
      auto m = co_await StreamSocket::splice(pipe_out, to->fd(), static_cast<uint32_t>(left), true).with_timeout(idle);
      if (!m) co_return failed(m.error(), PumpEnd::kWriteError, peer);
      if (*m == 0) co_return failed(errno_error(EPIPE), PumpEnd::kWriteError, peer);
      left -= *m;
    }
  }
}

/// Writes all of `*buf` to `to`, each send within the idle budget: a peer that stops reading
/// must not hold the session forever. A coroutine of its own, so that the write state is not
/// in the frame of a pump that waits to read (all an idle session does); `buf` stays in the
/// pump's frame.
Task<Result<void>> write_all_within(ByteStream to, Buffer* bufp, Duration idle) {
  Buffer& buf = *bufp;
  if (to.tls()) {  // records, written whole
    auto [w, back] = co_await to.write_all(std::move(buf), idle);
    buf = std::move(back);
    co_return w;
  }
  for (std::size_t done = 0; done < buf.size();) {
    auto [w, back] = co_await to.socket()->write(std::move(buf), done).with_timeout(idle);
    buf = std::move(back);
    if (!w) co_return w.error();
    if (*w == 0) co_return errno_error(EPIPE);
    done += *w;
  }
  co_return Result<void>{};
}
}  // namespace

void PumpPeer::stop_other() {
  if (other_task && *other_task) (*other_task)->cancel();
  if (other_inline) other_inline->cancel();
}

Task<PumpEnd> pump(ByteStream from, ByteStream to, Duration idle, Clock::time_point* last_activity,
                   uint64_t* bytes, PumpPeer* peer, config::Forwarding mode) {
  CancelLink link(peer->kill);  // links nothing when null
  if (from.tls() || to.tls()) mode = config::Forwarding::kCopy;  // TLS bytes pass through OpenSSL
  std::optional<Pipe> pipe;
  if (mode == config::Forwarding::kSplice) {
    pipe = open_pipe("closing the session");
    if (!pipe) {
      peer->stop_other();
      co_return PumpEnd::kReadError;
    }
  }
  // Copying. Everything this loop read is written before it hands over to splice, so the
  // switch neither loses nor reorders a byte.
  unsigned full_reads = 0;
  while (!pipe) {
    auto r = co_await from.read(idle);
    if (!r) {
      if (r.error().is(ETIMEDOUT) && Clock::now() - *last_activity < idle) continue;  // the other way is busy
      co_return failed(r.error(), PumpEnd::kReadError, peer);
    }
    Buffer& buf = *r;
    if (buf.empty()) {
      (void)co_await to.shutdown(idle);  // the peer may be gone already; the other pump finds out
      co_return PumpEnd::kEof;
    }
    *last_activity = Clock::now();
    *bytes += buf.size();
    full_reads = buf.size() == buf.capacity() ? full_reads + 1 : 0;
    auto w = co_await write_all_within(to, &buf, idle);
    if (!w) co_return failed(w.error(), PumpEnd::kWriteError, peer);
    if (mode == config::Forwarding::kAuto && full_reads >= kBulkReadsInARow) {
      pipe = open_pipe("this session keeps copying");
      if (!pipe) mode = config::Forwarding::kCopy;
    }
  }
  co_return co_await splice_through(from.socket(), to.socket(), pipe->first.get(), pipe->second.get(), idle, last_activity, bytes, peer);
}

void Relay::spawn_down(ByteStream upstream, ByteStream client, Duration idle, uint64_t* bytes,
                       CancelSource* kill, config::Forwarding mode) {
  down_peer.kill = kill;
  down_task.emplace(spawn(pump(upstream, client, idle, &last_activity, bytes, &down_peer, mode)));
}

Task<PumpEnd> Relay::up(ByteStream client, ByteStream upstream, Duration idle, uint64_t* bytes,
                        config::Forwarding mode) {
  return pump(client, upstream, idle, &last_activity, bytes, &up_peer, mode);
}

Task<void> relay_both_ways(ByteStream client, ByteStream upstream, Duration client_idle, Duration upstream_idle,
                           ListenerStats* stats, CancelSource* kill, config::Forwarding mode, PumpEnd* client_end,
                           PumpEnd* upstream_end) {
  Relay relay;
  relay.spawn_down(upstream, client, upstream_idle, &stats->bytes_to_client, kill, mode);
  {
    CancelRegion region(&relay.stop_up);
    *client_end = co_await relay.up(client, upstream, client_idle, &stats->bytes_from_client, mode);
  }
  *upstream_end = co_await *relay.down_task;
}

}  // namespace lbd::proxy
