// proxy_peer: the programs on either side of a proxy that bench/proxy_compare.sh needs and no
// packaged tool provides, on lbd's runtime. One binary, four roles:
//
//   proxy_peer sink --port P                  bulk backend: receives, checks and counts bytes
//   proxy_peer send --target IP:PORT --bytes 2GiB [--chunk 256KiB] [--proxy-pid PID]
//                                             bulk client: GiB/s and the proxy's CPU per GiB
//   proxy_peer hold-server --port P           backend that accepts connections and holds them
//   proxy_peer hold --target IP:PORT --connections N [--http] [--parallel K]
//                                             client that opens N connections and holds them
//   every role: [--io io_uring|epoll]
//
// Bulk protocol (send -> sink): an 8-byte little-endian length L, then L bytes of a fixed
// pseudo-random pattern whose period (kPeriod, a prime) lines up with no read or write size, so
// bytes that are lost, repeated or reordered do not compare equal. The sink checks every byte
// and, once it has L of them, answers 16 bytes: the count it received and how many reads held
// wrong bytes. The sender's clock and the proxy's CPU time run from just before the first byte
// until that answer arrives, so the figure covers delivery, not just handing bytes to the
// kernel. The length prefix (rather than a half-close) keeps the exchange independent of how a
// proxy passes FIN through.
//
// hold: opens N connections with K connects in flight, and with --http sends one
// "GET / HTTP/1.1" on each and reads the 200 response. Then it prints one "result ready ..."
// line and keeps every connection open and idle until SIGTERM or SIGINT, and finally prints
// "result done ... dropped=D": connections the proxy closed, reset or wrote to while idle.
//
// Output: human lines on stderr; machine lines on stdout, starting with "result ", made of
// key=value pairs. Exit status: 0 clean; 1 on I/O errors, wrong bytes or dropped connections;
// 2 on bad usage.

#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/bench_util.hpp"
#include "runtime/net.hpp"
#include "runtime/runtime.hpp"
#include "runtime/signal.hpp"
#include "runtime/spawn.hpp"
#include "runtime/timer.hpp"

using namespace lbd;

namespace {

constexpr std::size_t kPeriod = 1048573;     // largest prime below 1 MiB
constexpr std::size_t kMaxChunk = 1u << 20;  // longest read or write the pattern serves at once
constexpr auto kStallLimit = std::chrono::seconds(30);  // no progress for this long: give up

// ---------------------------------------------------------------------------------------------
// Options

struct Options {
  std::string role;
  std::string target;
  int port = -1;
  uint64_t bytes = 0;
  std::size_t chunk = 256 * 1024;
  long proxy_pid = 0;
  unsigned connections = 0;
  unsigned parallel = 32;
  bool http = false;
  bool verify = true;
  IoMode io = IoMode::kAuto;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "proxy_peer: %s\n"
               "usage: proxy_peer sink --port P [--no-verify]\n"
               "       proxy_peer send --target IP:PORT --bytes SIZE [--chunk SIZE] [--proxy-pid PID]\n"
               "       proxy_peer hold-server --port P\n"
               "       proxy_peer hold --target IP:PORT --connections N [--http] [--parallel K]\n"
               "       every role: [--io io_uring|epoll]; SIZE: 4096, 256KiB, 2GiB\n",
               why.c_str());
  std::exit(2);
}


