#pragma once
// Shared pieces of the runtime tests: a fixture that runs every test once per driver, a
// watchdog that turns a hang into a failure, socket-pair helpers, and assertion macros usable
// inside coroutines (gtest's ASSERT_* expand to `return`, which a coroutine cannot use).

#include <gtest/gtest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>

#include "runtime/net.hpp"
#include "runtime/runtime.hpp"
#include "runtime/spawn.hpp"
#include "runtime/timer.hpp"

namespace lbd {
/// gtest prints parameters with this (found by ADL) instead of raw bytes.
inline void PrintTo(IoMode m, std::ostream* os) {
  *os << (m == IoMode::kIoUring ? "io_uring" : m == IoMode::kEpoll ? "epoll" : "auto");
}
}  // namespace lbd

namespace lbd::test {

using namespace std::chrono_literals;

inline const char* driver_name(IoMode m) {
  switch (m) {
    case IoMode::kIoUring:
      return "io_uring";
    case IoMode::kEpoll:
      return "epoll";
    case IoMode::kAuto:
      break;
  }
  return "auto";
}

inline std::string param_name(const ::testing::TestParamInfo<IoMode>& info) {
  return driver_name(info.param);
}

/// Sets (or, with nullptr, unsets) an environment variable and restores it on scope exit.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) ::setenv(name, value, 1);
    else ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_) ::setenv(name_.c_str(), old_->c_str(), 1);
    else ::unsetenv(name_.c_str());
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

/// Aborts the process when `limit` passes before disarm(): a hung test fails in seconds with a
/// message instead of sitting until ctest's 300 s timeout. For code outside a runtime loop
/// (joining worker threads, waiting on a child process).
class ThreadWatchdog {
 public:
  ThreadWatchdog(Duration limit, std::string what) : what_(std::move(what)) {
    thread_ = std::thread([this, limit] {
      std::unique_lock lock(mu_);
      if (!cv_.wait_for(lock, limit, [this] { return disarmed_; })) {
        std::fprintf(stderr, "watchdog: %s did not finish within %lld ms\n", what_.c_str(),
                     static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(limit).count()));
        std::fflush(stderr);
        std::abort();
      }
    });
  }
  ~ThreadWatchdog() { disarm(); }
  void disarm() {
    {
      std::lock_guard lock(mu_);
      disarmed_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::string what_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool disarmed_ = false;
  std::thread thread_;
};

inline std::string current_test_name() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return info ? std::string(info->test_suite_name()) + "." + info->name() : "test";
}

/// Runs `task` on the current runtime under a watchdog thread. (A watchdog timer task inside
/// the runtime would keep block_on from returning until it fired.)
template <class T>
T run_bounded(Runtime& rt, Task<T> task, Duration limit = 20s) {
  ThreadWatchdog wd(limit, current_test_name());
  return rt.block_on(std::move(task));
}

/// Tests parameterised by driver that build their runtimes themselves (in a thread or a forked
/// child). `options()` names the driver; LBD_IO must not override it, so build runtimes inside
/// a ScopedEnv("LBD_IO", nullptr) (driver_select_test covers LBD_IO).
class DriverTest : public ::testing::TestWithParam<IoMode> {
 protected:
  IoMode mode() const { return GetParam(); }
  const char* mode_name() const { return driver_name(GetParam()); }
  RuntimeOptions driver_options() const {
    RuntimeOptions opts;
    opts.io = GetParam();
    return opts;
  }
};

/// The fixture for everything that touches a driver: one Runtime per test on the driver named
/// by the parameter. When io_uring cannot be set up on this machine the io_uring instance is
/// skipped with the runtime's reason.
class RuntimeTest : public DriverTest {
 protected:
  void SetUp() override {
    before_runtime();
    RuntimeOptions opts = options();
    opts.io = GetParam();
    {
      ScopedEnv no_env("LBD_IO", nullptr);
      rt_.emplace(opts);
    }
    const DriverInfo& info = rt_->driver_info();
    if (info.name != driver_name(GetParam())) {
      std::string got = info.name + " (" + info.reason + ")";
      rt_.reset();
      if (GetParam() == IoMode::kIoUring) GTEST_SKIP() << "io_uring is not usable here: " << got;
      FAIL() << "asked for " << driver_name(GetParam()) << ", got " << got;
    }
  }
  void TearDown() override { rt_.reset(); }

  /// Hooks for fixtures that need other options or set-up before the runtime exists.
  virtual RuntimeOptions options() { return {}; }
  virtual void before_runtime() {}

  Runtime& rt() { return *rt_; }
  template <class T>
  T run(Task<T> task, Duration limit = 20s) {
    return run_bounded(*rt_, std::move(task), limit);
  }

  std::optional<Runtime> rt_;
};

// ---------------------------------------------------------------------------------------------
// Forked children: for what may crash the process (stack overflow) or must not leak into it
// (seccomp filters). The child must not use a runtime the parent built before fork().

struct ChildOutcome {
  int status = 0;         // waitpid status
  std::string report;     // what the child wrote to its report fd
  bool timed_out = false;
  bool exited_ok() const { return !timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0; }
  std::string describe() const {
    if (timed_out) return "child did not finish in time (killed)";
    if (WIFEXITED(status)) return "child exited with code " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status))
      return std::string("child killed by signal ") + std::to_string(WTERMSIG(status)) + " (" +
             ::strsignal(WTERMSIG(status)) + ")";
    return "child status " + std::to_string(status);
  }
};

