#include "cmd/ticket_rotation.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "runtime/timer.hpp"

namespace lbd::cmd {

Result<proxy::TicketKeyMap> TicketRotation::update(const config::Config& cfg) {
  std::map<std::string, Entry, std::less<>> next;
  const auto now = Clock::now();
  for (const auto& l : cfg.listeners) {
    if (!l.tls || l.tls->ticket_rotation <= Duration::zero()) continue;
    Entry e;
    if (auto it = entries_.find(l.name); it != entries_.end()) {
      e = it->second;
    } else {
      auto keys = tls::TicketKeys::generate();
      if (!keys) return keys.error();
      e.keys = std::move(*keys);
      e.next = now + l.tls->ticket_rotation;
    }
    // A new period counts from the key's start, which is one period before its due time.
    if (e.period != l.tls->ticket_rotation && e.period > Duration::zero()) e.next = e.next - e.period + l.tls->ticket_rotation;
    e.period = l.tls->ticket_rotation;
    next.emplace(l.name, std::move(e));
  }
  entries_ = std::move(next);
  changed_.set();
  return map();
}

proxy::TicketKeyMap TicketRotation::map() const {
  proxy::TicketKeyMap out;
  for (const auto& [name, e] : entries_) out.emplace(name, e.keys);
  return out;
}

void TicketRotation::stop() {
  stopping_ = true;
  changed_.set();
}

Task<void> TicketRotation::run(std::function<void(const proxy::TicketKeyMap&)> publish) {
  while (!stopping_) {
    changed_.reset();
    auto wake = Clock::now() + std::chrono::hours(24);
    for (const auto& [name, e] : entries_) wake = std::min(wake, e.next);
    const auto left = wake - Clock::now();
    if (left > Duration::zero()) {
      (void)co_await timeout(changed_.wait(), left);  // woken early: recompute
      continue;
    }
    bool rotated = false;
    const auto now = Clock::now();
    for (auto& [name, e] : entries_) {
      if (e.next > now) continue;
      auto keys = e.keys->rotate();
      if (!keys) {
        spdlog::error("listener {}: rotating the TLS ticket key: {}; keeping the current one", name,
                      keys.error().message());
      } else {
        e.keys = std::move(*keys);
        rotated = true;
      }
      e.next = now + e.period;
    }
    if (rotated) {
      spdlog::info("TLS session-ticket keys rotated");
      publish(map());
    }
  }
}

}  // namespace lbd::cmd
