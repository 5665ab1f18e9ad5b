// loadgen: an echo ping-pong and HTTP/1.1 load generator on lbd's runtime.
//
//   loadgen --target 127.0.0.1:50002 --connections 64 --size 128 --duration 5
//           [--warmup 1] [--io io_uring|epoll] [--threads 1] [--server-pid PID]
//           [--rate R] [--http [--host H] [--path P] [--new-connection]]
//
// Closed loop (the default): every connection sends SIZE bytes, waits until all SIZE bytes have
// come back, checks them, and repeats. After the warm-up, the measured window counts completed
// round trips and, given --server-pid, the server's CPU time (utime + stime from
// /proc/PID/stat, which covers all its threads) over the same window: "server CPU µs per
// message" is that time over the messages.
//
// --rate R: open loop at R messages (or requests) per second over all connections. Every
// connection has its own send schedule, R / connections per second, and the connections' starts
// are staggered evenly over one interval. A message is due at its scheduled time whether or not
// the previous answer has come: it waits on its connection (one exchange in flight per
// connection, as a client of a request/response protocol does) and its latency still counts
// from the scheduled time, so a slow server cannot hide its stalls by slowing the load down (no
// coordinated omission). A send that leaves more than 1 ms after its scheduled time is "late".
//
// --http: each message is `GET P HTTP/1.1` with `Host: H` on a keep-alive connection, and the
// answer is a complete HTTP/1.1 response (status line, headers, then a Content-Length,
// chunked or, when the server closes after it, close-delimited body). A non-2xx status is an
// error. A server that closes a keep-alive connection is reconnected to (counted).
// --http --new-connection: every request opens its own connection, sends `Connection: close`,
// reads the response and the server's FIN, and closes. --connections is then the number of
// requests in flight at most: in rate mode a request due while all are busy waits for one,
// and its latency counts from its schedule.
//
// Latencies go into a log-linear histogram (16 buckets per power of two: a quantile is
// reported as its bucket's upper bound, at most 6.25 % above the true value).
//
// Output: one human line, then one machine-readable line starting with "result " made of
// key=value pairs (bench/echo_compare.sh and bench/proxy_compare.sh parse it). Rates,
// latencies, late sends and CPU cover the measured window; mismatches (echoed bytes that differ
// from what was sent), I/O and HTTP errors cover the whole run, warm-up included. Exit status 0
// when every connection ran clean, 1 on mismatches or errors, 2 on bad usage or when not every
// connection could be opened.
//
// Threads: each one is a WorkerPool worker with its own Runtime; connection i lives on worker
// i % threads. Workers share nothing but a few counters the main thread reads.

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench/bench_util.hpp"
#include "runtime/net.hpp"
#include "runtime/runtime.hpp"
#include "runtime/spawn.hpp"
#include "runtime/timer.hpp"
#include "runtime/worker.hpp"

using namespace lbd;
using bench::process_cpu_us;
using bench::self_cpu_us;

namespace {

// ---------------------------------------------------------------------------------------------
// Options

enum class Mode { kEcho, kHttp, kHttpNewConnection };

const char* mode_name(Mode m) {
  switch (m) {
    case Mode::kEcho: return "echo";
    case Mode::kHttp: return "http";
    case Mode::kHttpNewConnection: return "http-new-connection";
  }
  return "?";
}

struct Options {
  std::string target;
  unsigned connections = 0;
  std::size_t size = 0;
  double duration_s = 0;
  double warmup_s = 1.0;
  IoMode io = IoMode::kAuto;
  unsigned threads = 1;
  long server_pid = 0;  // 0: no server CPU accounting
  double rate = 0;      // messages per second over all connections; 0: closed loop
  Mode mode = Mode::kEcho;
  std::string host;  // --http: the Host header; empty: the target's address
  std::string path = "/";
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "loadgen: %s\n"
               "usage: loadgen --target HOST:PORT --connections N --duration SECONDS\n"
               "               (--size BYTES | --http [--host H] [--path P] [--new-connection])\n"
               "               [--rate PER_SECOND] [--warmup SECONDS] [--io io_uring|epoll] [--threads T]\n"
               "               [--server-pid PID]\n",
               why.c_str());
  std::exit(2);
}