/// Forks; the child runs `fn(report_fd)` and _exits with its return value. The parent collects
/// the report and the exit status, killing the child after `limit`.
template <class F>
ChildOutcome run_in_child(F fn, Duration limit = 20s) {
  ChildOutcome out;
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    out.status = -1;
    out.report = "pipe2 failed";
    return out;
  }
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(p[0]);
    int code = fn(p[1]);
    ::_exit(code);
  }
  ::close(p[1]);
  auto deadline = Clock::now() + limit;
  char buf[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      out.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    pollfd pfd{p[0], POLLIN, 0};
    int r = ::poll(&pfd, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    ssize_t n = ::read(p[0], buf, sizeof(buf));
    if (n <= 0) break;  // EOF: the child exited (or closed the pipe)
    out.report.append(buf, static_cast<std::size_t>(n));
  }
  ::close(p[0]);
  while (::waitpid(pid, &out.status, 0) < 0 && errno == EINTR) {
  }
  return out;
}

inline void write_report(int fd, const std::string& s) {
  std::size_t done = 0;
  while (done < s.size()) {
    ssize_t n = ::write(fd, s.data() + done, s.size() - done);
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

#define LBD_INSTANTIATE_FOR_DRIVERS(Suite)                                                   \
  INSTANTIATE_TEST_SUITE_P(Drivers, Suite, ::testing::Values(::lbd::IoMode::kIoUring, ::lbd::IoMode::kEpoll), \
                           ::lbd::test::param_name)

// Assertions for Task<void> coroutines: record a failure and leave the coroutine.
#define CO_ASSERT_TRUE(cond)                                        \
  if (!(cond)) {                                                    \
    ADD_FAILURE() << "CO_ASSERT_TRUE(" #cond ") failed";            \
    co_return;                                                      \
  } else                                                            \
    (void)0
#define CO_ASSERT_OK(res)                                                          \
  if (!(res)) {                                                                    \
    ADD_FAILURE() << #res " failed: " << (res).error().message() << " (errno "     \
                  << (res).error().value() << ")";                                 \
    co_return;                                                                     \
  } else                                                                           \
    (void)0

// ---------------------------------------------------------------------------------------------
// Sockets

/// A connected TCP pair on loopback: `client` connected to `server` (the accepted end).
struct TcpPair {
  TcpStream client;
  TcpStream server;
};

inline Task<Result<TcpPair>> make_tcp_pair(SocketAddress bind_addr = SocketAddress::ipv4_loopback(0)) {
  auto listener = TcpListener::bind(bind_addr);
  if (!listener) co_return listener.error();
  auto local = listener->local_address();
  if (!local) co_return local.error();
  // A loopback connect completes in the kernel's backlog without an accept.
  auto client = co_await TcpStream::connect(*local);
  if (!client) co_return client.error();
  auto server = co_await listener->accept();
  if (!server) co_return server.error();
  co_return TcpPair{std::move(*client), std::move(*server)};
}

/// Fixed small socket buffers (no autotuning) for a writer and its reader, so a few MiB take
/// many sends to get through and a writer whose peer does not read soon has to wait.
inline void small_socket_buffers(StreamSocket& writer, StreamSocket& reader) {
  EXPECT_TRUE(writer.set_option(SOL_SOCKET, SO_SNDBUF, 64 * 1024));
  EXPECT_TRUE(reader.set_option(SOL_SOCKET, SO_RCVBUF, 64 * 1024));
}

/// Reads from `s` until `want` bytes arrived or EOF/error; returns what arrived.
inline Task<std::string> read_exactly(StreamSocket* s, std::size_t want) {
  std::string out;
  Buffer buf(16 * 1024);
  while (out.size() < want) {
    buf.clear();
    auto [res, b] = co_await s->read(std::move(buf));
    buf = std::move(b);
    if (!res || *res == 0) break;
    out.append(buf.view());
  }
  co_return out;
}

/// Reads until EOF (or error); returns what arrived.
inline Task<std::string> read_to_eof(StreamSocket* s) {
  std::string out;
  Buffer buf(16 * 1024);
  for (;;) {
    buf.clear();
    auto [res, b] = co_await s->read(std::move(buf));
    buf = std::move(b);
    if (!res) {
      ADD_FAILURE() << "read: " << res.error().message();
      break;
    }
    if (*res == 0) break;
    out.append(buf.view());
  }
  co_return out;
}

inline std::string random_bytes(std::size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

/// Index of the first differing byte, or npos.
inline std::size_t first_mismatch(std::string_view a, std::string_view b) {
  std::size_t n = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i)
    if (a[i] != b[i]) return i;
  return a.size() == b.size() ? std::string_view::npos : n;
}

/// Yields until no op slot is in use (cancelled and detached ops are freed by their late
/// completions); false if that does not happen within `limit`.
inline Task<bool> settle_ops(Duration limit = 5s) {
  auto deadline = Clock::now() + limit;
  while (Runtime::current().ops_in_flight() != 0) {
    if (Clock::now() > deadline) co_return false;
    co_await yield_now();
  }
  co_return true;
}

/// Raises RLIMIT_NOFILE's soft limit to the hard one; returns the new soft limit.
inline rlim_t raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
    (void)getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur;
}

/// How many fds this process has open.
inline int count_open_fds() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (dirent* e = ::readdir(d))
      if (e->d_name[0] != '.') ++n;
    ::closedir(d);
  }
  return n - 1;  // the DIR's own fd
}

inline bool ipv6_loopback_available() {
  int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  auto a = SocketAddress::parse("[::1]:0");
  bool ok = a && ::bind(fd, a->data(), a->size()) == 0;
  ::close(fd);
  return ok;
}

}  // namespace lbd::test
