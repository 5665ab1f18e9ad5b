#pragma once
// Control: what the daemon's control thread runs beside signal handling — the active health
// checks (one check loop per endpoint for the whole process, results posted to every worker's
// mailbox) and the AdminBackend of the admin listener (figures gathered from every worker by
// mailbox, maintenance posted to every worker), with the admin listener that serves it
// (proxy/admin/admin_server.hpp). Everything here runs on the control thread's runtime;
// workers are reached only through their mailboxes.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "proxy/admin/admin_backend.hpp"
#include "proxy/core/report.hpp"
#include "proxy/health/health_checker.hpp"
#include "proxy/worker/proxy_worker.hpp"
#include "runtime/cancel.hpp"
#include "runtime/net.hpp"
#include "runtime/spawn.hpp"
#include "runtime/worker.hpp"

namespace lbd::cmd {

class Control final : public proxy::AdminBackend {
 public:
  Control(std::vector<std::unique_ptr<proxy::ProxyWorker>>* workers, WorkerPool* pool);
  Control(const Control&) = delete;

  /// Takes a config in (at start and after each reload that installed one): health checks
  /// follow its clusters (unchanged endpoints keep their state), and the admin listener
  /// follows admin.listen (bound, moved or closed; unchanged, it stays up with its
  /// connections). Returns "" or what went wrong; a new admin address that cannot be bound
  /// leaves the old one served.
  Task<std::string> apply(std::shared_ptr<const config::Config> cfg);
  /// Closes the admin listener, stops the checks and waits for both.
  Task<void> stop();

  proxy::ProcessReport& process() { return process_; }

  // proxy::AdminBackend
  Task<proxy::Report> report() override;
  bool ready() const override { return process_.ready && !process_.draining; }
  Task<proxy::AdminAnswer> set_endpoint(std::string cluster, std::string address,
                                        proxy::EndpointAction action) override;
  std::string token() const override { return cfg_ && cfg_->admin.token ? *cfg_->admin.token : std::string(); }

 private:
  /// A bound admin listener and the server task that reads it.
  struct AdminSite {
    SocketAddress address;
    std::unique_ptr<StreamListener> listener;
    CancelSource stop;
    std::optional<JoinHandle<void>> server;
  };

  void on_health_change(const health::HealthChange& change);
  /// Binds `address` into `*site` and starts serving it. Returns "" or what went wrong,
  /// naming the key and the address.
  std::string open_admin(const SocketAddress& address, std::unique_ptr<AdminSite>* site);
  /// Stops the admin server and waits until its connections have closed.
  Task<void> close_admin();

  std::vector<std::unique_ptr<proxy::ProxyWorker>>* workers_;  // owned by main()
  WorkerPool* pool_;                                           // owned by main()
  std::shared_ptr<const config::Config> cfg_;
  proxy::ProcessReport process_;
  health::HealthChecker checker_;
  std::unique_ptr<AdminSite> admin_;  // null while admin.listen is absent
};

}  // namespace lbd::cmd
