#pragma once
// HealthChecker: the active health checks of the whole process. It runs on the daemon's control
// thread, one check loop per (cluster, endpoint address) of every cluster with a health_check:
// one owner per endpoint, never one per worker, so a backend sees one check per interval however
// many workers there are. Each UP <-> DOWN transition is logged and handed to OnChange, which the
// daemon uses to post the new state to every worker by mailbox (workers share no memory).
//
// Scheduling: the first check of each endpoint comes at a random offset within one interval,
// as HAProxy spreads its first checks, so that a start or a reload does not check every backend
// at the same instant; after that every `interval` plus a random 0..`jitter`.
//
// Every method runs on the control thread, inside its runtime (apply() spawns the loops there).

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "proxy/health/check_state.hpp"
#include "proxy/health/health_check.hpp"
#include "runtime/cancel.hpp"
#include "runtime/event.hpp"
#include "runtime/socket_address.hpp"
#include "runtime/task.hpp"

namespace lbd::health {

/// An endpoint went DOWN or came back UP.
struct HealthChange {
  std::string cluster;
  SocketAddress address;
  bool up = false;
  std::string cause;  // the check that decided it: "HTTP 503 on /healthz"
};

/// One endpoint's checks as the admin page shows them.
struct EndpointCheck {
  CheckState state;          // up/down, the current run, checks / failures / transitions so far
  bool checked = false;      // false until the first check has ended
  bool last_success = false;
  std::string last_result;   // the latest check's cause, "HTTP 200 on /healthz"; "" before one
  Duration last_duration{};  // how long the latest check took

  bool down() const { return state.down(); }
  /// Failed checks since the endpoint's loop started (kept across reloads).
  uint64_t check_failures() const { return state.failures(); }
  uint64_t transitions() const { return state.transitions(); }
  /// "HTTP 200 on /healthz in 1.2ms"; "" before the first check.
  std::string last_check_text() const;
};

class HealthChecker {
 public:
  /// Called on the control thread for each transition, after it was logged. It must not call
  /// apply() or stop().
  using OnChange = std::function<void(const HealthChange&)>;

  /// `seed` makes the random offsets repeatable; 0 takes one from std::random_device.
  explicit HealthChecker(OnChange on_change, uint64_t seed = 0);
  /// Precondition: stop() has completed, or the runtime running the loops is gone already.
  ~HealthChecker();
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  /// Installs `cfg`'s checks. The first call starts a loop for every endpoint of every cluster
  /// with a health_check, each UP. A later call (a reload) keeps the state and the running loop
  /// of every (cluster, address) still checked — its new settings apply from its next check,
  /// and a DOWN endpoint stays DOWN until `rise` checks pass —, stops the loops of endpoints
  /// that are gone or no longer checked, and starts new ones UP (with no OnChange: UP is what a
  /// worker assumes without being told).
  void apply(const config::Config& cfg);
  /// Cancels every loop and waits until they all ended; a check in flight is abandoned and not
  /// counted. Afterwards nothing is checked until the next apply().
  Task<void> stop();

  /// True when the endpoint's checks say DOWN; false for one without checks.
  bool is_down(std::string_view cluster, const SocketAddress& address) const;
  /// The endpoint's checks, or nullptr when it has none (no such endpoint, or its cluster has
  /// no health_check). Valid until the next apply() or stop().
  const EndpointCheck* find(std::string_view cluster, const SocketAddress& address) const;
  /// Every endpoint that is DOWN now, as the HealthChange that took it down would say (up =
  /// false, cause = its latest check). For the daemon to tell the workers again after a reload,
  /// since a worker's new snapshot starts every endpoint UP.
  std::vector<HealthChange> down_endpoints() const;
  /// Endpoints with a running check loop.
  std::size_t size() const { return probes_.size(); }

 private:
  /// One endpoint's check loop and what it knows. Heap-allocated so that its loop's pointer to
  /// it stays valid while the map changes.
  struct Probe {
    std::string cluster;
    SocketAddress address;
    config::HealthCheck settings;  // replaced by apply(); read afresh by every round
    EndpointCheck view;
    CancelSource stop;  // ends the loop
    Event done;         // set when the loop has ended
  };
  using Key = std::pair<std::string, std::string>;  // cluster name, SocketAddress::to_string()

  static Task<void> run_probe(HealthChecker* self, Probe* probe);
  void start(Probe* probe);
  void take_result(Probe& probe, const CheckResult& result);
  Duration random_below(Duration limit);
  Duration random_up_to(Duration limit);

  OnChange on_change_;
  std::mt19937_64 rng_;
  std::map<Key, std::unique_ptr<Probe>> probes_;
  /// Removed by apply(), cancelled, their loops not yet ended; freed once `done` is set.
  std::vector<std::unique_ptr<Probe>> retiring_;
};

}  // namespace lbd::health
