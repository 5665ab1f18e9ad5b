#include "proxy/core/endpoint_book.hpp"

#include <set>

namespace lbd::proxy {

std::shared_ptr<EndpointRecord> EndpointBook::get(const std::string& cluster, const SocketAddress& address) {
  auto& slot = records_[{cluster, address.to_string()}];
  if (!slot) slot = std::make_shared<EndpointRecord>();
  return slot;
}

EndpointRecord* EndpointBook::find(const std::string& cluster, const std::string& address) const {
  auto it = records_.find({cluster, address});
  return it == records_.end() ? nullptr : it->second.get();
}

void EndpointBook::keep_only(const config::Config& cfg) {
  std::set<std::pair<std::string, std::string>> wanted;
  for (const auto& c : cfg.clusters)
    for (const auto& e : c.endpoints) wanted.insert({c.name, e.address.to_string()});
  std::erase_if(records_, [&](const auto& entry) { return !wanted.contains(entry.first); });
}

}  // namespace lbd::proxy