Options parse_options(int argc, char** argv) {
  Options o;
  bool http = false, new_connection = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") usage("echo ping-pong and HTTP/1.1 load generator");
    if (flag == "--http") {
      http = true;
      continue;
    }
    if (flag == "--new-connection") {
      new_connection = true;
      continue;
    }
    if (i + 1 >= argc) usage(std::string(flag) + " needs a value");
    std::string_view v = argv[++i];
    if (flag == "--target") o.target = v;
    else if (flag == "--connections") o.connections = bench::number_flag<unsigned>(flag, v, usage);
    else if (flag == "--size") o.size = bench::number_flag<std::size_t>(flag, v, usage);
    else if (flag == "--duration") o.duration_s = bench::number_flag<double>(flag, v, usage);
    else if (flag == "--warmup") o.warmup_s = bench::number_flag<double>(flag, v, usage);
    else if (flag == "--threads") o.threads = bench::number_flag<unsigned>(flag, v, usage);
    else if (flag == "--server-pid") o.server_pid = bench::number_flag<long>(flag, v, usage);
    else if (flag == "--rate") o.rate = bench::number_flag<double>(flag, v, usage);
    else if (flag == "--host") o.host = v;
    else if (flag == "--path") o.path = v;
    else if (flag == "--io") {
      o.io = bench::io_flag(v, usage);
    } else {
      usage(std::string("unknown option ") + std::string(flag));
    }
  }
  if (new_connection && !http) usage("--new-connection needs --http");
  o.mode = !http ? Mode::kEcho : new_connection ? Mode::kHttpNewConnection : Mode::kHttp;
  if (o.target.empty()) usage("--target is required");
  if (o.connections == 0) usage("--connections must be at least 1");
  if (o.mode == Mode::kEcho && (o.size == 0 || o.size > (16u << 20))) usage("--size must be 1 .. 16777216 bytes");
  if (o.mode != Mode::kEcho && o.size != 0) usage("--size is for echo; --http sends a GET");
  if (o.path.empty() || o.path[0] != '/') usage("--path must start with /");
  if (o.duration_s <= 0) usage("--duration must be positive");
  if (o.warmup_s < 0) usage("--warmup must not be negative");
  if (o.rate < 0) usage("--rate must not be negative");
  if (o.threads == 0 || o.threads > o.connections) usage("--threads must be 1 .. connections");
  if (o.host.empty()) o.host = o.target;
  return o;
}

// ---------------------------------------------------------------------------------------------
// Latency histogram: log-linear buckets (16 per power of two, so under 6.25% relative error),
// recorded per worker without locks and merged after the workers have ended.

class Histogram {
 public:
  void record(uint64_t ns) { ++counts_[bucket_of(ns)]; }
  void merge(const Histogram& o) {
    for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
  }
  /// Upper bound of the bucket holding quantile `q` (0..1), in ns; 0 when empty.
  uint64_t quantile(double q) const {
    uint64_t total = 0;
    for (uint64_t c : counts_) total += c;
    if (total == 0) return 0;
    auto rank = static_cast<uint64_t>(q * static_cast<double>(total - 1)) + 1;
    uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return upper_bound_of(i);
    }
    return upper_bound_of(kBuckets - 1);
  }

 private:
  static constexpr int kSubBits = 4;
  static constexpr std::size_t kBuckets = (64 - kSubBits + 1) << kSubBits;

  static std::size_t bucket_of(uint64_t v) {
    if (v < (1u << kSubBits)) return static_cast<std::size_t>(v);
    int msb = 63 - std::countl_zero(v);
    int shift = msb - kSubBits;
    return (static_cast<std::size_t>(shift + 1) << kSubBits) + ((v >> shift) & ((1u << kSubBits) - 1));
  }
  static uint64_t upper_bound_of(std::size_t i) {
    if (i < (1u << kSubBits)) return i;
    int shift = static_cast<int>(i >> kSubBits) - 1;
    uint64_t sub = i & ((1u << kSubBits) - 1);
    return (((1ull << kSubBits) + sub + 1) << shift) - 1;
  }

  std::array<uint64_t, kBuckets> counts_{};
};

// ---------------------------------------------------------------------------------------------
// State shared between the main thread and the workers

/// Set by the main thread, read by every connection between round trips.
struct Control {
  std::atomic<bool> stop{false};
  std::atomic<bool> measuring{false};  // record latencies only inside the measured window
  std::atomic<unsigned> connected{0};
  std::atomic<unsigned> connect_failed{0};
  std::atomic<bool> released{false};  // workers may end (no more posts to their runtimes)

  bool stopped() const { return stop.load(std::memory_order_relaxed); }
};

/// A send that leaves later than this after its scheduled time counts as late.
constexpr Duration kLateBy = std::chrono::milliseconds(1);
/// An open-loop sender waiting for a far-off schedule looks at Control::stop this often.
constexpr Duration kStopPoll = std::chrono::milliseconds(50);

/// One per worker. The counters have a single writer (the worker) and are read by the main
/// thread while the run goes on, hence relaxed atomics; the histogram is read after join.
struct alignas(64) WorkerState {
  std::atomic<uint64_t> messages{0};
  std::atomic<uint64_t> late{0};
  std::atomic<uint64_t> mismatches{0};
  std::atomic<uint64_t> io_errors{0};
  std::atomic<uint64_t> non_2xx{0};
  std::atomic<uint64_t> bad_responses{0};  // not HTTP/1.1 as we read it, or a server that did not close
  std::atomic<uint64_t> reconnects{0};     // keep-alive connections the server closed
  Histogram latency;
  std::atomic<bool> done{false};  // the worker's task has ended
  std::string driver;       // the runtime's driver name; written before the first connect
  std::string first_error;  // the first error's text, read after join
  std::vector<JoinHandle<void>> conns;  // touched on the worker's thread only
  uint64_t next_request = 0;  // --new-connection: the worker's next schedule slot (its thread only)

