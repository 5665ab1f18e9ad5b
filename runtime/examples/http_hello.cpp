// http_hello: a minimal HTTP/1.1 server on lbd's runtime that answers every request with
// "200 OK" and the body "hello from NAME\n". It is the quick start's demo backend and a
// benchmark backend, so it is built to be cheap per request:
//
//   - request heads are found by searching for "\r\n\r\n" and read with a hand-written scan
//     (request line, Content-Length, Connection, Expect); no general-purpose parser;
//   - reads come from the runtime's pool (read_pooled), so an idle keep-alive connection pins
//     no read buffer; a request head split across reads is carried over in a small string;
//   - every complete request found in one read is answered, in order, into one output buffer
//     that goes out with one write_all (pipelining costs one send per batch, not per request).
//
// Keep-alive is HTTP/1.1's default and HTTP/1.0's with "Connection: keep-alive"; "Connection:
// close" is honoured. Request bodies framed by Content-Length are read and thrown away.
// Transfer-Encoding (chunked bodies) is not supported: such a request gets 501 and a close.
//
//   http_hello --port 9001 --id backend-1 [--host 127.0.0.1] [--io io_uring|epoll] [--workers N]
//
// --port 0 picks a free port; the line printed at start-up names it. With --workers N, N
// threads each accept on their own SO_REUSEPORT socket (the kernel spreads connections by
// hash). With one worker SO_REUSEPORT is off, so a second instance on the same port fails
// with EADDRINUSE instead of silently taking half of the connections.

#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/io_mode.hpp"
#include "runtime/net.hpp"
#include "runtime/runtime.hpp"
#include "runtime/spawn.hpp"
#include "runtime/worker.hpp"

using namespace lbd;

namespace {

// A request head (request line and headers) longer than this gets 431; lbd's own default
// limits.max_header_bytes is the same 32 KiB.
constexpr std::size_t kMaxHeadBytes = 32 * 1024;
constexpr std::size_t kOutInitial = 4 * 1024;
// After a large pipelined batch, an output buffer above this size is given back.
constexpr std::size_t kOutKeep = 64 * 1024;

/// ASCII case-insensitive comparison (header names and the tokens of Connection/Expect).
bool iequals(std::string_view a, std::string_view b) {
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c | 0x20) : c; };
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [&](char x, char y) {
           return lower(x) == lower(y);
         });
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar);
}

/// Calls f(token) for each element of a comma-separated header value ("close, Upgrade").
template <class F>
void for_each_list_item(std::string_view value, F f) {
  while (!value.empty()) {
    auto comma = value.find(',');
    f(trim_ows(value.substr(0, comma)));
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
}

/// What the server needs to know about one request head.
struct RequestHead {
  int error_status = 0;  // 0: a good request; else the status to answer before closing
  bool is_head = false;  // HEAD: no body in the response
  bool http11 = true;
  bool keep_alive = true;
  bool expect_continue = false;
  uint64_t content_length = 0;
};

/// Parses `head`: the request line and header lines, without the final empty line.
RequestHead parse_head(std::string_view head) {
  RequestHead req;
  auto line_end = head.find("\r\n");
  std::string_view line = head.substr(0, line_end);
  std::string_view headers = line_end == std::string_view::npos ? std::string_view{} : head.substr(line_end + 2);

  // request-line = method SP request-target SP HTTP-version
  auto sp1 = line.find(' ');
  auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return {.error_status = 400};
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!is_token(method) || target.empty() || target.find(' ') != std::string_view::npos)
    return {.error_status = 400};
  if (version == "HTTP/1.1") {
    req.http11 = true;
  } else if (version == "HTTP/1.0") {
    req.http11 = false;
  } else {
    return {.error_status = version.starts_with("HTTP/") ? 505 : 400};
  }
  req.is_head = method == "HEAD";

  bool saw_length = false, conn_close = false, conn_keep_alive = false;
  while (!headers.empty()) {
    auto end = headers.find("\r\n");
    std::string_view field = headers.substr(0, end);
    headers = end == std::string_view::npos ? std::string_view{} : headers.substr(end + 2);
    auto colon = field.find(':');
    // No colon, an empty name, whitespace before the colon, or a folded line (obs-fold): 400.
    if (colon == std::string_view::npos || !is_token(field.substr(0, colon))) return {.error_status = 400};
    std::string_view name = field.substr(0, colon);
    std::string_view value = trim_ows(field.substr(colon + 1));
    if (iequals(name, "content-length")) {
      uint64_t n = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (value.empty() || ec != std::errc{} || p != value.data() + value.size()) return {.error_status = 400};
      if (saw_length && n != req.content_length) return {.error_status = 400};
      saw_length = true;
      req.content_length = n;
    } else if (iequals(name, "transfer-encoding")) {
      return {.error_status = 501};
    } else if (iequals(name, "connection")) {
      for_each_list_item(value, [&](std::string_view opt) {
        if (iequals(opt, "close")) conn_close = true;
        if (iequals(opt, "keep-alive")) conn_keep_alive = true;
      });
    } else if (iequals(name, "expect")) {
      if (iequals(value, "100-continue")) req.expect_continue = req.http11;
    }
  }
  req.keep_alive = !conn_close && (req.http11 || conn_keep_alive);
  return req;
}

