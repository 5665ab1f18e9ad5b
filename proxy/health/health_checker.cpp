#include "proxy/health/health_checker.hpp"

#include <chrono>
#include <cstdio>

#include "proxy/core/log.hpp"
#include "runtime/spawn.hpp"
#include "runtime/timer.hpp"

namespace lbd::health {

std::string EndpointCheck::last_check_text() const {
  if (!checked) return {};
  char took[32];
  std::snprintf(took, sizeof took, " in %.1fms",
                std::chrono::duration<double, std::milli>(last_duration).count());
  return last_result + took;
}

HealthChecker::HealthChecker(OnChange on_change, uint64_t seed) : on_change_(std::move(on_change)) {
  if (seed == 0) {
    std::random_device device;
    seed = (static_cast<uint64_t>(device()) << 32) | device();
  }
  rng_.seed(seed);
}

HealthChecker::~HealthChecker() = default;

void HealthChecker::apply(const config::Config& cfg) {
  std::map<Key, std::unique_ptr<Probe>> next;
  std::size_t started = 0;
  for (const config::ClusterConfig& cluster : cfg.clusters) {
    if (!cluster.health_check) continue;
    for (const config::EndpointConfig& endpoint : cluster.endpoints) {
      Key key{cluster.name, endpoint.address.to_string()};
      if (next.contains(key)) continue;  // the loader refuses duplicates; one loop regardless
      if (auto kept = probes_.find(key); kept != probes_.end()) {
        // Its loop runs on: state and counters stay, the settings apply from its next round.
        kept->second->settings = *cluster.health_check;
        next.emplace(std::move(key), std::move(kept->second));
        probes_.erase(kept);
        continue;
      }
      auto probe = std::make_unique<Probe>();
      probe->cluster = cluster.name;
      probe->address = endpoint.address;
      probe->settings = *cluster.health_check;
      start(probe.get());
      ++started;
      next.emplace(std::move(key), std::move(probe));
    }
  }
  // What is left was removed, or its cluster lost its health_check.
  const std::size_t stopped = probes_.size();
  for (auto& [key, probe] : probes_) {
    probe->stop.cancel();
    retiring_.push_back(std::move(probe));
  }
  probes_ = std::move(next);
  std::erase_if(retiring_, [](const std::unique_ptr<Probe>& p) { return p->done.is_set(); });
  proxy::log_debug("health checks: {} endpoints checked ({} started, {} stopped)", probes_.size(), started,
                   stopped);
}

Task<void> HealthChecker::stop() {
  // Taken out first: nothing else finds these probes while their loops unwind.
  auto probes = std::move(probes_);
  probes_.clear();
  auto retiring = std::move(retiring_);
  retiring_.clear();
  for (auto& [key, probe] : probes) probe->stop.cancel();
  for (auto& [key, probe] : probes) (void)co_await probe->done.wait();
  for (auto& probe : retiring) (void)co_await probe->done.wait();
}

bool HealthChecker::is_down(std::string_view cluster, const SocketAddress& address) const {
  const EndpointCheck* check = find(cluster, address);
  return check && check->down();
}

const EndpointCheck* HealthChecker::find(std::string_view cluster, const SocketAddress& address) const {
  auto it = probes_.find(Key{std::string(cluster), address.to_string()});
  return it == probes_.end() ? nullptr : &it->second->view;
}

std::vector<HealthChange> HealthChecker::down_endpoints() const {
  std::vector<HealthChange> down;
  for (const auto& [key, probe] : probes_) {
    if (probe->view.down()) down.push_back({probe->cluster, probe->address, false, probe->view.last_result});
  }
  return down;
}

void HealthChecker::start(Probe* probe) { (void)spawn(run_probe(this, probe)); }

Task<void> HealthChecker::run_probe(HealthChecker* self, Probe* probe) {
  {
    CancelLink link(&probe->stop);  // stop.cancel() ends whatever the loop awaits
    Result<void> slept = co_await sleep_for(self->random_below(probe->settings.interval));
    while (slept) {
      CheckResult result = co_await run_health_check(probe->settings, probe->address);
      if (probe->stop.is_cancelled()) break;  // cut short by stop: not a verdict on the endpoint
      self->take_result(*probe, result);
      slept = co_await sleep_for(probe->settings.interval + self->random_up_to(probe->settings.jitter));
    }
  }
  probe->done.set();
}

void HealthChecker::take_result(Probe& probe, const CheckResult& result) {
  EndpointCheck& view = probe.view;
  view.checked = true;
  view.last_success = result.success;
  view.last_result = result.cause;
  view.last_duration = result.took;
  const CheckState::Change change = view.state.record(result.success, probe.settings.rise, probe.settings.fall);
  const std::string address = probe.address.to_string();
  if (change == CheckState::Change::kNone) {
    if (!result.success && view.state.up()) {
      proxy::log_debug("cluster {} endpoint {}: check failed: {} ({} of {})", probe.cluster, address, result.cause,
                       view.state.failures_in_row(), probe.settings.fall);
    }
    return;
  }
  const bool up = change == CheckState::Change::kWentUp;
  const uint32_t run = up ? view.state.successes_in_row() : view.state.failures_in_row();
  const char* checks = run == 1 ? "check" : "checks";
  if (up) {
    proxy::log_info("cluster {} endpoint {} is UP: {} ({} {} in a row)", probe.cluster, address, result.cause, run,
                    checks);
  } else {
    proxy::log_warn("cluster {} endpoint {} is DOWN: {} ({} {} in a row)", probe.cluster, address, result.cause,
                    run, checks);
  }
  if (on_change_) on_change_(HealthChange{probe.cluster, probe.address, up, result.cause});
}

Duration HealthChecker::random_below(Duration limit) {
  if (limit <= Duration::zero()) return Duration::zero();
  std::uniform_int_distribution<Duration::rep> pick(0, limit.count() - 1);
  return Duration(pick(rng_));
}

Duration HealthChecker::random_up_to(Duration limit) {
  if (limit <= Duration::zero()) return Duration::zero();
  std::uniform_int_distribution<Duration::rep> pick(0, limit.count());
  return Duration(pick(rng_));
}

}  // namespace lbd::health
