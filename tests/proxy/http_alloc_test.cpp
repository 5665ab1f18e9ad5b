// Steady-state allocation check for the per-request path: parsing a request and its body and
// serializing the head for upstream must not allocate once the reused buffers have grown. A
// binary of its own, because it replaces the global operator new to count.

#include <gtest/gtest.h>

#include <cstdlib>
#include <new>
#include <string>

#include "proxy/http/forward.hpp"
#include "proxy/http/request_parser.hpp"
#include "proxy/http/response_parser.hpp"

namespace {
thread_local bool counting = false;
thread_local size_t allocations = 0;
}  // namespace

void* operator new(std::size_t n) {
  if (counting) ++allocations;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace lbd::http {
namespace {

TEST(HttpAllocations, NonePerRequestOnceWarm) {
  const std::string request =
      "POST /api/v1/items?page=2 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: bench/1.0\r\n"
      "Accept: application/json\r\nX-Forwarded-For: 192.0.2.1\r\nTransfer-Encoding: chunked\r\n\r\n"
      "10\r\n0123456789abcdef\r\n0\r\n\r\n";
  const std::string response =
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
  std::string stream;
  for (int i = 0; i < 50; ++i) stream += request;

  HttpRequestParser requests;
  HttpResponseParser responses;
  RequestForwardConfig config;
  std::string out;
  out.reserve(4096);
  size_t messages = 0;
  size_t body_bytes = 0;
  auto exchange = [&](std::string_view rest) {
    while (!rest.empty()) {
      HttpEvent ev = requests.parse(rest);
      ASSERT_NE(ev.kind, HttpEvent::kError) << requests.error().reason;
      rest.remove_prefix(ev.consumed);
      if (ev.kind == HttpEvent::kHeadComplete) {
        out.clear();
        serialize_request_head(requests.head(), config, {"10.0.0.1", "http"}, out);
      } else if (ev.kind == HttpEvent::kBodyData) {
        body_bytes += ev.data.size();
      } else if (ev.kind == HttpEvent::kMessageComplete) {
        ++messages;
        responses.expect_response(requests.head().method);
        std::string_view r = response;
        for (HttpEvent rev = responses.parse(r); rev.kind != HttpEvent::kMessageComplete;
             rev = responses.parse(r)) {
          ASSERT_NE(rev.kind, HttpEvent::kError) << responses.error().reason;
          ASSERT_NE(rev.kind, HttpEvent::kNeedMore);
          r.remove_prefix(rev.consumed);
        }
      }
    }
  };
  exchange(request);  // warm-up: buffers grow to size here
  counting = true;
  exchange(stream);
  counting = false;
  EXPECT_EQ(messages, 51u);
  EXPECT_EQ(body_bytes, 51u * 16);
  EXPECT_EQ(allocations, 0u);
}

}  // namespace
}  // namespace lbd::http
