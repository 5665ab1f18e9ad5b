#include "proxy/core/cluster.hpp"

#include <cerrno>
#include <chrono>

#include "proxy/balancer/hash_key.hpp"
#include "proxy/core/log.hpp"
#include "runtime/spawn.hpp"
#include "runtime/timer.hpp"

namespace lbd::proxy {

namespace {
BalanceKind kind_of(config::Balance b) {
  switch (b) {
    case config::Balance::kRoundRobin: return BalanceKind::kRoundRobin;
    case config::Balance::kLeastConn: return BalanceKind::kLeastConn;
    case config::Balance::kRandomTwo: return BalanceKind::kRandomTwo;
    case config::Balance::kHash: return BalanceKind::kHash;
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
  idle_.resize(cfg_.endpoints.size());
  for (std::size_t i = 0; i < states_.size(); ++i) {
    states_[i].weight = cfg_.endpoints[i].weight;
    states_[i].hash_id = hash_bytes(cfg_.endpoints[i].address.to_string());
  }
  balancer_ = make_balancer(kind_of(cfg_.balance), states_, seed);
}

PickContext Cluster::pick_context(const SocketAddress& client) const {
  PickContext ctx;
  if (cfg_.balance == config::Balance::kHash && cfg_.hash_key.kind == config::HashKeyKind::kSourceIp)
    ctx.hash_key = hash_source_address(*client.data());
  return ctx;
}

std::optional<TcpStream> Cluster::take_idle(std::size_t i) {
  auto& list = idle_[i];
  auto now = Clock::now();
  while (!list.empty()) {
    IdleConnection c = std::move(list.back());
    list.pop_back();
    --idle_total_;
    if (now - c.since >= cfg_.keepalive.idle_timeout) continue;  // closes it
    // A backend that closed (or sent something unasked) made the connection readable while it
    // idled: such a connection must not carry a request.
    if (c.watch.fired()) continue;
    c.watch.stop();
    return std::move(c.stream);
  }
  return std::nullopt;
}

Cluster::~Cluster() { *self_ = nullptr; }

std::vector<Cluster::IdleConnection>* Cluster::oldest_idle() {
  std::vector<IdleConnection>* oldest = nullptr;
  for (auto& list : idle_) {
    if (!list.empty() && (!oldest || list.front().since < oldest->front().since)) oldest = &list;
  }
  return oldest;
}

void Cluster::trim_idle(Clock::time_point idle_since, std::size_t keep) {
  while (idle_total_ > keep) {
    std::vector<IdleConnection>* oldest = oldest_idle();
    if (!oldest || oldest->front().since > idle_since) return;
    oldest->erase(oldest->begin());  // closes it
    --idle_total_;
  }
}

void Cluster::release_to_pool(Upstream up) {
  up.lease.release();
  if (cfg_.keepalive.max_idle == 0) return;
  IdleWatch watch(up.stream.fd(), this);
  if (watch.fired()) return;  // the backend closed it already, or wrote unasked: it closes here
  auto now = Clock::now();
  const auto& ka = cfg_.keepalive;
  trim_idle(now - ka.idle_timeout, 0);  // what has expired
  if (idle_total_ >= ka.max_idle) {
    // Full. Connections that have idled for burst_hold go first, oldest first. One that came
    // back from a request more recently than that is kept: under a steady load above max_idle
    // it is taken again within milliseconds, and closing it would only make the next request
    // open a new one (nginx's keepalive churns like that; HAProxy keeps such connections with
    // their sessions). So the pool grows past max_idle only with connections that were in use
    // within the last burst_hold, and trim_later() takes it back down when the load goes.
    trim_idle(now - ka.burst_hold, ka.max_idle - 1);  // burst_hold 0s: the oldest always goes
  }
  idle_[up.endpoint].push_back({std::move(up.stream), now, std::move(watch)});
  ++idle_total_;
  if (idle_total_ > ka.max_idle && !trim_scheduled_) {
    trim_scheduled_ = true;
    (void)spawn(trim_later(self_, ka.burst_hold));
  }
  if (!expiry_scheduled_) {
    expiry_scheduled_ = true;
    (void)spawn(expire_later(self_));
  }
}

Task<void> Cluster::expire_later(std::shared_ptr<Cluster*> self) {
  for (Cluster* c = *self; c; c = *self) {
    const std::vector<IdleConnection>* oldest = c->oldest_idle();
    if (!oldest) {
      c->expiry_scheduled_ = false;
      co_return;
    }
    co_await sleep_until(oldest->front().since + c->cfg_.keepalive.idle_timeout);
    if (Cluster* now_c = *self) now_c->trim_idle(Clock::now() - now_c->cfg_.keepalive.idle_timeout, 0);
  }
}

void Cluster::idle_watch_fired() {
  if (drop_scheduled_) return;
  drop_scheduled_ = true;
  (void)spawn(drop_fired_later(self_));
}

Task<void> Cluster::drop_fired_later(std::shared_ptr<Cluster*> self) {
  Cluster* c = *self;  // a spawned task starts on the next loop turn, when the driver is done
  if (!c) co_return;
  c->drop_scheduled_ = false;
  for (auto& list : c->idle_) {  // erasing closes them
    c->idle_total_ -= std::erase_if(list, [](const IdleConnection& ic) { return ic.watch.fired(); });
  }
}

Task<void> Cluster::trim_later(std::shared_ptr<Cluster*> self, Duration hold) {
  for (;;) {
    co_await sleep_for(hold);
    Cluster* c = *self;
    if (!c) co_return;  // the snapshot it belonged to is gone, and its pool with it
    c->trim_idle(Clock::now() - hold, c->cfg_.keepalive.max_idle);
    if (c->idle_total_ <= c->cfg_.keepalive.max_idle) {
      c->trim_scheduled_ = false;
      co_return;
    }
  }
}

Task<std::variant<Upstream, ConnectError>> Cluster::connect(PickContext ctx, ListenerStats* stats, bool use_pool) {
  ExcludeSet tried;
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
    if (use_pool && idle_total_ > 0) {
      if (auto idle = take_idle(i)) co_return Upstream{std::move(*idle), i, std::move(lease), true};
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
