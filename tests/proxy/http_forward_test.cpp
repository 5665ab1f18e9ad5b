// Tests of proxy/http/forward.cpp: the heads a proxy sends on, chunk framing and its own error
// responses. Output is checked as text and, where it is a message, parsed back strictly.

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "proxy/http/forward.hpp"
#include "proxy/http/request_parser.hpp"
#include "proxy/http/response_parser.hpp"

namespace lbd::http {
namespace {

RequestHead parse_request_head(std::string_view raw) {
  HttpRequestParser p;
  HttpEvent ev = p.parse(raw);
  EXPECT_EQ(ev.kind, HttpEvent::kHeadComplete) << p.error().reason << "\n" << raw;
  return p.head();
}

ResponseHead parse_response_head(std::string_view raw, std::string_view method = "GET",
                                 bool upgrade = false) {
  HttpResponseParser p;
  p.expect_response(method, upgrade);
  HttpEvent ev = p.parse(raw);
  EXPECT_EQ(ev.kind, HttpEvent::kHeadComplete) << p.error().reason << "\n" << raw;
  return p.head();
}

// The field lines of a serialized head, without the start line.
std::vector<std::string> field_lines(std::string_view head) {
  std::vector<std::string> lines;
  size_t pos = head.find("\r\n") + 2;
  while (pos < head.size()) {
    size_t end = head.find("\r\n", pos);
    if (end == pos) break;
    lines.emplace_back(head.substr(pos, end - pos));
    pos = end + 2;
  }
  return lines;
}

std::string start_line(std::string_view head) {
  return std::string(head.substr(0, head.find("\r\n")));
}

std::string forward_request(std::string_view raw, const RequestForwardConfig& config = {},
                            RequestForwardContext ctx = {"10.0.0.9", "http"}) {
  RequestHead req = parse_request_head(raw);
  std::string out;
  serialize_request_head(req, config, ctx, out);
  // What goes upstream is itself a valid, strict request head.
  HttpRequestParser check;
  EXPECT_EQ(check.parse(std::string_view(out)).kind, HttpEvent::kHeadComplete)
      << check.error().reason << "\n"
      << out;
  return out;
}

TEST(SerializeRequestHead, KeepsOrderAndCaseAndDropsHopByHop) {
  std::string out = forward_request(
      "GET /a?b=1 HTTP/1.1\r\n"
      "host: Example.com\r\n"
      "x-Custom-A: 1\r\n"
      "Connection: keep-alive, X-Secret, x-other-secret\r\n"
      "Keep-Alive: timeout=5\r\n"
      "Proxy-Connection: keep-alive\r\n"
      "TE: trailers\r\n"
      "X-SECRET: hidden\r\n"
      "Upgrade: websocket\r\n"
      "Cookie: a=1\r\n"
      "X-Other-Secret: hidden too\r\n"
      "Cookie: b=2\r\n"
      "Accept: */*\r\n\r\n",
      {}, {"", "http"});
  EXPECT_EQ(start_line(out), "GET /a?b=1 HTTP/1.1");
  EXPECT_EQ(field_lines(out), (std::vector<std::string>{
                                  "host: Example.com",
                                  "x-Custom-A: 1",
                                  "Cookie: a=1",
                                  "Cookie: b=2",
                                  "Accept: */*",
                                  "X-Forwarded-Proto: http",
                                  "X-Forwarded-Host: example.com",
                              }));
}

TEST(SerializeRequestHead, ConnectionCannotStripHost) {
  std::string out = forward_request("GET / HTTP/1.1\r\nHost: a\r\nConnection: Host\r\n\r\n");
  EXPECT_EQ(field_lines(out)[0], "Host: a");
}

TEST(SerializeRequestHead, AppendsClientToXForwardedFor) {
  std::string out = forward_request(
      "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 192.0.2.1\r\nAccept: */*\r\n"
      "x-forwarded-for: 198.51.100.2, 203.0.113.3\r\n\r\n");
  std::vector<std::string> lines = field_lines(out);
  // One field at the place of the first, every hop in order, then the client.
  EXPECT_EQ(lines[1], "X-Forwarded-For: 192.0.2.1, 198.51.100.2, 203.0.113.3, 10.0.0.9");
  EXPECT_EQ(lines[2], "Accept: */*");
  EXPECT_EQ(RequestHead(parse_request_head(out)).headers.count("X-Forwarded-For"), 1u);

  std::string fresh =
      forward_request("GET / HTTP/1.1\r\nHost: a\r\n\r\n", {}, {"2001:db8::1", "https"});
  EXPECT_EQ(field_lines(fresh),
            (std::vector<std::string>{"Host: a", "X-Forwarded-For: 2001:db8::1",
                                      "X-Forwarded-Proto: https", "X-Forwarded-Host: a"}));
}

TEST(SerializeRequestHead, ReplacesClientXForwardedProtoAndHost) {
  std::string out = forward_request(
      "GET / HTTP/1.1\r\nHost: real.example\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: "
      "evil\r\n\r\n");
  EXPECT_EQ(field_lines(out), (std::vector<std::string>{
                                  "Host: real.example", "X-Forwarded-For: 10.0.0.9",
                                  "X-Forwarded-Proto: http", "X-Forwarded-Host: real.example"}));
  RequestForwardConfig off;
  off.x_forwarded_for = off.x_forwarded_proto = off.x_forwarded_host = false;
  std::string passed = forward_request(
      "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: https\r\n\r\n",
      off);
  EXPECT_EQ(field_lines(passed), (std::vector<std::string>{"Host: a", "X-Forwarded-For: 1.2.3.4",
                                                           "X-Forwarded-Proto: https"}));
}

TEST(SerializeRequestHead, AbsoluteFormBecomesOriginFormWithHostFromTarget) {
  std::string out =
      forward_request("GET http://Target.example:81/p?q HTTP/1.1\r\nHost: other\r\n\r\n");
  EXPECT_EQ(start_line(out), "GET /p?q HTTP/1.1");
  EXPECT_EQ(field_lines(out)[0], "Host: target.example:81");
}

TEST(SerializeRequestHead, Http10RequestGoesUpAsHttp11WithHost) {
  std::string out = forward_request("GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_EQ(start_line(out), "GET / HTTP/1.1");
  std::vector<std::string> lines = field_lines(out);
  EXPECT_EQ(lines[0], "Host: ");  // RFC 9112 §3.2: empty when the target has no authority
  for (const std::string& l : lines) EXPECT_EQ(l.find("Expect"), std::string::npos) << l;
}

TEST(SerializeRequestHead, ReframesTheBody) {
  std::string chunked = forward_request(
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Type: "
      "text/plain\r\n\r\n");
  EXPECT_EQ(field_lines(chunked),
            (std::vector<std::string>{"Host: a", "Content-Type: text/plain",
                                      "Transfer-Encoding: chunked", "X-Forwarded-For: 10.0.0.9",
                                      "X-Forwarded-Proto: http", "X-Forwarded-Host: a"}));
  std::string sized = forward_request("POST / HTTP/1.1\r\ncontent-length: 0012\r\nHost: a\r\n\r\n");
  std::vector<std::string> lines = field_lines(sized);
  EXPECT_EQ(lines[0], "Host: a");
  EXPECT_EQ(lines[1], "Content-Length: 12");
  std::string none = forward_request("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(none.find("Content-Length"), std::string::npos);
  EXPECT_EQ(none.find("Transfer-Encoding"), std::string::npos);
}

TEST(SerializeRequestHead, KeepsUpgradeWhenUpgrading) {
  const char* raw =
      "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, keep-alive\r\nUpgrade: websocket\r\n"
      "Sec-WebSocket-Key: k\r\n\r\n";
  RequestForwardConfig config;
  config.x_forwarded_for = config.x_forwarded_proto = config.x_forwarded_host = false;
  std::string out = forward_request(raw, config);
  EXPECT_EQ(field_lines(out),
            (std::vector<std::string>{"Host: a", "Upgrade: websocket", "Sec-WebSocket-Key: k",
                                      "Connection: upgrade"}));
  EXPECT_TRUE(parse_request_head(out).upgrade);

  config.allow_upgrade = false;
  std::string plain = forward_request(raw, config);
  EXPECT_EQ(field_lines(plain), (std::vector<std::string>{"Host: a", "Sec-WebSocket-Key: k"}));
}

TEST(SerializeRequestHead, AppliesConfiguredEditsAndPathRewrite) {
  RequestForwardConfig config;
  config.x_forwarded_for = config.x_forwarded_proto = config.x_forwarded_host = false;
  config.headers.remove = {"cookie", "X-Debug"};
  config.headers.add = {{"X-Route", "api"}, {"X-Env", "prod"}};
  config.path_rewrites = {{"/api/v1/", "/"}, {"/api", ""}, {"/old", "/new"}};
  auto rewrite = [&](std::string_view target) {
    std::string raw = "GET " + std::string(target) +
                      " HTTP/1.1\r\nHost: a\r\nCookie: c\r\nX-Debug: 1\r\nX-Keep: 1\r\n\r\n";
    return forward_request(raw, config);
  };
  std::string out = rewrite("/api/v1/users?id=3");
  EXPECT_EQ(start_line(out), "GET /users?id=3 HTTP/1.1");
  EXPECT_EQ(field_lines(out),
            (std::vector<std::string>{"Host: a", "X-Keep: 1", "X-Route: api", "X-Env: prod"}));
  EXPECT_EQ(start_line(rewrite("/api")), "GET / HTTP/1.1");
  EXPECT_EQ(start_line(rewrite("/api?x")), "GET /?x HTTP/1.1");
  EXPECT_EQ(start_line(rewrite("/api/x")), "GET /x HTTP/1.1");
  EXPECT_EQ(start_line(rewrite("/old/page")), "GET /new/page HTTP/1.1");
  EXPECT_EQ(start_line(rewrite("/other")), "GET /other HTTP/1.1");
}

// ---------------------------------------------------------------------------------------------

std::string forward_response(std::string_view raw, ResponseForwardContext ctx,
                             ResponseForwardPlan* plan = nullptr, std::string_view method = "GET",
                             bool upgrade = false, const ResponseForwardConfig& config = {}) {
  ResponseHead resp = parse_response_head(raw, method, upgrade);
  std::string out;
  ResponseForwardPlan p = serialize_response_head(resp, config, ctx, out);
  if (plan) *plan = p;
  return out;
}

TEST(SerializeResponseHead, DropsHopByHopAndKeepsLength) {
  ResponseForwardPlan plan;
  std::string out = forward_response(
      "HTTP/1.1 200 OK\r\nServer: up\r\nConnection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\n"
      "X-Hop: 1\r\nset-cookie: a=1\r\nContent-Length: 5\r\nSet-Cookie: b=2\r\n\r\n",
      {HttpVersion::kHttp11, true}, &plan);
  EXPECT_EQ(start_line(out), "HTTP/1.1 200 OK");
  EXPECT_EQ(field_lines(out), (std::vector<std::string>{"Server: up", "set-cookie: a=1",
                                                        "Set-Cookie: b=2", "Content-Length: 5"}));
  EXPECT_EQ(plan.body, ResponseForwardPlan::Body::kContentLength);
  EXPECT_EQ(plan.length, 5u);
  EXPECT_FALSE(plan.close);
}

TEST(SerializeResponseHead, UnknownLengthGoesChunkedToHttp11Clients) {
  for (const char* raw :
       {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.0 200 OK\r\n\r\n"}) {
    ResponseForwardPlan plan;
    std::string out = forward_response(raw, {HttpVersion::kHttp11, true}, &plan);
    EXPECT_EQ(field_lines(out), (std::vector<std::string>{"Transfer-Encoding: chunked"})) << raw;
    EXPECT_EQ(plan.body, ResponseForwardPlan::Body::kChunked);
    EXPECT_FALSE(plan.close);
  }
}

TEST(SerializeResponseHead, UnknownLengthIsCloseDelimitedForHttp10Clients) {
  ResponseForwardPlan plan;
  std::string out =
      forward_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX: y\r\n\r\n",
                       {HttpVersion::kHttp10, true}, &plan);
  EXPECT_EQ(start_line(out), "HTTP/1.1 200 OK");
  EXPECT_EQ(field_lines(out), (std::vector<std::string>{"X: y", "Connection: close"}));
  EXPECT_EQ(plan.body, ResponseForwardPlan::Body::kUntilClose);
  EXPECT_TRUE(plan.close);
}

TEST(SerializeResponseHead, ConnectionFieldFollowsWhatTheProxyWillDo) {
  const char* raw = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
  ResponseForwardPlan plan;
  // The server closing its connection is none of the client's business.
  EXPECT_EQ(field_lines(forward_response(raw, {HttpVersion::kHttp11, true}, &plan)),
            (std::vector<std::string>{"Content-Length: 0"}));
  EXPECT_FALSE(plan.close);
  EXPECT_EQ(field_lines(forward_response(raw, {HttpVersion::kHttp11, false}, &plan)),
            (std::vector<std::string>{"Content-Length: 0", "Connection: close"}));
  EXPECT_TRUE(plan.close);
  EXPECT_EQ(field_lines(forward_response(raw, {HttpVersion::kHttp10, true}, &plan)),
            (std::vector<std::string>{"Content-Length: 0", "Connection: keep-alive"}));
  EXPECT_FALSE(plan.close);
}

TEST(SerializeResponseHead, BodylessResponsesKeepTheServersContentLength) {
  ResponseForwardPlan plan;
  std::string head =
      forward_response("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nETag: \"x\"\r\n\r\n",
                       {HttpVersion::kHttp11, true}, &plan, "HEAD");
  EXPECT_EQ(field_lines(head), (std::vector<std::string>{"Content-Length: 1234", "ETag: \"x\""}));
  EXPECT_EQ(plan.body, ResponseForwardPlan::Body::kNone);
  std::string not_modified = forward_response(
      "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\nETag: \"x\"\r\n\r\n",
      {HttpVersion::kHttp11, true}, &plan);
  EXPECT_EQ(field_lines(not_modified), (std::vector<std::string>{"ETag: \"x\""}));
  EXPECT_EQ(plan.body, ResponseForwardPlan::Body::kNone);
}

TEST(SerializeResponseHead, SwitchingProtocolsKeepsUpgrade) {
  ResponseForwardPlan plan;
  std::string out = forward_response(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: s\r\n\r\n",
      {HttpVersion::kHttp11, true}, &plan, "GET", true);
  EXPECT_EQ(start_line(out), "HTTP/1.1 101 Switching Protocols");
  EXPECT_EQ(field_lines(out),
            (std::vector<std::string>{"Upgrade: websocket", "Sec-WebSocket-Accept: s",
                                      "Connection: upgrade"}));
  EXPECT_EQ(plan.body, ResponseForwardPlan::Body::kNone);
  EXPECT_FALSE(plan.close);
}

TEST(SerializeResponseHead, InterimResponseHasNoFramingOrConnection) {
  std::string out =
      forward_response("HTTP/1.1 100 Continue\r\n\r\n", {HttpVersion::kHttp11, false});
  EXPECT_EQ(out, "HTTP/1.1 100 Continue\r\n\r\n");
}

TEST(SerializeResponseHead, AppliesConfiguredEdits) {
  ResponseForwardConfig config;
  config.headers.remove = {"server"};
  config.headers.add = {{"Strict-Transport-Security", "max-age=60"}};
  std::string out =
      forward_response("HTTP/1.1 404 Not Found\r\nServer: x\r\nContent-Length: 0\r\n\r\n",
                       {HttpVersion::kHttp11, true}, nullptr, "GET", false, config);
  EXPECT_EQ(start_line(out), "HTTP/1.1 404 Not Found");
  EXPECT_EQ(field_lines(out), (std::vector<std::string>{"Content-Length: 0",
                                                        "Strict-Transport-Security: max-age=60"}));
}

// ---------------------------------------------------------------------------------------------

TEST(ChunkEncoding, SizeLinesAndLastChunk) {
  EXPECT_EQ(ChunkSizeLine(1).view(), "1\r\n");
  EXPECT_EQ(ChunkSizeLine(0x1a2b).view(), "1a2b\r\n");
  EXPECT_EQ(ChunkSizeLine(UINT64_MAX).view(), "ffffffffffffffff\r\n");
  std::string out;
  append_chunk(out, std::string_view("hello"));
  append_chunk(out, std::string_view());  // an empty chunk would end the body: nothing written
  append_chunk(out, std::string_view("0123456789abcdef!"));
  append_last_chunk(out);
  EXPECT_EQ(out, "5\r\nhello\r\n11\r\n0123456789abcdef!\r\n0\r\n\r\n");
  EXPECT_EQ(kLastChunk, "0\r\n\r\n");
}

TEST(ChunkEncoding, TrailersRoundTrip) {
  HeaderList trailers;
  trailers.add("X-Checksum", "abc");
  trailers.add("x-more", "1");
  std::string wire = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  append_chunk(wire, std::string_view("data"));
  append_last_chunk(wire, &trailers);
  HttpRequestParser p;
  std::string_view rest = wire;
  std::string body;
  for (int i = 0; i < 10; ++i) {
    HttpEvent ev = p.parse(rest);
    ASSERT_NE(ev.kind, HttpEvent::kError) << p.error().reason;
    if (ev.kind == HttpEvent::kBodyData) body.append(ev.data.data(), ev.data.size());
    rest.remove_prefix(ev.consumed);
    if (ev.kind == HttpEvent::kMessageComplete) break;
  }
  EXPECT_EQ(body, "data");
  ASSERT_EQ(p.trailers().size(), 2u);
  EXPECT_EQ(p.trailers()[0].name, "X-Checksum");
  EXPECT_EQ(p.trailers()[1].value, "1");
}

TEST(ErrorResponses, AreCompleteStrictResponses) {
  for (int status : {400, 408, 413, 414, 431, 501, 502, 503, 504, 505}) {
    for (bool keep_alive : {false, true}) {
      std::string_view text = make_error_response(status, keep_alive);
      HttpResponseParser p;
      std::string_view rest = text;
      HttpEvent ev = p.parse(rest);
      ASSERT_EQ(ev.kind, HttpEvent::kHeadComplete) << p.error().reason << "\n" << text;
      EXPECT_EQ(p.head().status, status);
      EXPECT_EQ(p.head().reason, status_reason(status));
      EXPECT_EQ(p.head().keep_alive, keep_alive) << text;
      EXPECT_EQ(p.head().headers.get("Content-Type"), "text/plain");
      rest.remove_prefix(ev.consumed);
      std::string expected_body =
          std::to_string(status) + " " + std::string(status_reason(status)) + "\n";
      EXPECT_EQ(rest, expected_body);
      ev = p.parse(rest);
      ASSERT_EQ(ev.kind, HttpEvent::kBodyData);
      EXPECT_EQ(ev.consumed, rest.size());
      EXPECT_EQ(p.parse(std::string_view()).kind, HttpEvent::kMessageComplete);
    }
  }
  EXPECT_NE(make_error_response(418).find("HTTP/1.1 500 Internal Server Error\r\n"),
            std::string_view::npos);
  EXPECT_NE(make_error_response(413).find("413 Content Too Large"), std::string_view::npos);
}

}  // namespace
}  // namespace lbd::http
