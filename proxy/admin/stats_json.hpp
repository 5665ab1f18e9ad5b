#pragma once
// The admin listener's GET /stats: a Report as JSON, the figures of /metrics nested by object,
// for the status page (status_page.hpp) and for scripts.
//
//   {"process":   {version, driver, workers, start_time, config_generation,
//                  reloads: {ok, failed}, ready, draining},
//    "listeners": [{name, address, protocol,
//                   connections: {accepted, active, rejected_over_limit},
//                   requests, responses: {"1xx".."5xx"}, http_errors,
//                   bytes: {received, sent}, no_upstream,
//                   errors: {client, upstream, idle_timeouts,
//                            connect: {refused, timeout, other}}}],
//    "clusters":  [{name, balance, states: {"UP": n, "DOWN": n, "DRAIN": n, "EJECTED": n},
//                   endpoints: [{address, state: "UP"|"DOWN"|"DRAIN"|"EJECTED", weight,
//                                active, idle, requests, responses: {"1xx".."5xx"},
//                                connect_errors: {refused, timeout, other},
//                                failures, ejections, ejected_in,
//                                check: {enabled, last, failures, transitions},
//                                response_time: {bounds: [s...], counts: [n...] (per bucket,
//                                                not cumulative, the last one +Inf), sum, count}}]}]}
//
// Names that are not valid UTF-8 come out with U+FFFD in place of the bad bytes.

#include <string>

#include "proxy/core/report.hpp"

namespace lbd::proxy {

/// `r` as one line of JSON (see above).
std::string render_json(const Report& r);

}  // namespace lbd::proxy
