// Strict request parsing through the real lbd: every framing rule a request smuggler leans on,
// bytes that must never appear in a head, Host rules, versions and the head limits each get
// their status — and the backend gets nothing, or no complete request. Then what a valid but
// unusual request must become: absolute-form targets, Expect: 100-continue, pipelining.

#include <sys/socket.h>

#include "tests/integration/http_harness.hpp"

namespace lbd::it {
namespace {

class HttpFraming : public HttpTest {
 protected:
  void SetUp() override {
    HttpTest::SetUp();
    if (IsSkipped()) return;
    backend_ = std::make_unique<HttpBackend>(respond_ok());
    ASSERT_EQ(start_simple({backend_.get()},
                           "    timeouts: { header: 5s }\n"
                           "    limits: { max_request_line: 1KiB, max_header_bytes: 4KiB }\n"),
              "");
  }

  /// Sends `request` on a new connection and reads lbd's answer, which must be a complete
  /// response with `status`, `Connection: close`, and then the end of the connection.
  HttpMessage expect_answer(const std::string& request, int status) {
    Fd c = client();
    EXPECT_TRUE(send_all(c.get(), request));
    HttpReader r(c.get());
    HttpMessage resp = r.read_final_response(5000ms);
    EXPECT_TRUE(resp.complete) << resp.summary();
    EXPECT_EQ(resp.status, status) << resp.summary();
    EXPECT_EQ(resp.header("Connection").value_or(""), "close") << resp.raw_head;
    End end = r.wait_end(5000ms);
    EXPECT_TRUE(end == End::kEof || end == End::kReset) << "lbd did not close the connection: " << to_string(end);
    return resp;
  }

  /// A request refused while its head is read: the backend is never even connected to.
  void expect_refused(const std::string& what, const std::string& request, int status) {
    SCOPED_TRACE(what);
    int accepted = backend_->accepted();
    uint64_t bytes = backend_->bytes_received();
    expect_answer(request, status);
    EXPECT_EQ(backend_->accepted(), accepted) << "lbd connected to the backend for a refused request";
    EXPECT_EQ(backend_->bytes_received(), bytes);
  }

  /// A request refused in its body (a bad chunk): the backend may have a connection and a
  /// head, but never a complete request, and that connection is closed, not pooled.
  void expect_refused_in_body(const std::string& what, const std::string& request, int status) {
    SCOPED_TRACE(what);
    std::size_t before = backend_->request_count();
    expect_answer(request, status);
    EXPECT_TRUE(backend_->wait_idle(5000ms)) << "the upstream connection was kept open";
    auto reqs = backend_->requests();
    for (std::size_t i = before; i < reqs.size(); ++i)
      EXPECT_FALSE(reqs[i].complete) << "the backend got a complete request: " << reqs[i].summary();
  }

