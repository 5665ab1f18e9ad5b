#pragma once
// HTTP additions to the integration harness (harness.hpp): a reader that takes HTTP/1.x
// messages off a blocking socket exactly as they were sent, an HTTP backend whose every answer
// the test writes itself and which records what each of its connections received, the YAML of
// an http listener, and a few process helpers (VmRSS, running curl and h2load).
//
// The reader is deliberately literal: it keeps header order and letter case, and says
// precisely how a message ended (complete, cut short, malformed), because the tests assert
// what lbd sent, not what a forgiving client would make of it.

#include <algorithm>
#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tests/integration/harness.hpp"
#include "tests/integration/lbd_fixture.hpp"

namespace lbd::it {

// ---------------------------------------------------------------------------------------------
// Messages

struct HttpField {
  std::string name;
  std::string value;
  bool operator==(const HttpField&) const = default;
};

/// One HTTP/1.x message as it was read.
struct HttpMessage {
  // The head.
  bool have_head = false;
  std::string raw_head;  // the head's bytes, the final CRLF CRLF included
  std::string method, target, version;  // a request's start line
  int status = 0;                       // a response's start line
  std::string reason;
  std::vector<HttpField> headers;  // in order, names as sent

  // The body.
  enum class Framing { kNone, kContentLength, kChunked, kUntilClose };
  Framing framing = Framing::kNone;
  std::string body;            // the first `keep_body` bytes of the (de-chunked) body
  uint64_t body_size = 0;      // all of it
  uint64_t body_digest = 0;    // StreamChecker::digest() of the whole body
  std::vector<HttpField> trailers;

  bool complete = false;  // head and body read, as the framing says
  std::string error;      // why not complete: "EOF after 12 of 40 body bytes", "bad status line"
  End end = End::kEof;     // how the stream ended, when it did

  /// The first field called `name` (case-insensitive), if any.
  std::optional<std::string> header(std::string_view name) const;
  /// How many fields are called `name`.
  int count(std::string_view name) const;
  /// The field names in order, as sent.
  std::vector<std::string> names() const;
  /// "GET /x HTTP/1.1 ..." or "HTTP/1.1 200 OK": for failure messages.
  std::string summary() const;
};

bool iequal(std::string_view a, std::string_view b);

/// Reads HTTP/1.x messages from a blocking socket, keeping what it read past a message for the
/// next one (pipelining, the bytes after a 101).
class HttpReader {
 public:
  explicit HttpReader(int fd, std::size_t keep_body = 4 * 1024 * 1024) : fd_(fd), keep_body_(keep_body) {}

  /// The next request (head and body).
  HttpMessage read_request(Ms limit = 10000ms);
  /// The next response, interim (1xx) ones included; `method` of the request it answers
  /// decides whether a body follows (HEAD).
  HttpMessage read_response(Ms limit = 10000ms, std::string_view method = "GET");
  /// The next final response: 1xx responses before it are skipped and counted in `interim`.
  HttpMessage read_final_response(Ms limit = 10000ms, std::string_view method = "GET",
                                  std::vector<int>* interim = nullptr);
  /// Only the head; read_body() then reads the body.
  HttpMessage read_head(bool response, Ms limit = 10000ms);
  void read_body(HttpMessage& m, bool response, std::string_view method, Ms limit = 10000ms);

  /// Waits until the peer ends the stream with no further byte: Eof or Reset; Timeout when
  /// it stays open; Error when bytes arrive instead (they are kept in buffered()).
  End wait_end(Ms limit = 5000ms);
  /// Reads until at least `n` bytes are buffered; false when the stream ends or `limit` passes.
  bool wait_buffered(std::size_t n, Ms limit = 5000ms);
  /// Bytes read but not yet taken by a message.
  const std::string& buffered() const { return buf_; }
  std::string take_buffered() { return std::exchange(buf_, {}); }
  /// Every byte this reader took off the socket.
  uint64_t bytes_read() const { return total_; }
  int fd() const { return fd_; }
  /// Also counts every byte read into `*counter` (read by other threads while this one reads).
  void count_into(std::atomic<uint64_t>* counter) { counter_ = counter; }

