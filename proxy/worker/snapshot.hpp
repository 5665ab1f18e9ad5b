#pragma once
// Snapshot: one worker's view of one config — the immutable Config, this worker's Cluster
// objects built from it, and for each listener what its sessions run on, with every name
// resolved into a pointer once, here. A reload builds a new Snapshot; sessions keep the one
// they started with (SessionEnv::snapshot), so a reload never changes a connection mid-flight.

#include <cstdint>
#include <memory>
#include <vector>

#include "config/config.hpp"
#include "proxy/core/cluster.hpp"
#include "proxy/l7/router.hpp"

namespace lbd::proxy {

class Snapshot {
 public:
  /// What the sessions of one listener run on.
  struct Listener {
    const config::ListenerConfig* config = nullptr;  // in the snapshot's Config
    Cluster* cluster = nullptr;                      // tcp listeners: where every connection goes
    std::unique_ptr<HttpRouter> router;              // http listeners
  };

  /// `book` is the worker's, which outlives its snapshots.
  Snapshot(std::shared_ptr<const config::Config> cfg, uint64_t seed, EndpointBook* book);
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;

  const config::Config& config() const { return *cfg_; }
  /// The entry of config().listeners[i].
  const Listener& listener(std::size_t i) const { return listeners_[i]; }
  /// This worker's clusters, in config order.
  const std::vector<std::unique_ptr<Cluster>>& clusters() const { return clusters_; }

 private:
  std::shared_ptr<const config::Config> cfg_;
  std::vector<std::unique_ptr<Cluster>> clusters_;  // in config order
  std::vector<Listener> listeners_;                 // in config order
};

}  // namespace lbd::proxy
