#pragma once
// TicketRotation: the session-ticket keys of every TLS listener, made and rotated on the control
// thread and handed to the workers by mailbox (proxy/tls/ticket_keys.hpp says why that needs no
// lock). A listener keeps its keys across reloads for as long as it keeps its name and its
// tickets, so sessions resume across a SIGHUP as they do across workers.

#include <functional>
#include <map>
#include <string>

#include "config/config.hpp"
#include "proxy/worker/snapshot.hpp"
#include "runtime/clock.hpp"
#include "runtime/event.hpp"
#include "runtime/result.hpp"
#include "runtime/task.hpp"

namespace lbd::cmd {

class TicketRotation {
 public:
  /// The keys for `cfg`'s TLS listeners: one already known keeps its keys, a new one gets fresh
  /// keys, one without tickets (ticket_rotation 0) or gone is dropped. Fails only if the
  /// system's random source does.
  Result<proxy::TicketKeyMap> update(const config::Config& cfg);
  /// Rotates each listener's keys when its period has passed and hands the whole map to
  /// `publish` after each rotation, until stop().
  Task<void> run(std::function<void(const proxy::TicketKeyMap&)> publish);
  void stop();

 private:
  struct Entry {
    std::shared_ptr<const tls::TicketKeys> keys;
    Duration period{};
    Clock::time_point next{};
  };
  proxy::TicketKeyMap map() const;

  std::map<std::string, Entry, std::less<>> entries_;
  Event changed_;  // update() or stop(): run() computes its next wake-up again
  bool stopping_ = false;
};

}  // namespace lbd::cmd
