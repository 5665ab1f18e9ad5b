// loadgen: an echo ping-pong load generator on lbd's runtime.
//
//   loadgen --target 127.0.0.1:50002 --connections 64 --size 128 --duration 5
//           [--warmup 1] [--io io_uring|epoll] [--threads 1] [--server-pid PID]
//
// Every connection sends SIZE bytes, waits until all SIZE bytes have come back, checks them,
// and repeats. After the warm-up, the measured window counts completed round trips and, given
// --server-pid, the server's CPU time (utime + stime from /proc/PID/stat, which covers all its
// threads) over the same window: "server CPU µs per message" is that time over the messages.
//
// Output: one human line, then one machine-readable line starting with "result " made of
// key=value pairs (bench/echo_compare.sh parses it). Rates, latencies and CPU cover the measured
// window; mismatches (echoed bytes that differ from what was sent) and I/O errors cover the whole
// run, warm-up included. Exit status 0 when every connection ran clean, 1 on mismatches or I/O
// errors, 2 on bad usage or when not every connection could be opened.
//
// Threads: each one is a WorkerPool worker with its own Runtime; connection i lives on worker
// i % threads. Workers share nothing but a few counters the main thread reads.

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
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

struct Options {
  std::string target;
  unsigned connections = 0;
  std::size_t size = 0;
  double duration_s = 0;
  double warmup_s = 1.0;
  IoMode io = IoMode::kAuto;
  unsigned threads = 1;
  long server_pid = 0;  // 0: no server CPU accounting
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "loadgen: %s\n"
               "usage: loadgen --target HOST:PORT --connections N --size BYTES --duration SECONDS\n"
               "               [--warmup SECONDS] [--io io_uring|epoll] [--threads T] [--server-pid PID]\n",
               why.c_str());
  std::exit(2);
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") usage("echo ping-pong load generator");
    if (i + 1 >= argc) usage(std::string(flag) + " needs a value");
    std::string_view v = argv[++i];
    if (flag == "--target") o.target = v;
    else if (flag == "--connections") o.connections = bench::number_flag<unsigned>(flag, v, usage);
    else if (flag == "--size") o.size = bench::number_flag<std::size_t>(flag, v, usage);
    else if (flag == "--duration") o.duration_s = bench::number_flag<double>(flag, v, usage);
    else if (flag == "--warmup") o.warmup_s = bench::number_flag<double>(flag, v, usage);
    else if (flag == "--threads") o.threads = bench::number_flag<unsigned>(flag, v, usage);
    else if (flag == "--server-pid") o.server_pid = bench::number_flag<long>(flag, v, usage);
    else if (flag == "--io") {
      o.io = bench::io_flag(v, usage);
    } else {
      usage(std::string("unknown option ") + std::string(flag));
    }
  }
  if (o.target.empty()) usage("--target is required");
  if (o.connections == 0) usage("--connections must be at least 1");
  if (o.size == 0 || o.size > (16u << 20)) usage("--size must be 1 .. 16777216 bytes");
  if (o.duration_s <= 0) usage("--duration must be positive");
  if (o.warmup_s < 0) usage("--warmup must not be negative");
  if (o.threads == 0 || o.threads > o.connections) usage("--threads must be 1 .. connections");
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
};

/// One per worker. The counters have a single writer (the worker) and are read by the main
/// thread while the run goes on, hence relaxed atomics; the histogram is read after join.
struct alignas(64) WorkerState {
  std::atomic<uint64_t> messages{0};
  std::atomic<uint64_t> mismatches{0};
  std::atomic<uint64_t> io_errors{0};
  Histogram latency;
  std::atomic<bool> done{false};  // the worker's task has ended
  std::string driver;       // the runtime's driver name; written before the first connect
  std::string first_error;  // the first I/O error's text, read after join
  std::vector<JoinHandle<void>> conns;  // touched on the worker's thread only

  void bump(std::atomic<uint64_t>& c) { c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed); }
  void io_error(const std::string& what) {
    bump(io_errors);
    if (first_error.empty()) first_error = what;
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
  std::size_t size = 0;
  const Pattern* pattern = nullptr;  // owned by main, outlives the workers
  Control* control = nullptr;        // owned by main
};

// ---------------------------------------------------------------------------------------------
// The connection loop

Task<void> ping_pong(TcpStream stream, RunConfig cfg, WorkerState* w, uint64_t first_seq) {
  const std::size_t size = cfg.size;
  Buffer out(size);
  Buffer in(size);
  Runtime& rt = Runtime::current();
  for (uint64_t seq = first_seq; !cfg.control->stop.load(std::memory_order_relaxed); ++seq) {
    const char* expect = cfg.pattern->at(seq);
    out.clear();
    out.append(std::string_view(expect, size));
    auto start = rt.now();

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
    w->bump(w->messages);
    if (cfg.control->measuring.load(std::memory_order_relaxed)) {
      auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(rt.now() - start).count();
      w->latency.record(static_cast<uint64_t>(ns));
    }
  }
}

