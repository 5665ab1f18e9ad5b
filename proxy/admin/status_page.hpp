#pragma once
// The admin listener's GET /status: one self-contained HTML page in the spirit of haproxy's
// stats page. It holds no figures itself: a small inline script fetches /stats (stats_json.hpp)
// every 2 s and re-renders a table of listeners and one table per cluster, with request rates
// computed in the browser from the difference between two samples. No external assets, so it
// works offline and behind any firewall.
//
// What a test (or a script driving a browser) can rely on in the rendered DOM:
//   <body data-samples="N">                 N: /stats samples rendered so far
//   <tr data-listener="NAME">               one per listener
//   <tr data-cluster="C" data-endpoint="ADDRESS" data-state="UP|DOWN|DRAIN|EJECTED">
//   <div id="error">                        non-empty while /stats cannot be fetched

#include <string_view>

namespace lbd::proxy {

/// The page (static storage).
std::string_view status_page_html();

}  // namespace lbd::proxy