  void bump(std::atomic<uint64_t>& c) { c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed); }
  void error(std::atomic<uint64_t>& counter, const std::string& what) {
    bump(counter);
    if (first_error.empty()) first_error = what;
  }
  void io_error(const std::string& what) { error(io_errors, what); }
  /// A complete answer to a message that was due at `due` and left at `sent`.
  void answered(Clock::time_point due, Clock::time_point sent, Clock::time_point done_at, bool measuring) {
    bump(messages);
    if (!measuring) return;
    latency.record(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(done_at - due).count()));
    if (sent - due > kLateBy) bump(late);
  }
};

/// When a sender's k-th message is due. Closed loop (no period): every message is due the
/// moment the previous answer is complete.
struct Schedule {
  Clock::time_point first{};
  double period_ns = 0;  // 0: closed loop

  bool open_loop() const { return period_ns > 0; }
  Clock::time_point due(uint64_t k) const {
    // In double so that a period that is no whole number of ns does not drift.
    return first + std::chrono::nanoseconds(static_cast<int64_t>(static_cast<double>(k) * period_ns));
  }
};

/// What a connection sends: a window of a fixed pseudo-random pattern that moves with every
/// message, so an echo of stale or misplaced bytes does not compare equal.
struct Pattern {
  static constexpr std::size_t kStride = 251;  // prime: offsets cycle through every residue
  explicit Pattern(std::size_t size) : bytes(size + kStride) {
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (char& c : bytes) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      c = static_cast<char>(x);
    }
  }
  const char* at(uint64_t seq) const { return bytes.data() + seq % kStride; }
  std::vector<char> bytes;
};

struct RunConfig {
  SocketAddress target;
  Mode mode = Mode::kEcho;
  std::size_t size = 0;
  double rate = 0;                   // over all connections; 0: closed loop
  unsigned connections = 0;          // over all workers
  unsigned threads = 1;
  const Pattern* pattern = nullptr;  // owned by main, outlives the workers
  const std::string* request = nullptr;  // --http: the request's bytes; owned by main
  Control* control = nullptr;        // owned by main
};

// ---------------------------------------------------------------------------------------------
// HTTP/1.1 responses

/// Reads one HTTP/1.1 response out of the bytes it is fed, consuming them as it goes (a body
/// is counted, not kept, so its size is not bounded by the read buffer). Enough of RFC 9112
/// for a load generator: the status line, Content-Length, Transfer-Encoding: chunked (with
/// trailers), a close-delimited body, 1xx interim responses skipped, 204/304 without a body.
class ResponseParser {
 public:
  enum class Step { kNeedMore, kDone, kClosed, kError };

  /// Consumes from `in` what belongs to this response; `eof`: the server closed after `in`.
  /// kClosed: the server closed before the response's first byte. kError: error() says why.
  Step parse(Buffer& in, bool eof) {
    for (;;) {
      std::string_view v = in.view();
      switch (state_) {
        case State::kHead: {
          auto end = v.find("\r\n\r\n");
          if (end == std::string_view::npos) {
            if (eof) return v.empty() ? Step::kClosed : fail("the server closed the connection in a response head");
            return Step::kNeedMore;
          }
          if (!parse_head(v.substr(0, end + 2))) return Step::kError;
          in.consume(end + 4);
          if (status_ < 200) {  // interim (100 Continue, 103 Early Hints): the real one follows
            *this = ResponseParser();
            continue;
          }
          if (status_ == 204 || status_ == 304) return Step::kDone;
          if (chunked_) state_ = State::kChunkSize;
          else if (content_length_) state_ = State::kBody, remaining_ = *content_length_;
          else state_ = State::kUntilClose, server_closes_ = true;
          if (state_ == State::kBody && remaining_ == 0) return Step::kDone;
          continue;
        }
        case State::kBody:
        case State::kChunkData: {
          std::size_t n = std::min<uint64_t>(remaining_, v.size());
          in.consume(n);
          remaining_ -= n;
          if (remaining_ > 0) return eof ? fail("the server closed the connection in a response body") : Step::kNeedMore;
          if (state_ == State::kBody) return Step::kDone;
          state_ = State::kChunkEnd;
          continue;
        }
        case State::kChunkEnd: {
          if (v.size() < 2) return eof ? fail("the server closed the connection in a chunk") : Step::kNeedMore;
          if (v.substr(0, 2) != "\r\n") return fail("a chunk does not end in CRLF");
          in.consume(2);
          state_ = State::kChunkSize;
          continue;
        }
        case State::kChunkSize:
        case State::kTrailers: {
          auto end = v.find("\r\n");
          if (end == std::string_view::npos) {
            if (v.size() > kMaxLine) return fail("a chunk size or trailer line is over 8 KiB");
            return eof ? fail("the server closed the connection in a chunked body") : Step::kNeedMore;
          }
          // `line` points into `in`: read it before consume() moves the bytes.
          std::string_view line = v.substr(0, end);
          if (state_ == State::kTrailers) {
            in.consume(end + 2);
            if (line.empty()) return Step::kDone;
            continue;
          }
          uint64_t size = 0;
          auto [p, ec] = std::from_chars(line.data(), line.data() + line.size(), size, 16);
          if (ec != std::errc() || p == line.data() || (p != line.data() + line.size() && *p != ';' && *p != ' '))
            return fail("a bad chunk size: " + std::string(line));
          in.consume(end + 2);
          if (size == 0) state_ = State::kTrailers;
          else state_ = State::kChunkData, remaining_ = size;
          continue;
        }
        case State::kUntilClose:
          in.clear();
          return eof ? Step::kDone : Step::kNeedMore;
      }
    }
  }

