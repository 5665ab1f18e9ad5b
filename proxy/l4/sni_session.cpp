#include "proxy/l4/sni_session.hpp"

#include <cerrno>
#include <chrono>
#include <utility>

#include "proxy/core/log.hpp"
#include "proxy/l4/l4_session.hpp"
#include "proxy/l4/sni_preread.hpp"

namespace lbd::proxy {

namespace {

/// Where a decided first flight goes, counted; nullptr: close it.
Cluster* choose_cluster(const SniRouter& router, const config::ListenerConfig& listener,
                        const tls::ClientHelloPeek& hello, ListenerStats& st) {
  using tls::ClientHelloOutcome;
  Cluster* to = nullptr;
  switch (hello.outcome) {
    case ClientHelloOutcome::kSni:
      if ((to = router.route(hello.sni))) {
        ++st.sni_routed;
        return to;
      }
      to = router.fallback();
      break;
    case ClientHelloOutcome::kNoSni: to = router.fallback(); break;
    case ClientHelloOutcome::kNotTls:
    case ClientHelloOutcome::kMalformed:
      if (listener.not_tls == config::NotTls::kDefault) to = router.fallback();
      break;
    case ClientHelloOutcome::kNeedMore: break;  // not a decided outcome
  }
  ++(to ? st.sni_default : st.sni_rejected);
  return to;
}

}  // namespace

Task<void> run_sni_session(ByteStream client, const SessionEnv* env, const SniRouter* router) {
  ListenerStats& st = *env->stats;
  const config::ListenerConfig& listener = *env->listener;
  SniPreread pre = co_await read_client_hello(client.socket(), listener.timeouts.preread);
  switch (pre.end) {
    case PrereadEnd::kDecided: break;
    case PrereadEnd::kTimedOut:
      ++st.preread_timeouts;
      log_info("listener {}: client {}: no complete ClientHello within {}ms ({} bytes), closing", listener.name,
               env->peer.to_string(),
               std::chrono::duration_cast<std::chrono::milliseconds>(listener.timeouts.preread).count(),
               pre.bytes.size());
      co_return;
    case PrereadEnd::kPeerClosed:
      ++st.preread_aborted;
      log_debug("listener {}: client {}: closed before its ClientHello was complete", listener.name,
                env->peer.to_string());
      co_return;
    case PrereadEnd::kReadFailed:
      if (pre.error.is(ECANCELED)) co_return;  // the worker's kill switch
      ++st.preread_aborted;
      log_debug("listener {}: client {}: reading its ClientHello: {}", listener.name, env->peer.to_string(),
                pre.error.message());
      co_return;
  }
  Cluster* cluster = choose_cluster(*router, listener, pre.hello, st);
  if (!cluster) {
    const bool tls = pre.hello.outcome == tls::ClientHelloOutcome::kSni ||
                     pre.hello.outcome == tls::ClientHelloOutcome::kNoSni;
    if (tls)
      log_info("listener {}: client {}: SNI \"{}\" matches no route and there is no default cluster, closing",
               listener.name, env->peer.to_string(), pre.hello.sni);
    else
      log_info("listener {}: client {}: first bytes are {} ({}), closing (not_tls: {})", listener.name,
               env->peer.to_string(), tls::to_string(pre.hello.outcome), pre.hello.reason,
               config::to_string(listener.not_tls));
    co_return;
  }
  co_await run_l4_session(client, env, cluster, std::move(pre.bytes));
}

}  // namespace lbd::proxy
