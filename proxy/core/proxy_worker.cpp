#include "proxy/core/proxy_worker.hpp"

#include <cerrno>
#include <cstring>

#include "proxy/core/log.hpp"
#include "proxy/l7/http_session.hpp"
#include "proxy/tcp/tcp_session.hpp"
#include "runtime/spawn.hpp"
#include "runtime/timer.hpp"

namespace lbd::proxy {

/// Counts a session for its listener and the worker while alive.
class SessionGuard {
 public:
  SessionGuard(ProxyWorker* w, ListenerStats* st) : w_(w), st_(st) {
    ++w_->sessions_;
    ++st_->active;
  }
  SessionGuard(const SessionGuard&) = delete;
  ~SessionGuard() {
    --st_->active;
    w_->session_ended();
  }

 private:
  ProxyWorker* w_;     // not owned; outlives its sessions (run() waits for them)
  ListenerStats* st_;  // not owned; slots outlive the sessions they accepted
};


Result<void> ProxyWorker::bind_slot(ListenerSlot& slot, const config::ListenerConfig& cfg) {
  ListenOptions opts;
  opts.backlog = cfg.backlog;
  if (cfg.listen.is_unix()) {
    auto l = UnixListener::bind(cfg.listen, opts);
    if (!l) return l.error();
    slot.socket = std::move(*l);
  } else {
    // Responses and proxied messages go out as soon as they are written, as nginx's
    // tcp_nodelay does; accepted sockets inherit the option from the listener.
    opts.tcp_nodelay = true;
    auto l = TcpListener::bind(cfg.listen, opts);
    if (!l) return l.error();
    slot.socket = std::move(*l);
  }
  return {};
}

void ProxyWorker::close_slot(ListenerSlot& slot) {
  slot.stop.cancel();
  slot.socket.close_listener();
}

Task<std::string> ProxyWorker::apply(std::shared_ptr<const config::Config> cfg) {
  std::string errors;
  auto next = std::make_shared<WorkerState>(cfg, 0x9e3779b97f4a7c15ull * (index_ + 1));
  std::vector<std::unique_ptr<ListenerSlot>> kept;
  for (const auto& lc : cfg->listeners) {
    // A Unix socket path cannot be shared with SO_REUSEPORT: worker 0 alone serves it.
    if (lc.listen.is_unix() && index_ != 0) continue;
    std::unique_ptr<ListenerSlot> slot;
    for (auto& old : slots_) {
      if (old && old->address == lc.listen && old->protocol == lc.protocol) {
        slot = std::move(old);
        break;
      }
    }
    if (!slot) {
      slot = std::make_unique<ListenerSlot>();
      slot->address = lc.listen;
      slot->protocol = lc.protocol;
      if (auto r = bind_slot(*slot, lc); !r) {
        std::string why = r.error().message();
        if (r.error().is(EACCES) && lc.listen.port() < 1024)
          why += " (ports below 1024 need root or CAP_NET_BIND_SERVICE)";
        if (r.error().is(EADDRINUSE)) why += " (another process is listening there)";
        errors += "listener " + lc.name + ": bind " + lc.listen.to_string() + ": " + why + "\n";
        continue;
      }
    }
    slot->name = lc.name;
    kept.push_back(std::move(slot));
  }
  for (auto& old : slots_) {
    if (old) {
      close_slot(*old);
      co_await old->loop_done->wait();
    }
  }
  slots_ = std::move(kept);
  state_ = std::move(next);
  for (auto& slot : slots_) {
    if (!slot->running) {
      slot->running = true;
      (void)spawn(accept_loop(slot.get()));
    }
  }
  co_return errors;
}

Task<void> ProxyWorker::accept_loop(ListenerSlot* slot) {
  for (;;) {
    SocketAddress peer;
    auto fd = co_await with_cancel(slot->socket.accept_fd(&peer), &slot->stop);
    if (!fd) {
      if (!fd.error().is(ECANCELED))
        log_error("listener {}: accept on {}: {}; no longer accepting", slot->name, slot->address.to_string(),
                  fd.error().message());
      break;
    }
    ++slot->stats.accepted;
    // Find this listener in the current snapshot (the name may map to new settings after a reload).
    const config::ListenerConfig* lc = nullptr;
    for (const auto& l : state_->config().listeners)
      if (l.listen == slot->address) lc = &l;
    TcpStream client(std::move(*fd));
    if (!lc || slot->stats.active >= lc->max_connections) {
      ++slot->stats.rejected_over_limit;
      log_warn("listener {}: max_connections ({}) reached; closing a new connection", slot->name,
               lc ? lc->max_connections : 0);
      continue;  // `client` closes here
    }
    SessionEnv env;
    env.state = state_;
    env.listener = lc;
    env.stats = &slot->stats;
    env.peer = peer;
    env.draining = &draining_;
    env.idle_close = &idle_close_;
    (void)spawn(run_session(std::move(client), std::move(env)));
  }
  slot->running = false;
  slot->loop_done->set();
}

Task<void> ProxyWorker::run_session(TcpStream client, SessionEnv env) {
  SessionGuard guard(this, env.stats);
  CancelLink link(&kill_);  // the kill switch reaches this task without a wrapper frame
  switch (env.listener->protocol) {
    case config::Protocol::kTcp:
      co_await run_tcp_session(&client, &env, &kill_);
      break;
    case config::Protocol::kHttp:
      co_await run_http_session(&client, &env, &kill_);
      break;
  }
}

void ProxyWorker::session_ended() {
  --sessions_;
  if (draining_ && sessions_ == 0) sessions_done_.set();
}

Task<void> ProxyWorker::drain(Duration limit) {
  draining_ = true;
  for (auto& slot : slots_) close_slot(*slot);
  idle_close_.cancel();  // keep-alive connections between requests close now
  for (auto& slot : slots_) co_await slot->loop_done->wait();
  if (sessions_ > 0) {
    log_info("worker {}: draining {} open sessions (up to {}ms)", index_, sessions_,
             std::chrono::duration_cast<std::chrono::milliseconds>(limit).count());
    auto waited = co_await timeout(sessions_done_.wait(), limit);
    if (!waited) {
      log_warn("worker {}: drain timeout; closing {} sessions", index_, sessions_);
      kill_.cancel();
      co_await sessions_done_.wait();
    }
  }
  stopped_.set();
}

void ProxyWorker::stop_now() {
  draining_ = true;
  for (auto& slot : slots_) close_slot(*slot);
  kill_.cancel();
  if (sessions_ == 0) sessions_done_.set();
  stopped_.set();
}

Task<void> ProxyWorker::run() {
  co_await stopped_.wait();
  // stop_now(): give cancelled sessions the chance to unwind before the runtime goes away.
  if (sessions_ > 0) (void)co_await timeout(sessions_done_.wait(), std::chrono::seconds(2));
  // Pooled upstream connections go with the clusters: close them on this thread while its
  // runtime lives (sessions still holding the snapshot release it as the runtime ends).
  state_.reset();
}

WorkerStats ProxyWorker::stats() const {
  WorkerStats s;
  s.worker = index_;
  for (const auto& slot : slots_) s.listeners[slot->name] += slot->stats;
  return s;
}

}  // namespace lbd::proxy
