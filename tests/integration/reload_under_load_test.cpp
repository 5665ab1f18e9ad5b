// Reloads and drains drop nothing a client would notice. While lbd (2 workers) reloads back and
// forth between two different valid configs (balancer, weights, an extra route, the endpoint
// set, timeouts; same listener addresses), three kinds of clients run without a pause: keep-alive
// connections sending requests back to back, a new connection per request, and short TCP
// sessions through an L4 listener. Every request must get its complete 200 with its own body,
// every session its echo and a clean end. SIGTERM while requests are in flight: each finishes
// with `Connection: close` and a FIN, nothing is cut before shutdown.drain_timeout, and what is
// still open then is closed then; under keep-alive load, no connection is reset.

#include <sys/socket.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <thread>

#include "tests/integration/http_harness.hpp"

namespace lbd::it {
namespace {

// ---------------------------------------------------------------------------------------------
// Reload under load

/// What the clients saw, shared by their threads.
struct LoadTally {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> keepalive_ok{0};
  std::atomic<uint64_t> per_connection_ok{0};
  std::atomic<uint64_t> tcp_ok{0};
  std::atomic<uint64_t> failures{0};

  void fail(std::string what) {
    ++failures;
    std::lock_guard lock(mu);
    if (examples.size() < 20) examples.push_back(std::move(what));
  }
  std::string report() {
    std::lock_guard lock(mu);
    std::string out;
    for (const auto& e : examples) out += "  " + e + "\n";
    return out;
  }

