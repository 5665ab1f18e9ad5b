#include "proxy/l4/l4_session.hpp"

#include "proxy/core/log.hpp"
#include "proxy/core/relay.hpp"

namespace lbd::proxy {

namespace {
void count_end(ListenerStats& st, PumpEnd end, bool from_client) {
  switch (end) {
    case PumpEnd::kIdle: ++st.idle_timeouts; break;
    case PumpEnd::kReadError: ++(from_client ? st.client_errors : st.upstream_errors); break;
    case PumpEnd::kWriteError: ++(from_client ? st.upstream_errors : st.client_errors); break;
    default: break;
  }
}
}  // namespace

Task<void> run_l4_session(ByteStream client, const SessionEnv* env, Cluster* cluster) {
  ListenerStats& st = *env->stats;
  auto connected = co_await cluster->connect(cluster->pick_context(env->peer), &st);
  if (auto* err = std::get_if<ConnectError>(&connected)) {
    ++st.no_upstream;
    log_warn("listener {}: client {}: no upstream reachable, closing: {}", env->listener->name,
             env->peer.to_string(), err->detail);
    co_return;
  }
  // Both sockets have TCP_NODELAY already: the client's from its listener, the upstream's from
  // Cluster::connect.
  Upstream& up = std::get<Upstream>(connected);
  cluster->record_success(up.endpoint);  // for outlier detection, a tcp session's success is its connect

  // relay_both_ways(), in this frame rather than one more per session (an idle session is
  // mostly its frames).
  const config::Forwarding mode = env->listener->forwarding;
  Relay relay;
  relay.spawn_down(up.io(), client, cluster->config().timeouts.idle, &st.bytes_to_client, env->kill, mode);
  PumpEnd client_end;
  {
    CancelRegion region(&relay.stop_up);
    client_end = co_await relay.up(client, up.io(), env->listener->timeouts.idle, &st.bytes_from_client, mode);
  }
  PumpEnd upstream_end = co_await *relay.down_task;
  count_end(st, client_end, true);
  count_end(st, upstream_end, false);
  if (client_end == PumpEnd::kIdle || upstream_end == PumpEnd::kIdle)
    log_debug("listener {}: client {}: closed after {}ms idle", env->listener->name, env->peer.to_string(),
              std::chrono::duration_cast<std::chrono::milliseconds>(env->listener->timeouts.idle).count());
}

}  // namespace lbd::proxy