/// The fixed parts of every response, built once at start-up and shared read-only by all
/// workers.
struct Responses {
  std::string body;
  // Status line, Content-Length and Content-Type; Date comes next, then the Connection line.
  std::string prefix;
  std::string_view keep_alive_10 = "Connection: keep-alive\r\n\r\n";  // HTTP/1.0 keep-alive
  std::string_view keep_alive_11 = "\r\n";                            // HTTP/1.1 default
  std::string_view close = "Connection: close\r\n\r\n";

  explicit Responses(const std::string& id) {
    body = "hello from " + id + "\n";
    prefix = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
             "\r\nContent-Type: text/plain\r\n";
  }
};

/// "Date: ...\r\n", formatted at most once a second per thread (an origin server with a
/// clock must send Date; formatting it per response would cost more than the rest together).
std::string_view date_line() {
  thread_local std::time_t cached_second = -1;
  thread_local char line[64];
  thread_local std::size_t len = 0;
  std::time_t now = std::time(nullptr);
  if (now != cached_second) {
    std::tm tm{};
    gmtime_r(&now, &tm);
    len = std::strftime(line, sizeof(line), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
    cached_second = now;
  }
  return {line, len};
}

/// Appends to `out`, growing it when full. Growth is bounded by the batch: one read's worth of
/// requests (at most kMaxHeadBytes plus one pooled buffer) answered with short responses.
void append(Buffer& out, std::string_view bytes) {
  if (out.spare().size() < bytes.size()) {
    Buffer bigger(std::max(out.capacity() * 2, out.size() + bytes.size()));
    bigger.append(out.view());
    out = std::move(bigger);
  }
  out.append(bytes);
}

void append_error(Buffer& out, int status) {
  const char* text = status == 400   ? "400 Bad Request"
                     : status == 431 ? "431 Request Header Fields Too Large"
                     : status == 501 ? "501 Not Implemented"
                                     : "505 HTTP Version Not Supported";
  std::string r = std::string("HTTP/1.1 ") + text + "\r\nContent-Length: " + std::to_string(std::strlen(text) + 1) +
                  "\r\nContent-Type: text/plain\r\n";
  r += date_line();
  r += "Connection: close\r\n\r\n";
  r += text;
  r += '\n';
  append(out, r);
}

/// One connection's parsing state between reads.
struct ConnState {
  std::string carry;         // an incomplete request head from earlier reads
  std::size_t scanned = 0;   // bytes of `carry` already searched for "\r\n\r\n"
  uint64_t body_left = 0;    // request body bytes still to be read and dropped
  bool close = false;        // answer what is in `out`, then close
};

/// Answers every complete request in `data` into `out` and returns how many bytes of `data`
/// were used. The rest is an incomplete head, to be kept until more bytes arrive. `scanned`:
/// bytes at the start of `data` known to hold no "\r\n\r\n".
std::size_t answer_requests(std::string_view data, std::size_t scanned, ConnState& st, const Responses& resp,
                            Buffer& out) {
  std::size_t pos = 0;
  while (pos < data.size() && !st.close) {
    if (st.body_left > 0) {
      std::size_t n = static_cast<std::size_t>(std::min<uint64_t>(st.body_left, data.size() - pos));
      pos += n;
      st.body_left -= n;
      continue;
    }
    // Empty lines before a request line are allowed (RFC 9112 section 2.2).
    if (data[pos] == '\r' || data[pos] == '\n') {
      ++pos;
      scanned = 0;
      continue;
    }
    std::size_t from = pos + (scanned > 3 ? scanned - 3 : 0);
    auto end = data.find("\r\n\r\n", std::min(from, data.size()));
    std::size_t head_bytes = end == std::string_view::npos ? data.size() - pos : end - pos;
    if (head_bytes > kMaxHeadBytes) {
      append_error(out, 431);
      st.close = true;
      break;
    }
    if (end == std::string_view::npos) break;  // wait for the rest of the head
    RequestHead req = parse_head(data.substr(pos, end - pos));
    pos = end + 4;
    scanned = 0;
    if (req.error_status) {
      append_error(out, req.error_status);
      st.close = true;
      break;
    }
    if (req.expect_continue && req.content_length > 0) append(out, "HTTP/1.1 100 Continue\r\n\r\n");
    append(out, resp.prefix);
    append(out, date_line());
    append(out, !req.keep_alive ? resp.close : req.http11 ? resp.keep_alive_11 : resp.keep_alive_10);
    if (!req.is_head) append(out, resp.body);
    st.body_left = req.content_length;
    if (!req.keep_alive) st.close = true;
  }
  return pos;
}

/// Closes a connection we chose to end (Connection: close, or an error) without losing the
/// response: closing a socket with unread input sends RST, and the peer's kernel may then drop
/// the response before the client has read it. So: send FIN, then read and drop what the client
/// still sends until it closes too, for at most kLingerTime and kLingerBytes (nginx's lingering
/// close does the same).
Task<void> linger(TcpStream stream) {
  constexpr auto kLingerTime = std::chrono::seconds(2);
  constexpr std::size_t kLingerBytes = 1024 * 1024;
  if (!stream.shutdown_write()) co_return;
  auto deadline = Clock::now() + kLingerTime;
  std::size_t dropped = 0;
  while (dropped < kLingerBytes) {
    auto left = deadline - Clock::now();
    if (left <= Duration::zero()) co_return;
    auto in = co_await stream.read_pooled().with_timeout(left);
    if (!in || in->empty()) co_return;
    dropped += in->size();
  }
}

Task<void> serve_connection(TcpStream stream, const Responses* resp) {
  (void)stream.set_nodelay(true);  // responses are complete when written: send them now
  ConnState st;
  Buffer out(kOutInitial);
  for (;;) {
    {
      auto in = co_await stream.read_pooled();
      if (!in || in->empty()) co_return;  // error or EOF
      std::string_view data = in->view();
      if (st.carry.empty()) {
        std::size_t used = answer_requests(data, 0, st, *resp, out);
        st.carry.assign(data.substr(used));
        st.scanned = st.carry.size();
      } else {
        st.carry.append(data);
        std::size_t used = answer_requests(st.carry, st.scanned, st, *resp, out);
        st.carry.erase(0, used);
        st.scanned = st.carry.size();
      }
      // `in` goes back to the pool here, before waiting on the write.
    }
    if (!out.empty()) {
      auto [wres, back] = co_await stream.write_all(std::move(out));
      out = std::move(back);
      if (!wres) co_return;
      out.clear();
      if (out.capacity() > kOutKeep) out = Buffer(kOutInitial);
    }
    if (st.close) {
      co_await linger(std::move(stream));
      co_return;
    }
  }
}

Task<void> accept_loop(TcpListener listener, const Responses* resp, unsigned worker) {
  for (;;) {
    auto stream = co_await listener.accept();
    if (!stream) {
      std::fprintf(stderr, "http_hello: worker %u: accept: %s; no longer accepting\n", worker,
                   stream.error().message().c_str());
      co_return;
    }
    (void)spawn(serve_connection(std::move(*stream), resp));
  }
}

struct Options {
  std::string host = "127.0.0.1";
  int port = -1;
  std::string id = "http_hello";
  IoMode io = IoMode::kAuto;
  unsigned workers = 0;  // 0: one, on the main thread
};

[[noreturn]] void usage(const char* why) {
  if (why) std::fprintf(stderr, "http_hello: %s\n", why);
  std::fprintf(stderr,
               "usage: http_hello --port N [--id NAME] [--host ADDR] [--io io_uring|epoll] [--workers N]\n"
               "  Answers every HTTP/1.x request with 200 and \"hello from NAME\\n\".\n");
  std::exit(2);
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "-h" || a == "--help") usage(nullptr);
    if (i + 1 >= argc) usage(("missing value for " + std::string(a)).c_str());
    std::string_view v = argv[++i];
    auto number = [&](int lo, int hi) {
      int n = 0;
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (ec != std::errc{} || p != v.data() + v.size() || n < lo || n > hi)
        usage((std::string(a) + ": expected a number from " + std::to_string(lo) + " to " + std::to_string(hi)).c_str());
      return n;
    };
    if (a == "--port") {
      o.port = number(0, 65535);
    } else if (a == "--host") {
      o.host = v;
    } else if (a == "--id") {
      o.id = v;
    } else if (a == "--workers") {
      o.workers = static_cast<unsigned>(number(1, 1024));
    } else if (a == "--io") {
      auto mode = parse_io_mode(v);
      if (!mode) usage("--io: expected io_uring, epoll or auto");
      o.io = *mode;
    } else {
      usage(("unknown option " + std::string(a)).c_str());
    }
  }
  if (o.port < 0) usage("--port is required");
  return o;
}