  int status() const { return status_; }
  /// The server closes after this response: it said so, or the body ends at the close.
  bool server_closes() const { return server_closes_; }
  const std::string& error() const { return error_; }

 private:
  enum class State { kHead, kBody, kChunkSize, kChunkData, kChunkEnd, kTrailers, kUntilClose };
  static constexpr std::size_t kMaxLine = 8192;

  static bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
             return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
  }
  static bool icontains(std::string_view hay, std::string_view needle) {
    for (std::size_t i = 0; i + needle.size() <= hay.size(); ++i)
      if (iequals(hay.substr(i, needle.size()), needle)) return true;
    return false;
  }
  static std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
  }

  /// `head`: the status line and the header lines, each ending in CRLF.
  bool parse_head(std::string_view head) {
    auto eol = head.find("\r\n");
    std::string_view status_line = head.substr(0, eol);
    bool http10 = status_line.starts_with("HTTP/1.0 ");
    if (!(http10 || status_line.starts_with("HTTP/1.1 ")) || status_line.size() < 12)
      return fail("not an HTTP/1.x status line: " + std::string(status_line.substr(0, 64))), false;
    auto [p, ec] = std::from_chars(status_line.data() + 9, status_line.data() + 12, status_);
    if (ec != std::errc() || p != status_line.data() + 12 || status_ < 100 || status_ > 999)
      return fail("a bad status code: " + std::string(status_line.substr(0, 64))), false;
    bool keep_alive = !http10;
    for (std::size_t at = eol + 2; at < head.size();) {
      auto end = head.find("\r\n", at);
      std::string_view line = head.substr(at, end - at);
      at = end + 2;
      auto colon = line.find(':');
      if (colon == std::string_view::npos) return fail("a header line without a colon"), false;
      std::string_view name = line.substr(0, colon), value = trim(line.substr(colon + 1));
      if (iequals(name, "content-length")) {
        uint64_t n = 0;
        auto [q, e] = std::from_chars(value.data(), value.data() + value.size(), n);
        if (e != std::errc() || q != value.data() + value.size() || (content_length_ && *content_length_ != n))
          return fail("a bad Content-Length: " + std::string(value)), false;
        content_length_ = n;
      } else if (iequals(name, "transfer-encoding")) {
        if (!icontains(value, "chunked")) return fail("a transfer coding we do not read: " + std::string(value)), false;
        chunked_ = true;
      } else if (iequals(name, "connection")) {
        if (icontains(value, "close")) keep_alive = false;
        if (icontains(value, "keep-alive")) keep_alive = true;
      }
    }
    server_closes_ = !keep_alive;
    if (chunked_) content_length_.reset();  // RFC 9112 6.3: chunked wins
    return true;
  }
  Step fail(std::string why) {
    error_ = std::move(why);
    return Step::kError;
  }

  State state_ = State::kHead;
  int status_ = 0;
  bool chunked_ = false;
  bool server_closes_ = false;
  std::optional<uint64_t> content_length_;
  uint64_t remaining_ = 0;
  std::string error_;
};

/// How reading one response ended.
struct Answer {
  enum class Kind { kComplete, kClosed, kIoError, kMalformed };
  Kind kind = Kind::kComplete;
  int status = 0;
  bool server_closes = false;
  std::string what;  // for the errors
};

