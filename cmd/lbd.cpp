// lbd: the daemon. Parses the command line, loads the config, starts one ProxyWorker per worker
// thread and then waits for signals on the main thread:
//   SIGTERM  graceful drain (stop accepting, finish open sessions, shutdown.drain_timeout)
//   SIGINT   stop now
//   SIGHUP   reload the config (a bad one is logged and the old one kept)
//   SIGUSR1  reopen log files

#include <CLI/CLI.hpp>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cmd/control.hpp"
#include "cmd/logging.hpp"
#include "cmd/ticket_rotation.hpp"
#include "config/config.hpp"
#include "proxy/worker/proxy_worker.hpp"
#include "runtime/io_mode.hpp"
#include "runtime/runtime.hpp"
#include "runtime/signal.hpp"
#include "runtime/spawn.hpp"
#include "runtime/timer.hpp"
#include "runtime/worker.hpp"

using namespace lbd;

namespace {

struct Options {
  std::string config_path = "/etc/lbd/lb.yaml";
  bool check = false;
  std::optional<int> workers;
  std::string io;
  std::string log_level;
};

struct CliOverrides {
  const Options* opts;
  void apply(config::Config& cfg) const {
    if (opts->workers) cfg.workers = *opts->workers;
    if (auto io = parse_io_mode(opts->io)) cfg.io = *io;
    if (auto level = config::parse_log_level(opts->log_level)) cfg.log.level = *level;
  }
};

/// Loads the file and applies the command line's overrides.
config::LoadResult load(const Options& opts) {
  auto loaded = config::load_config_file(opts.config_path);
  if (!loaded) return loaded;
  config::Config cfg = std::move(loaded).value();
  CliOverrides{&opts}.apply(cfg);
  return config::LoadResult(std::move(cfg), loaded.warnings());
}

Task<DriverInfo> driver_info_here() { co_return Runtime::current().driver_info(); }

class Daemon {
 public:
  Daemon(const Options& opts, std::vector<std::unique_ptr<proxy::ProxyWorker>>* workers, WorkerPool* pool)
      : opts_(opts), workers_(workers), pool_(pool), control_(workers, pool) {}

  /// Installs `cfg` on every worker; returns the errors ("" when all went well).
  Task<std::string> apply_all(std::shared_ptr<const config::Config> cfg) {
    auto keys = tickets_.update(*cfg);
    if (!keys) co_return "TLS session-ticket keys: " + keys.error().message() + "\n";
    std::string errors;
    for (unsigned i = 0; i < pool_->size(); ++i) {
      proxy::ProxyWorker* w = (*workers_)[i].get();
      // Named first: GCC 12 miscompiles a capturing lambda in the co_await's full-expression.
      auto make = [w, cfg, k = *keys] { return w->apply(cfg, k); };
      std::string e = co_await pool_->mailbox(i).call(std::move(make));
      // Every worker binds the same addresses: report each problem once.
      if (!e.empty() && errors.find(e) == std::string::npos) errors += e;
    }
    co_return errors;
  }

  Task<void> drain_all(Duration limit) {
    std::vector<JoinHandle<void>> calls;
    for (unsigned i = 0; i < pool_->size(); ++i) calls.push_back(spawn(drain_one(i, limit)));
    for (auto& c : calls) co_await c;
  }

  Task<void> drain_one(unsigned i, Duration limit) {
    proxy::ProxyWorker* w = (*workers_)[i].get();
    auto make = [w, limit] { return w->drain(limit); };  // named: see apply_all
    co_await pool_->mailbox(i).call(std::move(make));
  }

  /// Rotated ticket keys to every worker.
  void publish_keys(const proxy::TicketKeyMap& keys) {
    for (unsigned i = 0; i < pool_->size(); ++i) {
      proxy::ProxyWorker* w = (*workers_)[i].get();
      pool_->mailbox(i).post([w, keys] { w->set_ticket_keys(keys); });
    }
  }

  void stop_all() {
    for (unsigned i = 0; i < pool_->size(); ++i) {
      proxy::ProxyWorker* w = (*workers_)[i].get();
      pool_->mailbox(i).post([w] { w->stop_now(); });
    }
  }

