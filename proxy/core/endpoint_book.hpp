#pragma once
// EndpointBook: what one worker keeps about each endpoint across reloads, per (cluster name,
// endpoint address): its counters, the health verdict of the active checks (sent by the control
// thread through the worker's mailbox), the operator's drain, and this worker's own outlier
// judgement. Every snapshot's Cluster of that name points at the same records, so a keep-alive
// connection still on an older snapshot skips a down endpoint too, and a reload keeps counters
// and states of the endpoints it keeps. Owned by the worker; nothing in it is shared with
// other workers.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "config/config.hpp"
#include "proxy/core/stats.hpp"
#include "runtime/clock.hpp"
#include "runtime/socket_address.hpp"

namespace lbd::proxy {

struct EndpointRecord {
  EndpointStats stats;
  bool down = false;     // the active checks' verdict; false until they prove otherwise
  bool drained = false;  // taken out by the operator (admin POST .../drain)
  // Passive health, as this worker saw it.
  uint32_t consecutive_failures = 0;
  uint32_t ejections_in_a_row = 0;     // doubles the next ejection's length
  Clock::time_point ejected_until{};   // ejected while now < this
};

class EndpointBook {
 public:
  /// The record of `address` in cluster `cluster`, made (up, not drained) on first use.
  std::shared_ptr<EndpointRecord> get(const std::string& cluster, const SocketAddress& address);
  /// The record if it exists, else null.
  EndpointRecord* find(const std::string& cluster, const std::string& address) const;
  /// Forgets the endpoints `cfg` no longer has (clusters of older snapshots keep theirs alive).
  void keep_only(const config::Config& cfg);

  /// Changes whenever a record's down, drained or ejection changes: clusters compare it with
  /// the value they last saw, once per pick, and recompute their endpoints' `up` when it moved.
  uint64_t generation() const { return generation_; }
  void changed() { ++generation_; }

 private:
  std::map<std::pair<std::string, std::string>, std::shared_ptr<EndpointRecord>> records_;
  uint64_t generation_ = 0;
};

}  // namespace lbd::proxy