/// Reads one response from `stream` into `*in` (which keeps what follows it). Pointers, not
/// references: coroutine parameters are taken by value (GCC 12), and the caller's frame owns
/// both for the whole await.
Task<Answer> read_response(TcpStream* stream, Buffer* in) {
  ResponseParser parser;
  bool eof = false;
  for (;;) {
    switch (parser.parse(*in, eof)) {
      case ResponseParser::Step::kDone:
        co_return Answer{Answer::Kind::kComplete, parser.status(), parser.server_closes() || eof, {}};
      case ResponseParser::Step::kClosed:
        co_return Answer{Answer::Kind::kClosed, 0, true, "recv: the server closed the connection"};
      case ResponseParser::Step::kError:
        co_return Answer{Answer::Kind::kMalformed, parser.status(), true, "response: " + parser.error()};
      case ResponseParser::Step::kNeedMore:
        break;
    }
    if (in->spare().empty()) co_return Answer{Answer::Kind::kMalformed, 0, true, "response: a head over the 64 KiB buffer"};
    auto [res, buf] = co_await stream->read(std::move(*in));
    *in = std::move(buf);
    if (!res) co_return Answer{Answer::Kind::kIoError, 0, true, "recv: " + res.error().message()};
    if (*res == 0) eof = true;
  }
}

constexpr std::size_t kHttpReadBuffer = 64 * 1024;

/// Counts a complete response: its status and its latency.
void count_answer(WorkerState* w, const Answer& a, Clock::time_point due, Clock::time_point sent, const Control* c) {
  if (a.status < 200 || a.status > 299) w->error(w->non_2xx, "response status " + std::to_string(a.status));
  w->answered(due, sent, Runtime::current().now(), c->measuring.load(std::memory_order_relaxed));
}

// ---------------------------------------------------------------------------------------------
// The senders. In open loop each one first waits for its message's scheduled time; the wait
// is written out in each (a helper coroutine would cost a frame per message).

Task<void> ping_pong(TcpStream stream, RunConfig cfg, WorkerState* w, uint64_t first_seq, Schedule sched) {
  const std::size_t size = cfg.size;
  Buffer out(size);
  Buffer in(size);
  Runtime& rt = Runtime::current();
  for (uint64_t k = 0; !cfg.control->stopped(); ++k) {
    const uint64_t seq = first_seq + k;
    auto due = rt.now();
    if (sched.open_loop()) {
      due = sched.due(k);
      while (rt.now() < due && !cfg.control->stopped()) (void)co_await sleep_until(std::min(due, rt.now() + kStopPoll));
      if (cfg.control->stopped()) break;
    }
    const char* expect = cfg.pattern->at(seq);
    out.clear();
    out.append(std::string_view(expect, size));
    auto sent = rt.now();

    auto [wres, wbuf] = co_await stream.write_all(std::move(out));
    out = std::move(wbuf);
    if (!wres) {
      w->io_error("send: " + wres.error().message());
      co_return;
    }
    in.clear();
    while (in.size() < size) {
      auto [rres, rbuf] = co_await stream.read(std::move(in));
      in = std::move(rbuf);
      if (!rres) {
        w->io_error("recv: " + rres.error().message());
        co_return;
      }
      if (*rres == 0) {
        w->io_error("recv: server closed the connection");
        co_return;
      }
    }

    if (std::memcmp(in.data(), expect, size) != 0) w->bump(w->mismatches);
    w->answered(due, sent, rt.now(), cfg.control->measuring.load(std::memory_order_relaxed));
  }
}

/// GETs on one keep-alive connection. A server that closes it (after a response that said
/// so, or before answering) gets a new connection; any other failure ends the sender.
Task<void> http_keep_alive(TcpStream stream, RunConfig cfg, WorkerState* w, Schedule sched) {
  Buffer req = Buffer::copy_of(*cfg.request);
  Buffer in(kHttpReadBuffer);
  Runtime& rt = Runtime::current();
  for (uint64_t k = 0; !cfg.control->stopped(); ++k) {
    auto due = rt.now();
    if (sched.open_loop()) {
      due = sched.due(k);
      while (rt.now() < due && !cfg.control->stopped()) (void)co_await sleep_until(std::min(due, rt.now() + kStopPoll));
      if (cfg.control->stopped()) break;
    }
    auto sent = rt.now();
    auto [wres, wbuf] = co_await stream.write_all(std::move(req));
    req = std::move(wbuf);
    if (!wres) {
      w->io_error("send: " + wres.error().message());
      co_return;
    }
    Answer a = co_await read_response(&stream, &in);
    if (a.kind == Answer::Kind::kComplete) count_answer(w, a, due, sent, cfg.control);
    if (a.kind == Answer::Kind::kIoError) w->io_error(a.what);
    if (a.kind == Answer::Kind::kClosed) w->io_error(a.what + " before answering");
    if (a.kind == Answer::Kind::kMalformed) {
      w->error(w->bad_responses, a.what);
      co_return;
    }
    if (a.kind == Answer::Kind::kIoError) co_return;
    if (!a.server_closes) continue;
    w->bump(w->reconnects);
    in.clear();
    auto s = co_await TcpStream::connect(cfg.target, std::chrono::seconds(5));
    if (!s) {
      w->io_error("reconnect " + cfg.target.to_string() + ": " + s.error().message());
      co_return;
    }
    (void)s->set_nodelay(true);
    stream = std::move(*s);
  }
}

