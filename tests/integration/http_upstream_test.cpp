// When the backend or the client misbehaves: a refused connect, a reset before or during the
// response, a malformed response (and the connection it came on is never reused), a backend
// slower than timeouts.read, a cluster at max_connections, a client that stops in the middle
// of its head (408) or of its upload (lbd carries on, the upstream connection is dropped).

#include <sys/socket.h>

#include "tests/integration/http_harness.hpp"

namespace lbd::it {
namespace {

class HttpUpstream : public HttpTest {
 protected:
  /// The backend answers its first request with `bad` and keeps that connection open; lbd must
  /// answer 502 and open a new connection for the next request.
  void malformed_is_bad_gateway_and_not_reused(const std::string& bad) {
    HttpBackend backend([&](const BackendExchange& ex, const HttpMessage&) {
      if (ex.request == 0 && ex.conn == 0) return ex.send(bad);
      return ex.send(http_response(200, "fine"));
    });
    ASSERT_EQ(start_simple({&backend}), "");
    HttpMessage resp = roundtrip(http_get("/first", "a"));
    EXPECT_EQ(resp.status, 502) << resp.summary();
    resp = roundtrip(http_get("/second", "a"));
    EXPECT_EQ(resp.status, 200) << resp.summary();
    EXPECT_EQ(resp.body, "fine");
    auto conns = backend.connections();
    ASSERT_EQ(conns.size(), 2u) << "the second request did not open a new upstream connection";
    EXPECT_EQ(conns[0].requests.size(), 1u) << "the connection that sent a malformed response was reused";
    EXPECT_EQ(conns[1].requests.size(), 1u);
  }
};

Ms since(Clock::time_point t) { return std::chrono::duration_cast<Ms>(Clock::now() - t); }

TEST_P(HttpUpstream, RefusedConnectIsBadGateway) {
  HttpConfigSpec spec;
  spec.clusters.push_back({"c", {"127.0.0.1:" + std::to_string(closed_port())}, "    retries: 0\n"});
  ASSERT_EQ(start_http(spec), "");
  HttpMessage resp = roundtrip(http_get("/", "a"));
  EXPECT_TRUE(resp.complete) << resp.summary();
  EXPECT_EQ(resp.status, 502) << resp.summary();
}

TEST_P(HttpUpstream, ResetBeforeTheResponseHeadIsBadGateway) {
  HttpBackend backend([](const BackendExchange& ex, const HttpMessage&) {
    reset_connection(ex.fd);
    return false;
  });
  ASSERT_EQ(start_simple({&backend}), "");
  HttpMessage resp = roundtrip(http_get("/", "a"));
  EXPECT_TRUE(resp.complete) << resp.summary();
  EXPECT_EQ(resp.status, 502) << resp.summary();
  EXPECT_EQ(backend.request_count(), 1u) << "a fresh connection's failure must not be retried";
}

/// The backend sends a response head and part of the body, waits for the test to see them at
/// the client, then resets the connection.
class MidBodyReset {
 public:
  explicit MidBodyReset(bool chunked) {
    backend_ = std::make_unique<HttpBackend>([this, chunked](const BackendExchange& ex, const HttpMessage&) {
      std::string part(1000, 'p');
      if (chunked) {
        ex.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n" + part + "\r\n");
      } else {
        ex.send("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + part);
      }
      gate_.wait(10000ms);
      reset_connection(ex.fd);
      return false;
    });
  }
  HttpBackend& backend() { return *backend_; }
  Gate& gate() { return gate_; }

 private:
  Gate gate_;
  std::unique_ptr<HttpBackend> backend_;
};

TEST_P(HttpUpstream, ResetMidContentLengthBodyCutsTheClientShort) {
  MidBodyReset up(false);
  ASSERT_EQ(start_simple({&up.backend()}), "");
  Fd c = client();
  ASSERT_TRUE(send_all(c.get(), http_get("/", "a")));
  HttpReader r(c.get());
  HttpMessage resp = r.read_head(true, 5000ms);
  ASSERT_TRUE(resp.have_head) << resp.summary();
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(resp.header("Content-Length").value_or(""), "100000");
  // The first bytes of the body arrive before the reset.
  ASSERT_TRUE(r.wait_buffered(1000, 5000ms)) << "the first body bytes did not arrive";
  up.gate().open();
  r.read_body(resp, true, "GET", 5000ms);
  EXPECT_FALSE(resp.complete) << "the client got a complete-looking message after the backend reset";
  EXPECT_LT(resp.body_size, 100000u);
  EXPECT_TRUE(resp.end == End::kEof || resp.end == End::kReset) << to_string(resp.end) << ": " << resp.error;
}

TEST_P(HttpUpstream, ResetMidChunkedBodyNeverSendsTheLastChunk) {
  MidBodyReset up(true);
  ASSERT_EQ(start_simple({&up.backend()}), "");
  Fd c = client();
  ASSERT_TRUE(send_all(c.get(), http_get("/", "a")));
  HttpReader r(c.get());
  HttpMessage resp = r.read_head(true, 5000ms);
  ASSERT_TRUE(resp.have_head) << resp.summary();
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(resp.header("Transfer-Encoding").value_or(""), "chunked");
  ASSERT_TRUE(r.wait_buffered(1000, 5000ms)) << "the first body bytes did not arrive";
  up.gate().open();
  r.read_body(resp, true, "GET", 5000ms);
  EXPECT_FALSE(resp.complete) << "the client got the terminating chunk after the backend reset";
  EXPECT_EQ(resp.body_size, 1000u);
  EXPECT_TRUE(resp.end == End::kEof || resp.end == End::kReset) << to_string(resp.end) << ": " << resp.error;
}

TEST_P(HttpUpstream, BadStatusLineIsBadGatewayAndTheConnectionIsNotReused) {
  malformed_is_bad_gateway_and_not_reused("HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n");
}

TEST_P(HttpUpstream, ConflictingContentLengthIsBadGatewayAndTheConnectionIsNotReused) {
  malformed_is_bad_gateway_and_not_reused("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!");
}

TEST_P(HttpUpstream, BackendSlowerThanReadTimeoutIsGatewayTimeout) {
  Gate release;
  HttpBackend backend([&](const BackendExchange& ex, const HttpMessage&) {
    release.wait(20000ms);
    ex.send(http_response(200, "late"));
    return false;
  });
  ASSERT_EQ(start_simple({&backend}, "", "    timeouts: { read: 500ms }\n"), "");
  auto t0 = Clock::now();
  HttpMessage resp = roundtrip(http_get("/slow", "a"), 15000ms);
  Ms took = since(t0);
  release.open();
  EXPECT_TRUE(resp.complete) << resp.summary();
  EXPECT_EQ(resp.status, 504) << resp.summary();
  EXPECT_GE(took, 450ms);
  EXPECT_LT(took, 10000ms);
}

TEST_P(HttpUpstream, ClusterAtMaxConnectionsIsServiceUnavailable) {
  Gate release;
  HttpBackend backend([&](const BackendExchange& ex, const HttpMessage& req) {
    if (req.target == "/hold") release.wait(20000ms);
    return ex.send(http_response(200, "done " + req.target));
  });
  ASSERT_EQ(start_simple({&backend}, "", "    max_connections: 1\n"), "");
  // The first request holds the cluster's only connection.
  Fd first = client();
  ASSERT_TRUE(send_all(first.get(), http_get("/hold", "a")));
  ASSERT_TRUE(backend.wait_requests(1));
  HttpMessage resp = roundtrip(http_get("/second", "a"));
  EXPECT_TRUE(resp.complete) << resp.summary();
  EXPECT_EQ(resp.status, 503) << resp.summary();
  release.open();
  HttpReader r(first.get());
  HttpMessage held = r.read_final_response();
  EXPECT_EQ(held.status, 200) << held.summary();
  EXPECT_EQ(held.body, "done /hold");
  // Once it is free, requests pass again.
  resp = roundtrip(http_get("/third", "a"));
  EXPECT_EQ(resp.status, 200) << resp.summary();
  EXPECT_EQ(backend.request_count(), 2u);
}

TEST_P(HttpUpstream, ClientStoppingInTheHeadGetsRequestTimeout) {
  HttpBackend backend(respond_ok());
  ASSERT_EQ(start_simple({&backend}, "    timeouts: { header: 500ms }\n"), "");
  Fd c = client();
  auto t0 = Clock::now();
  ASSERT_TRUE(send_all(c.get(), "GET /partial HTTP/1.1\r\nHost: a\r\nX-A: "));
  HttpReader r(c.get());
  HttpMessage resp = r.read_final_response(10000ms);
  Ms took = since(t0);
  EXPECT_TRUE(resp.complete) << resp.summary();
  EXPECT_EQ(resp.status, 408) << resp.summary();
  EXPECT_GE(took, 450ms);
  EXPECT_LT(took, 5000ms);
  End end = r.wait_end(5000ms);
  EXPECT_TRUE(end == End::kEof || end == End::kReset) << to_string(end);
  EXPECT_EQ(backend.accepted(), 0);

  // A connection that never sends a byte is closed after timeouts.header without an answer.
  Fd quiet = client();
  t0 = Clock::now();
  HttpReader q(quiet.get());
  EXPECT_EQ(q.wait_end(10000ms), End::kEof);
  EXPECT_GE(since(t0), 450ms);
  EXPECT_EQ(q.bytes_read(), 0u);
}

TEST_P(HttpUpstream, ClientGoneMidUploadDropsTheUpstreamConnectionAndLbdCarriesOn) {
  HttpBackend backend(respond_ok(), "http", 64 * 1024);
  ASSERT_EQ(start_simple({&backend}), "");
  constexpr uint64_t kDeclared = 10'000'000;
  constexpr uint64_t kSent = 1 << 20;
  {
    Fd c = client();
    ASSERT_TRUE(send_all(c.get(), "PUT /big HTTP/1.1\r\nHost: a\r\nContent-Length: " + std::to_string(kDeclared) +
                                      "\r\n\r\n"));
    ASSERT_EQ(send_stream(c.get(), 7, kSent), kSent);
    // The backend sees the upload start before the client goes.
    ASSERT_TRUE(wait_until(
        [&] {
          auto reqs = backend.requests();
          return !reqs.empty() && backend.bytes_received() > 100 * 1024;
        },
        10000ms));
  }  // closed here, 9 MB short
  // lbd closes the upstream connection: the backend's request ends incomplete.
  ASSERT_TRUE(backend.wait_idle(10000ms)) << "the upstream connection of the abandoned upload is still open";
  auto conns = backend.connections();
  ASSERT_EQ(conns.size(), 1u);
  ASSERT_EQ(conns[0].requests.size(), 1u);
  EXPECT_FALSE(conns[0].requests[0].complete);
  EXPECT_LE(conns[0].requests[0].body_size, kSent);

  // The next client is served normally, on a new upstream connection.
  HttpMessage resp = roundtrip(http_get("/after", "a"));
  EXPECT_EQ(resp.status, 200) << resp.summary();
  EXPECT_EQ(resp.body, "ok GET /after");
  EXPECT_EQ(backend.accepted(), 2);
}

LBD_INSTANTIATE_DRIVERS(HttpUpstream);

}  // namespace
}  // namespace lbd::it