  /// Runs until the daemon should exit; returns the exit code. The health checks and the admin
  /// listener end with it.
  Task<int> run(std::shared_ptr<const config::Config> cfg, SignalSet* signals) {
    auto publish = [this](const proxy::TicketKeyMap& keys) { publish_keys(keys); };  // named: GCC 12
    JoinHandle<void> rotation = spawn(tickets_.run(std::move(publish)));
    int code = co_await serve(std::move(cfg), signals);
    tickets_.stop();
    co_await rotation;
    co_await control_.stop();
    co_return code;
  }

 private:
  Task<int> serve(std::shared_ptr<const config::Config> cfg, SignalSet* signals) {
    std::string errors = co_await apply_all(cfg);
    if (errors.empty()) {
      std::string control_errors = co_await control_.apply(cfg);  // a local first: GCC 12 (docs/architecture.md)
      errors = control_errors;
    }
    if (!errors.empty()) {
      for (auto& line : split_lines(errors)) spdlog::error("{}", line);
      spdlog::error("lbd: cannot start; exiting");
      stop_all();
      co_return 1;
    }
    DriverInfo info = co_await pool_->mailbox(0).call([] { return driver_info_here(); });
    proxy::ProcessReport& process = control_.process();
    process.version = LBD_VERSION;
    process.driver = info.name;
    process.workers = pool_->size();
    process.start_time = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    process.ready = true;
    spdlog::info("lbd {} started: config {}, {} worker(s), I/O driver {} ({}; {})", LBD_VERSION,
                 cfg->source_path, pool_->size(), info.name, info.reason, info.features);
    for (const auto& l : cfg->listeners) {
      spdlog::info("listener {}: {} {} -> {}", l.name, config::to_string(l.protocol), l.listen.to_string(),
                   l.cluster.empty() ? std::to_string(l.routes.size()) + " routes" : "cluster " + l.cluster);
    }

    config::LogConfig access_log = cfg->log;  // the access log in effect (a reload may fail to open a new one)
    for (;;) {
      auto sig = co_await signals->next();
      if (!sig) {
        spdlog::error("reading signals: {}; stopping", sig.error().message());
        stop_all();
        co_return 1;
      }
      switch (*sig) {
        case SIGHUP: {
          spdlog::info("SIGHUP: reloading {}", opts_.config_path);
          auto loaded = load(opts_);
          for (const auto& w : loaded.warnings()) spdlog::warn("reload: {}", w.to_string());
          if (!loaded) {
            for (const auto& e : loaded.errors()) spdlog::error("reload: {}", e.to_string());
            spdlog::error("reload failed: keeping the running configuration");
            ++process.reloads_failed;
            break;
          }
          auto next = std::make_shared<const config::Config>(std::move(loaded).value());
          std::string errs = co_await apply_all(next);
          std::string control_errs = co_await control_.apply(next);
          errs += control_errs;
          ++process.config_generation;
          ++(errs.empty() ? process.reloads_ok : process.reloads_failed);
          if (!errs.empty()) {
            for (auto& line : split_lines(errs)) spdlog::error("reload: {}", line);
          }
          cmd::set_log_level(next->log.level);
          if (next->log.access_log != access_log.access_log ||
              next->log.access_log_format != access_log.access_log_format) {
            if (auto err = cmd::setup_access_log(next->log); !err.empty()) {
              spdlog::error("reload: log.access_log: {}; the access log stays {}", err, access_log.access_log);
            } else {
              access_log = next->log;
              spdlog::info("reload: access log now {} ({})", access_log.access_log,
                           config::to_string(access_log.access_log_format));
            }
          }
          spdlog::info("reload done: new connections use the new configuration");
          cfg = next;
          break;
        }
        case SIGUSR1:
          cmd::reopen_logs();
          break;
        case SIGTERM: {
          // /ready answers 503 from now on; with a ready_delay, lbd goes on serving and
          // accepting meanwhile, so that a load balancer in front stops sending first.
          process.draining = true;
          if (cfg->shutdown.ready_delay > Duration::zero()) {
            spdlog::info("SIGTERM: not ready; draining in {}ms (shutdown.ready_delay)",
                         std::chrono::duration_cast<std::chrono::milliseconds>(cfg->shutdown.ready_delay).count());
            co_await sleep_for(cfg->shutdown.ready_delay);
          }
          auto limit = cfg->shutdown.drain_timeout;
          spdlog::info("SIGTERM: draining (up to {}ms)", std::chrono::duration_cast<std::chrono::milliseconds>(limit).count());
          co_await drain_all(limit);
          spdlog::info("drained; exiting");
          co_return 0;
        }
        case SIGINT:
          spdlog::info("SIGINT: stopping now");
          stop_all();
          co_return 0;
        default:
          break;
      }
    }
  }

