// Bodies stream: 100 MiB up and down, with Content-Length and chunked, arrive byte-exact while
// lbd's resident memory stays flat (measured from /proc, not timed). And upgrades: after a 101
// the connection is a tunnel carrying bytes both ways unchanged; an upgrade the backend
// declines leaves the connection plain HTTP.

#include <sys/socket.h>

#include <cstdlib>
#include <iostream>
#include <random>

#include "tests/integration/http_harness.hpp"

namespace lbd::it {
namespace {

constexpr uint64_t kMiB = 1024 * 1024;
constexpr uint64_t kBody = 100 * kMiB;
// How much lbd's VmRSS may grow while moving 100 MiB. Its buffers per connection are tens of
// KiB; anything that holds a body (or a large part of one) in memory goes far beyond this.
constexpr long kRssBoundKiB = 16 * 1024;

uint64_t random_seed() {
  std::random_device rd;
  return (uint64_t{rd()} << 32) | rd();
}

/// Samples a process's VmRSS until stopped; remembers the largest value.
class RssSampler {
 public:
  explicit RssSampler(pid_t pid) : pid_(pid), before_(vm_rss_kib(pid)) {
    peak_ = before_;
    thread_ = std::thread([this] {
      while (!stop_.load()) {
        long v = vm_rss_kib(pid_);
        if (v > peak_.load()) peak_.store(v);
        std::this_thread::sleep_for(5ms);  // a sampling period, not a wait for an event
      }
    });
  }
  ~RssSampler() { finish(); }
  void finish() {
    if (thread_.joinable()) {
      stop_.store(true);
      thread_.join();
      after_ = vm_rss_kib(pid_);
    }
  }
  long before() const { return before_; }
  long peak() const { return peak_.load(); }
  long after() const { return after_; }
  std::string report() const {
    return "VmRSS before " + std::to_string(before_) + " KiB, peak " + std::to_string(peak_.load()) +
           " KiB, after " + std::to_string(after_) + " KiB";
  }

 private:
  pid_t pid_;
  long before_;
  long after_ = -1;
  std::atomic<long> peak_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

/// Sends n bytes of ByteStream(seed) as chunks of varying sizes, then the last chunk.
bool send_chunked_stream(int fd, uint64_t seed, uint64_t n) {
  static constexpr std::size_t kSizes[] = {65536, 1, 4093, 30000, 65535, 200};
  ByteStream s(seed);
  std::string buf;
  uint64_t sent = 0;
  for (std::size_t i = 0; sent < n; ++i) {
    std::size_t k = static_cast<std::size_t>(std::min<uint64_t>(kSizes[i % std::size(kSizes)], n - sent));
    char line[32];
    int len = std::snprintf(line, sizeof line, "%zx\r\n", k);
    buf.assign(line, static_cast<std::size_t>(len));
    std::size_t at = buf.size();
    buf.resize(at + k);
    s.fill(buf.data() + at, k);
    buf += "\r\n";
    if (!send_all(fd, buf, 30000ms)) return false;
    sent += k;
  }
  return send_all(fd, std::string("0\r\n\r\n"));
}

class HttpStreaming : public HttpTest {
 protected:
  void SetUp() override {
    HttpTest::SetUp();
    if (IsSkipped()) return;
    seed_ = random_seed();
#if defined(__SANITIZE_ADDRESS__)
    // ASan keeps freed memory in a quarantine of up to 256 MiB so that a use after free is
    // caught; every coroutine frame of a 100 MiB transfer lands there, and RSS grows with the
    // transfer for that reason alone. A small quarantine keeps that detection for recent frees
    // while RSS stays a measure of what lbd holds. Only lbd processes started by this suite get it.
    const char* old = std::getenv("ASAN_OPTIONS");
    saved_asan_options_ = old ? std::optional<std::string>(old) : std::nullopt;
    std::string opts = old ? std::string(old) + ":" : "";
    ::setenv("ASAN_OPTIONS", (opts + "quarantine_size_mb=4").c_str(), 1);
#endif
  }
  void TearDown() override {
#if defined(__SANITIZE_ADDRESS__)
    if (saved_asan_options_) ::setenv("ASAN_OPTIONS", saved_asan_options_->c_str(), 1);
    else ::unsetenv("ASAN_OPTIONS");
#endif
    HttpTest::TearDown();
  }
  std::optional<std::string> saved_asan_options_;

  /// A small exchange first, so that lbd's buffers and pools exist before memory is measured.
  void warm_up() {
    HttpMessage resp = roundtrip("PUT /warm HTTP/1.1\r\nHost: a\r\nContent-Length: 70000\r\n\r\n" +
                                 std::string(70000, 'w'));
    ASSERT_EQ(resp.status, 200) << resp.summary();
  }

