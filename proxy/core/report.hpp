#pragma once
// Report: what the admin listener shows, as plain values. Each worker fills a WorkerReport from
// its own counters and state (ProxyWorker::report, run on the worker through its mailbox); the
// control thread adds the workers' reports up (Report::add) and completes them with what only
// it knows: the process, the active health checks, the maintenance states.

#include <cstdint>
#include <string>
#include <vector>

#include "proxy/core/stats.hpp"

namespace lbd::proxy {

/// An endpoint's state as the status page and the metrics name it.
enum class EndpointHealth {
  kUp,       // gets traffic
  kDown,     // active checks failed `fall` times in a row
  kDrain,    // taken out by the operator (admin POST .../drain): open sessions go on
  kEjected,  // passive health (outlier) ejected it, in at least one worker
};
/// "UP", "DOWN", "DRAIN", "EJECTED".
const char* to_string(EndpointHealth h);

struct EndpointReport {
  std::string address;       // "10.0.0.12:8080", as the config spells it (SocketAddress::to_string)
  uint32_t weight = 1;
  EndpointStats stats;       // summed over workers
  uint64_t active = 0;       // connections (or requests in flight) open now
  uint64_t idle = 0;         // pooled keep-alive connections
  bool down = false;         // active checks say down (the control thread's view)
  bool drained = false;      // the operator drained it
  uint32_t ejected_in = 0;   // workers in which it is ejected now
  // Active checks (filled by the control thread; empty / 0 without health_check).
  bool checked = false;      // the cluster has health_check
  std::string last_check;    // "HTTP 200 in 1.2ms", "connect: connection refused", "" before the first
  uint64_t check_failures = 0;  // failed checks since start (kept across reloads)
  uint64_t transitions = 0;     // UP <-> DOWN changes since start

  EndpointHealth health() const {
    if (drained) return EndpointHealth::kDrain;
    if (down) return EndpointHealth::kDown;
    if (ejected_in > 0) return EndpointHealth::kEjected;
    return EndpointHealth::kUp;
  }
};

struct ClusterReport {
  std::string name;
  std::string balance;  // "round_robin", ...
  std::vector<EndpointReport> endpoints;  // in config order
};

struct ListenerReport {
  std::string name;
  std::string address;   // "0.0.0.0:8080"
  std::string protocol;  // "http" | "tcp"
  ListenerStats stats;   // summed over workers
  bool tls = false;      // terminates TLS
  bool sni = false;      // a tcp listener routing by the ClientHello's SNI (passthrough)
};

/// One worker's part.
struct WorkerReport {
  std::vector<ListenerReport> listeners;  // in config order
  std::vector<ClusterReport> clusters;    // in config order
};

struct ProcessReport {
  std::string version;           // LBD_VERSION
  std::string driver;            // "io_uring" | "epoll"
  unsigned workers = 0;
  double start_time = 0;         // seconds since the Unix epoch
  double report_time = 0;        // when this report was gathered, seconds since the Unix epoch
  uint64_t config_generation = 1;  // 1 for the config lbd started with, +1 per successful reload
  uint64_t reloads_ok = 0;
  uint64_t reloads_failed = 0;
  bool ready = false;            // what GET /ready answers
  bool draining = false;
};

struct Report {
  ProcessReport process;
  std::vector<ListenerReport> listeners;
  std::vector<ClusterReport> clusters;

  /// Adds a worker's counters: listeners and clusters are matched by name, endpoints by
  /// address; ones this report lacks are appended.
  void add(const WorkerReport& w);
};

}  // namespace lbd::proxy
