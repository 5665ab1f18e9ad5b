#pragma once
// WorkerState: one worker's routing snapshot — an immutable Config and this worker's Cluster
// objects built from it. A reload builds a new WorkerState; sessions keep the one they started
// with (shared_ptr) until they end, so a reload never changes a connection mid-flight.

#include <memory>
#include <string>
#include <unordered_map>

#include "config/config.hpp"
#include "proxy/core/cluster.hpp"
#include "proxy/l7/router.hpp"

namespace lbd::proxy {

class WorkerState {
 public:
  WorkerState(std::shared_ptr<const config::Config> cfg, uint64_t seed);

  const config::Config& config() const { return *cfg_; }
  /// The cluster called `name`. Precondition: the config names it (validation guarantees it).
  Cluster* cluster(const std::string& name) const;
  /// The routes of http listener `listener`; nullptr for other listeners.
  const HttpRouter* router(const std::string& listener) const;

 private:
  std::shared_ptr<const config::Config> cfg_;
  std::unordered_map<std::string, std::unique_ptr<Cluster>> clusters_;
  std::unordered_map<std::string, std::unique_ptr<HttpRouter>> routers_;  // by listener name
};

}  // namespace lbd::proxy
