#include "proxy/core/cluster.hpp"

#include <cerrno>

#include "proxy/balancer/hash_key.hpp"
#include "proxy/core/log.hpp"

namespace lbd::proxy {

namespace {
BalanceKind kind_of(config::Balance b) {
  switch (b) {
    case config::Balance::RoundRobin: return BalanceKind::kRoundRobin;
    case config::Balance::LeastConn: return BalanceKind::kLeastConn;
    case config::Balance::RandomTwo: return BalanceKind::kRandomTwo;
    case config::Balance::Hash: return BalanceKind::kHash;
  }
  return BalanceKind::kRoundRobin;
}
}  // namespace

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

Cluster::Cluster(const config::ClusterConfig& cfg, uint64_t seed) : cfg_(cfg) {
  states_.resize(cfg_.endpoints.size());
  for (std::size_t i = 0; i < states_.size(); ++i) {
    states_[i].weight = cfg_.endpoints[i].weight;
    states_[i].hash_id = hash_bytes(cfg_.endpoints[i].address.to_string());
  }
  balancer_ = make_balancer(kind_of(cfg_.balance), states_, seed);
}

PickContext Cluster::pick_context(const SocketAddress& client) const {
  PickContext ctx;
  if (cfg_.balance == config::Balance::Hash && cfg_.hash_key.kind == config::HashKeyKind::SourceIp)
    ctx.hash_key = hash_source_address(*client.data());
  return ctx;
}

Task<std::variant<Upstream, ConnectError>> Cluster::connect(PickContext ctx, ListenerStats* stats) {
  ExcludeSet tried;
  std::string failures;
  ConnectFailure last = ConnectFailure::NoEndpoint;
  for (uint32_t attempt = 0; attempt <= cfg_.retries; ++attempt) {
    if (cfg_.max_connections != 0 && active_total_ >= cfg_.max_connections) {
      co_return ConnectError{ConnectFailure::OverLimit,
                             "cluster " + cfg_.name + " is at max_connections (" +
                                 std::to_string(cfg_.max_connections) + ")"};
    }
    auto picked = balancer_->pick(ctx, tried);
    if (!picked) break;
    std::size_t i = *picked;
    tried.insert(i);
    EndpointLease lease(this, i);
    auto stream = co_await TcpStream::connect(address(i), cfg_.timeouts.connect);
    if (stream) co_return Upstream{std::move(*stream), i, std::move(lease)};

    int err = stream.error().value();
    std::string what = "connect " + address(i).to_string() + " for cluster " + cfg_.name + ": " +
                       (err == ETIMEDOUT ? "timed out after " + std::to_string(cfg_.timeouts.connect.count()) + "ms"
                                         : stream.error().message());
    log_warn("{}", what);
    if (!failures.empty()) failures += "; ";
    failures += what;
    if (err == ETIMEDOUT) {
      last = ConnectFailure::Timeout;
      if (stats) ++stats->connect_timeout;
    } else if (err == ECONNREFUSED || err == ECONNRESET) {
      last = ConnectFailure::Refused;
      if (stats) ++stats->connect_refused;
    } else {
      last = ConnectFailure::Other;
      if (stats) ++stats->connect_other;
    }
  }
  if (failures.empty()) failures = "cluster " + cfg_.name + " has no endpoint available";
  co_return ConnectError{last, failures};
}

}  // namespace lbd::proxy
