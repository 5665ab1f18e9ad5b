#pragma once
// Cluster: one worker's view of a configured cluster — endpoint states, the balancer over them,
// the keep-alive pool, and connecting to an endpoint with timeouts and retries. Owned by the
// worker's snapshot; nothing in here is shared with other workers.

#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "config/config.hpp"
#include "proxy/balancer/balancer.hpp"
#include "proxy/core/stats.hpp"
#include "proxy/core/upstream_pool.hpp"
#include "proxy/http/header_list.hpp"
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
  Cluster* cluster_ = nullptr;  // not owned; the snapshot keeps the cluster alive
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

/// Whether Cluster::connect may hand out a pooled connection, and how sure it must be that the
/// backend has not closed it meanwhile.
enum class PoolUse {
  /// Always a fresh connection (L4 sessions).
  kNever,
  /// A pooled one unless its watch fired: for a request that can be sent again on a fresh
  /// connection should this one turn out closed (idempotent, no body, not a retry already).
  kUnlessFired,
  /// A pooled one only when the kernel confirms it is quiet (IdleWatch::quiet): for a request
  /// that could not be sent twice.
  kChecked,
};

struct ConnectError {
  ConnectFailure cause;
  std::string detail;  // "connect 10.0.0.12:8080 for cluster web: connection refused; ..."
};

class Cluster {
 public:
  Cluster(const config::ClusterConfig& cfg, uint64_t seed);
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  const config::ClusterConfig& config() const { return cfg_; }
  const std::string& name() const { return cfg_.name; }
  std::size_t size() const { return states_.size(); }
  const SocketAddress& address(std::size_t i) const { return cfg_.endpoints[i].address; }
  balancer::EndpointState& state(std::size_t i) { return states_[i]; }
  uint32_t active_total() const { return active_total_; }

  /// The balancer's input for one connection or request, per the cluster's hash_key: the
  /// client's IP, or the value of a request header (`request_headers` is null for L4
  /// sessions, which then have no header key).
  balancer::PickContext pick_context(const SocketAddress& client,
                                     const http::HeaderList* request_headers = nullptr) const;

  /// Picks an endpoint and connects, trying up to `retries` other endpoints when a connect is
  /// refused or times out. Every failed attempt is logged and counted in `stats`. `pool` says
  /// whether an idle keep-alive connection to the picked endpoint may be used instead.
  Task<std::variant<Upstream, ConnectError>> connect(balancer::PickContext ctx, ListenerStats* stats,
                                                     PoolUse pool = PoolUse::kNever);

  /// Returns a connection after a complete, clean exchange: it joins the keep-alive pool (see
  /// UpstreamPool::put).
  void release_to_pool(Upstream up);
  std::size_t idle_count() const { return pool_.idle_count(); }

 private:
  friend class EndpointLease;

  const config::ClusterConfig cfg_;  // a copy: lives as long as this per-worker state
  std::vector<balancer::EndpointState> states_;
  std::unique_ptr<balancer::Balancer> balancer_;
  uint32_t active_total_ = 0;
  UpstreamPool pool_;  // after cfg_, whose keepalive it reads
};

}  // namespace lbd::proxy