  void expect_flat(const RssSampler& rss) {
    ASSERT_GT(rss.before(), 0) << "cannot read /proc/" << lbd_->pid() << "/status";
    std::cout << "[ memory   ] lbd " << rss.report() << " (bound: +" << kRssBoundKiB << " KiB)\n";
    EXPECT_LT(rss.peak() - rss.before(), kRssBoundKiB) << rss.report();
    EXPECT_LT(rss.after() - rss.before(), kRssBoundKiB) << rss.report();
  }

  /// Uploads kBody bytes (Content-Length or chunked) and checks what the backend got.
  void upload(bool chunked) {
    SCOPED_TRACE("seed " + std::to_string(seed_));
    HttpBackend backend(
        [](const BackendExchange& ex, const HttpMessage& req) {
          return ex.send(http_response(200, std::to_string(req.body_size) + " " + std::to_string(req.body_digest)));
        },
        "sink", /*keep_body=*/0);
    ASSERT_EQ(start_simple({&backend}), "");
    warm_up();
    Fd c = client();
    RssSampler rss(lbd_->pid());
    std::string head = "PUT /upload HTTP/1.1\r\nHost: a\r\n";
    head += chunked ? "Transfer-Encoding: chunked\r\n\r\n" : "Content-Length: " + std::to_string(kBody) + "\r\n\r\n";
    ASSERT_TRUE(send_all(c.get(), head));
    if (chunked) {
      ASSERT_TRUE(send_chunked_stream(c.get(), seed_, kBody));
    } else {
      ASSERT_EQ(send_stream(c.get(), seed_, kBody), kBody);
    }
    HttpReader r(c.get());
    HttpMessage resp = r.read_final_response(60000ms);
    rss.finish();
    ASSERT_EQ(resp.status, 200) << resp.summary();
    EXPECT_EQ(resp.body, std::to_string(kBody) + " " + std::to_string(stream_digest(seed_, kBody)))
        << "the backend got other bytes than the client sent (size digest)";
    auto reqs = backend.requests();
    ASSERT_EQ(reqs.size(), 2u);
    EXPECT_EQ(reqs[1].framing, chunked ? HttpMessage::Framing::kChunked : HttpMessage::Framing::kContentLength);
    expect_flat(rss);
  }