  std::unique_ptr<HttpBackend> backend_;
};

TEST_P(HttpFraming, AmbiguousFramingIsRefused) {
  expect_refused("Content-Length with Transfer-Encoding",
                 "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "0\r\n\r\n",
                 400);
  expect_refused("Transfer-Encoding then Content-Length",
                 "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
                 "0\r\n\r\n",
                 400);
  expect_refused("two different Content-Length",
                 "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400);
  expect_refused("Content-Length list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\nhello!", 400);
  expect_refused("Transfer-Encoding gzip, chunked",
                 "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501);
  expect_refused("chunked not the last coding",
                 "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400);
  expect_refused("Transfer-Encoding on HTTP/1.0",
                 "POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400);
  EXPECT_EQ(backend_->accepted(), 0);
}

TEST_P(HttpFraming, BadChunkSizesAreRefused) {
  const std::string head = "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  expect_refused_in_body("chunk size overflow", head + "ffffffffffffffffffff\r\nx\r\n0\r\n\r\n", 400);
  expect_refused_in_body("chunk size -1", head + "-1\r\nx\r\n0\r\n\r\n", 400);
  expect_refused_in_body("chunk size 0x5", head + "0x5\r\nhello\r\n0\r\n\r\n", 400);
  expect_refused_in_body("chunk data longer than its size", head + "3\r\nhello\r\n0\r\n\r\n", 400);
  // A good chunked request afterwards still goes through, de-chunked to the same body.
  HttpMessage resp = roundtrip(head + "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  EXPECT_EQ(resp.status, 200) << resp.summary();
  auto reqs = backend_->requests();
  ASSERT_FALSE(reqs.empty());
  EXPECT_TRUE(reqs.back().complete) << reqs.back().summary();
  EXPECT_EQ(reqs.back().body, "hello world");
}

TEST_P(HttpFraming, ForbiddenBytesInTheHeadAreRefused) {
  expect_refused("bare CR in a value", std::string("GET / HTTP/1.1\r\nHost: a\r\nX-A: a\rb\r\n\r\n"), 400);
  expect_refused("bare LF ending a field", std::string("GET / HTTP/1.1\r\nHost: a\nX-A: b\r\n\r\n"), 400);
  expect_refused("NUL in a value", std::string("GET / HTTP/1.1\r\nHost: a\r\nX-A: a") + '\0' + "b\r\n\r\n", 400);
  expect_refused("control character in a value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x01z\r\n\r\n", 400);
  expect_refused("DEL in a value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x7fz\r\n\r\n", 400);
  expect_refused("parenthesis in a field name", "GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n", 400);
  expect_refused("space inside a field name", "GET / HTTP/1.1\r\nHost: a\r\nX A: b\r\n\r\n", 400);
  expect_refused("space before the colon", "GET / HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n", 400);
  expect_refused("obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", 400);
  EXPECT_EQ(backend_->accepted(), 0);
}

TEST_P(HttpFraming, HostRules) {
  expect_refused("missing Host on HTTP/1.1", "GET / HTTP/1.1\r\nX-A: b\r\n\r\n", 400);
  expect_refused("two Host fields", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
  expect_refused("two Host fields, same value", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400);
  EXPECT_EQ(backend_->accepted(), 0);
  // HTTP/1.0 may omit Host.
  HttpMessage ok = roundtrip("GET /ten HTTP/1.0\r\n\r\n");
  EXPECT_EQ(ok.status, 200) << ok.summary();
  ASSERT_TRUE(backend_->wait_requests(1));
  EXPECT_EQ(backend_->requests()[0].target, "/ten");
}

TEST_P(HttpFraming, VersionsOtherThanOneDotXAreRefused) {
  expect_refused("HTTP/0.9 request", "GET /\r\n", 400);
  expect_refused("HTTP/2.0 version", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505);
  expect_refused("HTTP/1.2 version", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505);
  expect_refused("HTTP/2 connection preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505);
  expect_refused("lowercase http", "GET / http/1.1\r\nHost: a\r\n\r\n", 400);
  EXPECT_EQ(backend_->accepted(), 0);
}

TEST_P(HttpFraming, HeadLimits) {
  // max_request_line: 1KiB, max_header_bytes: 4KiB.
  expect_refused("request line over max_request_line",
                 "GET /" + std::string(1100, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n", 414);
  std::string fields;
  for (int i = 0; i < 50; ++i) fields += "X-Filler-" + std::to_string(i) + ": " + std::string(90, 'v') + "\r\n";
  expect_refused("head over max_header_bytes", "GET / HTTP/1.1\r\nHost: a\r\n" + fields + "\r\n", 431);
  EXPECT_EQ(backend_->accepted(), 0);
  // Just under both limits passes.
  HttpMessage ok = roundtrip("GET /" + std::string(900, 'b') + " HTTP/1.1\r\nHost: a\r\n" + fields.substr(0, 2500) +
                             "X-Last: 1\r\n\r\n");
  EXPECT_EQ(ok.status, 200) << ok.summary();
}

TEST_P(HttpFraming, AbsoluteFormBecomesOriginFormWithTheTargetsHost) {
  HttpMessage resp =
      roundtrip("GET http://Other.Example:8080/p/q?x=1 HTTP/1.1\r\nHost: ignored.example\r\nX-A: 1\r\n\r\n");
  EXPECT_EQ(resp.status, 200) << resp.summary();
  ASSERT_TRUE(backend_->wait_requests(1));
  auto req = backend_->requests()[0];
  EXPECT_TRUE(req.complete) << req.summary();
  EXPECT_EQ(req.method, "GET");
  EXPECT_EQ(req.target, "/p/q?x=1");
  EXPECT_EQ(req.version, "HTTP/1.1");
  EXPECT_EQ(req.count("Host"), 1) << req.raw_head;
  EXPECT_TRUE(iequal(req.header("Host").value_or(""), "other.example:8080")) << req.raw_head;
  EXPECT_EQ(req.header("X-A").value_or(""), "1");

  // An empty path becomes "/".
  resp = roundtrip("GET http://b.example HTTP/1.1\r\nHost: b.example\r\n\r\n");
  EXPECT_EQ(resp.status, 200) << resp.summary();
  ASSERT_TRUE(backend_->wait_requests(2));
  EXPECT_EQ(backend_->requests()[1].target, "/");
}

TEST_P(HttpFraming, ExpectContinueGetsOneHundredThenTheBodyReachesTheBackend) {
  const std::string body = "hello world";
  Fd c = client();
  ASSERT_TRUE(send_all(c.get(), "POST /upload HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: " +
                                     std::to_string(body.size()) + "\r\n\r\n"));
  HttpReader r(c.get());
  // The client holds its body back until it hears 100 Continue.
  HttpMessage interim = r.read_response(3000ms);
  EXPECT_TRUE(interim.have_head) << "no 100 Continue within 3s: " << interim.summary();
  EXPECT_EQ(interim.status, 100) << interim.summary();
  // Sent in any case (as curl does after its 1s wait), to see what reaches the backend.
  ASSERT_TRUE(send_all(c.get(), body));
  HttpMessage resp = r.read_final_response(5000ms);
  EXPECT_EQ(resp.status, 200) << resp.summary();
  ASSERT_TRUE(backend_->wait_requests(1));
  auto reqs = backend_->requests();
  ASSERT_EQ(reqs.size(), 1u) << "the backend got more than one request";
  EXPECT_TRUE(reqs[0].complete) << reqs[0].summary();
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].target, "/upload");
  EXPECT_EQ(reqs[0].body, body) << "the backend got another body than the client sent";
  EXPECT_EQ(reqs[0].header("Content-Length").value_or(""), std::to_string(body.size()));
  // Nothing else arrived on that connection after the request.
  auto conns = backend_->connections();
  ASSERT_EQ(conns.size(), 1u);
  EXPECT_EQ(conns[0].requests.size(), 1u);
}

TEST_P(HttpFraming, PipelinedRequestsAreAnsweredInOrder) {
  Fd c = client();
  ASSERT_TRUE(send_all(c.get(), http_get("/one", "a") +
                                    "POST /two HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc" +
                                    http_get("/three", "a")));
  HttpReader r(c.get());
  const char* expected[] = {"ok GET /one", "ok POST /two", "ok GET /three"};
  for (const char* body : expected) {
    HttpMessage resp = r.read_final_response(5000ms);
    EXPECT_EQ(resp.status, 200) << resp.summary();
    EXPECT_EQ(resp.body, body);
  }
  auto reqs = backend_->requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].target, "/one");
  EXPECT_EQ(reqs[1].target, "/two");
  EXPECT_EQ(reqs[1].body, "abc");
  EXPECT_EQ(reqs[2].target, "/three");
  for (const auto& q : reqs) EXPECT_TRUE(q.complete) << q.summary();
  // The connection stays open for more.
  EXPECT_EQ(r.wait_end(200ms), End::kTimeout);
}

LBD_INSTANTIATE_DRIVERS(HttpFraming);

// ---------------------------------------------------------------------------------------------
// Responses: framing rewritten for the client, bodiless responses, interim responses.

class HttpResponses : public HttpTest {};

TEST_P(HttpResponses, ResponseFramingIsRewrittenForTheClient) {
  HttpBackend backend([](const BackendExchange& ex, const HttpMessage& req) {
    if (req.target == "/close") {
      ex.send("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody until close");
      return false;
    }
    if (req.method == "HEAD") return ex.send("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n");
    if (req.target == "/empty") return ex.send("HTTP/1.1 204 No Content\r\n\r\n");
    return ex.send(http_response(200, "0123456789"));
  });
  ASSERT_EQ(start_simple({&backend}), "");

  // A body that ends with the backend's close goes chunked to an HTTP/1.1 client...
  HttpMessage resp = roundtrip(http_get("/close", "a"));
  EXPECT_TRUE(resp.complete) << resp.summary();
  EXPECT_EQ(resp.framing, HttpMessage::Framing::kChunked) << resp.raw_head;
  EXPECT_EQ(resp.body, "body until close");
  // ... and close-delimited to an HTTP/1.0 one.
  resp = roundtrip("GET /close HTTP/1.0\r\nHost: a\r\n\r\n");
  EXPECT_TRUE(resp.complete) << resp.summary();
  EXPECT_EQ(resp.framing, HttpMessage::Framing::kUntilClose) << resp.raw_head;
  EXPECT_EQ(resp.body, "body until close");

  // HEAD (Content-Length, no body), 204 and a plain response in a row on one connection: no
  // byte too many or too few, or the last one would not parse.
  Fd c = client();
  HttpReader r(c.get());
  ASSERT_TRUE(send_all(c.get(), "HEAD /head HTTP/1.1\r\nHost: a\r\n\r\n"));
  resp = r.read_final_response(5000ms, "HEAD");
  EXPECT_EQ(resp.status, 200) << resp.summary();
  EXPECT_EQ(resp.header("Content-Length").value_or(""), "10") << resp.raw_head;
  EXPECT_EQ(resp.body_size, 0u);
  ASSERT_TRUE(send_all(c.get(), http_get("/empty", "a")));
  resp = r.read_final_response(5000ms);
  EXPECT_EQ(resp.status, 204) << resp.summary();
  EXPECT_EQ(resp.body_size, 0u);
  ASSERT_TRUE(send_all(c.get(), http_get("/plain", "a")));
  resp = r.read_final_response(5000ms);
  EXPECT_EQ(resp.status, 200) << resp.summary();
  EXPECT_EQ(resp.body, "0123456789");
  EXPECT_EQ(r.buffered(), "") << "bytes after the last response";
}

TEST_P(HttpResponses, InterimResponsesReachTheClientOnce) {
  HttpBackend backend([](const BackendExchange& ex, const HttpMessage& req) {
    // The backend honours Expect itself too (late: lbd already answered it), and sends an
    // Early Hints before its final answer.
    std::string interim = req.header("Expect") ? "HTTP/1.1 100 Continue\r\n\r\n" : "";
    interim += "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n";
    return ex.send(interim + http_response(200, "final " + req.body));
  });
  ASSERT_EQ(start_simple({&backend}), "");
  Fd c = client();
  HttpReader r(c.get());
  ASSERT_TRUE(send_all(c.get(), "PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"));
  HttpMessage first = r.read_response(5000ms);
  EXPECT_EQ(first.status, 100) << first.summary();
  ASSERT_TRUE(send_all(c.get(), "data"));
  std::vector<int> interim;
  HttpMessage resp = r.read_final_response(5000ms, "PUT", &interim);
  EXPECT_EQ(resp.status, 200) << resp.summary();
  EXPECT_EQ(resp.body, "final data");
  EXPECT_EQ(interim, std::vector<int>{103}) << "a second 100 Continue reached the client, or the 103 did not";
}

LBD_INSTANTIATE_DRIVERS(HttpResponses);

}  // namespace
}  // namespace lbd::it
