#pragma once
// UpstreamPool: the idle keep-alive connections of one cluster on one worker, per endpoint. A
// connection joins after a complete, clean exchange and leaves when a request takes it, when
// its backend closes it or writes unasked (it is closed at once, as nginx does), when
// keepalive.idle_timeout passes, or when the pool has held more than keepalive.max_idle for
// longer than keepalive.burst_hold. Owned by its Cluster; nothing here is shared with other
// workers.

#include <memory>
#include <optional>
#include <vector>

#include "config/config.hpp"
#include "proxy/core/upstream_conn.hpp"
#include "runtime/net.hpp"

namespace lbd::proxy {

class UpstreamPool : private IdleWatchListener {
 public:
  /// `keepalive` must outlive the pool (it is the owning cluster's config).
  UpstreamPool(const config::Keepalive& keepalive, std::size_t endpoints);
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;
  ~UpstreamPool();

  /// An idle connection to endpoint `i` that is still quiet and within its idle_timeout, if
  /// any (the newest first). With `ask_kernel`, one pooled in this very loop turn is checked
  /// with the kernel too (IdleWatch::quiet, a poll(2)): the caller's request could not be sent
  /// again if the backend had closed it.
  std::optional<UpstreamConn> take(std::size_t i, bool ask_kernel);
  /// Pools a connection to endpoint `i` after a complete, clean exchange. Beyond max_idle idle
  /// connections, the ones idle for longer than burst_hold are closed (oldest first); the pool
  /// grows past max_idle only with connections that were in use within the last burst_hold
  /// (with 0s: a strict cap). A connection that is unfit already, or any connection when
  /// max_idle is 0, is closed instead.
  void put(std::size_t i, UpstreamConn conn);
  std::size_t idle_count() const { return idle_total_; }
  std::size_t idle_count(std::size_t i) const { return idle_[i].size(); }
  /// Closes every idle connection to endpoint `i` (it went down or was drained).
  void close_idle(std::size_t i);

 private:
  struct IdleConnection {
    UpstreamConn conn;
    Clock::time_point since;
    IdleWatch watch;  // after `conn`: stops before the socket closes
  };
  /// Closes idle connections that have idled since before `idle_since`, oldest first, until
  /// `keep` are left.
  void trim(Clock::time_point idle_since, std::size_t keep);
  /// The endpoint list whose first (oldest) idle connection is the oldest of all; null if none.
  std::vector<IdleConnection>* oldest();
  /// While the pool holds more than max_idle, trims it every `hold`, also when no request
  /// comes to do it. `self` says whether the pool still exists.
  static Task<void> trim_later(std::shared_ptr<UpstreamPool*> self, Duration hold);
  /// While the pool is not empty, closes each idle connection when its idle_timeout passes,
  /// also when no request comes to do it.
  static Task<void> expire_later(std::shared_ptr<UpstreamPool*> self);
  /// A pooled connection's watch fired (its backend closed it, or wrote unasked): closes it on
  /// the next loop turn rather than holding its fd until it is next looked at.
  void idle_watch_fired() override;
  static Task<void> drop_fired_later(std::shared_ptr<UpstreamPool*> self);

  const config::Keepalive& keepalive_;  // owned by the cluster's config, which outlives the pool
  std::vector<std::vector<IdleConnection>> idle_;  // per endpoint, oldest first
  std::size_t idle_total_ = 0;
  std::shared_ptr<UpstreamPool*> self_ = std::make_shared<UpstreamPool*>(this);  // nulled by ~UpstreamPool
  bool trim_scheduled_ = false;    // a trim_later() task is running
  bool expiry_scheduled_ = false;  // an expire_later() task is running
  bool drop_scheduled_ = false;    // a drop_fired_later() task is on its way
};

}  // namespace lbd::proxy