/// Opens this worker's share of the connections one after another (a burst of 1,000 SYNs
/// would overflow a 511-deep accept queue and stall on SYN retransmits), then runs them all.
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
  uint64_t seq = first_conn;
  for (auto& s : streams) {
    w->conns.push_back(spawn(ping_pong(std::move(s), cfg, w, seq * 7919)));
    seq += stride;
  }
  for (auto& h : w->conns) co_await h;
}

/// A worker's whole life. Once its connections have ended it stays up until the main thread
/// releases it, so that the main thread can post to its runtime without racing its teardown.
Task<void> worker_main(RunConfig cfg, WorkerState* w, unsigned first_conn, unsigned stride,
                       unsigned total_conns) {
  w->driver = Runtime::current().driver_info().name;
  co_await run_connections(cfg, w, first_conn, stride, total_conns);
  w->done.store(true);
  while (!cfg.control->released.load()) (void)co_await sleep_for(std::chrono::milliseconds(1));
}

uint64_t sum_messages(const std::vector<std::unique_ptr<WorkerState>>& ws) {
  uint64_t n = 0;
  for (auto& w : ws) n += w->messages.load(std::memory_order_relaxed);
  return n;
}

void sleep_seconds(double s) { std::this_thread::sleep_for(std::chrono::duration<double>(s)); }

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
  Control control;
  RunConfig cfg{*target, opt.size, &pattern, &control};
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
    m0 = sum_messages(workers);
    if (server_cpu_ok) server_cpu_ok = (srv0 = process_cpu_us(opt.server_pid).value_or(-1)) >= 0;
    self0 = self_cpu_us();
    control.measuring.store(true);

    sleep_seconds(opt.duration_s);

    auto t1 = std::chrono::steady_clock::now();
    m1 = sum_messages(workers);
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

  uint64_t mismatches = 0, io_errors = 0;
  Histogram latency;
  std::string first_error;
  for (auto& w : workers) {
    mismatches += w->mismatches.load();
    io_errors += w->io_errors.load();
    latency.merge(w->latency);
    if (first_error.empty()) first_error = w->first_error;
  }
  if (!setup_ok) {
    std::fprintf(stderr, "loadgen: only %u of %u connections to %s came up: %s\n", control.connected.load(),
                 opt.connections, opt.target.c_str(), first_error.empty() ? "timed out" : first_error.c_str());
    return 2;
  }

  const uint64_t messages = m1 - m0;
  const double rate = static_cast<double>(messages) / t_window;
  const double srv_us = server_cpu_ok ? srv1 - srv0 : -1;
  const double srv_us_per_msg = server_cpu_ok && messages ? srv_us / static_cast<double>(messages) : -1;
  const double srv_util = server_cpu_ok ? srv_us / (t_window * 1e6) : -1;
  const double self_util = (self1 - self0) / (t_window * 1e6);
  const double p50_us = static_cast<double>(latency.quantile(0.50)) / 1e3;
  const double p99_us = static_cast<double>(latency.quantile(0.99)) / 1e3;

  std::printf("loadgen: %s %u conns x %zu B, %.2fs: %.0f msg/s, p50 %.1f us, p99 %.1f us", opt.target.c_str(),
              opt.connections, opt.size, t_window, rate, p50_us, p99_us);
  if (server_cpu_ok)
    std::printf(", server CPU %.3f us/msg (%.0f%% of a core)", srv_us_per_msg, srv_util * 100);
  std::printf(", loadgen CPU %.0f%%, mismatches %" PRIu64 ", io errors %" PRIu64 "%s%s\n", self_util * 100, mismatches,
              io_errors, first_error.empty() ? "" : " (first: ", first_error.empty() ? "" : (first_error + ")").c_str());
  std::printf("result target=%s connections=%u size=%zu threads=%u io=%s window_s=%.3f messages=%" PRIu64
              " msgs_per_s=%.1f p50_us=%.2f p99_us=%.2f server_cpu_us=%.0f server_cpu_us_per_msg=%.4f"
              " server_cpu_util=%.3f loadgen_cpu_util=%.3f mismatches=%" PRIu64 " io_errors=%" PRIu64 "\n",
              opt.target.c_str(), opt.connections, opt.size, opt.threads, workers[0]->driver.c_str(), t_window, messages,
              rate, p50_us, p99_us, srv_us, srv_us_per_msg, srv_util, self_util, mismatches, io_errors);
  return mismatches || io_errors ? 1 : 0;
}