Options parse_options(int argc, char** argv) {
  if (argc < 2) usage("a role is required");
  Options o;
  o.role = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string_view flag = argv[i];
    if (flag == "--http") { o.http = true; continue; }
    if (flag == "--no-verify") { o.verify = false; continue; }
    if (i + 1 >= argc) usage(std::string(flag) + " needs a value");
    std::string_view v = argv[++i];
    if (flag == "--target") o.target = v;
    else if (flag == "--port") o.port = bench::number_flag<int>(flag, v, usage);
    else if (flag == "--bytes") o.bytes = bench::size_flag(flag, v, usage);
    else if (flag == "--chunk") o.chunk = bench::size_flag(flag, v, usage);
    else if (flag == "--proxy-pid") o.proxy_pid = bench::number_flag<long>(flag, v, usage);
    else if (flag == "--connections") o.connections = bench::number_flag<unsigned>(flag, v, usage);
    else if (flag == "--parallel") o.parallel = bench::number_flag<unsigned>(flag, v, usage);
    else if (flag == "--io") {
      o.io = bench::io_flag(v, usage);
    } else {
      usage("unknown option " + std::string(flag));
    }
  }
  const bool server = o.role == "sink" || o.role == "hold-server";
  const bool client = o.role == "send" || o.role == "hold";
  if (!server && !client) usage("unknown role " + o.role);
  if (server && (o.port < 0 || o.port > 65535)) usage("--port 0..65535 is required");
  if (client && o.target.empty()) usage("--target is required");
  if (o.role == "send" && o.bytes == 0) usage("--bytes must be at least 1");
  if (o.chunk == 0 || o.chunk > kMaxChunk) usage("--chunk must be 1 .. 1MiB");
  if (o.role == "hold" && o.connections == 0) usage("--connections must be at least 1");
  if (o.parallel == 0) usage("--parallel must be at least 1");
  return o;
}

// ---------------------------------------------------------------------------------------------
// The bulk pattern: kPeriod pseudo-random bytes, followed by the first kMaxChunk of them again,
// so that the window of any read or write (at most kMaxChunk) at stream offset `off` is the
// contiguous range starting at off % kPeriod.

Buffer make_pattern() {
  Buffer b(kPeriod + kMaxChunk);
  uint64_t x = 0x9e3779b97f4a7c15ull;
  char* p = b.data();
  for (std::size_t i = 0; i < kPeriod; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    p[i] = static_cast<char>(x >> 24);
  }
  for (std::size_t i = kPeriod; i < kPeriod + kMaxChunk; ++i) p[i] = p[i - kPeriod];  // kMaxChunk > kPeriod
  b.set_size(kPeriod + kMaxChunk);
  return b;
}

void put_u64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
uint64_t get_u64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

// ---------------------------------------------------------------------------------------------
// sink

struct SinkContext {
  const Buffer* pattern;  // owned by sink_main, outlives every connection
  std::size_t chunk;
  bool verify;
};

Task<void> sink_connection(TcpStream s, SinkContext cx) {
  (void)s.set_nodelay(true);  // the 16-byte answer must not wait
  std::string peer = s.peer_address().value_or(SocketAddress()).to_string();
  char head[8];
  std::size_t head_have = 0;
  uint64_t expect = 0, got = 0, extra = 0, bad_reads = 0;
  bool answered = false;
  Buffer in(cx.chunk);
  for (;;) {
    in.clear();
    auto [r, b] = co_await timeout(s.read(std::move(in)), kStallLimit);
    in = std::move(b);
    if (!r) {
      std::fprintf(stderr, "proxy_peer: sink: %s: read: %s after %" PRIu64 " bytes\n", peer.c_str(),
                   r.error().message().c_str(), got);
      co_return;
    }
    if (*r == 0) break;
    std::string_view data = in.view();
    if (head_have < sizeof(head)) {
      std::size_t n = std::min(data.size(), sizeof(head) - head_have);
      std::memcpy(head + head_have, data.data(), n);
      head_have += n;
      data.remove_prefix(n);
      if (head_have == sizeof(head)) expect = get_u64(head);
    }
    if (answered || data.size() > expect - got) {  // more than announced: a proxy's mistake
      extra += answered ? data.size() : data.size() - (expect - got);
      data = data.substr(0, answered ? 0 : expect - got);
    }
    if (!data.empty()) {
      if (cx.verify && std::memcmp(data.data(), cx.pattern->data() + got % kPeriod, data.size()) != 0) ++bad_reads;
      got += data.size();
    }
    if (head_have == sizeof(head) && got == expect && !answered) {
      Buffer reply(16);
      put_u64(reply.data(), got);
      put_u64(reply.data() + 8, bad_reads);
      reply.set_size(16);
      auto w = co_await s.write_all(std::move(reply));
      if (!w.result) {
        std::fprintf(stderr, "proxy_peer: sink: %s: write: %s\n", peer.c_str(), w.result.error().message().c_str());
        co_return;
      }
      answered = true;
    }
  }
  std::fprintf(stderr, "proxy_peer: sink: %s: %" PRIu64 " of %" PRIu64 " bytes, %" PRIu64 " reads with wrong bytes, %" PRIu64
               " bytes beyond the announced length%s\n",
               peer.c_str(), got, expect, bad_reads, extra, answered ? "" : " (EOF before the end)");
}

