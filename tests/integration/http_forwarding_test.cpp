// What a request and its response look like after lbd: hop-by-hop fields removed both ways,
// X-Forwarded-* added, every other field in its order and letter case; and the routing table:
// host (exact, wildcard), path (prefix, exact), method, header, first match wins, prefix
// rewrite, header edits both ways, no route -> 404.

#include <algorithm>
#include <cstring>
#include <map>

#include "tests/integration/http_harness.hpp"

namespace lbd::it {
namespace {

class HttpForwarding : public HttpTest {};

std::vector<std::string> without_forwarded(std::vector<std::string> names) {
  std::erase_if(names, [](const std::string& n) { return n.rfind("X-Forwarded-", 0) == 0; });
  return names;
}

TEST_P(HttpForwarding, HopByHopFieldsNeverReachTheBackendAndForwardedFieldsAreAdded) {
  HttpBackend backend(respond_ok());
  ASSERT_EQ(start_simple({&backend}), "");
  const std::string client_ip = source_ip(5);
  auto c = connect_to(port_, client_ip);
  ASSERT_TRUE(c.fd) << std::strerror(c.error);
  ASSERT_TRUE(send_all(c.fd.get(),
                       "GET /hop?a=1 HTTP/1.1\r\n"
                       "Host: A.Example:8080\r\n"
                       "X-First: 1\r\n"
                       "connection: keep-alive, Foo\r\n"
                       "Foo: x\r\n"
                       "Keep-Alive: timeout=5\r\n"
                       "TE: trailers\r\n"
                       "Proxy-Connection: keep-alive\r\n"
                       "X-Mixed-CASE: Value  With Spaces\r\n"
                       "X-Forwarded-For: 10.1.2.3\r\n"
                       "X-Forwarded-Proto: https\r\n"
                       "X-Forwarded-Host: spoofed.example\r\n"
                       "x-last: z\r\n"
                       "\r\n"));
  HttpReader r(c.fd.get());
  HttpMessage resp = r.read_final_response();
  EXPECT_EQ(resp.status, 200) << resp.summary();
  ASSERT_TRUE(backend.wait_requests(1));
  HttpMessage req = backend.requests()[0];
  SCOPED_TRACE("backend got:\n" + req.raw_head);
  EXPECT_TRUE(req.complete);
  EXPECT_EQ(req.method, "GET");
  EXPECT_EQ(req.target, "/hop?a=1");
  EXPECT_EQ(req.version, "HTTP/1.1");
  for (const char* hop : {"Connection", "Foo", "Keep-Alive", "TE", "Proxy-Connection", "Transfer-Encoding"})
    EXPECT_EQ(req.count(hop), 0) << hop << " reached the backend";
  // Everything else in the client's order and case, values untouched.
  EXPECT_EQ(without_forwarded(req.names()), (std::vector<std::string>{"Host", "X-First", "X-Mixed-CASE", "x-last"}));
  EXPECT_EQ(req.header("Host").value_or(""), "A.Example:8080");
  EXPECT_EQ(req.header("X-Mixed-CASE").value_or(""), "Value  With Spaces");
  // X-Forwarded-For appended to, the others replaced.
  EXPECT_EQ(req.count("X-Forwarded-For"), 1);
  EXPECT_EQ(req.header("X-Forwarded-For").value_or(""), "10.1.2.3, " + client_ip);
  EXPECT_EQ(req.count("X-Forwarded-Proto"), 1);
  EXPECT_EQ(req.header("X-Forwarded-Proto").value_or(""), "http");
  EXPECT_EQ(req.count("X-Forwarded-Host"), 1);
  EXPECT_TRUE(iequal(req.header("X-Forwarded-Host").value_or(""), "a.example:8080"));

  // Without X-Forwarded-For from the client, lbd creates it.
  ASSERT_TRUE(send_all(c.fd.get(), http_get("/second", "a.example")));
  resp = r.read_final_response();
  EXPECT_EQ(resp.status, 200) << resp.summary();
  ASSERT_TRUE(backend.wait_requests(2));
  HttpMessage second = backend.requests()[1];
  EXPECT_EQ(second.header("X-Forwarded-For").value_or(""), client_ip) << second.raw_head;
  EXPECT_EQ(second.header("X-Forwarded-Host").value_or(""), "a.example") << second.raw_head;
}

TEST_P(HttpForwarding, HopByHopFieldsOfTheResponseNeverReachTheClient) {
  HttpBackend backend([](const BackendExchange& ex, const HttpMessage&) {
    return ex.send(http_response(200, "body",
                                 "Server: test\r\nConnection: X-Resp-Hop\r\nX-Resp-Hop: 1\r\nKeep-Alive: timeout=9\r\n"
                                 "x-Resp-End: 2\r\n"));
  });
  ASSERT_EQ(start_simple({&backend}), "");
  HttpMessage resp = roundtrip(http_get("/", "a"));
  SCOPED_TRACE("client got:\n" + resp.raw_head);
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(resp.body, "body");
  EXPECT_EQ(resp.count("X-Resp-Hop"), 0);
  EXPECT_EQ(resp.count("Keep-Alive"), 0);
  EXPECT_NE(resp.header("Connection").value_or(""), "X-Resp-Hop");
  std::vector<std::string> names = resp.names();
  std::erase_if(names, [](const std::string& n) { return iequal(n, "Content-Length") || iequal(n, "Connection"); });
  EXPECT_EQ(names, (std::vector<std::string>{"Server", "x-Resp-End"}));
}

// ---------------------------------------------------------------------------------------------
// Routing

class HttpRouting : public HttpTest {
 protected:
  void SetUp() override {
    HttpTest::SetUp();
    if (IsSkipped()) return;
    for (const char* id : {"api", "wild", "exact", "static", "post", "canary", "edit"}) {
      backends_[id] = std::make_unique<HttpBackend>(
          [id = std::string(id)](const BackendExchange& ex, const HttpMessage& req) {
            return ex.send(http_response(200, id + " " + req.target, "Server: backend-" + id + "\r\n"));
          },
          id);
    }
    HttpConfigSpec spec;
    spec.cluster = "";  // no default: a request no route takes gets 404
    spec.listener_extra =
        "    routes:\n"
        "      - match: { host: api.example.com, path_prefix: /v1/ }\n"
        "        cluster: api\n"
        "      - match: { host: \"*.example.com\" }\n"
        "        cluster: wild\n"
        "      - match: { path: /exact }\n"
        "        cluster: exact\n"
        "      - match: { path_prefix: /static/ }\n"
        "        cluster: static\n"
        "        rewrite_prefix: /assets/\n"
        "      - match: { method: POST, path_prefix: /m/ }\n"
        "        cluster: post\n"
        "      - match: { headers: { X-Canary: \"1\" } }\n"
        "        cluster: canary\n"
        "      - match: { path_prefix: /edit/ }\n"
        "        cluster: edit\n"
        "        request_headers: { add: { X-Env: prod }, remove: [X-Debug] }\n"
        "        response_headers: { add: { X-Served-By: lbd }, remove: [Server] }\n";
    for (auto& [id, b] : backends_) spec.clusters.push_back({id, {b->address()}, ""});
    ASSERT_EQ(start_http(spec), "");
  }

