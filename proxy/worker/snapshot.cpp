#include "proxy/worker/snapshot.hpp"

#include <string_view>

#include "proxy/core/log.hpp"

namespace lbd::proxy {

namespace {
std::shared_ptr<const tls::TicketKeys> keys_for(const TicketKeyMap& keys, std::string_view listener) {
  auto it = keys.find(listener);
  return it == keys.end() ? nullptr : it->second;
}
}  // namespace

Snapshot::Snapshot(std::shared_ptr<const config::Config> cfg, uint64_t seed, EndpointBook* book,
                   const TicketKeyMap& keys)
    : cfg_(std::move(cfg)) {
  for (const auto& c : cfg_->clusters) clusters_.push_back(std::make_unique<Cluster>(c, seed, book));
  // Config validation guarantees that every name a listener or route uses exists.
  auto cluster = [this](std::string_view name) -> Cluster* {
    for (const auto& c : clusters_)
      if (c->name() == name) return c.get();
    return nullptr;
  };
  listeners_.reserve(cfg_->listeners.size());
  for (const auto& l : cfg_->listeners) {
    Listener entry;
    entry.config = &l;
    if (l.protocol == config::Protocol::kTcp) entry.cluster = cluster(l.cluster);
    if (l.protocol == config::Protocol::kHttp) entry.router = std::make_unique<HttpRouter>(l, cluster);
    if (l.tls) {
      auto ctx = tls::ServerContext::create(l.tls->credentials, keys_for(keys, l.name));
      if (ctx)
        entry.tls = std::move(*ctx);
      else
        log_error("listener {}: cannot set up TLS: {}; its connections are closed", l.name, ctx.error().message());
    }
    listeners_.push_back(std::move(entry));
  }
}

void Snapshot::set_ticket_keys(const TicketKeyMap& keys) const {
  for (const auto& l : listeners_)
    if (l.tls) l.tls->set_ticket_keys(keys_for(keys, l.config->name));
}

}  // namespace lbd::proxy