/// One of the worker's request slots for --new-connection: takes the worker's next schedule
/// slot, waits for its time, then connects, sends, reads the response and the server's FIN.
/// While every slot is busy the next due request waits, and its latency still counts.
Task<void> http_new_connection(RunConfig cfg, WorkerState* w, Schedule sched) {
  Buffer req = Buffer::copy_of(*cfg.request);
  Buffer in(kHttpReadBuffer);
  Runtime& rt = Runtime::current();
  while (!cfg.control->stopped()) {
    auto due = rt.now();
    if (sched.open_loop()) {
      due = sched.due(w->next_request++);
      while (rt.now() < due && !cfg.control->stopped()) (void)co_await sleep_until(std::min(due, rt.now() + kStopPoll));
      if (cfg.control->stopped()) break;
    }
    auto sent = rt.now();
    auto s = co_await TcpStream::connect(cfg.target, std::chrono::seconds(5));
    if (!s) {
      w->io_error("connect " + cfg.target.to_string() + ": " + s.error().message());
      continue;
    }
    TcpStream stream = std::move(*s);
    (void)stream.set_nodelay(true);
    auto [wres, wbuf] = co_await stream.write_all(std::move(req));
    req = std::move(wbuf);
    if (!wres) {
      w->io_error("send: " + wres.error().message());
      continue;
    }
    in.clear();
    Answer a = co_await read_response(&stream, &in);
    switch (a.kind) {
      case Answer::Kind::kComplete: count_answer(w, a, due, sent, cfg.control); break;
      case Answer::Kind::kClosed: w->io_error(a.what + " before answering"); continue;
      case Answer::Kind::kIoError: w->io_error(a.what); continue;
      case Answer::Kind::kMalformed: w->error(w->bad_responses, a.what); continue;
    }
    // We asked for Connection: close, so the server closes first (its side keeps TIME_WAIT,
    // as it would with real clients). One that does not within a second is at fault.
    in.clear();
    for (;;) {
      auto [rres, rbuf] = co_await stream.read(std::move(in)).with_timeout(std::chrono::seconds(1));
      in = std::move(rbuf);
      if (rres && *rres == 0) break;
      if (!rres) {
        if (rres.error().is(ETIMEDOUT))
          w->error(w->bad_responses, "response: the server did not close after Connection: close");
        else if (!rres.error().is(ECONNRESET))
          w->io_error("recv after the response: " + rres.error().message());
        break;
      }
      if (!in.empty()) {
        w->error(w->bad_responses, "response: bytes after a Connection: close response");
        break;
      }
    }
  }
}

/// Opens this worker's share of the connections one after another (a burst of 1,000 SYNs
/// would overflow a 511-deep accept queue and stall on SYN retransmits), then runs them all.
/// In open loop connection i's schedule starts i / rate after the worker's start, so that the
/// connections' sends are spread evenly over each period.
Task<void> run_connections(RunConfig cfg, WorkerState* w, unsigned first_conn, unsigned stride,
                           unsigned total_conns) {
  std::vector<TcpStream> streams;
  for (unsigned i = first_conn; i < total_conns; i += stride) {
    auto s = co_await TcpStream::connect(cfg.target, std::chrono::seconds(5));
    if (!s) {
      w->io_error("connect " + cfg.target.to_string() + ": " + s.error().message());
      cfg.control->connect_failed.fetch_add(1);
      co_return;
    }
    (void)s->set_nodelay(true);
    streams.push_back(std::move(*s));
    cfg.control->connected.fetch_add(1);
  }
  const auto start = Clock::now();
  const double per_conn_period_ns = cfg.rate > 0 ? 1e9 * static_cast<double>(total_conns) / cfg.rate : 0;
  uint64_t seq = first_conn;
  for (auto& s : streams) {
    Schedule sched;
    if (per_conn_period_ns > 0)
      sched = {start + std::chrono::nanoseconds(static_cast<int64_t>(static_cast<double>(seq) * 1e9 / cfg.rate)),
               per_conn_period_ns};
    if (cfg.mode == Mode::kEcho) w->conns.push_back(spawn(ping_pong(std::move(s), cfg, w, seq * 7919, sched)));
    else w->conns.push_back(spawn(http_keep_alive(std::move(s), cfg, w, sched)));
    seq += stride;
  }
  for (auto& h : w->conns) co_await h;
}