// ---------------------------------------------------------------------------------------------
// hold-server: accepts and keeps every connection until the peer closes it

Task<void> park(TcpStream s) {
  for (;;) {
    auto r = co_await s.read_pooled();  // an idle connection pins no buffer
    if (!r || r->empty()) co_return;
  }
}

// ---------------------------------------------------------------------------------------------
// Servers: sink and hold-server share the accept loop.

Task<int> serve(Options o, const Buffer* pattern) {
  auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(static_cast<uint16_t>(o.port)));
  if (!listener) {
    std::fprintf(stderr, "proxy_peer: %s: bind 127.0.0.1:%d: %s\n", o.role.c_str(), o.port,
                 listener.error().message().c_str());
    co_return 1;
  }
  auto local = listener->local_address();
  std::printf("result role=%s listen=%s driver=%s\n", o.role.c_str(),
              local ? local->to_string().c_str() : "?", Runtime::current().driver_info().name.c_str());
  std::fflush(stdout);
  for (;;) {
    auto s = co_await listener->accept();
    if (!s) {
      std::fprintf(stderr, "proxy_peer: %s: accept: %s\n", o.role.c_str(), s.error().message().c_str());
      co_return 1;
    }
    if (o.role == "sink") (void)spawn(sink_connection(std::move(*s), SinkContext{pattern, o.chunk, o.verify}));
    else (void)spawn(park(std::move(*s)));
  }
}

// ---------------------------------------------------------------------------------------------
// send

