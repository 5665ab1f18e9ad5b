#pragma once
// Cluster: one worker's view of a configured cluster — endpoint states, the balancer over them,
// the keep-alive pool, and connecting to an endpoint with timeouts and retries. Owned by the
// worker's snapshot; nothing in here is shared with other workers.
//
// An endpoint gets new sessions while it is up: not down by the active checks, not drained by
// the operator, and not ejected by this worker's passive health (outlier). Those three live in
// the worker's EndpointBook, which outlasts snapshots; the cluster folds them into the
// balancer's `up` before each pick when the book changed or an ejection ran out.

#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "config/config.hpp"
#include "proxy/balancer/balancer.hpp"
#include "proxy/core/byte_stream.hpp"
#include "proxy/core/endpoint_book.hpp"
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
  ByteStream io() { return ByteStream(&stream); }
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
  /// `book` (the worker's) must outlive the cluster; the cluster keeps its endpoints' records.
  Cluster(const config::ClusterConfig& cfg, uint64_t seed, EndpointBook* book);
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  const config::ClusterConfig& config() const { return cfg_; }
  const std::string& name() const { return cfg_.name; }
  std::size_t size() const { return states_.size(); }
  const SocketAddress& address(std::size_t i) const { return cfg_.endpoints[i].address; }
  balancer::EndpointState& state(std::size_t i) { return states_[i]; }
  const balancer::EndpointState& state(std::size_t i) const { return states_[i]; }
  uint32_t active_total() const { return active_total_; }
  /// The worker's record of endpoint i: counters, health, drain, ejection.
  EndpointRecord& record(std::size_t i) { return *records_[i]; }
  const EndpointRecord& record(std::size_t i) const { return *records_[i]; }
  /// Idle pooled connections to endpoint i.
  std::size_t idle_count(std::size_t i) const { return pool_.idle_count(i); }
  /// Whether endpoint i is ejected by this worker now.
  bool ejected(std::size_t i) const { return records_[i]->ejected_until > Clock::now(); }

  /// Passive health: an exchange with endpoint i went well (a response that is not a failure),
  /// or failed in a way outlier detection counts (reset before a response, read timeout, 5xx
  /// when outlier.http_5xx). Connect errors are counted by connect() itself. `why` goes into
  /// the log line of an ejection.
  void record_success(std::size_t i);
  void record_failure(std::size_t i, std::string_view why);
  /// Counts a response head from endpoint i, `seconds` after the request was sent; a 5xx is
  /// also a failure for outlier detection when the cluster says so.
  void record_response(std::size_t i, int status, double seconds);

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

  /// Folds the book's states into states_[i].up when the book changed since the last look or
  /// an ejection ran out; tells the balancer when any `up` changed.
  void refresh_health();
  /// Ejects endpoint i for base_ejection * 2^n (up to max_ejection), unless it is the last one
  /// of the cluster that is up.
  void maybe_eject(std::size_t i, std::string_view why);

  const config::ClusterConfig cfg_;  // a copy: lives as long as this per-worker state
  EndpointBook* book_;               // the worker's; outlives the cluster
  std::vector<std::shared_ptr<EndpointRecord>> records_;  // per endpoint, from book_
  uint64_t seen_generation_ = ~uint64_t{0};  // book_->generation() folded in last
  Clock::time_point next_unejection_ = Clock::time_point::max();  // the earliest ejected_until ahead
  std::vector<balancer::EndpointState> states_;
  std::unique_ptr<balancer::Balancer> balancer_;
  uint32_t active_total_ = 0;
  UpstreamPool pool_;  // after cfg_, whose keepalive it reads
};

}  // namespace lbd::proxy
