#pragma once
// The admin listener's GET /metrics: a Report in the Prometheus text exposition format 0.0.4.
//
// Names follow Prometheus' conventions and haproxy's exporter: an `lbd_` prefix, then the
// object (`listener`, `endpoint`, `cluster`), base units (seconds, bytes) and `_total` on
// counters. Every family has # HELP and # TYPE, and families whose samples carry a cause or a
// status class use one label for it (`reason`, `cause`, `code`) rather than a name each, so one
// query sums over them.
//
// An endpoint's health is `lbd_endpoint_state{cluster,endpoint,state}`, haproxy's style: one
// sample per state ("UP", "DOWN", "DRAIN", "EJECTED"), 1 for the current one and 0 for the
// others. `lbd_endpoint_state{state="DOWN"} == 1` then selects the endpoints that are down, and
// adding a state later does not change what the others mean (a single numeric gauge would).

#include <string>

#include "proxy/core/report.hpp"

namespace lbd::proxy {

/// The Content-Type of render_prometheus' output.
inline constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

/// Every figure of `r` as Prometheus text (format 0.0.4), ending with a newline.
std::string render_prometheus(const Report& r);

}  // namespace lbd::proxy