Task<int> send_main(Options o, Buffer pattern) {
  auto target = SocketAddress::parse(o.target);
  if (!target) usage("--target " + o.target + ": " + target.error().message());
  auto conn = co_await TcpStream::connect(*target, std::chrono::seconds(10));
  if (!conn) {
    std::fprintf(stderr, "proxy_peer: send: connect %s: %s\n", o.target.c_str(), conn.error().message().c_str());
    co_return 1;
  }
  TcpStream s = std::move(*conn);
  Buffer head(8);
  put_u64(head.data(), o.bytes);
  head.set_size(8);

  double cpu0 = o.proxy_pid ? bench::process_cpu_us(o.proxy_pid).value_or(-1) : -1;
  auto t0 = std::chrono::steady_clock::now();
  auto hw = co_await s.write_all(std::move(head));
  if (!hw.result) {
    std::fprintf(stderr, "proxy_peer: send: write: %s\n", hw.result.error().message().c_str());
    co_return 1;
  }
  uint64_t sent = 0;
  while (sent < o.bytes) {
    std::size_t off = sent % kPeriod;
    std::size_t n = static_cast<std::size_t>(std::min<uint64_t>(o.chunk, o.bytes - sent));
    pattern.set_size(off + n);
    auto [r, b] = co_await timeout(s.write(std::move(pattern), off), kStallLimit);
    pattern = std::move(b);
    if (!r) {
      std::fprintf(stderr, "proxy_peer: send: write after %" PRIu64 " bytes: %s\n", sent, r.error().message().c_str());
      co_return 1;
    }
    sent += *r;
  }
  Buffer reply(16);
  while (reply.size() < 16) {
    auto [r, b] = co_await timeout(s.read(std::move(reply)), kStallLimit);
    reply = std::move(b);
    if (!r || *r == 0) {
      std::fprintf(stderr, "proxy_peer: send: waiting for the sink's answer: %s\n",
                   r ? "connection closed" : r.error().message().c_str());
      co_return 1;
    }
  }
  auto t1 = std::chrono::steady_clock::now();
  double cpu1 = o.proxy_pid ? bench::process_cpu_us(o.proxy_pid).value_or(-1) : -1;
  const uint64_t received = get_u64(reply.data());
  const uint64_t bad_reads = get_u64(reply.data() + 8);

  const double secs = std::chrono::duration<double>(t1 - t0).count();
  const double gib = static_cast<double>(o.bytes) / double(1ull << 30);
  const bool cpu_ok = cpu0 >= 0 && cpu1 >= 0;
  const double cpu_s = cpu_ok ? (cpu1 - cpu0) / 1e6 : -1;
  std::fprintf(stderr,
               "proxy_peer: send: %.3f GiB in %.3fs: %.3f GiB/s; proxy CPU %.3fs (%.3f s/GiB, %.0f%% of a core); "
               "sink got %" PRIu64 " bytes, %" PRIu64 " reads with wrong bytes\n",
               gib, secs, gib / secs, cpu_s, cpu_ok ? cpu_s / gib : -1, cpu_ok ? 100 * cpu_s / secs : -1, received,
               bad_reads);
  std::printf("result bytes=%" PRIu64 " seconds=%.4f gib_per_s=%.4f proxy_cpu_s=%.4f proxy_cpu_s_per_gib=%.4f"
              " proxy_cpu_util=%.3f received=%" PRIu64 " bad_reads=%" PRIu64 "\n",
              o.bytes, secs, gib / secs, cpu_s, cpu_ok ? cpu_s / gib : -1, cpu_ok ? cpu_s / secs : -1, received,
              bad_reads);
  co_return received == o.bytes && bad_reads == 0 ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------
// hold (client)

struct HoldState {
  SocketAddress target;
  bool http = false;
  unsigned next = 0;  // next connection to open
  unsigned total = 0;
  unsigned held = 0;
  unsigned failed = 0;
  unsigned dropped = 0;  // held connections the proxy closed, reset or wrote to
  bool stopping = false;
  std::string first_error;
  std::vector<TcpStream> streams;  // kept open here; park tasks read them by pointer
  void fail(const std::string& what) {
    ++failed;
    if (first_error.empty()) first_error = what;
  }
};

constexpr std::string_view kRequest = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: proxy_peer\r\n\r\n";

/// Sends one GET and reads its response; true when it is a complete 200.
Task<bool> one_request(TcpStream* s, HoldState* st) {
  auto w = co_await timeout(s->write_all(Buffer::copy_of(kRequest)), kStallLimit);
  if (!w.result) {
    st->fail("write request: " + w.result.error().message());
    co_return false;
  }
  std::string got;
  std::size_t want = 0;  // head + body length, once the head is complete
  while (want == 0 || got.size() < want) {
    auto r = co_await timeout(s->read_pooled(), kStallLimit);
    if (!r || r->empty()) {
      st->fail(r ? "response: connection closed" : "response: " + r.error().message());
      co_return false;
    }
    got.append(r->view());
    auto end = got.find("\r\n\r\n");
    if (want == 0 && end != std::string::npos) {
      // Header names are case-insensitive (HAProxy sends them in lower case).
      std::string head = got.substr(0, end);
      std::transform(head.begin(), head.end(), head.begin(), [](char c) { return c >= 'A' && c <= 'Z' ? c | 0x20 : c; });
      std::size_t length = 0;
      constexpr std::string_view kName = "\r\ncontent-length:";
      if (auto at = head.find(kName); at != std::string::npos) {
        std::string_view v = std::string_view(head).substr(at + kName.size());
        while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
        std::from_chars(v.data(), v.data() + v.size(), length);
      }
      want = end + 4 + length;
    }
  }
  if (!got.starts_with("HTTP/1.1 200 ") || got.size() != want) {
    st->fail("unexpected response: " + got.substr(0, got.find("\r\n")));
    co_return false;
  }
  co_return true;
}

/// Waits on an idle held connection; anything that happens to it before the end is a drop.
Task<void> watch(TcpStream* s, HoldState* st) {
  auto r = co_await s->read_pooled();
  if (!st->stopping) {
    ++st->dropped;
    if (st->dropped == 1)
      std::fprintf(stderr, "proxy_peer: hold: first dropped connection: %s\n",
                   !r ? r.error().message().c_str() : r->empty() ? "closed by the proxy" : "unexpected bytes");
  }
}

/// One of K openers: takes the next connection number until all are opened.
Task<void> opener(HoldState* st) {
  while (st->next < st->total) {
    ++st->next;
    auto s = co_await TcpStream::connect(st->target, std::chrono::seconds(10));
    if (!s) {
      st->fail("connect: " + s.error().message());
      continue;
    }
    (void)s->set_nodelay(true);
    if (st->http && !co_await one_request(&*s, st)) continue;
    st->streams.push_back(std::move(*s));
    ++st->held;
  }
}

Task<int> hold_main(Options o, SignalSet* signals) {
  auto target = SocketAddress::parse(o.target);
  if (!target) usage("--target " + o.target + ": " + target.error().message());
  HoldState st;
  st.target = *target;
  st.http = o.http;
  st.total = o.connections;
  st.streams.reserve(o.connections);  // watchers keep pointers into it
  auto t0 = std::chrono::steady_clock::now();
  std::vector<JoinHandle<void>> openers;
  for (unsigned k = 0; k < std::min(o.parallel, o.connections); ++k) openers.push_back(spawn(opener(&st)));
  for (auto& h : openers) co_await h;
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::vector<JoinHandle<void>> watchers;
  for (auto& s : st.streams) watchers.push_back(spawn(watch(&s, &st)));
  std::fprintf(stderr, "proxy_peer: hold: %u of %u connections open%s in %.2fs, %u failed%s%s\n", st.held, st.total,
               o.http ? " after one request each" : "", secs, st.failed, st.first_error.empty() ? "" : "; first: ",
               st.first_error.c_str());
  std::printf("result ready held=%u failed=%u seconds=%.3f\n", st.held, st.failed, secs);
  std::fflush(stdout);

  auto sig = co_await signals->next();
  (void)sig;
  st.stopping = true;
  for (auto& h : watchers) h.cancel();
  for (auto& h : watchers) co_await h;
  std::fprintf(stderr, "proxy_peer: hold: done: %u held, %u dropped while idle\n", st.held, st.dropped);
  std::printf("result done held=%u failed=%u dropped=%u\n", st.held, st.failed, st.dropped);
  std::fflush(stdout);
  co_return st.failed || st.dropped ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse_options(argc, argv);
  ::signal(SIGPIPE, SIG_IGN);
  bench::raise_fd_limit("proxy_peer", o.role == "hold" ? o.connections + 64ul : 1024);
  RuntimeOptions ropts;
  ropts.io = o.io;
  if (o.role == "hold") {
    // hold ends on SIGTERM/SIGINT with a report; the other roles just die of them. Created
    // before the runtime: the signals are blocked in this (the only) thread.
    auto signals = SignalSet::create({SIGTERM, SIGINT});
    if (!signals) {
      std::fprintf(stderr, "proxy_peer: signalfd: %s\n", signals.error().message().c_str());
      return 1;
    }
    Runtime rt(ropts);
    return rt.block_on(hold_main(o, &*signals));
  }
  Runtime rt(ropts);
  if (o.role == "send") return rt.block_on(send_main(o, make_pattern()));
  Buffer pattern = o.role == "sink" ? make_pattern() : Buffer();
  return rt.block_on(serve(o, &pattern));
}