 private:
  bool fill(Clock::time_point deadline, End* end);
  void take_body_bytes(HttpMessage& m, std::string_view data);
  bool read_chunked(HttpMessage& m, Clock::time_point deadline);

  int fd_;
  std::size_t keep_body_;
  std::string buf_;
  uint64_t total_ = 0;
  std::atomic<uint64_t>* counter_ = nullptr;  // not owned; see count_into()
  std::unique_ptr<StreamChecker> digest_;  // of the body being read
};

/// "GET /p HTTP/1.1\r\nHost: h\r\n" + extra + "\r\n" (extra: fields, each ending in CRLF).
std::string http_get(std::string_view path = "/", std::string_view host = "example.com", std::string_view extra = "");

// ---------------------------------------------------------------------------------------------
// The HTTP backend

/// What one connection to an HttpBackend carried.
struct BackendConnRecord {
  int index = 0;
  std::vector<HttpMessage> requests;  // in arrival order; the last may be incomplete
  uint64_t bytes = 0;                 // everything received, framing included
  bool ended = false;                 // the handler finished with this connection
  End end = End::kEof;                 // how the peer ended it (when ended and not by the responder)
};

class HttpBackend;

/// The backend side of one exchange, handed to the responder.
struct BackendExchange {
  int fd;
  HttpReader* reader;  // owned by the connection's handler; for tunnels and partial reads
  int conn;            // index of the connection at this backend (0, 1, ...)
  int request;         // index of the request on its connection
  bool send(std::string_view bytes) const;
};

/// A TCP server on 127.0.0.1 that reads HTTP requests on each connection, records them, and
/// lets `responder` answer each one with whatever bytes it likes. The responder returns
/// whether the connection goes on with another request (false: the backend closes it).
/// Requests are recorded (and visible to the test) before the responder runs.
class HttpBackend {
 public:
  using Responder = std::function<bool(const BackendExchange&, const HttpMessage&)>;

  explicit HttpBackend(Responder responder, std::string id = "http", std::size_t keep_body = 4 * 1024 * 1024);
  ~HttpBackend();

  uint16_t port() const { return backend_->port(); }
  std::string address() const { return backend_->address(); }
  /// Connections accepted so far.
  int accepted() const { return backend_->accepted(); }
  /// Connections whose handler still runs.
  int active() const { return backend_->active(); }
  void stop() { backend_->stop(); }

  std::vector<BackendConnRecord> connections() const;
  /// Every request (complete or not) in arrival order, over all connections.
  std::vector<HttpMessage> requests() const;
  std::size_t request_count() const;
  uint64_t bytes_received() const;
  /// Waits until `n` requests arrived (complete or not).
  bool wait_requests(std::size_t n, Ms limit = 10000ms) const;
  /// Waits until no connection's handler runs any more (every connection ended).
  bool wait_idle(Ms limit = 10000ms) const;

 private:
  void serve(int fd);

  struct Conn {
    BackendConnRecord record;  // guarded by mu_
    std::atomic<uint64_t> bytes{0};
  };