  static std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start < text.size()) {
      auto end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      if (end > start) out.push_back(text.substr(start, end - start));
      start = end + 1;
    }
    return out;
  }

  const Options& opts_;
  std::vector<std::unique_ptr<proxy::ProxyWorker>>* workers_;  // owned by main()
  WorkerPool* pool_;                                           // owned by main()
  cmd::Control control_;  // health checks and the admin listener, on this thread
  cmd::TicketRotation tickets_;  // the TLS listeners' session-ticket keys, on this thread
};

}  // namespace

int main(int argc, char** argv) {
  Options opts;
  CLI::App app{"lbd: a load balancer for TCP (L4) and HTTP/1.1 (L7)"};
  app.add_option("-c,--config", opts.config_path, "Configuration file")->capture_default_str();
  app.add_flag("-t,--check", opts.check, "Check the configuration file and exit (0: valid, 1: invalid)");
  app.add_option("--workers", opts.workers, "Worker threads (overrides `workers`)")->check(CLI::Range(1, 1024));
  std::vector<std::string> io_modes;
  for (IoMode m : kIoModes) io_modes.emplace_back(to_string(m));
  app.add_option("--io", opts.io, "I/O driver (overrides `io`)")->check(CLI::IsMember(io_modes));
  app.add_option("--log-level", opts.log_level, "Log level (overrides `log.level`)")
      ->check(CLI::IsMember(config::log_level_names()));
  app.set_version_flag("-v,--version", std::string("lbd ") + LBD_VERSION);
  CLI11_PARSE(app, argc, argv);

  auto loaded = load(opts);
  if (opts.check) {
    if (!loaded) {
      std::cerr << loaded.error_report() << loaded.warning_report();
      std::cerr << "lbd: configuration file " << opts.config_path << " test failed\n";
      return 1;
    }
    std::cerr << loaded.warning_report();  // warnings do not fail the test
    std::cout << "lbd: the configuration file " << opts.config_path << " syntax is ok\n";
    std::cout << config::describe(loaded.value());
    std::cout << "lbd: configuration file " << opts.config_path << " test is successful\n";
    return 0;
  }
  if (!loaded) {
    std::cerr << loaded.error_report() << loaded.warning_report();
    std::cerr << "lbd: cannot start: " << loaded.errors().size() << " error(s) in " << opts.config_path << "\n";
    return 1;
  }
  auto cfg = std::make_shared<const config::Config>(std::move(loaded).value());
  ::signal(SIGPIPE, SIG_IGN);
  // Block the handled signals before any thread starts (the access log's writer thread and the
  // workers among them), so every thread inherits the mask and only the signalfd sees them.
  auto signals = SignalSet::create({SIGTERM, SIGINT, SIGHUP, SIGUSR1});
  if (!signals) {
    std::cerr << "lbd: signalfd: " << signals.error().message() << "\n";
    return 1;
  }
  if (auto err = cmd::setup_logging(cfg->log); !err.empty()) {
    std::cerr << "lbd: " << err << "\n";
    return 1;
  }
  if (auto err = cmd::setup_access_log(cfg->log); !err.empty()) {
    std::cerr << "lbd: " << err << "\n";
    return 1;
  }
  for (const auto& w : loaded.warnings()) spdlog::warn("{}", w.to_string());


  WorkerOptions wopts;
  wopts.count = cfg->workers > 0 ? static_cast<unsigned>(cfg->workers) : WorkerPool::default_count();
  wopts.runtime.io = cfg->io;
  std::vector<std::unique_ptr<proxy::ProxyWorker>> workers;
  for (unsigned i = 0; i < wopts.count; ++i) workers.push_back(std::make_unique<proxy::ProxyWorker>(i));

  RuntimeOptions main_opts;
  main_opts.io = IoMode::kEpoll;  // the control thread only waits for signals and mailbox replies
  Runtime control(main_opts);
  int code;
  {
    WorkerPool pool(wopts, [&workers](unsigned i) { return workers[i]->run(); });
    Daemon daemon(opts, &workers, &pool);
    code = control.block_on(daemon.run(cfg, &*signals));
    pool.join();
  }
  spdlog::default_logger()->flush();
  spdlog::shutdown();  // drains the access log queue
  return code;
}