  std::mutex mu;
  std::vector<std::string> examples;  // guarded by mu: the first failures, for the message
};

/// Why `resp` is not the answer to GET `target` from one of the test's backends ("" if it is).
/// The backends answer "<backend id> GET <target>", so a response given to the wrong request
/// shows.
std::string check_response(const HttpMessage& resp, const std::string& target) {
  if (!resp.complete) return "incomplete response (" + resp.error + ", " + to_string(resp.end) + ")";
  if (resp.status != 200) return "status " + std::to_string(resp.status) + ": " + resp.summary();
  const std::string tail = " GET " + target;
  const bool from_backend = resp.body.rfind("b", 0) == 0 && resp.body.size() > tail.size() &&
                            resp.body.compare(resp.body.size() - tail.size(), tail.size(), tail) == 0;
  if (!from_backend) return "body \"" + resp.body + "\" does not answer " + target;
  return "";
}

/// (a) One keep-alive connection sending requests back to back. lbd has no reason to close it,
/// so a close (or a Connection: close) counts as a failure too.
void keepalive_client(int id, uint16_t port, LoadTally* tally) {
  auto connected = connect_to(port, source_ip(1000 + id));
  if (!connected.fd) return tally->fail("keep-alive client " + std::to_string(id) + ": connect failed");
  Fd c = std::move(connected.fd);
  HttpReader reader(c.get());
  for (uint64_t n = 0; !tally->stop.load(); ++n) {
    const std::string target = "/ka/" + std::to_string(id) + "/" + std::to_string(n);
    const std::string where = "keep-alive client " + std::to_string(id) + " request " + std::to_string(n) + ": ";
    if (!send_all(c.get(), http_get(target, "a"))) return tally->fail(where + "send failed");
    HttpMessage resp = reader.read_final_response(10000ms);
    if (std::string why = check_response(resp, target); !why.empty()) return tally->fail(where + why);
    if (auto conn = resp.header("Connection"); conn && iequal(*conn, "close"))
      return tally->fail(where + "lbd closed a keep-alive connection");
    ++tally->keepalive_ok;
  }
}

/// (b) A new connection per request (`Connection: close`): the complete response, then EOF.
void per_connection_client(int id, uint16_t port, LoadTally* tally) {
  for (uint64_t n = 0; !tally->stop.load(); ++n) {
    const std::string target = "/pc/" + std::to_string(id) + "/" + std::to_string(n);
    const std::string where = "per-connection client " + std::to_string(id) + " request " + std::to_string(n) + ": ";
    // Source addresses rotate so that thousands of short connections do not exhaust the
    // ephemeral ports of one address.
    auto connected = connect_to(port, source_ip(static_cast<int>(2000 + id * 500 + n % 500)));
    if (!connected.fd) {
      tally->fail(where + "connect: " + std::strerror(connected.error));
      continue;
    }
    Fd c = std::move(connected.fd);
    if (!send_all(c.get(), http_get(target, "a", "Connection: close\r\n"))) {
      tally->fail(where + "send failed");
      continue;
    }
    HttpReader reader(c.get());
    HttpMessage resp = reader.read_final_response(10000ms);
    if (std::string why = check_response(resp, target); !why.empty()) {
      tally->fail(where + why);
      continue;
    }
    if (End end = reader.wait_end(5000ms); end != End::kEof) {
      tally->fail(where + "after the response: " + to_string(end) + " instead of EOF");
      continue;
    }
    ++tally->per_connection_ok;
  }
}

/// (c) Short TCP sessions: connect, send a message, read its echo, half-close, then the echo
/// backend's close must arrive through lbd as a clean EOF with nothing more.
void tcp_client(int id, uint16_t port, LoadTally* tally) {
  for (uint64_t n = 0; !tally->stop.load(); ++n) {
    const std::string where = "tcp client " + std::to_string(id) + " session " + std::to_string(n) + ": ";
    auto connected = connect_to(port, source_ip(static_cast<int>(5000 + id * 500 + n % 500)));
    if (!connected.fd) {
      tally->fail(where + "connect: " + std::strerror(connected.error));
      continue;
    }
    Fd c = std::move(connected.fd);
    std::string message = "session " + std::to_string(id) + "/" + std::to_string(n) + " ";
    message.resize(200, static_cast<char>('a' + n % 26));
    if (!send_all(c.get(), message)) {
      tally->fail(where + "send failed");
      continue;
    }
    ReadResult echo = read_exact(c.get(), message.size(), 10000ms);
    if (echo.data != message) {
      tally->fail(where + "echo of " + std::to_string(echo.data.size()) + " of " + std::to_string(message.size()) +
                  " bytes (" + to_string(echo.end) + ")" + (echo.data.size() == message.size() ? ", different" : ""));
      continue;
    }
    ::shutdown(c.get(), SHUT_WR);
    ReadResult rest = read_to_end(c.get(), 10000ms);
    if (rest.end != End::kEof || !rest.data.empty()) {
      tally->fail(where + "end: " + to_string(rest.end) + " after " + std::to_string(rest.data.size()) + " more bytes");
      continue;
    }
    ++tally->tcp_ok;
  }
}

class ReloadUnderLoad : public LbdTest {};

/// The client threads; stopped and joined however the test leaves (an ASSERT included).
class ClientThreads {
 public:
  explicit ClientThreads(LoadTally* tally) : tally_(tally) {}
  ~ClientThreads() { stop(); }
  template <typename F>
  void add(F f, int id, uint16_t port) {
    threads_.emplace_back(f, id, port, tally_);
  }
  void stop() {
    tally_->stop = true;
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

 private:
  LoadTally* tally_;  // not owned; outlives the threads
  std::vector<std::thread> threads_;
};

/// Answers "<id> <method> <target>", keep-alive.
HttpBackend::Responder identify_responder(const std::string& id) {
  return [id](const BackendExchange& ex, const HttpMessage& req) {
    return ex.send(http_response(200, id + " " + req.method + " " + req.target));
  };
}

struct LoadPorts {
  uint16_t http, tcp;
  std::string b0, b1, b2, echo;
};

/// Config A: round robin over b0 and b1 for every request.
std::string config_a(const LoadPorts& p) {
  return "workers: 2\n"
         "log: { level: info, access_log: off }\n"
         "listeners:\n"
         "  - name: web\n"
         "    listen: 127.0.0.1:" + std::to_string(p.http) + "\n"
         "    protocol: http\n"
         "    cluster: web\n"
         "  - name: tcp\n"
         "    listen: 127.0.0.1:" + std::to_string(p.tcp) + "\n"
         "    protocol: tcp\n"
         "    cluster: echo\n"
         "clusters:\n"
         "  - name: web\n"
         "    balance: round_robin\n"
         "    endpoints: [" + p.b0 + ", " + p.b1 + "]\n"
         "  - name: alt\n"
         "    endpoints: [" + p.b2 + "]\n"
         "  - name: echo\n"
         "    endpoints: [" + p.echo + "]\n";
}

/// Config B: /alt/ goes to b2 alone, the rest to least_conn over b0 (weight 3), b1 and b2;
/// other timeouts and pool settings; the tcp listener's cluster balances differently.
std::string config_b(const LoadPorts& p) {
  return "workers: 2\n"
         "log: { level: info, access_log: off }\n"
         "listeners:\n"
         "  - name: web\n"
         "    listen: 127.0.0.1:" + std::to_string(p.http) + "\n"
         "    protocol: http\n"
         "    timeouts: { header: 20s, idle: 30s }\n"
         "    routes:\n"
         "      - match: { path_prefix: /alt/ }\n"
         "        cluster: alt\n"
         "      - match: { path_prefix: / }\n"
         "        cluster: web\n"
         "  - name: tcp\n"
         "    listen: 127.0.0.1:" + std::to_string(p.tcp) + "\n"
         "    protocol: tcp\n"
         "    cluster: echo\n"
         "    timeouts: { idle: 5m }\n"
         "clusters:\n"
         "  - name: web\n"
         "    balance: least_conn\n"
         "    timeouts: { connect: 2s, read: 20s }\n"
         "    keepalive: { max_idle: 8, idle_timeout: 20s }\n"
         "    endpoints:\n"
         "      - { address: " + p.b0 + ", weight: 3 }\n"
         "      - " + p.b1 + "\n"
         "      - " + p.b2 + "\n"
         "  - name: alt\n"
         "    endpoints: [" + p.b2 + "]\n"
         "  - name: echo\n"
         "    balance: random_two\n"
         "    timeouts: { connect: 2s }\n"
         "    endpoints: [" + p.echo + "]\n";
}

TEST_P(ReloadUnderLoad, TenReloadsBetweenTwoConfigsDropNoRequestAndNoSession) {
  constexpr int kReloads = 10;
  constexpr int kKeepaliveClients = 3;
  constexpr int kPerConnectionClients = 2;
  constexpr int kTcpClients = 2;
  // Each kind of client completes at least this many requests (sessions) between one reload
  // and the next, so the reloads happen under load and the test cannot pass on idle clients.
  constexpr uint64_t kPerWindow = 300;

  HttpBackend b0(identify_responder("b0"), "b0");
  HttpBackend b1(identify_responder("b1"), "b1");
  HttpBackend b2(identify_responder("b2"), "b2");
  auto echo = Backend::echo_loop("echo", "");
  const LoadPorts ports{free_port(), free_port(), b0.address(), b1.address(), b2.address(), echo->address()};
  ASSERT_EQ(start_yaml(config_a(ports), {ports.http, ports.tcp}), "");

  LoadTally tally;
  ClientThreads clients(&tally);
  for (int i = 0; i < kKeepaliveClients; ++i) clients.add(keepalive_client, i, ports.http);
  for (int i = 0; i < kPerConnectionClients; ++i) clients.add(per_connection_client, i, ports.http);
  for (int i = 0; i < kTcpClients; ++i) clients.add(tcp_client, i, ports.tcp);

  // Every kind of client has gone `n` further than `from` (keep-alive, per connection, tcp).
  struct Counts {
    uint64_t ka, pc, tcp;
  };
  auto counts = [&] { return Counts{tally.keepalive_ok.load(), tally.per_connection_ok.load(), tally.tcp_ok.load()}; };
  auto progressed = [&](Counts from, uint64_t n) {
    return wait_until(
        [&] {
          Counts now = counts();
          return (now.ka >= from.ka + n && now.pc >= from.pc + n && now.tcp >= from.tcp + n) || tally.failures > 0;
        },
        10000ms, 2ms);
  };

  const Counts before = counts();
  bool ok = progressed(before, kPerWindow);
  const Counts load_started = counts();
  for (int i = 0; ok && i < kReloads; ++i) {
    const bool to_b = i % 2 == 0;
    const Counts from = counts();
    std::string out = reload(to_b ? config_b(ports) : config_a(ports));
    if (out.find("reload done") == std::string::npos || out.find("reload:") != std::string::npos) {
      ADD_FAILURE() << "reload " << i << " did not apply cleanly:\n" << out;
      ok = false;
      break;
    }
    // The new config is in effect for new connections on both workers: /alt/ reaches b2
    // alone under B, b0 or b1 under A.
    for (int probe = 0; probe < 4; ++probe) {
      const std::string target = "/alt/probe/" + std::to_string(i) + "/" + std::to_string(probe);
      Fd c = connect_or_fail(ports.http, source_ip(9000 + probe));
      ASSERT_TRUE(c);
      ASSERT_TRUE(send_all(c.get(), http_get(target, "a", "Connection: close\r\n")));
      HttpReader r(c.get());
      HttpMessage resp = r.read_final_response(10000ms);
      ASSERT_EQ(check_response(resp, target), "");
      const std::string backend = resp.body.substr(0, 2);
      if (to_b) {
        EXPECT_EQ(backend, "b2") << "after reload " << i << " (to B)";
      } else {
        EXPECT_NE(backend, "b2") << "after reload " << i << " (to A)";
      }
    }
    ok = progressed(from, kPerWindow);
  }
  const Counts reloads_done = counts();
  clients.stop();

  EXPECT_EQ(tally.failures.load(), 0u) << "failures (first " << tally.examples.size() << "):\n" << tally.report();
  EXPECT_TRUE(ok) << "the clients made too little progress";
  // Enough went on while lbd reloaded for the zero above to mean something.
  EXPECT_GE(reloads_done.ka - load_started.ka, kReloads * kPerWindow);
  EXPECT_GE(reloads_done.pc - load_started.pc, kReloads * kPerWindow);
  EXPECT_GE(reloads_done.tcp - load_started.tcp, kReloads * kPerWindow);
  EXPECT_EQ(lbd_->count_log("reload done"), kReloads);
  EXPECT_TRUE(lbd_->running());
  RecordProperty("keepalive_requests_during_reloads", static_cast<int>(reloads_done.ka - load_started.ka));
  RecordProperty("per_connection_requests_during_reloads", static_cast<int>(reloads_done.pc - load_started.pc));
  RecordProperty("tcp_sessions_during_reloads", static_cast<int>(reloads_done.tcp - load_started.tcp));
  // Each config sent new requests where it says: b2 served requests only under B (and the
  // /alt/ probes), b0 and b1 under both.
  EXPECT_GT(b0.request_count(), 0u);
  EXPECT_GT(b1.request_count(), 0u);
  EXPECT_GT(b2.request_count(), 0u);
}

LBD_INSTANTIATE_DRIVERS(ReloadUnderLoad);

// ---------------------------------------------------------------------------------------------
// SIGTERM with requests in flight
//
// http_operations_test covers the idle keep-alive connection (closed at once with a FIN and no
// bytes) and a slow response finishing on one worker. Here, on two workers: the response to a
// request in flight says `Connection: close` and ends in a FIN; a response whose head went out
// before SIGTERM is finished and the connection then closed; and what has not finished at
// shutdown.drain_timeout stays open until then and is closed then.

class DrainInFlight : public HttpTest {};

/// Opens a gate when it goes out of scope: declared after a backend whose responder waits on
/// the gate, it lets that backend's threads end before the backend is destroyed.
struct OpenOnExit {
  Gate* gate;  // not owned
  ~OpenOnExit() { gate->open(); }
};

TEST_P(DrainInFlight, InFlightResponsesFinishWithConnectionCloseAndTheRestCloseAtDrainTimeout) {
  constexpr int kHeld = 4;  // over two workers (SO_REUSEPORT spreads them by source address)
  constexpr Ms kDrainTimeout = 2000ms;
  Gate release;  // the held responses may finish
  Gate never;    // opened at the end only: those responses never come while lbd runs
  HttpBackend backend([&](const BackendExchange& ex, const HttpMessage& req) {
    if (req.target.rfind("/held/", 0) == 0) {
      release.wait(20000ms);
      return ex.send(http_response(200, "done " + req.target));
    }
    if (req.target == "/streaming") {  // the head and half the body now, the rest on release
      if (!ex.send("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nfirst")) return false;
      release.wait(20000ms);
      return ex.send("-half");
    }
    if (req.target == "/stuck-streaming") {
      if (!ex.send("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nfirst")) return false;
      never.wait(30000ms);
      return false;
    }
    never.wait(30000ms);  // /stuck: no response at all
    return false;
  });
  OpenOnExit open_never{&never};
  OpenOnExit open_release{&release};
  HttpConfigSpec spec;
  spec.workers = 2;
  spec.drain_timeout = "2s";
  spec.clusters.push_back({"c", {backend.address()}, ""});
  ASSERT_EQ(start_http(spec), "");

  auto open_request = [&](int source, const std::string& target) {
    Fd c = connect_or_fail(port_, source_ip(source));
    if (c) {
      EXPECT_TRUE(send_all(c.get(), http_get(target, "a")));
    }
    return c;
  };
  std::vector<Fd> held;
  for (int i = 0; i < kHeld; ++i) held.push_back(open_request(i, "/held/" + std::to_string(i)));
  Fd streaming = open_request(10, "/streaming");
  Fd stuck = open_request(11, "/stuck");
  Fd stuck_streaming = open_request(12, "/stuck-streaming");
  ASSERT_TRUE(backend.wait_requests(kHeld + 3));
  // The two streamed responses have started: their heads went out without Connection: close.
  HttpReader streaming_reader(streaming.get());
  HttpMessage streamed = streaming_reader.read_head(true);
  ASSERT_EQ(streamed.status, 200) << streamed.summary();
  ASSERT_FALSE(streamed.header("Connection"));
  ASSERT_TRUE(streaming_reader.wait_buffered(5));
  HttpReader stuck_streaming_reader(stuck_streaming.get());
  HttpMessage stuck_streamed = stuck_streaming_reader.read_head(true);
  ASSERT_EQ(stuck_streamed.status, 200) << stuck_streamed.summary();
  ASSERT_TRUE(stuck_streaming_reader.wait_buffered(5));
  ASSERT_EQ(stuck_streaming_reader.take_buffered(), "first");

  std::size_t from = lbd_->log_size();
  const auto t0 = Clock::now();
  ASSERT_TRUE(lbd_->signal(SIGTERM));
  ASSERT_TRUE(lbd_->wait_log("SIGTERM: draining", 5000ms, from));
  EXPECT_TRUE(wait_until([&] { return connect_to(port_, "", 1000ms).error == ECONNREFUSED; }, 5000ms, 10ms))
      << "new connections still accepted while draining";
  EXPECT_TRUE(lbd_->running()) << "lbd exited with responses in flight";

  // (b) Released now, the held responses arrive whole, say Connection: close, and a FIN
  // follows; the streamed one ends as it began, and its connection is closed after it.
  release.open();
  for (int i = 0; i < kHeld; ++i) {
    HttpReader r(held[i].get());
    HttpMessage resp = r.read_final_response(10000ms);
    EXPECT_TRUE(resp.complete) << "held " << i << ": " << resp.summary() << " " << resp.error;
    EXPECT_EQ(resp.status, 200);
    EXPECT_EQ(resp.body, "done /held/" + std::to_string(i));
    EXPECT_EQ(resp.header("Connection").value_or("(none)"), "close") << "held " << i;
    EXPECT_EQ(r.wait_end(5000ms), End::kEof) << "held " << i;
  }
  streaming_reader.read_body(streamed, true, "GET", 10000ms);
  EXPECT_TRUE(streamed.complete) << streamed.error;
  EXPECT_EQ(streamed.body, "first-half");
  EXPECT_EQ(streaming_reader.wait_end(5000ms), End::kEof);
  const auto finished = Clock::now();
  ASSERT_LT(finished - t0, kDrainTimeout) << "the released responses came too late to tell anything";

  // (c) What has not finished stays open until drain_timeout, (d) and is closed then: the
  // client waiting for a response gets no bytes, the one in the middle of a body no more.
  End stuck_end = End::kTimeout;
  End stuck_streaming_end = End::kTimeout;
  std::thread other([&] { stuck_streaming_end = stuck_streaming_reader.wait_end(kDrainTimeout + 5000ms); });
  HttpReader stuck_reader(stuck.get());
  stuck_end = stuck_reader.wait_end(kDrainTimeout + 5000ms);
  const auto stuck_closed = Clock::now();
  other.join();
  const auto both_closed = Clock::now();
  // A FIN, not a reset: the bytes of the cut response already sent stay readable.
  EXPECT_EQ(stuck_end, End::kEof) << to_string(stuck_end);
  EXPECT_EQ(stuck_streaming_end, End::kEof) << to_string(stuck_streaming_end);
  EXPECT_GE(stuck_closed - t0, kDrainTimeout) << "a request in flight was cut before drain_timeout";
  EXPECT_GE(both_closed - t0, kDrainTimeout);
  EXPECT_LE(both_closed - t0, kDrainTimeout + 3000ms) << "not closed at drain_timeout";

  auto status = lbd_->wait_exit(5000ms);
  ASSERT_TRUE(status) << "lbd did not exit after drain_timeout";
  EXPECT_TRUE(status->exited && status->code == 0) << status->to_string();
  EXPECT_NE(lbd_->log().find("drain timeout; closing", from), std::string::npos);
  EXPECT_NE(lbd_->log().find("drained; exiting", from), std::string::npos);
  RecordProperty("stuck_end", to_string(stuck_end));
  RecordProperty("stuck_streaming_end", to_string(stuck_streaming_end));
}


/// How the keep-alive clients of the drain-under-load test ended.
struct DrainTally {
  std::atomic<uint64_t> ok{0};
  std::atomic<uint64_t> closed_after_response{0};  // a Connection: close response, then EOF
  std::atomic<uint64_t> closed_idle_eof{0};        // EOF before any byte of the next response
  std::atomic<uint64_t> closed_idle_reset{0};      // a reset (or a failed send) instead
  LoadTally* failures = nullptr;                   // not owned
};

/// A keep-alive client sending requests back to back until its connection ends. It ends either
/// after a response that said Connection: close, or between two requests: the request sent
/// then crossed lbd's close on the wire (the race every keep-alive client must expect; it
/// learns of it by EOF before any response byte, which clients take as "retry"). A reset says
/// lbd closed with the request unread in its socket, i.e. dropped one it had received.
void draining_keepalive_client(int id, uint16_t port, DrainTally* t) {
  auto connected = connect_to(port, source_ip(3000 + id));
  if (!connected.fd) return t->failures->fail("keep-alive client " + std::to_string(id) + ": connect failed");
  Fd c = std::move(connected.fd);
  HttpReader reader(c.get());
  for (uint64_t n = 0;; ++n) {
    const std::string target = "/dk/" + std::to_string(id) + "/" + std::to_string(n);
    const std::string where = "keep-alive client " + std::to_string(id) + " request " + std::to_string(n) + ": ";
    if (!send_all(c.get(), http_get(target, "a"))) {
      ++t->closed_idle_reset;
      return;
    }
    HttpMessage resp = reader.read_final_response(10000ms);
    if (!resp.have_head && reader.buffered().empty()) {
      if (resp.end == End::kEof) {
        ++t->closed_idle_eof;
        return;
      }
      if (resp.end == End::kReset) {
        ++t->closed_idle_reset;
        return;
      }
    }
    if (std::string why = check_response(resp, target); !why.empty()) return t->failures->fail(where + why);
    ++t->ok;
    if (auto conn = resp.header("Connection"); conn && iequal(*conn, "close")) {
      if (End end = reader.wait_end(5000ms); end != End::kEof)
        t->failures->fail(where + "after Connection: close: " + to_string(end));
      ++t->closed_after_response;
      return;
    }
  }
}

// SIGTERM while six keep-alive clients send requests back to back over two workers: every
// response that comes is whole, the connections end with a FIN, and a request already in
// lbd's socket when the drain reached its idle connection is answered, not reset.
TEST_P(DrainInFlight, SigtermUnderKeepAliveLoadAnswersEveryRequestItTookAndClosesCleanly) {
  constexpr int kClients = 6;
  HttpBackend backend(identify_responder("b0"), "b0");
  HttpConfigSpec spec;
  spec.workers = 2;
  spec.drain_timeout = "5s";
  spec.clusters.push_back({"c", {backend.address()}, ""});
  ASSERT_EQ(start_http(spec), "");
  LoadTally failures;
  DrainTally tally;
  tally.failures = &failures;
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) clients.emplace_back(draining_keepalive_client, i, port_, &tally);
  bool warmed = wait_until([&] { return tally.ok >= 2000 || failures.failures > 0; }, 10000ms);
  EXPECT_TRUE(lbd_->signal(SIGTERM));
  for (auto& th : clients) th.join();
  EXPECT_TRUE(warmed);
  // Every response is whole and right, and every connection ended with a FIN.
  EXPECT_EQ(failures.failures.load(), 0u) << failures.report();
  EXPECT_EQ(tally.closed_idle_reset.load(), 0u) << "lbd reset connections whose next request it had received";
  EXPECT_EQ(tally.closed_after_response + tally.closed_idle_eof + tally.closed_idle_reset,
            static_cast<uint64_t>(kClients));
  RecordProperty("ok", static_cast<int>(tally.ok.load()));
  RecordProperty("closed_after_response", static_cast<int>(tally.closed_after_response.load()));
  RecordProperty("closed_idle_eof", static_cast<int>(tally.closed_idle_eof.load()));
  RecordProperty("closed_idle_reset", static_cast<int>(tally.closed_idle_reset.load()));
  auto status = lbd_->wait_exit(10000ms);
  ASSERT_TRUE(status);
  EXPECT_TRUE(status->exited && status->code == 0) << status->to_string();
}

LBD_INSTANTIATE_DRIVERS(DrainInFlight);

}  // namespace
}  // namespace lbd::it
