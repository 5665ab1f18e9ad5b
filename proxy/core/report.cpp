#include "proxy/core/report.hpp"

#include <algorithm>

namespace lbd::proxy {

const char* to_string(EndpointHealth h) {
  switch (h) {
    case EndpointHealth::kUp: return "UP";
    case EndpointHealth::kDown: return "DOWN";
    case EndpointHealth::kDrain: return "DRAIN";
    case EndpointHealth::kEjected: return "EJECTED";
  }
  return "UP";
}

void Report::add(const WorkerReport& w) {
  for (const ListenerReport& l : w.listeners) {
    auto it = std::find_if(listeners.begin(), listeners.end(), [&](const ListenerReport& x) { return x.name == l.name; });
    if (it == listeners.end()) {
      listeners.push_back(l);
    } else {
      it->stats += l.stats;
    }
  }
  for (const ClusterReport& c : w.clusters) {
    auto cit = std::find_if(clusters.begin(), clusters.end(), [&](const ClusterReport& x) { return x.name == c.name; });
    if (cit == clusters.end()) {
      clusters.push_back(c);
      continue;
    }
    for (const EndpointReport& e : c.endpoints) {
      auto eit = std::find_if(cit->endpoints.begin(), cit->endpoints.end(),
                              [&](const EndpointReport& x) { return x.address == e.address; });
      if (eit == cit->endpoints.end()) {
        cit->endpoints.push_back(e);
        continue;
      }
      eit->stats += e.stats;
      eit->active += e.active;
      eit->idle += e.idle;
      eit->ejected_in += e.ejected_in;
    }
  }
}

}  // namespace lbd::proxy
