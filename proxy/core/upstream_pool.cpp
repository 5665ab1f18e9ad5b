#include "proxy/core/upstream_pool.hpp"

#include "runtime/spawn.hpp"
#include "runtime/timer.hpp"

namespace lbd::proxy {

UpstreamPool::UpstreamPool(const config::Keepalive& keepalive, std::size_t endpoints)
    : keepalive_(keepalive), idle_(endpoints) {}

UpstreamPool::~UpstreamPool() { *self_ = nullptr; }

std::optional<UpstreamConn> UpstreamPool::take(std::size_t i, bool ask_kernel) {
  auto& list = idle_[i];
  auto now = Clock::now();
  while (!list.empty()) {
    IdleConnection c = std::move(list.back());
    list.pop_back();
    --idle_total_;
    if (now - c.since >= keepalive_.idle_timeout) continue;  // closes it
    // A backend that closed (or sent something unasked) made the connection readable while it
    // idled: such a connection must not carry a request.
    if (ask_kernel ? !c.watch.quiet() : c.watch.fired()) continue;
    c.watch.stop();
    return std::move(c.conn);
  }
  return std::nullopt;
}

std::vector<UpstreamPool::IdleConnection>* UpstreamPool::oldest() {
  std::vector<IdleConnection>* oldest = nullptr;
  for (auto& list : idle_) {
    if (!list.empty() && (!oldest || list.front().since < oldest->front().since)) oldest = &list;
  }
  return oldest;
}

void UpstreamPool::trim(Clock::time_point idle_since, std::size_t keep) {
  while (idle_total_ > keep) {
    std::vector<IdleConnection>* list = oldest();
    if (!list || list->front().since > idle_since) return;
    list->erase(list->begin());  // closes it
    --idle_total_;
  }
}

void UpstreamPool::close_idle(std::size_t i) {
  idle_total_ -= idle_[i].size();
  idle_[i].clear();
}

void UpstreamPool::put(std::size_t i, UpstreamConn conn) {
  if (keepalive_.max_idle == 0) return;
  if (conn.has_buffered_input()) return;  // TLS read past the response: unfit, like bytes in the socket
  IdleWatch watch(conn.fd(), this);
  if (watch.fired()) return;  // the backend closed it already, or wrote unasked: it closes here
  auto now = Clock::now();
  trim(now - keepalive_.idle_timeout, 0);  // what has expired
  if (idle_total_ >= keepalive_.max_idle) {
    // Full. Connections that have idled for burst_hold go first, oldest first. One that came
    // back from a request more recently than that is kept: under a steady load above max_idle
    // it is taken again within milliseconds, and closing it would only make the next request
    // open a new one (nginx's keepalive churns like that; HAProxy keeps such connections with
    // their sessions). So the pool grows past max_idle only with connections that were in use
    // within the last burst_hold, and trim_later() takes it back down when the load goes.
    trim(now - keepalive_.burst_hold, keepalive_.max_idle - 1);  // burst_hold 0s: the oldest always goes
  }
  idle_[i].push_back({std::move(conn), now, std::move(watch)});
  ++idle_total_;
  if (idle_total_ > keepalive_.max_idle && !trim_scheduled_) {
    trim_scheduled_ = true;
    (void)spawn(trim_later(self_, keepalive_.burst_hold));
  }
  if (!expiry_scheduled_) {
    expiry_scheduled_ = true;
    (void)spawn(expire_later(self_));
  }
}

Task<void> UpstreamPool::expire_later(std::shared_ptr<UpstreamPool*> self) {
  for (UpstreamPool* p = *self; p; p = *self) {
    const std::vector<IdleConnection>* list = p->oldest();
    if (!list) {
      p->expiry_scheduled_ = false;
      co_return;
    }
    co_await sleep_until(list->front().since + p->keepalive_.idle_timeout);
    if (UpstreamPool* now_p = *self) now_p->trim(Clock::now() - now_p->keepalive_.idle_timeout, 0);
  }
}

void UpstreamPool::idle_watch_fired() {
  if (drop_scheduled_) return;
  drop_scheduled_ = true;
  (void)spawn(drop_fired_later(self_));
}

Task<void> UpstreamPool::drop_fired_later(std::shared_ptr<UpstreamPool*> self) {
  UpstreamPool* p = *self;  // a spawned task starts on the next loop turn, when the driver is done
  if (!p) co_return;
  p->drop_scheduled_ = false;
  for (auto& list : p->idle_) {  // erasing closes them
    p->idle_total_ -= std::erase_if(list, [](const IdleConnection& ic) { return ic.watch.fired(); });
  }
}

Task<void> UpstreamPool::trim_later(std::shared_ptr<UpstreamPool*> self, Duration hold) {
  for (;;) {
    co_await sleep_for(hold);
    UpstreamPool* p = *self;
    if (!p) co_return;  // the snapshot it belonged to is gone, and the pool with it
    p->trim(Clock::now() - hold, p->keepalive_.max_idle);
    if (p->idle_total_ <= p->keepalive_.max_idle) {
      p->trim_scheduled_ = false;
      co_return;
    }
  }
}

}  // namespace lbd::proxy
