#pragma once
// ParserCache: HTTP/1 parsers lent per request (request parsers) or per exchange (response
// parsers) from a per-thread cache, so that a keep-alive connection idling between requests
// holds neither: with thousands of idle clients that is most of their memory. Only a parser
// that ended cleanly, between messages, goes back.

#include <memory>
#include <vector>

#include "proxy/http/http_event.hpp"

namespace lbd::proxy {

template <class Parser>
class ParserCache {
 public:
  static std::unique_ptr<Parser> take(const http::HttpParserLimits& limits) {
    auto& free = list();
    for (std::size_t i = free.size(); i-- > 0;) {
      if (free[i].limits.max_request_line == limits.max_request_line &&
          free[i].limits.max_header_bytes == limits.max_header_bytes) {
        auto p = std::move(free[i].parser);
        free[i] = std::move(free.back());
        free.pop_back();
        return p;
      }
    }
    return std::make_unique<Parser>(limits);
  }
  /// Precondition: `p` is null or between messages.
  static void give(std::unique_ptr<Parser> p, const http::HttpParserLimits& limits) {
    auto& free = list();
    if (p && free.size() < kMaxCached) free.push_back({std::move(p), limits});
  }

 private:
  static constexpr std::size_t kMaxCached = 256;
  struct Entry {
    std::unique_ptr<Parser> parser;
    http::HttpParserLimits limits;
  };
  static std::vector<Entry>& list() {
    thread_local std::vector<Entry> free;
    return free;
  }
};

}  // namespace lbd::proxy
