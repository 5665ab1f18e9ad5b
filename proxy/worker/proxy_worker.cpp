#include "proxy/worker/proxy_worker.hpp"

#include <cerrno>

#include "proxy/core/log.hpp"
#include "proxy/core/tls_accept.hpp"
#include "proxy/l4/l4_session.hpp"
#include "proxy/l4/sni_session.hpp"
#include "proxy/l7/http1_connection.hpp"
#include "runtime/cancel.hpp"
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

Task<std::string> ProxyWorker::apply(std::shared_ptr<const config::Config> cfg, TicketKeyMap keys) {
  ticket_keys_ = std::move(keys);
  std::string errors;
  // Endpoints the new config drops are forgotten (older snapshots keep their records alive);
  // a cluster without active checks has no endpoint down by them.
  book_.keep_only(*cfg);
  for (const auto& c : cfg->clusters) {
    if (c.health_check) continue;
    for (const auto& e : c.endpoints) book_.get(c.name, e.address)->down = false;
  }
  book_.changed();
  auto next = std::make_shared<const Snapshot>(cfg, 0x9e3779b97f4a7c15ull * (index_ + 1), &book_, ticket_keys_);
  std::vector<std::unique_ptr<ListenerSlot>> kept;
  std::vector<const Snapshot::Listener*> kept_listeners;  // parallel to `kept`
  for (std::size_t i = 0; i < cfg->listeners.size(); ++i) {
    const config::ListenerConfig& lc = cfg->listeners[i];
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
    kept_listeners.push_back(&next->listener(i));
  }
  for (auto& old : slots_) {
    if (old) {
      close_slot(*old);
      co_await old->loop_done->wait();
    }
  }
  // Kept slots accepted on the old snapshot until now; from here on, on the new one.
  slots_ = std::move(kept);
  snapshot_ = std::move(next);
  for (std::size_t i = 0; i < slots_.size(); ++i) slots_[i]->listener = kept_listeners[i];
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
    const Snapshot::Listener* listener = slot->listener;
    TcpStream client(std::move(*fd));
    if (slot->stats.active >= listener->config->max_connections) {
      ++slot->stats.rejected_over_limit;
      log_warn("listener {}: max_connections ({}) reached; closing a new connection", slot->name,
               listener->config->max_connections);
      continue;  // `client` closes here
    }
    SessionEnv env;
    env.snapshot = snapshot_;
    env.listener = listener->config;
    env.stats = &slot->stats;
    env.peer = peer;
    env.drain = &drain_;
    env.kill = &kill_;
    (void)spawn(run_session(std::move(client), std::move(env), listener));
  }
  slot->running = false;
  slot->loop_done->set();
}

Task<void> ProxyWorker::run_session(TcpStream client, SessionEnv env, const Snapshot::Listener* listener) {
  SessionGuard guard(this, env.stats);
  CancelLink link(&kill_);  // the kill switch reaches this task without a wrapper frame
  if (listener->config->tls) {
    if (!listener->tls) co_return;  // its contexts could not be built (logged): never plaintext
    std::optional<tls::TlsStream> tls = co_await accept_tls(std::move(client), &env, listener->tls.get());
    if (!tls) co_return;
    ByteStream stream(&*tls);
    switch (listener->config->protocol) {
      case config::Protocol::kTcp:
        co_await run_l4_session(stream, &env, listener->cluster);  // the relay sent close_notify
        break;
      case config::Protocol::kHttp:
        co_await run_http1_session(stream, &env, listener->router.get());
        (void)co_await stream.shutdown(std::chrono::seconds(1));  // close_notify, as nginx sends
        break;
    }
    co_return;
  }
  switch (listener->config->protocol) {
    case config::Protocol::kTcp:
      if (listener->sni)
        co_await run_sni_session(ByteStream(&client), &env, listener->sni.get());
      else
        co_await run_l4_session(ByteStream(&client), &env, listener->cluster);
      break;
    case config::Protocol::kHttp:
      co_await run_http1_session(ByteStream(&client), &env, listener->router.get());
      break;
  }
}

void ProxyWorker::set_ticket_keys(TicketKeyMap keys) {
  ticket_keys_ = std::move(keys);
  if (snapshot_) snapshot_->set_ticket_keys(ticket_keys_);
}

void ProxyWorker::set_endpoint_down(const std::string& cluster, const SocketAddress& address, bool down) {
  book_.get(cluster, address)->down = down;
  book_.changed();
}

bool ProxyWorker::set_endpoint_drained(const std::string& cluster, const std::string& address, bool drained) {
  EndpointRecord* r = book_.find(cluster, address);
  if (!r) return false;
  r->drained = drained;
  book_.changed();
  return true;
}

WorkerReport ProxyWorker::report() const {
  WorkerReport out;
  for (const auto& slot : slots_) {
    out.listeners.push_back(ListenerReport{slot->name, slot->address.to_string(),
                                           std::string(config::to_string(slot->protocol)), slot->stats,
                                           slot->listener && slot->listener->config->tls.has_value(),
                                           slot->listener && slot->listener->sni != nullptr});
  }
  if (!snapshot_) return out;
  for (const auto& c : snapshot_->clusters()) {
    ClusterReport cr;
    cr.name = c->name();
    cr.balance = std::string(balancer::to_string(c->config().balance));
    for (std::size_t i = 0; i < c->size(); ++i) {
      const EndpointRecord& r = c->record(i);
      EndpointReport e;
      e.address = c->address(i).to_string();
      e.weight = c->config().endpoints[i].weight;
      e.stats = r.stats;
      e.active = c->state(i).active;
      e.idle = c->idle_count(i);
      e.down = r.down;
      e.drained = r.drained;
      e.ejected_in = c->ejected(i) ? 1 : 0;
      e.checked = c->config().health_check.has_value();
      cr.endpoints.push_back(std::move(e));
    }
    out.clusters.push_back(std::move(cr));
  }
  return out;
}

void ProxyWorker::session_ended() {
  --sessions_;
  if (drain_.started() && sessions_ == 0) sessions_done_.set();
}

Task<void> ProxyWorker::drain(Duration limit) {
  drain_.start();  // keep-alive connections between requests close now
  for (auto& slot : slots_) close_slot(*slot);
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
  drain_.start();
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
  snapshot_.reset();
}

}  // namespace lbd::proxy
