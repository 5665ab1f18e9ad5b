// The admin listener's HTTP server (proxy/admin/admin_server.cpp) over loopback, on both
// drivers, with a fake AdminBackend: what an operator's curl, a Prometheus scraper or a
// Kubernetes probe would see.

#include "proxy/admin/admin_server.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "proxy/admin/metrics.hpp"
#include "runtime/spawn.hpp"
#include "tests/proxy/admin_http_client.hpp"
#include "tests/proxy/admin_test_support.hpp"
#include "tests/runtime/runtime_test_support.hpp"

namespace lbd::proxy {
namespace {

using namespace std::chrono_literals;
using test::AdminClient;
using test::AdminHarness;
using test::FakeBackend;
using test::HttpReply;

class AdminServerTest : public test::RuntimeTest {
 protected:
  FakeBackend backend_;
};
LBD_INSTANTIATE_FOR_DRIVERS(AdminServerTest);

std::string get(std::string_view path, std::string_view extra = "") {
  return "GET " + std::string(path) + " HTTP/1.1\r\nHost: admin\r\n" + std::string(extra) + "\r\n";
}
std::string post(std::string_view path, std::string_view extra = "") {
  return "POST " + std::string(path) + " HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\n" + std::string(extra) + "\r\n";
}

/// One request on a connection of its own.
Task<HttpReply> once(SocketAddress addr, std::string raw, bool head_request = false) {
  auto c = co_await AdminClient::connect(addr);
  if (!c) co_return HttpReply{};
  HttpReply r = co_await c->request(std::move(raw), head_request);
  co_return r;
}

Task<void> every_route(FakeBackend* backend) {
  AdminHarness h;
  CO_ASSERT_OK(h.start(backend));

  HttpReply m = co_await once(h.address(), get("/metrics"));
  CO_ASSERT_TRUE(m.complete);
  EXPECT_EQ(m.status, 200);
  EXPECT_EQ(m.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(m.body, render_prometheus(test::small_report()));

  HttpReply s = co_await once(h.address(), get("/stats"));
  CO_ASSERT_TRUE(s.complete);
  EXPECT_EQ(s.status, 200);
  EXPECT_EQ(s.header("content-type"), "application/json");
  auto j = nlohmann::json::parse(s.body, nullptr, false);
  CO_ASSERT_TRUE(!j.is_discarded());
  EXPECT_EQ(j["clusters"][0]["endpoints"][1]["state"], "DOWN");

  HttpReply page = co_await once(h.address(), get("/status"));
  CO_ASSERT_TRUE(page.complete);
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.header("content-type"), "text/html; charset=utf-8");
  EXPECT_EQ(page.body.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(page.body.find("fetch(\"/stats\""), std::string::npos);

  HttpReply hz = co_await once(h.address(), get("/healthz"));
  EXPECT_EQ(hz.status, 200);
  EXPECT_EQ(hz.body, "ok\n");
  EXPECT_EQ(hz.header("content-type"), "text/plain; charset=utf-8");

  HttpReply root = co_await once(h.address(), get("/"));
  EXPECT_EQ(root.status, 302);
  EXPECT_EQ(root.header("location"), "/status");

  // A query string does not change the route.
  HttpReply q = co_await once(h.address(), get("/healthz?verbose=1"));
  EXPECT_EQ(q.status, 200);
  {
    const bool ok = co_await h.stop();
    EXPECT_TRUE(ok);
  }
}
TEST_P(AdminServerTest, EveryRouteAnswersWithItsStatusTypeAndBody) { run(every_route(&backend_)); }

Task<void> ready_flips(FakeBackend* backend) {
  AdminHarness h;
  CO_ASSERT_OK(h.start(backend));
  HttpReply r = co_await once(h.address(), get("/ready"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ready\n");
  backend->is_ready = false;
  r = co_await once(h.address(), get("/ready"));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "not ready\n");
  backend->is_ready = true;
  r = co_await once(h.address(), get("/ready"));
  EXPECT_EQ(r.status, 200);
  {
    const bool ok = co_await h.stop();
    EXPECT_TRUE(ok);
  }
}
TEST_P(AdminServerTest, ReadyFollowsTheBackend) { run(ready_flips(&backend_)); }

Task<void> head_like_get(FakeBackend* backend) {
  AdminHarness h;
  CO_ASSERT_OK(h.start(backend));
  auto c = co_await AdminClient::connect(h.address());
  CO_ASSERT_OK(c);
  HttpReply r = co_await c->request("HEAD /metrics HTTP/1.1\r\nHost: a\r\n\r\n", true);
  CO_ASSERT_TRUE(r.complete);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-length"), std::to_string(render_prometheus(test::small_report()).size()));
  EXPECT_EQ(r.body, "");
  // No body followed the head: the next response on the connection is read cleanly.
  HttpReply next = co_await c->request(get("/healthz"));
  EXPECT_EQ(next.status, 200);
  EXPECT_EQ(next.body, "ok\n");
  {
    const bool ok = co_await h.stop();
    EXPECT_TRUE(ok);
  }
}
TEST_P(AdminServerTest, HeadAnswersGetsHeadWithoutTheBody) { run(head_like_get(&backend_)); }

Task<void> keep_alive(FakeBackend* backend) {
  AdminHarness h;
  CO_ASSERT_OK(h.start(backend));
  auto c = co_await AdminClient::connect(h.address());
  CO_ASSERT_OK(c);
  HttpReply a = co_await c->request(get("/healthz"));
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.header("connection"), "");
  HttpReply b = co_await c->request(get("/stats"));
  EXPECT_EQ(b.status, 200);
  EXPECT_EQ(backend->report_calls, 1);
  // Two pipelined requests in one write come back in order.
  const bool sent = co_await c->send(get("/ready") + get("/healthz"));
  CO_ASSERT_TRUE(sent);
  HttpReply p1 = co_await c->read_reply();
  HttpReply p2 = co_await c->read_reply();
  EXPECT_EQ(p1.body, "ready\n");
  EXPECT_EQ(p2.body, "ok\n");
  // Connection: close is honoured.
  HttpReply last = co_await c->request(get("/healthz", "Connection: close\r\n"));
  EXPECT_EQ(last.status, 200);
  EXPECT_EQ(last.header("connection"), "close");
  {
    const bool ok = co_await c->closed_by_server();
    EXPECT_TRUE(ok);
  }
  {
    const bool ok = co_await h.stop();
    EXPECT_TRUE(ok);
  }
}
TEST_P(AdminServerTest, KeepAliveCarriesSeveralRequestsAndConnectionCloseEndsIt) { run(keep_alive(&backend_)); }

Task<void> refusals(FakeBackend* backend) {
  AdminHarness h;
  CO_ASSERT_OK(h.start(backend));
  {
    // 404 and 405 keep the connection: their request was read whole.
    auto c = co_await AdminClient::connect(h.address());
    CO_ASSERT_OK(c);
    HttpReply nf = co_await c->request(get("/nope"));
    EXPECT_EQ(nf.status, 404);
    HttpReply m = co_await c->request(post("/metrics"));
    EXPECT_EQ(m.status, 405);
    EXPECT_EQ(m.header("allow"), "GET, HEAD");
    HttpReply d = co_await c->request(get("/clusters/web/endpoints/127.0.0.1:8081/drain"));
    EXPECT_EQ(d.status, 405);
    EXPECT_EQ(d.header("allow"), "POST");
    HttpReply del = co_await c->request("DELETE /stats HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_EQ(del.status, 405);
    HttpReply bad_action = co_await c->request(post("/clusters/web/endpoints/127.0.0.1:8081/explode"));
    EXPECT_EQ(bad_action.status, 404);
    HttpReply ok = co_await c->request(get("/healthz"));
    EXPECT_EQ(ok.status, 200);
  }
  {
    auto c = co_await AdminClient::connect(h.address());
    CO_ASSERT_OK(c);
    HttpReply r = co_await c->request("GET /healthz HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n");
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.header("connection"), "close");
    {
      const bool ok = co_await c->closed_by_server();
      EXPECT_TRUE(ok);
    }
  }
  {
    auto c = co_await AdminClient::connect(h.address());
    CO_ASSERT_OK(c);
    // HTTP/1.1 without Host.
    HttpReply r = co_await c->request("GET /healthz HTTP/1.1\r\n\r\n");
    EXPECT_EQ(r.status, 400);
    {
      const bool ok = co_await c->closed_by_server();
      EXPECT_TRUE(ok);
    }
  }
  {
    auto c = co_await AdminClient::connect(h.address());
    CO_ASSERT_OK(c);
    HttpReply r = co_await c->request(post("/clusters/web/endpoints/1%zz/drain"));
    EXPECT_EQ(r.status, 400);
    EXPECT_TRUE(backend->calls.empty());
  }
  {
    // A declared body over 64 KiB is refused before it is read.
    auto c = co_await AdminClient::connect(h.address());
    CO_ASSERT_OK(c);
    HttpReply r = co_await c->request(
        "POST /clusters/web/endpoints/127.0.0.1:8081/drain HTTP/1.1\r\nHost: a\r\nContent-Length: 70000\r\n\r\n");
    EXPECT_EQ(r.status, 413);
    {
      const bool ok = co_await c->closed_by_server();
      EXPECT_TRUE(ok);
    }
  }
  {
    // A chunked body is counted as it arrives.
    auto c = co_await AdminClient::connect(h.address());
    CO_ASSERT_OK(c);
    std::string chunk(40000, 'x');
    std::string req = "POST /clusters/web/endpoints/127.0.0.1:8081/drain HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 2; ++i) req += "9c40\r\n" + chunk + "\r\n";
    req += "0\r\n\r\n";
    HttpReply r = co_await c->request(req);
    EXPECT_EQ(r.status, 413);
    {
      const bool ok = co_await c->closed_by_server();
      EXPECT_TRUE(ok);
    }
  }
  {
    // A small body is read and dropped, and the connection goes on.
    auto c = co_await AdminClient::connect(h.address());
    CO_ASSERT_OK(c);
    HttpReply r = co_await c->request(
        "POST /clusters/web/endpoints/127.0.0.1:8081/drain HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello");
    EXPECT_EQ(r.status, 200);
    HttpReply next = co_await c->request(get("/healthz"));
    EXPECT_EQ(next.status, 200);
  }
  {
    auto c = co_await AdminClient::connect(h.address());
    CO_ASSERT_OK(c);
    HttpReply r = co_await c->request(get("/healthz", "X-Big: " + std::string(9000, 'a') + "\r\n"));
    EXPECT_EQ(r.status, 431);
    {
      const bool ok = co_await c->closed_by_server();
      EXPECT_TRUE(ok);
    }
  }
  {
    const bool ok = co_await h.stop();
    EXPECT_TRUE(ok);
  }
}
TEST_P(AdminServerTest, RefusedRequestsGetTheirStatus) { run(refusals(&backend_)); }

Task<void> token_guards_posts(FakeBackend* backend) {
  backend->admin_token = "s3cret-token";
  backend->answer = {200, "endpoint 127.0.0.1:8080 of cluster web: DRAIN"};
  AdminHarness h;
  CO_ASSERT_OK(h.start(backend));
  const std::string path = "/clusters/web/endpoints/127.0.0.1%3A8080/drain";

  HttpReply none = co_await once(h.address(), post(path));
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.header("www-authenticate").rfind("Bearer", 0), 0u) << none.header("www-authenticate");
  HttpReply wrong = co_await once(h.address(), post(path, "Authorization: Bearer s3cret-tokeX\r\n"));
  EXPECT_EQ(wrong.status, 401);
  HttpReply prefix = co_await once(h.address(), post(path, "Authorization: Bearer s3cret\r\n"));
  EXPECT_EQ(prefix.status, 401);
  HttpReply basic = co_await once(h.address(), post(path, "Authorization: Basic s3cret-token\r\n"));
  EXPECT_EQ(basic.status, 401);
  EXPECT_TRUE(backend->calls.empty());

  HttpReply right = co_await once(h.address(), post(path, "Authorization: Bearer s3cret-token\r\n"));
  EXPECT_EQ(right.status, 200);
  EXPECT_EQ(right.body, "endpoint 127.0.0.1:8080 of cluster web: DRAIN\n");
  CO_ASSERT_TRUE(backend->calls.size() == 1);
  EXPECT_EQ(backend->calls[0].cluster, "web");
  EXPECT_EQ(backend->calls[0].address, "127.0.0.1:8080");
  EXPECT_EQ(backend->calls[0].action, EndpointAction::kDrain);

  // GETs need no token.
  HttpReply m = co_await once(h.address(), get("/metrics"));
  EXPECT_EQ(m.status, 200);
  {
    const bool ok = co_await h.stop();
    EXPECT_TRUE(ok);
  }
}
TEST_P(AdminServerTest, WithATokenPostsNeedTheBearerToken) { run(token_guards_posts(&backend_)); }

Task<void> endpoint_actions(FakeBackend* backend) {
  AdminHarness h;
  CO_ASSERT_OK(h.start(backend));
  HttpReply plain = co_await once(h.address(), post("/clusters/web/endpoints/127.0.0.1:8080/enable"));
  EXPECT_EQ(plain.status, 200);
  HttpReply v6 = co_await once(h.address(), post("/clusters/web/endpoints/[::1]:8080/drain"));
  EXPECT_EQ(v6.status, 200);
  HttpReply v6_encoded = co_await once(h.address(), post("/clusters/my%20web/endpoints/%5B%3A%3A1%5D%3A8080/enable"));
  EXPECT_EQ(v6_encoded.status, 200);
  CO_ASSERT_TRUE(backend->calls.size() == 3);
  EXPECT_EQ(backend->calls[0].address, "127.0.0.1:8080");
  EXPECT_EQ(backend->calls[0].action, EndpointAction::kEnable);
  EXPECT_EQ(backend->calls[1].address, "[::1]:8080");
  EXPECT_EQ(backend->calls[1].action, EndpointAction::kDrain);
  EXPECT_EQ(backend->calls[2].cluster, "my web");
  EXPECT_EQ(backend->calls[2].address, "[::1]:8080");

  // The backend's status and message are the answer.
  backend->answer = {404, "cluster web has no endpoint 10.9.9.9:1"};
  HttpReply unknown = co_await once(h.address(), post("/clusters/web/endpoints/10.9.9.9:1/drain"));
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.body, "cluster web has no endpoint 10.9.9.9:1\n");
  {
    const bool ok = co_await h.stop();
    EXPECT_TRUE(ok);
  }
}
TEST_P(AdminServerTest, EndpointActionsReachTheBackendWithTheDecodedAddress) { run(endpoint_actions(&backend_)); }

Task<void> read_timeout(FakeBackend* backend) {
  AdminHarness h;
  AdminServerOptions opts;
  opts.read_timeout = 300ms;
  CO_ASSERT_OK(h.start(backend, opts));
  {
    // An idle connection is closed without an answer.
    auto c = co_await AdminClient::connect(h.address());
    CO_ASSERT_OK(c);
    auto t0 = Clock::now();
    {
      const bool ok = co_await c->closed_by_server(5s);
      EXPECT_TRUE(ok);
    }
    EXPECT_GE(Clock::now() - t0, 250ms);
  }
  {
    // A request that stops half-way gets 408.
    auto c = co_await AdminClient::connect(h.address());
    CO_ASSERT_OK(c);
    const bool sent = co_await c->send("GET /healthz HTTP/1.1\r\nHost: a\r\n");
    CO_ASSERT_TRUE(sent);
    HttpReply r = co_await c->read_reply();
    EXPECT_EQ(r.status, 408);
    {
      const bool ok = co_await c->closed_by_server();
      EXPECT_TRUE(ok);
    }
  }
  {
    const bool ok = co_await h.stop();
    EXPECT_TRUE(ok);
  }
}
TEST_P(AdminServerTest, IdleAndStalledConnectionsEndAfterTheReadTimeout) { run(read_timeout(&backend_)); }

Task<void> stop_closes(FakeBackend* backend) {
  AdminHarness h;
  CO_ASSERT_OK(h.start(backend));
  auto c = co_await AdminClient::connect(h.address());
  CO_ASSERT_OK(c);
  HttpReply r = co_await c->request(get("/healthz"));
  EXPECT_EQ(r.status, 200);
  // The connection idles in keep-alive (10 s read timeout): stop must end it now.
  auto t0 = Clock::now();
  {
    const bool ok = co_await h.stop(2s);
    EXPECT_TRUE(ok);
  }
  {
    const bool ok = co_await c->closed_by_server(2s);
    EXPECT_TRUE(ok);
  }
  EXPECT_LT(Clock::now() - t0, 2s);
}
TEST_P(AdminServerTest, StopEndsTheAcceptLoopAndOpenConnections) { run(stop_closes(&backend_)); }

}  // namespace
}  // namespace lbd::proxy