  Responder responder_;
  std::size_t keep_body_;
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<Conn>> conns_;  // guarded by mu_
  std::unique_ptr<Backend> backend_;                       // last: stops before the rest goes
};

/// Ends the connection on `fd` with a TCP reset (SO_LINGER 0), at once. `fd` stays a valid
/// descriptor (of a fresh unconnected socket), so its owner closes it as usual.
void reset_connection(int fd);

/// A one-shot event between the test and a backend thread.
class Gate {
 public:
  void open();
  bool is_open() const;
  /// Waits until open; false when `limit` passed first.
  bool wait(Ms limit = 10000ms) const;

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool open_ = false;
};

/// A response with a Content-Length body ("HTTP/1.1 200 OK", extra fields).
std::string http_response(int status, std::string_view body, std::string_view extra = "",
                          std::string_view reason = "");
/// Responder: 200 with `body` (default: "ok <method> <target>"), keep-alive.
HttpBackend::Responder respond_ok(std::string body = "");

// ---------------------------------------------------------------------------------------------
// lbd configuration for http listeners

struct HttpClusterSpec {
  std::string name = "c";
  std::vector<std::string> endpoints;  // "127.0.0.1:port"
  std::string extra;                   // more YAML lines at 4 spaces
};

struct HttpConfigSpec {
  int workers = 1;
  std::string log = "{ level: info, access_log: off }";
  std::string drain_timeout;  // empty: default
  uint16_t port = 0;
  std::string cluster = "c";  // the listener's default cluster; "" for none
  std::string listener_extra; // more YAML lines at 4 spaces: routes, limits, timeouts
  std::vector<HttpClusterSpec> clusters;
  std::string to_yaml() const;
};

// ---------------------------------------------------------------------------------------------
// Processes

/// VmRSS of `pid` in KiB (from /proc/PID/status); -1 when unreadable.
long vm_rss_kib(pid_t pid);

struct CommandResult {
  ExitStatus status;
  std::string out;
  std::string err;
  bool timed_out = false;
  bool spawned = false;
};
/// Runs argv[0] (searched in PATH) with stdout and stderr captured, at most `limit`.
CommandResult run_command(const std::vector<std::string>& argv, const TempDir& dir, Ms limit = 60000ms);
/// Whether `program` is in PATH.
bool have_program(const std::string& program);

// ---------------------------------------------------------------------------------------------
// The fixture

class HttpTest : public LbdTest {
 protected:
  /// Starts lbd with `spec` (its port set to a free one when 0). Returns "" or the problem.
  std::string start_http(HttpConfigSpec& spec) {
    if (spec.port == 0) spec.port = free_port();
    port_ = spec.port;
    return start_yaml(spec.to_yaml(), {spec.port});
  }
  /// A single cluster "c" of `backends`, default route to it, plus `listener_extra`.
  std::string start_simple(const std::vector<const HttpBackend*>& backends, std::string listener_extra = "",
                           std::string cluster_extra = "", int workers = 1) {
    HttpConfigSpec spec;
    spec.workers = workers;
    spec.listener_extra = std::move(listener_extra);
    HttpClusterSpec c;
    for (const auto* b : backends) c.endpoints.push_back(b->address());
    c.extra = std::move(cluster_extra);
    spec.clusters.push_back(c);
    return start_http(spec);
  }

  /// One http listener "web" on port_ in front of cluster "web" of `endpoints`, with
  /// `cluster_extra` lines (at 4 spaces) and `top_extra` top-level lines; access log off.
  std::string web_yaml(const std::vector<std::string>& endpoints, const std::string& cluster_extra = "",
                       int workers = 1, const std::string& top_extra = "") const {
    std::string y = "workers: " + std::to_string(workers) + "\n";
    y += "log: { level: info, access_log: off }\n";
    y += top_extra;
    y += "listeners:\n  - name: web\n    listen: 127.0.0.1:" + std::to_string(port_) +
         "\n    protocol: http\n    cluster: web\n";
    y += "clusters:\n  - name: web\n    endpoints:\n";
    for (const auto& e : endpoints) y += "      - " + e + "\n";
    y += cluster_extra;
    return y;
  }
  /// `n` GET / through the proxy, one connection each: the bodies that came back for 200s
  /// (the backend ids, with id-answering backends), "<status>" for the others.
  std::vector<std::string> bodies(int n) {
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i) {
      HttpMessage m = roundtrip(http_get("/", "a"));
      if (m.status == 200) {
        out.push_back(m.body);
      } else {
        std::string other = std::to_string(m.status);  // not "<" + ...: GCC 12's -Wrestrict false positive
        out.push_back(other.insert(0, 1, '<').append(1, '>'));
      }
    }
    return out;
  }
  static int count(const std::vector<std::string>& v, const std::string& x) {
    return static_cast<int>(std::count(v.begin(), v.end(), x));
  }

  Fd client() { return connect_or_fail(port_); }
  /// One request on a new connection; the (final) response.
  HttpMessage roundtrip(const std::string& request, Ms limit = 10000ms, std::string_view method = "GET") {
    Fd c = client();
    if (!c || !send_all(c.get(), request)) return HttpMessage{.error = "send failed"};
    HttpReader r(c.get());
    return r.read_final_response(limit, method);
  }

  uint16_t port_ = 0;
};

}  // namespace lbd::it