/// --new-connection: the worker's request slots share one schedule at rate / threads, which
/// starts worker_index / rate after the worker's start.
Task<void> run_slots(RunConfig cfg, WorkerState* w, unsigned first_conn, unsigned stride, unsigned total_conns) {
  Schedule sched;
  if (cfg.rate > 0)
    sched = {Clock::now() + std::chrono::nanoseconds(static_cast<int64_t>(static_cast<double>(first_conn) * 1e9 / cfg.rate)),
             1e9 * static_cast<double>(cfg.threads) / cfg.rate};
  for (unsigned i = first_conn; i < total_conns; i += stride) w->conns.push_back(spawn(http_new_connection(cfg, w, sched)));
  cfg.control->connected.fetch_add(static_cast<unsigned>(w->conns.size()));
  for (auto& h : w->conns) co_await h;
}

/// A worker's whole life. Once its connections have ended it stays up until the main thread
/// releases it, so that the main thread can post to its runtime without racing its teardown.
Task<void> worker_main(RunConfig cfg, WorkerState* w, unsigned first_conn, unsigned stride,
                       unsigned total_conns) {
  w->driver = Runtime::current().driver_info().name;
  if (cfg.mode == Mode::kHttpNewConnection) co_await run_slots(cfg, w, first_conn, stride, total_conns);
  else co_await run_connections(cfg, w, first_conn, stride, total_conns);
  w->done.store(true);
  while (!cfg.control->released.load()) (void)co_await sleep_for(std::chrono::milliseconds(1));
}

uint64_t sum_of(const std::vector<std::unique_ptr<WorkerState>>& ws, std::atomic<uint64_t> WorkerState::*counter) {
  uint64_t n = 0;
  for (auto& w : ws) n += ((*w).*counter).load(std::memory_order_relaxed);
  return n;
}

void sleep_seconds(double s) { std::this_thread::sleep_for(std::chrono::duration<double>(s)); }

std::string http_request(const Options& o) {
  std::string r = "GET " + o.path + " HTTP/1.1\r\nHost: " + o.host + "\r\n";
  if (o.mode == Mode::kHttpNewConnection) r += "Connection: close\r\n";
  return r + "\r\n";
}

}  // namespace