  /// The backend that answered (the first word of the body), or "<status>" when lbd answered.
  std::string route_of(const std::string& request) {
    HttpMessage resp = roundtrip(request);
    if (!resp.complete) return "<incomplete: " + resp.error + ">";
    if (resp.status != 200) return "<" + std::to_string(resp.status) + ">";
    return resp.body.substr(0, resp.body.find(' '));
  }
  std::string get(const std::string& path, const std::string& host, const std::string& extra = "") {
    return route_of(http_get(path, host, extra));
  }
  int total_requests() const {
    int n = 0;
    for (auto& [id, b] : backends_) n += static_cast<int>(b->request_count());
    return n;
  }

  std::map<std::string, std::unique_ptr<HttpBackend>> backends_;
};

TEST_P(HttpRouting, HostExactAndWildcard) {
  EXPECT_EQ(get("/v1/users", "api.example.com"), "api");
  EXPECT_EQ(get("/v1/users", "API.Example.COM:8080"), "api");  // case and port do not matter
  EXPECT_EQ(get("/v1/users", "a.example.com"), "wild");
  EXPECT_EQ(get("/", "a.example.com"), "wild");
  EXPECT_EQ(get("/", "a.b.example.com"), "wild");
  EXPECT_EQ(get("/", "example.com"), "<404>");
  EXPECT_EQ(get("/", "badexample.com"), "<404>");
  EXPECT_EQ(get("/", "example.com.evil"), "<404>");
}

TEST_P(HttpRouting, FirstMatchWins) {
  // api.example.com/v1/ matches the api route and the wildcard after it: the first one takes it.
  EXPECT_EQ(get("/v1/x", "api.example.com"), "api");
  // Not under /v1/: only the wildcard matches.
  EXPECT_EQ(get("/v2/x", "api.example.com"), "wild");
  // /exact on a wildcard host: the wildcard comes first.
  EXPECT_EQ(get("/exact", "x.example.com"), "wild");
}

TEST_P(HttpRouting, PathExactAndPrefixWithRewrite) {
  EXPECT_EQ(get("/exact", "other.test"), "exact");
  EXPECT_EQ(get("/exact?q=1", "other.test"), "exact");  // the query is not part of the path
  EXPECT_EQ(get("/exact/", "other.test"), "<404>");
  EXPECT_EQ(get("/exactly", "other.test"), "<404>");
  EXPECT_EQ(get("/static/css/a.css?v=2", "other.test"), "static");
  EXPECT_EQ(get("/static", "other.test"), "<404>");
  auto reqs = backends_["static"]->requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].target, "/assets/css/a.css?v=2");
}

