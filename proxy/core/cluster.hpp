#pragma once
// Cluster: one worker's view of a configured cluster — endpoint states, the balancer over them,
// and connecting to an endpoint with timeouts and retries. Owned by a WorkerState; nothing in
// here is shared with other workers.

#include <memory>
#include <variant>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "proxy/balancer/balancer.hpp"
#include "proxy/core/stats.hpp"
#include "runtime/net.hpp"

namespace lbd::proxy {

class Cluster;

/// Counts one open connection (or request) against an endpoint while alive, for least_conn,
/// random_two and max_connections.
class EndpointLease {
 public:
  EndpointLease() = default;
  EndpointLease(Cluster* cluster, std::size_t index);
  EndpointLease(EndpointLease&& o) noexcept
      : cluster_(std::exchange(o.cluster_, nullptr)), index_(o.index_) {}
  EndpointLease& operator=(EndpointLease&& o) noexcept;
  EndpointLease(const EndpointLease&) = delete;
  ~EndpointLease() { release(); }
  void release();
  std::size_t index() const { return index_; }

 private:
  Cluster* cluster_ = nullptr;  // not owned; the WorkerState keeps the cluster alive
  std::size_t index_ = 0;
};

/// A connected upstream socket and the endpoint it goes to.
struct Upstream {
  TcpStream stream;
  std::size_t endpoint = 0;
  EndpointLease lease;
  bool reused = false;  // taken from the keep-alive pool rather than freshly connected
};

/// Why connecting to a cluster failed, for counters and the client's answer.
enum class ConnectFailure { kNoEndpoint, kOverLimit, kRefused, kTimeout, kOther };

struct ConnectError {
  ConnectFailure cause;
  std::string detail;  // "connect 10.0.0.12:8080 for cluster web: connection refused; ..."
};

class Cluster : private IdleWatchListener {
 public:
  Cluster(const config::ClusterConfig& cfg, uint64_t seed);
  Cluster(const Cluster&) = delete;
  ~Cluster();

  const config::ClusterConfig& config() const { return cfg_; }
  const std::string& name() const { return cfg_.name; }
  std::size_t size() const { return states_.size(); }
  const SocketAddress& address(std::size_t i) const { return cfg_.endpoints[i].address; }
  balancer::EndpointState& state(std::size_t i) { return states_[i]; }
  uint32_t active_total() const { return active_total_; }

  /// The hash key for a client, per the cluster's hash_key (source IP; headers are HTTP's).
  balancer::PickContext pick_context(const SocketAddress& client) const;

  /// Picks an endpoint and connects, trying up to `retries` other endpoints when a connect is
  /// refused or times out. Every failed attempt is logged and counted in `stats`. With
  /// `use_pool`, an idle keep-alive connection to the picked endpoint is used when there is one.
  Task<std::variant<Upstream, ConnectError>> connect(balancer::PickContext ctx, ListenerStats* stats, bool use_pool = false);

  /// Returns a connection after a complete, clean exchange: it joins the keep-alive pool.
  /// Beyond keepalive.max_idle idle connections, the ones idle for longer than
  /// keepalive.burst_hold are closed (oldest first); the pool grows past max_idle only with
  /// connections that were in use within the last burst_hold (with 0s: a strict cap).
  void release_to_pool(Upstream up);
  std::size_t idle_count() const { return idle_total_; }

 private:
  friend class EndpointLease;

  const config::ClusterConfig cfg_;  // a copy: lives as long as this per-worker state
  std::vector<balancer::EndpointState> states_;
  std::unique_ptr<balancer::Balancer> balancer_;
  uint32_t active_total_ = 0;

  struct IdleConnection {
    TcpStream stream;
    Clock::time_point since;
    IdleWatch watch;  // after `stream`: stops before the socket closes
  };
  /// An idle connection to endpoint `i` that is still quiet, if any (newest first).
  std::optional<TcpStream> take_idle(std::size_t i);
  /// Closes idle connections that have idled since before `idle_since`, oldest first, until
  /// `keep` are left.
  void trim_idle(Clock::time_point idle_since, std::size_t keep);
  /// While the pool holds more than max_idle, trims it every `hold`, also when no request
  /// comes to do it. `self` says whether the cluster still exists.
  static Task<void> trim_later(std::shared_ptr<Cluster*> self, Duration hold);
  /// While the pool is not empty, closes each idle connection when its keepalive.idle_timeout
  /// passes, also when no request comes to do it.
  static Task<void> expire_later(std::shared_ptr<Cluster*> self);
  /// A pooled connection's watch fired (its backend closed it, or wrote unasked): closes it on
  /// the next loop turn, as nginx closes an idle keep-alive connection its backend closed,
  /// rather than holding its fd until it is next looked at or idle_timeout passes.
  void idle_watch_fired() override;
  static Task<void> drop_fired_later(std::shared_ptr<Cluster*> self);
  /// The endpoint list whose first (oldest) idle connection is the oldest of all; null if none.
  std::vector<IdleConnection>* oldest_idle();
  std::shared_ptr<Cluster*> self_ = std::make_shared<Cluster*>(this);  // nulled by ~Cluster
  bool trim_scheduled_ = false;    // a trim_later() task is running
  bool expiry_scheduled_ = false;  // an expire_later() task is running
  bool drop_scheduled_ = false;    // a drop_fired_later() task is on its way
  std::vector<std::vector<IdleConnection>> idle_;  // per endpoint, oldest first
  std::size_t idle_total_ = 0;
};

}  // namespace lbd::proxy