  /// Downloads kBody bytes (Content-Length or chunked) and checks what the client got.
  void download(bool chunked) {
    SCOPED_TRACE("seed " + std::to_string(seed_));
    const uint64_t seed = seed_;
    HttpBackend backend([seed, chunked](const BackendExchange& ex, const HttpMessage& req) {
      if (req.target == "/warm") return ex.send(http_response(200, "warm"));
      if (chunked) {
        if (!ex.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")) return false;
        return send_chunked_stream(ex.fd, seed, kBody);
      }
      if (!ex.send("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(kBody) + "\r\n\r\n")) return false;
      return send_stream(ex.fd, seed, kBody) == kBody;
    });
    ASSERT_EQ(start_simple({&backend}), "");
    warm_up();
    Fd c = client();
    RssSampler rss(lbd_->pid());
    ASSERT_TRUE(send_all(c.get(), http_get("/download", "a")));
    HttpReader r(c.get(), /*keep_body=*/0);
    HttpMessage resp = r.read_final_response(60000ms);
    rss.finish();
    EXPECT_EQ(resp.status, 200) << resp.summary();
    EXPECT_TRUE(resp.complete) << resp.summary();
    EXPECT_EQ(resp.framing, chunked ? HttpMessage::Framing::kChunked : HttpMessage::Framing::kContentLength);
    EXPECT_EQ(resp.body_size, kBody);
    EXPECT_EQ(resp.body_digest, stream_digest(seed_, kBody)) << "the client got other bytes than the backend sent";
    expect_flat(rss);
  }

  uint64_t seed_ = 0;
};

TEST_P(HttpStreaming, UploadHundredMiBWithContentLength) { upload(false); }
TEST_P(HttpStreaming, UploadHundredMiBChunked) { upload(true); }
TEST_P(HttpStreaming, DownloadHundredMiBWithContentLength) { download(false); }
TEST_P(HttpStreaming, DownloadHundredMiBChunked) { download(true); }

// ---------------------------------------------------------------------------------------------
// Upgrade

const std::string kGreeting = "server says hi";

/// Answers an Upgrade with 101 and a greeting in the same write, then echoes every byte until
/// the client's EOF. Anything else gets 200 (declining the upgrade) and the connection goes on.
bool upgrade_or_ok(const BackendExchange& ex, const HttpMessage& req) {
  if (!req.header("Upgrade") || req.target != "/ws")
    return ex.send(http_response(200, "plain " + req.target));
  if (!ex.send("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n" + kGreeting))
    return false;
  std::string early = ex.reader->take_buffered();
  if (!early.empty() && !ex.send(early)) return false;
  char buf[64 * 1024];
  for (;;) {
    ssize_t n = ::recv(ex.fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    if (!send_all(ex.fd, buf, static_cast<std::size_t>(n))) return false;
  }
}

const std::string kUpgradeRequest =
    "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

TEST_P(HttpStreaming, UpgradeTunnelCarriesFramesBothWaysByteExact) {
  HttpBackend backend(upgrade_or_ok);
  ASSERT_EQ(start_simple({&backend}), "");
  Fd c = client();
  ASSERT_TRUE(send_all(c.get(), kUpgradeRequest));
  HttpReader r(c.get());
  HttpMessage resp = r.read_head(true, 5000ms);
  ASSERT_TRUE(resp.have_head) << resp.summary();
  ASSERT_EQ(resp.status, 101) << resp.summary();
  EXPECT_TRUE(iequal(resp.header("Upgrade").value_or(""), "websocket")) << resp.raw_head;
  EXPECT_TRUE(iequal(resp.header("Connection").value_or(""), "upgrade")) << resp.raw_head;

  // The backend's request asked for the upgrade.
  auto reqs = backend.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_TRUE(iequal(reqs[0].header("Upgrade").value_or(""), "websocket")) << reqs[0].raw_head;
  EXPECT_NE(reqs[0].header("Connection").value_or("").find("pgrade"), std::string::npos) << reqs[0].raw_head;
  EXPECT_EQ(reqs[0].header("Sec-WebSocket-Key").value_or(""), "dGhlIHNhbXBsZSBub25jZQ==");

  // The bytes the backend sent right behind its 101.
  ASSERT_TRUE(r.wait_buffered(kGreeting.size(), 5000ms)) << "got \"" << r.buffered() << "\"";
  EXPECT_EQ(r.take_buffered(), kGreeting);

  // Frames of every size class, echoed unchanged.
  ByteStream out(seed_ ^ 0xabcdef);
  for (std::size_t size : {std::size_t{2}, std::size_t{127}, std::size_t{130}, std::size_t{65537},
                           std::size_t{300000}}) {
    std::string frame(size, '\0');
    out.fill(frame.data(), size);
    frame[0] = '\x82';  // a binary frame, for the look of it; the tunnel does not care
    ASSERT_TRUE(send_all(c.get(), frame));
    ASSERT_TRUE(r.wait_buffered(size, 10000ms)) << "frame of " << size << " bytes: echo got " << r.buffered().size();
    std::string echo = r.take_buffered();
    ASSERT_EQ(echo.size(), size);
    EXPECT_TRUE(echo == frame) << "frame of " << size << " bytes changed in the tunnel";
  }
  // The client ends its side: the backend's echo ends, and so does the tunnel.
  ::shutdown(c.get(), SHUT_WR);
  End end = r.wait_end(5000ms);
  EXPECT_TRUE(end == End::kEof || end == End::kReset) << to_string(end);
  EXPECT_TRUE(backend.wait_idle(5000ms));
}

TEST_P(HttpStreaming, DeclinedUpgradeContinuesAsPlainHttp) {
  HttpBackend backend(upgrade_or_ok);
  ASSERT_EQ(start_simple({&backend}), "");
  Fd c = client();
  std::string request = kUpgradeRequest;
  request.replace(request.find("/ws"), 3, "/no");  // the backend declines this one
  ASSERT_TRUE(send_all(c.get(), request));
  HttpReader r(c.get());
  HttpMessage resp = r.read_final_response(5000ms);
  ASSERT_EQ(resp.status, 200) << resp.summary();
  EXPECT_EQ(resp.body, "plain /no");
  // The same connection carries the next request as HTTP.
  ASSERT_TRUE(send_all(c.get(), http_get("/after", "a")));
  resp = r.read_final_response(5000ms);
  EXPECT_EQ(resp.status, 200) << resp.summary();
  EXPECT_EQ(resp.body, "plain /after");
  auto reqs = backend.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_TRUE(reqs[0].complete);
  EXPECT_TRUE(reqs[1].complete);
  EXPECT_EQ(reqs[1].target, "/after");
}


// A client that sends its first bytes right behind the upgrade request, in the same write: they
// wait in lbd until the 101, then go through the tunnel.
TEST_P(HttpStreaming, BytesRightBehindTheUpgradeRequestGoThroughTheTunnel) {
  HttpBackend backend(upgrade_or_ok);
  ASSERT_EQ(start_simple({&backend}), "");
  Fd c = client();
  const std::string early = "early frame";
  ASSERT_TRUE(send_all(c.get(), kUpgradeRequest + early));
  HttpReader r(c.get());
  HttpMessage resp = r.read_head(true, 5000ms);
  ASSERT_EQ(resp.status, 101) << resp.summary();
  ASSERT_TRUE(r.wait_buffered(kGreeting.size() + early.size(), 5000ms)) << "got \"" << r.buffered() << "\"";
  EXPECT_EQ(r.take_buffered(), kGreeting + early);
  auto reqs = backend.requests();
  ASSERT_EQ(reqs.size(), 1u) << "the early bytes were taken for a request";
}

LBD_INSTANTIATE_DRIVERS(HttpStreaming);

}  // namespace
}  // namespace lbd::it