TEST_P(HttpRouting, MethodAndHeader) {
  EXPECT_EQ(route_of("POST /m/x HTTP/1.1\r\nHost: h.test\r\nContent-Length: 2\r\n\r\nhi"), "post");
  EXPECT_EQ(get("/m/x", "h.test"), "<404>");
  EXPECT_EQ(get("/any", "h.test", "X-Canary: 1\r\n"), "canary");
  EXPECT_EQ(get("/any", "h.test", "X-Canary: 2\r\n"), "<404>");
  EXPECT_EQ(get("/any", "h.test", "x-canary: 1\r\n"), "canary");  // the name is case-insensitive
  auto post = backends_["post"]->requests();
  ASSERT_EQ(post.size(), 1u);
  EXPECT_EQ(post[0].body, "hi");
}

TEST_P(HttpRouting, HeaderEditsBothWays) {
  HttpMessage resp = roundtrip(http_get("/edit/x", "h.test", "X-Debug: 1\r\nX-Keep: 2\r\n"));
  EXPECT_EQ(resp.status, 200) << resp.summary();
  EXPECT_EQ(resp.count("Server"), 0) << resp.raw_head;
  EXPECT_EQ(resp.header("X-Served-By").value_or(""), "lbd") << resp.raw_head;
  auto reqs = backends_["edit"]->requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].count("X-Debug"), 0) << reqs[0].raw_head;
  EXPECT_EQ(reqs[0].header("X-Env").value_or(""), "prod") << reqs[0].raw_head;
  EXPECT_EQ(reqs[0].header("X-Keep").value_or(""), "2") << reqs[0].raw_head;
  // Other routes are not edited.
  resp = roundtrip(http_get("/exact", "h.test", "X-Debug: 1\r\n"));
  EXPECT_EQ(resp.header("Server").value_or(""), "backend-exact");
  auto exact = backends_["exact"]->requests();
  ASSERT_EQ(exact.size(), 1u);
  EXPECT_EQ(exact[0].header("X-Debug").value_or(""), "1");
  EXPECT_EQ(exact[0].count("X-Env"), 0);
}

TEST_P(HttpRouting, NoRouteIsNotFoundAndReachesNoBackend) {
  HttpMessage resp = roundtrip(http_get("/nowhere", "h.test"));
  EXPECT_TRUE(resp.complete) << resp.summary();
  EXPECT_EQ(resp.status, 404);
  EXPECT_EQ(total_requests(), 0);
  for (auto& [id, b] : backends_) EXPECT_EQ(b->accepted(), 0) << id;
}

LBD_INSTANTIATE_DRIVERS(HttpForwarding);
LBD_INSTANTIATE_DRIVERS(HttpRouting);

}  // namespace
}  // namespace lbd::it
