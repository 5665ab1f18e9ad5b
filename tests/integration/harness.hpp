#pragma once
// The integration-test harness: runs the real `lbd` binary on 127.0.0.1 with a temporary YAML
// config, against backends the test starts, and drives it from the outside like an operator
// would (connect, signals, log file, exit code).
//
// Everything here is plain blocking sockets and threads, deliberately independent of lbd's own
// runtime: a runtime bug must show up as a failing test, not as a hang of the test's own
// backends. Every wait has a bound and waits for an event (a log line, a readable socket, an
// exit), never for "long enough".
//
// Addresses are loopback only. Clients vary their source address inside 127.0.0.0/8
// (source_ip()), which is how the hash tests vary the key without leaving the machine.

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace lbd::it {

using Clock = std::chrono::steady_clock;
using Ms = std::chrono::milliseconds;
using namespace std::chrono_literals;

// ---------------------------------------------------------------------------------------------
// Environment

/// Raises RLIMIT_NOFILE's soft limit to the hard limit (tests hold thousands of sockets).
void raise_fd_limit();

/// The lbd binary: $LBD_BINARY_DIR/cmd/lbd, else the path compiled in (LBD_IT_LBD_PATH).
std::string lbd_binary();
/// The source tree: $LBD_SOURCE_DIR, else the path compiled in (LBD_IT_SOURCE_DIR).
std::string source_dir();

/// Whether an io_uring driver can be set up in this process (same probe as lbd's); `why`
/// gets the runtime's reason when it cannot.
bool io_uring_usable(std::string* why);

/// A fresh directory under $TMPDIR (or /tmp), removed with its files on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void write_file(const std::string& path, const std::string& text);
std::string read_file(const std::string& path);

// ---------------------------------------------------------------------------------------------
// Sockets

/// Owns a file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  explicit operator bool() const { return valid(); }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

/// 127.0.{1 + i / 250}.{1 + i % 250}: i in [0, 62500) gives distinct loopback source addresses
/// that never collide with 127.0.0.1, where lbd and the backends listen.
std::string source_ip(int i);

/// A port below the kernel's ephemeral range that nothing on 127.0.0.1 is bound to right now,
/// for lbd's listeners. Below the ephemeral range, so the thousands of client sockets the tests
/// open cannot take it by autobind between this call and lbd's bind.
uint16_t free_port();

/// A port that refuses connections: nothing listens there.
uint16_t closed_port();

struct ConnectResult {
  Fd fd;
  int error = 0;  // errno of the failed connect, ETIMEDOUT when `limit` passed
};

/// Connects (blocking, bounded by `limit`) to 127.0.0.1:port, from `source` when given.
/// The returned socket is blocking.
ConnectResult connect_to(uint16_t port, const std::string& source = "", Ms limit = 5000ms);
/// Same, failing the calling test (gtest ADD_FAILURE) when the connect fails.
Fd connect_or_fail(uint16_t port, const std::string& source = "");

/// Writes everything; false on error or when `limit` passes.
bool send_all(int fd, const void* data, std::size_t n, Ms limit = 10000ms);
bool send_all(int fd, const std::string& s, Ms limit = 10000ms);

/// How a read that waited for the end of a stream ended.
enum class End { kEof, kReset, kTimeout, kError };
const char* to_string(End e);

struct ReadResult {
  std::string data;
  End end = End::kEof;
  int error = 0;
};

/// Reads exactly `n` bytes (stops early on EOF, error or timeout; `end` tells which).
ReadResult read_exact(int fd, std::size_t n, Ms limit = 10000ms);
/// Reads up to and including the first '\n'.
ReadResult read_line(int fd, Ms limit = 10000ms);
/// Reads until EOF/reset/timeout and reports which came first.
ReadResult read_to_end(int fd, Ms limit = 10000ms);

/// Waits until `pred` holds, checking every `step`, at most `limit`. Returns pred().
bool wait_until(const std::function<bool()>& pred, Ms limit, Ms step = 2ms);

// ---------------------------------------------------------------------------------------------
// Deterministic random byte streams, for byte-exact transfer checks

/// An endless pseudo-random byte stream: byte i depends only on (seed, i), so a sender and a
/// checker regenerate the same stream independently.
class ByteStream {
 public:
  explicit ByteStream(uint64_t seed) : seed_(seed) {}
  /// The next n bytes.
  void fill(char* out, std::size_t n);
  uint64_t offset() const { return offset_; }

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
};

/// Compares incoming bytes with a ByteStream; remembers the first mismatch.
class StreamChecker {
 public:
  explicit StreamChecker(uint64_t seed) : expected_(seed) {}
  void feed(const char* data, std::size_t n);
  uint64_t received() const { return received_; }
  /// Offset of the first byte that differed, if any.
  std::optional<uint64_t> first_mismatch() const { return mismatch_; }
  /// A 64-bit digest of everything fed (for messages).
  uint64_t digest() const;

 private:
  ByteStream expected_;
  std::vector<char> scratch_;
  uint64_t received_ = 0;
  uint64_t digest_ = 0xcbf29ce484222325ull;
  char pending_[8] = {};  // a word's bytes not yet folded into digest_
  std::size_t pending_len_ = 0;
  std::optional<uint64_t> mismatch_;
};

/// Digest of n bytes of ByteStream(seed), as StreamChecker::digest() would report for them.
uint64_t stream_digest(uint64_t seed, uint64_t n);

/// Sends `n` bytes of ByteStream(seed) in 64 KiB chunks. Returns bytes sent.
uint64_t send_stream(int fd, uint64_t seed, uint64_t n, Ms limit = 60000ms);
/// Reads to EOF into `checker`. Returns how the stream ended.
End check_stream(int fd, StreamChecker& checker, Ms limit = 60000ms);

// ---------------------------------------------------------------------------------------------
// Backends

/// A TCP server on 127.0.0.1. Two kinds:
///  - thread per connection: runs `handler` with a blocking socket in its own thread, for
///    scripted backends (bulk sink/source, half-close). The Backend closes the socket after the
///    handler returns; stop() unblocks handlers by shutting their sockets down, then joins them.
///  - echo loop (echo_loop()): one thread serves every connection with epoll: it writes a
///    greeting, then echoes until EOF and closes. No thread per connection, so thousands of
///    short connections cost little even under ASan.
class Backend {
 public:
  using Handler = std::function<void(int fd)>;

  /// Listens on 127.0.0.1:`port` (0: any free port) and starts accepting.
  Backend(std::string id, Handler handler, uint16_t port = 0, int backlog = 1024);
  /// An echo-loop backend that first writes `greeting` on each connection.
  static std::unique_ptr<Backend> echo_loop(std::string id, std::string greeting, uint16_t port = 0);
  ~Backend();
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  const std::string& id() const { return id_; }
  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  /// Stops accepting and closes the listening socket (connects are refused once this
  /// returns); connections already accepted carry on.
  void close_listener();
  /// close_listener(), then ends every connection (and joins its handler).
  void stop();

  int accepted() const { return accepted_.load(); }
  int active() const { return active_.load(); }

 private:
  struct Conn {
    int fd;
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  struct EchoMode {};
  Backend(std::string id, std::string greeting, uint16_t port, EchoMode);
  bool listen_on(uint16_t port, int backlog);
  void start_thread();
  void accept_loop();  // thread-per-connection mode
  void echo_run();     // echo-loop mode
  void reap(bool all);
  void wake();

  std::string id_;
  Handler handler_;      // thread-per-connection mode
  std::string greeting_;  // echo-loop mode
  bool echo_mode_ = false;
  uint16_t port_ = 0;
  Fd listener_;  // owned by the loop thread while it runs
  Fd wake_read_, wake_write_;
  std::thread loop_;
  std::mutex control_mu_;  // serialises close_listener() and stop()
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Conn> conns_;     // guarded by mu_ (thread-per-connection mode)
  bool close_requested_ = false;  // guarded by mu_: the loop closes the listener
  bool listener_closed_ = false;  // guarded by mu_: ... and says so here
  bool stop_requested_ = false;   // guarded by mu_: the loop ends
  std::atomic<int> accepted_{0};
  std::atomic<int> active_{0};
};

/// Echoes every byte until EOF, then closes.
Backend::Handler echo_handler();
/// Writes "<id>\n", then echoes until EOF: a client learns which endpoint it reached.
Backend::Handler identify_handler(const std::string& id);

std::unique_ptr<Backend> make_echo(const std::string& id = "echo");
std::unique_ptr<Backend> make_identify(const std::string& id);

// ---------------------------------------------------------------------------------------------
// lbd configuration

struct EndpointSpec {
  std::string address;
  int weight = 1;
};

struct ClusterSpec {
  std::string name = "c";
  std::string balance = "round_robin";
  std::vector<EndpointSpec> endpoints;
  int retries = 1;
  std::string connect_timeout;  // e.g. "300ms"; empty = default
  std::string extra;            // more YAML lines, indented by 4
};

struct ListenerSpec {
  std::string name = "l";
  uint16_t port = 0;
  std::string cluster = "c";
  int max_connections = 0;  // 0 = default
  std::string forwarding;   // auto | copy | splice; empty = default (auto)
  std::string extra;        // more YAML lines, indented by 4
};

struct ConfigSpec {
  int workers = 1;
  std::string drain_timeout;  // empty = default
  std::string log_level = "info";
  std::string error_log;  // empty = default (stderr)
  std::vector<ListenerSpec> listeners;
  std::vector<ClusterSpec> clusters;
  std::string to_yaml() const;
};

/// A cluster of the given backends with equal weights.
ClusterSpec cluster_of(const std::vector<Backend*>& backends, const std::string& balance = "round_robin",
                       const std::string& name = "c");

// ---------------------------------------------------------------------------------------------
// The lbd process

struct ExitStatus {
  bool exited = false;  // false: killed by a signal
  int code = -1;        // exit code, or the signal number
  std::string to_string() const;
};

/// One lbd process. stdout and stderr go to one log file. The destructor kills it (SIGKILL)
/// if it still runs and, when the current test has failed, prints its log.
class LbdProcess {
 public:
  /// Spawns `lbd args...` with LBD_IO=`io` (when not empty) in the environment.
  LbdProcess(std::vector<std::string> args, const std::string& log_path, const std::string& io = "");
  ~LbdProcess();
  LbdProcess(const LbdProcess&) = delete;
  LbdProcess& operator=(const LbdProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool spawned() const { return pid_ > 0; }
  const std::string& log_path() const { return log_path_; }

  /// The whole log so far.
  std::string log() const;
  /// Size of the log so far: pass it as `from` to look only at later lines.
  std::size_t log_size() const;
  /// Waits until the log (from byte `from` on) contains `needle`. Returns whether it did.
  bool wait_log(const std::string& needle, Ms limit = 10000ms, std::size_t from = 0) const;
  /// Occurrences of `needle` in the log.
  int count_log(const std::string& needle) const;

  /// Waits for "started" in the log and for every port in `ports` to be in LISTEN state on
  /// 127.0.0.1, checked in /proc/net/tcp so that waiting opens no connection (a probe
  /// connection would be balanced to a backend and skew the counts the tests check).
  /// Returns "" when ready, else what was missing.
  std::string wait_ready(const std::vector<uint16_t>& ports, Ms limit = 10000ms);

  bool signal(int sig);
  /// Waits for the process to exit; nullopt when `limit` passes first.
  std::optional<ExitStatus> wait_exit(Ms limit = 10000ms);
  bool running();

  /// Prints the log to stderr with a header naming the process.
  void dump_log() const;

 private:
  pid_t pid_ = -1;
  std::optional<ExitStatus> status_;
  std::string log_path_;
  mutable bool log_dumped_ = false;
};

/// Runs lbd to completion (bounded) and returns its exit status, stdout and stderr.
struct RunResult {
  ExitStatus status;
  std::string out;
  std::string err;
  bool timed_out = false;
};
RunResult run_lbd(const std::vector<std::string>& args, const TempDir& dir, Ms limit = 10000ms);

/// Whether port is in LISTEN state on 127.0.0.1 (or 0.0.0.0) per /proc/net/tcp.
bool port_listening(uint16_t port);

// ---------------------------------------------------------------------------------------------
// Client-side workloads

/// Runs `total` connections to `port` from `threads` threads; each connection reads the
/// identify line and closes. `source(i)` gives connection i's source address ("" = default).
/// Returns counts per backend id; failures are counted under "<error: ...>" keys.
std::map<std::string, int> identify_many(uint16_t port, int total, int threads,
                                         const std::function<std::string(int)>& source);

/// The identify line one connection from `source` gets ("" and `error` set on failure). The
/// connection is then shut down and must end cleanly (EOF) before this returns.
std::string identify_once(uint16_t port, const std::string& source, std::string* error = nullptr);

}  // namespace lbd::it