/// Binds `count` listeners on one address. With more than one they share the port through
/// SO_REUSEPORT; port 0 is resolved by the first bind, and the others take the same port.
Result<std::vector<TcpListener>> bind_listeners(SocketAddress addr, unsigned count) {
  ListenOptions lo;
  lo.reuse_port = count > 1;
  std::vector<TcpListener> out;
  for (unsigned i = 0; i < count; ++i) {
    auto l = TcpListener::bind(addr, lo);
    if (!l) return l.error();
    if (i == 0) {
      auto local = l->local_address();
      if (!local) return local.error();
      addr = *local;
    }
    out.push_back(std::move(*l));
  }
  return out;
}

Task<std::string> driver_description() {
  const DriverInfo& d = Runtime::current().driver_info();
  co_return d.name + " (" + d.reason + ")";
}

/// Asks a worker which driver it runs (every worker is built with the same options).
Task<std::string> worker_driver_description(Mailbox worker) {
  co_return co_await worker.call([] { return driver_description(); });
}

}  // namespace

int main(int argc, char** argv) {
  Options opts = parse_args(argc, argv);
  auto ip = SocketAddress::parse(opts.host + ":" + std::to_string(opts.port));
  if (!ip && opts.host.find(':') != std::string::npos)
    ip = SocketAddress::parse("[" + opts.host + "]:" + std::to_string(opts.port));
  if (!ip) usage(("--host: not an IP address: " + opts.host).c_str());

  ::signal(SIGPIPE, SIG_IGN);
  const unsigned count = opts.workers ? opts.workers : 1;
  auto listeners = bind_listeners(*ip, count);
  if (!listeners) {
    std::fprintf(stderr, "http_hello: bind %s: %s\n", ip->to_string().c_str(), listeners.error().message().c_str());
    return 1;
  }
  std::string bound = (*listeners)[0].local_address().value_or(*ip).to_string();
  const Responses resp(opts.id);

  RuntimeOptions ropts;
  ropts.io = opts.io;
  auto announce = [&](const std::string& driver) {
    std::printf("http_hello: %s listening on %s, %u worker(s), driver %s\n", opts.id.c_str(), bound.c_str(), count,
                driver.c_str());
    std::fflush(stdout);
  };

  if (opts.workers == 0) {
    Runtime rt(ropts);
    announce(rt.block_on(driver_description()));
    rt.block_on(accept_loop(std::move((*listeners)[0]), &resp, 0));
    return 1;  // accept_loop only ends on an error
  }

  WorkerOptions wopts;
  wopts.count = count;
  wopts.runtime = ropts;
  std::vector<TcpListener>* ls = &*listeners;
  const Responses* r = &resp;
  WorkerPool pool(wopts, [ls, r](unsigned i) { return accept_loop(std::move((*ls)[i]), r, i); });
  {
    // Ask worker 0 which driver it runs; the main thread only waits.
    RuntimeOptions main_opts;
    main_opts.io = IoMode::kEpoll;
    Runtime control(main_opts);
    announce(control.block_on(worker_driver_description(pool.mailbox(0))));
  }
  pool.join();
  return 1;
}