int main(int argc, char** argv) {
  Options opt = parse_options(argc, argv);
  bench::raise_fd_limit("loadgen", opt.connections + 64ul);

  auto target = SocketAddress::parse(opt.target);
  if (!target) {
    std::fprintf(stderr, "loadgen: --target %s: %s (want IP:PORT)\n", opt.target.c_str(),
                 target.error().message().c_str());
    return 2;
  }
  if (opt.server_pid && !process_cpu_us(opt.server_pid)) {
    std::fprintf(stderr, "loadgen: --server-pid %ld: cannot read /proc/%ld/stat\n", opt.server_pid, opt.server_pid);
    return 2;
  }

  Pattern pattern(opt.size);
  const std::string request = http_request(opt);
  Control control;
  RunConfig cfg{*target, opt.mode, opt.size, opt.rate, opt.connections, opt.threads, &pattern, &request, &control};
  std::vector<std::unique_ptr<WorkerState>> workers;
  for (unsigned i = 0; i < opt.threads; ++i) workers.push_back(std::make_unique<WorkerState>());

  WorkerOptions wopts;
  wopts.count = opt.threads;
  wopts.runtime.io = opt.io;
  wopts.runtime.provided_buffers = false;  // we only use plain reads into our own buffers
  WorkerPool pool(wopts, [&](unsigned i) {
    return worker_main(cfg, workers[i].get(), i, opt.threads, opt.connections);
  });

  // Wait (bounded) for every connection to be up; a failed connect ends the run.
  auto connect_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (control.connected.load() + control.connect_failed.load() < opt.connections &&
         control.connect_failed.load() == 0 && std::chrono::steady_clock::now() < connect_deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  bool setup_ok = control.connected.load() == opt.connections;

  uint64_t m0 = 0, m1 = 0;
  double t_window = 0, srv0 = 0, srv1 = 0, self0 = 0, self1 = 0;
  bool server_cpu_ok = opt.server_pid != 0;
  if (setup_ok) {
    sleep_seconds(opt.warmup_s);
    auto t0 = std::chrono::steady_clock::now();
    m0 = sum_of(workers, &WorkerState::messages);
    if (server_cpu_ok) server_cpu_ok = (srv0 = process_cpu_us(opt.server_pid).value_or(-1)) >= 0;
    self0 = self_cpu_us();
    control.measuring.store(true);

    sleep_seconds(opt.duration_s);

    auto t1 = std::chrono::steady_clock::now();
    m1 = sum_of(workers, &WorkerState::messages);
    if (server_cpu_ok) server_cpu_ok = (srv1 = process_cpu_us(opt.server_pid).value_or(-1)) >= 0;
    self1 = self_cpu_us();
    control.measuring.store(false);
    t_window = std::chrono::duration<double>(t1 - t0).count();
  }
  control.stop.store(true);

  // Every connection finishes the round trip it is in and ends. A server that stopped
  // answering would hold them forever: after a grace period, cancel what is left (their
  // awaits fail with ECANCELED and count as I/O errors).
  auto grace_end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  auto all_done = [&] {
    return std::all_of(workers.begin(), workers.end(), [](auto& w) { return w->done.load(); });
  };
  while (!all_done() && std::chrono::steady_clock::now() < grace_end)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  for (unsigned i = 0; i < opt.threads; ++i) {
    WorkerState* w = workers[i].get();
    if (w->done.load()) continue;
    std::fprintf(stderr, "loadgen: worker %u still waits on the server after the run; cancelling\n", i);
    pool.mailbox(i).post([w] {
      for (auto& h : w->conns) h.cancel();
    });
  }
  control.released.store(true);
  pool.join();

  Histogram latency;
  std::string first_error;
  for (auto& w : workers) {
    latency.merge(w->latency);
    if (first_error.empty()) first_error = w->first_error;
  }
  const uint64_t mismatches = sum_of(workers, &WorkerState::mismatches);
  const uint64_t io_errors = sum_of(workers, &WorkerState::io_errors);
  const uint64_t non_2xx = sum_of(workers, &WorkerState::non_2xx);
  const uint64_t bad_responses = sum_of(workers, &WorkerState::bad_responses);
  const uint64_t errors = mismatches + io_errors + non_2xx + bad_responses;
  if (!setup_ok) {
    std::fprintf(stderr, "loadgen: only %u of %u connections to %s came up: %s\n", control.connected.load(),
                 opt.connections, opt.target.c_str(), first_error.empty() ? "timed out" : first_error.c_str());
    return 2;
  }

  const uint64_t messages = m1 - m0;
  const uint64_t late = sum_of(workers, &WorkerState::late);
  const double rate = static_cast<double>(messages) / t_window;
  const double srv_us = server_cpu_ok ? srv1 - srv0 : -1;
  const double srv_us_per_msg = server_cpu_ok && messages ? srv_us / static_cast<double>(messages) : -1;
  const double srv_util = server_cpu_ok ? srv_us / (t_window * 1e6) : -1;
  const double self_util = (self1 - self0) / (t_window * 1e6);
  const double p50_us = static_cast<double>(latency.quantile(0.50)) / 1e3;
  const double p99_us = static_cast<double>(latency.quantile(0.99)) / 1e3;
  const double p999_us = static_cast<double>(latency.quantile(0.999)) / 1e3;
  const char* unit = opt.mode == Mode::kEcho ? "msg" : "req";

  std::printf("loadgen: %s %s %u conns", opt.target.c_str(), mode_name(opt.mode), opt.connections);
  if (opt.mode == Mode::kEcho) std::printf(" x %zu B", opt.size);
  if (opt.rate > 0) std::printf(", offered %.0f %s/s", opt.rate, unit);
  std::printf(", %.2fs: %.0f %s/s, p50 %.1f us, p99 %.1f us, p99.9 %.1f us", t_window, rate, unit, p50_us, p99_us,
              p999_us);
  if (opt.rate > 0) std::printf(", late > 1 ms %" PRIu64, late);
  if (server_cpu_ok)
    std::printf(", server CPU %.3f us/%s (%.0f%% of a core)", srv_us_per_msg, unit, srv_util * 100);
  std::printf(", loadgen CPU %.0f%%", self_util * 100);
  if (opt.mode == Mode::kEcho) std::printf(", mismatches %" PRIu64, mismatches);
  else std::printf(", non-2xx %" PRIu64 ", bad responses %" PRIu64, non_2xx, bad_responses);
  std::printf(", io errors %" PRIu64 "%s%s\n", io_errors, first_error.empty() ? "" : " (first: ",
              first_error.empty() ? "" : (first_error + ")").c_str());
  // msgs_per_s and rate are the same figure (rate: the name the open-loop keys share);
  // rate_offered=0 means closed loop.
  std::printf("result target=%s mode=%s connections=%u size=%zu threads=%u io=%s window_s=%.3f messages=%" PRIu64
              " msgs_per_s=%.1f rate_offered=%.1f rate=%.1f p50_us=%.2f p99_us=%.2f p999_us=%.2f late=%" PRIu64
              " server_cpu_us=%.0f server_cpu_us_per_msg=%.4f server_cpu_util=%.3f loadgen_cpu_util=%.3f"
              " mismatches=%" PRIu64 " io_errors=%" PRIu64 " non_2xx=%" PRIu64 " bad_responses=%" PRIu64
              " reconnects=%" PRIu64 " errors=%" PRIu64 "\n",
              opt.target.c_str(), mode_name(opt.mode), opt.connections, opt.size, opt.threads,
              workers[0]->driver.c_str(), t_window, messages, rate, opt.rate, rate, p50_us, p99_us, p999_us, late,
              srv_us, srv_us_per_msg, srv_util, self_util, mismatches, io_errors, non_2xx, bad_responses,
              sum_of(workers, &WorkerState::reconnects), errors);
  return errors ? 1 : 0;
}
