#pragma once
// Snapshot: one worker's view of one config — the immutable Config, this worker's Cluster
// objects built from it, and for each listener what its sessions run on, with every name
// resolved into a pointer once, here. A reload builds a new Snapshot; sessions keep the one
// they started with (SessionEnv::snapshot), so a reload never changes a connection mid-flight.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "proxy/core/cluster.hpp"
#include "proxy/l7/router.hpp"
#include "proxy/tls/ticket_keys.hpp"
#include "proxy/tls/tls_context.hpp"

namespace lbd::proxy {

/// The session-ticket keys of each TLS listener, by listener name: made and rotated by the
/// control thread, immutable, read by every worker (see proxy/tls/ticket_keys.hpp). A listener
/// without an entry issues no tickets.
using TicketKeyMap = std::map<std::string, std::shared_ptr<const tls::TicketKeys>, std::less<>>;

class Snapshot {
 public:
  /// What the sessions of one listener run on.
  struct Listener {
    const config::ListenerConfig* config = nullptr;  // in the snapshot's Config
    Cluster* cluster = nullptr;                      // tcp listeners: where every connection goes
    std::unique_ptr<HttpRouter> router;              // http listeners
    /// tls listeners: this worker's contexts from the config's credentials. Null on a tls
    /// listener only if OpenSSL could not build them (logged); its connections are closed.
    std::unique_ptr<tls::ServerContext> tls;
  };

  /// `book` is the worker's, which outlives its snapshots.
  Snapshot(std::shared_ptr<const config::Config> cfg, uint64_t seed, EndpointBook* book, const TicketKeyMap& keys);
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;

  const config::Config& config() const { return *cfg_; }
  /// The entry of config().listeners[i].
  const Listener& listener(std::size_t i) const { return listeners_[i]; }
  /// This worker's clusters, in config order.
  const std::vector<std::unique_ptr<Cluster>>& clusters() const { return clusters_; }
  /// Gives every TLS listener its rotated keys (new tickets use them from now on).
  void set_ticket_keys(const TicketKeyMap& keys) const;

 private:
  std::shared_ptr<const config::Config> cfg_;
  std::vector<std::unique_ptr<Cluster>> clusters_;  // in config order
  std::vector<Listener> listeners_;                 // in config order
};

}  // namespace lbd::proxy
