#include "proxy/core/cluster.hpp"

#include <cerrno>
#include <chrono>

#include "proxy/balancer/hash_key.hpp"
#include "proxy/core/log.hpp"
#include "runtime/spawn.hpp"
#include "runtime/timer.hpp"

namespace lbd::proxy {

EndpointLease::EndpointLease(Cluster* cluster, std::size_t index) : cluster_(cluster), index_(index) {
  ++cluster_->states_[index_].active;
  ++cluster_->active_total_;
}

EndpointLease& EndpointLease::operator=(EndpointLease&& o) noexcept {
  if (this != &o) {
    release();
    cluster_ = std::exchange(o.cluster_, nullptr);
    index_ = o.index_;
  }
  return *this;
}

void EndpointLease::release() {
  if (!cluster_) return;
  --cluster_->states_[index_].active;
  --cluster_->active_total_;
  cluster_ = nullptr;
}

Cluster::Cluster(const config::ClusterConfig& cfg, uint64_t seed)
    : cfg_(cfg), pool_(cfg_.keepalive, cfg_.endpoints.size()) {
  states_.resize(cfg_.endpoints.size());
  for (std::size_t i = 0; i < states_.size(); ++i) {
    states_[i].weight = cfg_.endpoints[i].weight;
    states_[i].hash_id = balancer::hash_bytes(cfg_.endpoints[i].address.to_string());
  }
  balancer_ = balancer::make_balancer(cfg_.balance, states_, seed);
}

balancer::PickContext Cluster::pick_context(const SocketAddress& client,
                                            const http::HeaderList* request_headers) const {
  balancer::PickContext ctx;
  if (cfg_.balance != balancer::BalanceKind::kHash) return ctx;
  switch (cfg_.hash_key.kind) {
    case config::HashKeyKind::kSourceIp:
      ctx.hash_key = balancer::hash_source_address(*client.data());
      break;
    case config::HashKeyKind::kHeader:
      if (request_headers) {
        if (auto v = request_headers->get(cfg_.hash_key.header_name)) ctx.hash_key = balancer::hash_bytes(*v);
      }
      break;
  }
  return ctx;
}

void Cluster::release_to_pool(Upstream up) {
  up.lease.release();
  pool_.put(up.endpoint, std::move(up.stream));
}

Task<std::variant<Upstream, ConnectError>> Cluster::connect(balancer::PickContext ctx, ListenerStats* stats,
                                                            PoolUse pool) {
  balancer::ExcludeSet tried;
  std::string failures;
  ConnectFailure last = ConnectFailure::kNoEndpoint;
  for (uint32_t attempt = 0; attempt <= cfg_.retries; ++attempt) {
    if (cfg_.max_connections != 0 && active_total_ >= cfg_.max_connections) {
      co_return ConnectError{ConnectFailure::kOverLimit,
                             "cluster " + cfg_.name + " is at max_connections (" +
                                 std::to_string(cfg_.max_connections) + ")"};
    }
    auto picked = balancer_->pick(ctx, tried);
    if (!picked) break;
    std::size_t i = *picked;
    tried.insert(i);
    EndpointLease lease(this, i);
    if (pool != PoolUse::kNever && pool_.idle_count() > 0) {
      if (auto idle = pool_.take(i, pool == PoolUse::kChecked)) {
        co_return Upstream{std::move(*idle), i, std::move(lease), true};
      }
    }
    auto stream = co_await TcpStream::connect(address(i), cfg_.timeouts.connect);
    if (stream) {
      // Once per connection, not per request: a pooled connection keeps the option.
      (void)stream->set_nodelay(true);
      co_return Upstream{std::move(*stream), i, std::move(lease)};
    }

    int err = stream.error().value();
    const auto connect_ms = std::chrono::duration_cast<std::chrono::milliseconds>(cfg_.timeouts.connect).count();
    std::string what = "connect " + address(i).to_string() + " for cluster " + cfg_.name + ": " +
                       (err == ETIMEDOUT ? "timed out after " + std::to_string(connect_ms) + "ms"
                                         : stream.error().message());
    log_warn("{}", what);
    if (!failures.empty()) failures += "; ";
    failures += what;
    if (err == ETIMEDOUT) {
      last = ConnectFailure::kTimeout;
      if (stats) ++stats->connect_timeout;
    } else if (err == ECONNREFUSED || err == ECONNRESET) {
      last = ConnectFailure::kRefused;
      if (stats) ++stats->connect_refused;
    } else {
      last = ConnectFailure::kOther;
      if (stats) ++stats->connect_other;
    }
  }
  if (failures.empty()) failures = "cluster " + cfg_.name + " has no endpoint available";
  co_return ConnectError{last, failures};
}

}  // namespace lbd::proxy
