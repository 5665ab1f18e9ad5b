#include "tests/integration/harness.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

#include "runtime/runtime.hpp"
#include "runtime/spawn.hpp"
#include "runtime/timer.hpp"

extern char** environ;

namespace lbd::it {

// ---------------------------------------------------------------------------------------------
// Environment

void raise_fd_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

std::string lbd_binary() {
  if (const char* dir = std::getenv("LBD_BINARY_DIR"); dir && *dir) return std::string(dir) + "/cmd/lbd";
#ifdef LBD_IT_LBD_PATH
  return LBD_IT_LBD_PATH;
#else
  return "lbd";
#endif
}

std::string source_dir() {
  if (const char* dir = std::getenv("LBD_SOURCE_DIR"); dir && *dir) return dir;
#ifdef LBD_IT_SOURCE_DIR
  return LBD_IT_SOURCE_DIR;
#else
  return ".";
#endif
}

bool io_uring_usable(std::string* why) {
  static const std::pair<bool, std::string> probed = [] {
    const char* saved = std::getenv("LBD_IO");
    std::string old = saved ? saved : "";
    ::unsetenv("LBD_IO");
    RuntimeOptions opts;
    opts.io = IoMode::kIoUring;
    std::pair<bool, std::string> r;
    {
      Runtime rt(opts);
      r = {rt.driver_info().name == "io_uring", rt.driver_info().name + ": " + rt.driver_info().reason};
    }
    if (saved) ::setenv("LBD_IO", old.c_str(), 1);
    return r;
  }();
  if (why) *why = probed.second;
  return probed.first;
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/lbd-it-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data())) {
    ADD_FAILURE() << "mkdtemp " << tmpl << ": " << std::strerror(errno);
    return;
  }
  path_ = buf.data();
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  if (DIR* d = ::opendir(path_.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") ::unlink((path_ + "/" + name).c_str());
    }
    ::closedir(d);
  }
  ::rmdir(path_.c_str());
}

void write_file(const std::string& path, const std::string& text) {
  // Write a sibling and rename, so a reload never reads a half-written file.
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << text;
  }
  ::rename(tmp.c_str(), path.c_str());
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// ---------------------------------------------------------------------------------------------
// Sockets

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) reset(o.release());
  return *this;
}

void Fd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

std::string source_ip(int i) {
  return "127.0." + std::to_string(1 + i / 250) + "." + std::to_string(1 + i % 250);
}

namespace {

sockaddr_in loopback(uint16_t port, const std::string& ip = "127.0.0.1") {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  return a;
}

Fd tcp_socket() { return Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)); }

bool can_bind(uint16_t port) {
  Fd s = tcp_socket();
  int one = 1;
  ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a = loopback(port);
  return ::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
}

std::pair<int, int> ephemeral_range() {
  int lo = 32768, hi = 60999;
  std::ifstream f("/proc/sys/net/ipv4/ip_local_port_range");
  f >> lo >> hi;
  return {lo, hi};
}

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<Ms>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

// Waits for `events` on fd until the deadline. Returns revents, 0 on timeout.
short wait_fd(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, remaining_ms(deadline));
    if (n > 0) return p.revents;
    if (n == 0) return 0;
    if (errno != EINTR) return POLLERR;
  }
}

}  // namespace

uint16_t free_port() {
  static std::mt19937 rng(std::random_device{}());
  auto [lo, hi] = ephemeral_range();
  (void)hi;
  int top = lo - 1;
  int bottom = top > 20000 ? top - 12000 : 10000;
  std::uniform_int_distribution<int> pick(bottom, top);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    auto port = static_cast<uint16_t>(pick(rng));
    if (can_bind(port) && !port_listening(port)) return port;
  }
  ADD_FAILURE() << "no free port found below the ephemeral range";
  return 0;
}

uint16_t closed_port() {
  // A free port outside the ephemeral range: nothing will take it by autobind.
  return free_port();
}

ConnectResult connect_to(uint16_t port, const std::string& source, Ms limit) {
  ConnectResult r;
  Fd s = tcp_socket();
  if (!source.empty()) {
    sockaddr_in src = loopback(0, source);
    if (::bind(s.get(), reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
      r.error = errno;
      return r;
    }
  }
  int flags = ::fcntl(s.get(), F_GETFL);
  ::fcntl(s.get(), F_SETFL, flags | O_NONBLOCK);
  sockaddr_in dst = loopback(port);
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) {
    if (errno != EINPROGRESS) {
      r.error = errno;
      return r;
    }
    short ev = wait_fd(s.get(), POLLOUT, Clock::now() + limit);
    if (ev == 0) {
      r.error = ETIMEDOUT;
      return r;
    }
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      r.error = err;
      return r;
    }
  }
  ::fcntl(s.get(), F_SETFL, flags);
  int one = 1;
  ::setsockopt(s.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  r.fd = std::move(s);
  return r;
}

Fd connect_or_fail(uint16_t port, const std::string& source) {
  auto r = connect_to(port, source);
  if (!r.fd) ADD_FAILURE() << "connect to 127.0.0.1:" << port << (source.empty() ? "" : " from " + source) << ": "
                           << std::strerror(r.error);
  return std::move(r.fd);
}

bool send_all(int fd, const void* data, std::size_t n, Ms limit) {
  auto deadline = Clock::now() + limit;
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0) {
      p += w;
      n -= static_cast<std::size_t>(w);
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      short ev = wait_fd(fd, POLLOUT, deadline);
      if (ev == 0) return false;
      continue;
    }
    return false;
  }
  return true;
}

bool send_all(int fd, const std::string& s, Ms limit) { return send_all(fd, s.data(), s.size(), limit); }

const char* to_string(End e) {
  switch (e) {
    case End::kEof: return "EOF";
    case End::kReset: return "reset";
    case End::kTimeout: return "timeout";
    case End::kError: return "error";
  }
  return "?";
}

namespace {

// One bounded read into `out`. Returns bytes read (>0), or 0 with `end` set.
ssize_t read_some(int fd, char* buf, std::size_t cap, Clock::time_point deadline, End* end, int* error) {
  for (;;) {
    ssize_t n = ::recv(fd, buf, cap, MSG_DONTWAIT);
    if (n > 0) return n;
    if (n == 0) {
      *end = End::kEof;
      return 0;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (wait_fd(fd, POLLIN, deadline) == 0) {
        *end = End::kTimeout;
        return 0;
      }
      continue;
    }
    *error = errno;
    *end = errno == ECONNRESET ? End::kReset : End::kError;
    return 0;
  }
}

}  // namespace

ReadResult read_exact(int fd, std::size_t n, Ms limit) {
  ReadResult r;
  auto deadline = Clock::now() + limit;
  char buf[64 * 1024];
  while (r.data.size() < n) {
    ssize_t got = read_some(fd, buf, std::min(sizeof buf, n - r.data.size()), deadline, &r.end, &r.error);
    if (got == 0) return r;
    r.data.append(buf, static_cast<std::size_t>(got));
  }
  r.end = End::kEof;  // not reached, but complete
  return r;
}

ReadResult read_line(int fd, Ms limit) {
  ReadResult r;
  auto deadline = Clock::now() + limit;
  char c;
  for (;;) {
    // One byte at a time: the line is short, and nothing after it may be consumed.
    ssize_t got = read_some(fd, &c, 1, deadline, &r.end, &r.error);
    if (got == 0) return r;
    r.data.push_back(c);
    if (c == '\n') return r;
  }
}

ReadResult read_to_end(int fd, Ms limit) {
  ReadResult r;
  auto deadline = Clock::now() + limit;
  char buf[64 * 1024];
  for (;;) {
    ssize_t got = read_some(fd, buf, sizeof buf, deadline, &r.end, &r.error);
    if (got == 0) return r;
    r.data.append(buf, static_cast<std::size_t>(got));
  }
}

bool wait_until(const std::function<bool()>& pred, Ms limit, Ms step) {
  auto deadline = Clock::now() + limit;
  while (!pred()) {
    if (Clock::now() >= deadline) return pred();
    std::this_thread::sleep_for(step);
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Byte streams

namespace {
inline uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Word i of the stream with seed s.
inline uint64_t word_at(uint64_t seed, uint64_t i) { return mix64(seed * 0xd1342543de82ef95ull + i); }

constexpr uint64_t kFnvPrime = 0x100000001b3ull;
}  // namespace

void ByteStream::fill(char* out, std::size_t n) {
  while (n > 0) {
    uint64_t word = word_at(seed_, offset_ / 8);
    std::size_t skip = offset_ % 8;
    std::size_t take = std::min<std::size_t>(8 - skip, n);
    std::memcpy(out, reinterpret_cast<const char*>(&word) + skip, take);
    out += take;
    n -= take;
    offset_ += take;
  }
}

void StreamChecker::feed(const char* data, std::size_t n) {
  if (scratch_.size() < n) scratch_.resize(n);
  expected_.fill(scratch_.data(), n);
  if (!mismatch_ && std::memcmp(scratch_.data(), data, n) != 0) {
    for (std::size_t i = 0; i < n; ++i) {
      if (scratch_[i] != data[i]) {
        mismatch_ = received_ + i;
        break;
      }
    }
  }
  // FNV-1a over 8-byte words of the stream (not of the chunks as they arrived), so the digest
  // does not depend on how the bytes were split by the network.
  std::size_t i = 0;
  while (i < n && pending_len_ > 0 && pending_len_ < 8) pending_[pending_len_++] = data[i++];
  if (pending_len_ == 8) {
    uint64_t w;
    std::memcpy(&w, pending_, 8);
    digest_ = (digest_ ^ w) * kFnvPrime;
    pending_len_ = 0;
  }
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, data + i, 8);
    digest_ = (digest_ ^ w) * kFnvPrime;
  }
  while (i < n) pending_[pending_len_++] = data[i++];
  received_ += n;
}

uint64_t StreamChecker::digest() const {
  uint64_t h = digest_;
  for (std::size_t i = 0; i < pending_len_; ++i) h = (h ^ static_cast<unsigned char>(pending_[i])) * kFnvPrime;
  return h ^ received_;
}

uint64_t stream_digest(uint64_t seed, uint64_t n) {
  StreamChecker c(seed);
  std::vector<char> buf(64 * 1024);
  ByteStream s(seed);
  while (n > 0) {
    std::size_t k = std::min<uint64_t>(n, buf.size());
    s.fill(buf.data(), k);
    c.feed(buf.data(), k);
    n -= k;
  }
  return c.digest();
}

uint64_t send_stream(int fd, uint64_t seed, uint64_t n, Ms limit) {
  auto deadline = Clock::now() + limit;
  ByteStream s(seed);
  std::vector<char> buf(64 * 1024);
  uint64_t sent = 0;
  while (sent < n) {
    std::size_t k = std::min<uint64_t>(n - sent, buf.size());
    s.fill(buf.data(), k);
    if (!send_all(fd, buf.data(), k, Ms(remaining_ms(deadline)))) break;
    sent += k;
  }
  return sent;
}

End check_stream(int fd, StreamChecker& checker, Ms limit) {
  auto deadline = Clock::now() + limit;
  std::vector<char> buf(64 * 1024);
  End end = End::kEof;
  int error = 0;
  for (;;) {
    ssize_t got = read_some(fd, buf.data(), buf.size(), deadline, &end, &error);
    if (got == 0) return end;
    checker.feed(buf.data(), static_cast<std::size_t>(got));
  }
}

// ---------------------------------------------------------------------------------------------
// Backends

Backend::Backend(std::string id, Handler handler, uint16_t port, int backlog)
    : id_(std::move(id)), handler_(std::move(handler)) {
  if (listen_on(port, backlog)) start_thread();
}

Backend::Backend(std::string id, std::string greeting, uint16_t port, EchoMode)
    : id_(std::move(id)), greeting_(std::move(greeting)), echo_mode_(true) {
  if (listen_on(port, 4096)) start_thread();
}

std::unique_ptr<Backend> Backend::echo_loop(std::string id, std::string greeting, uint16_t port) {
  return std::unique_ptr<Backend>(new Backend(std::move(id), std::move(greeting), port, EchoMode{}));
}

bool Backend::listen_on(uint16_t port, int backlog) {
  listener_ = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  int one = 1;
  ::setsockopt(listener_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a = loopback(port);
  if (::bind(listener_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(listener_.get(), backlog) != 0) {
    ADD_FAILURE() << "backend " << id_ << ": bind/listen 127.0.0.1:" << port << ": " << std::strerror(errno);
    return false;
  }
  socklen_t len = sizeof a;
  ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  int p[2];
  if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) {
    ADD_FAILURE() << "pipe2: " << std::strerror(errno);
    return false;
  }
  wake_read_.reset(p[0]);
  wake_write_.reset(p[1]);
  return true;
}

void Backend::start_thread() {
  loop_ = std::thread([this] { echo_mode_ ? echo_run() : accept_loop(); });
}

Backend::~Backend() { stop(); }

void Backend::wake() {
  if (wake_write_) (void)!::write(wake_write_.get(), "x", 1);
}

namespace {
void drain_pipe(int fd) {
  char buf[64];
  while (::read(fd, buf, sizeof buf) > 0) {
  }
}
}  // namespace

void Backend::accept_loop() {
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stop_requested_) return;
      if (close_requested_ && !listener_closed_) {
        listener_.reset();
        listener_closed_ = true;
        cv_.notify_all();
      }
    }
    reap(false);
    pollfd p[2] = {{listener_ ? listener_.get() : -1, POLLIN, 0}, {wake_read_.get(), POLLIN, 0}};
    int n = ::poll(p, 2, 100);
    if (n < 0 && errno != EINTR) return;
    if (p[1].revents & POLLIN) drain_pipe(wake_read_.get());
    if (n <= 0 || !(p[0].revents & POLLIN)) continue;
    for (;;) {
      int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) break;
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      ++accepted_;
      ++active_;
      auto done = std::make_shared<std::atomic<bool>>(false);
      std::lock_guard lock(mu_);
      conns_.push_back(Conn{fd, std::thread([this, fd, done] {
                              handler_(fd);
                              // Close our side now, so the peer sees the end without waiting
                              // for reap(); the fd number stays reserved (shutdown, not close)
                              // until the thread is joined, so stop() never touches a reused fd.
                              ::shutdown(fd, SHUT_RDWR);
                              --active_;
                              done->store(true);
                            }),
                            done});
    }
  }
}

void Backend::echo_run() {
  struct EchoConn {
    std::string out;  // bytes still to send: the greeting, then what was read
    bool eof = false;
    uint32_t interest = 0;
  };
  constexpr std::size_t kMaxPending = 1 << 20;  // stop reading while this much is unsent
  Fd ep(::epoll_create1(EPOLL_CLOEXEC));
  auto ctl = [&](int op, int fd, uint32_t events) {
    epoll_event e{};
    e.events = events;
    e.data.fd = fd;
    ::epoll_ctl(ep.get(), op, fd, &e);
  };
  ctl(EPOLL_CTL_ADD, listener_.get(), EPOLLIN);
  ctl(EPOLL_CTL_ADD, wake_read_.get(), EPOLLIN);
  std::map<int, EchoConn> conns;
  auto close_conn = [&](int fd) {
    ::epoll_ctl(ep.get(), EPOLL_CTL_DEL, fd, nullptr);
    ::shutdown(fd, SHUT_RDWR);
    ::close(fd);
    conns.erase(fd);
    --active_;
  };
  // Sends what it can, then decides: close (EOF seen and all sent), or wait for more.
  auto service = [&](int fd, EchoConn& c) {
    while (!c.out.empty()) {
      ssize_t w = ::send(fd, c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w > 0) {
        c.out.erase(0, static_cast<std::size_t>(w));
        continue;
      }
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (w < 0 && errno == EINTR) continue;
      return close_conn(fd);
    }
    if (c.eof && c.out.empty()) return close_conn(fd);
    uint32_t want = (c.eof || c.out.size() >= kMaxPending ? 0u : uint32_t{EPOLLIN}) |
                    (c.out.empty() ? 0u : uint32_t{EPOLLOUT});
    if (want != c.interest) {
      ctl(EPOLL_CTL_MOD, fd, want);
      c.interest = want;
    }
  };
  std::vector<char> buf(64 * 1024);
  epoll_event events[64];
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (close_requested_ && !listener_closed_) {
        ::epoll_ctl(ep.get(), EPOLL_CTL_DEL, listener_.get(), nullptr);
        listener_.reset();
        listener_closed_ = true;
        cv_.notify_all();
      }
      if (stop_requested_) break;
    }
    int n = ::epoll_wait(ep.get(), events, 64, 100);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == wake_read_.get()) {
        drain_pipe(fd);
        continue;
      }
      if (listener_ && fd == listener_.get()) {
        for (;;) {
          int c = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
          if (c < 0) break;
          int one = 1;
          ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          ++accepted_;
          ++active_;
          EchoConn& conn = conns[c];
          conn.out = greeting_;
          conn.interest = EPOLLIN;
          ctl(EPOLL_CTL_ADD, c, EPOLLIN);
          service(c, conn);
        }
        continue;
      }
      auto it = conns.find(fd);
      if (it == conns.end()) continue;
      EchoConn& c = it->second;
      if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        ssize_t r = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
        if (r > 0) {
          c.out.append(buf.data(), static_cast<std::size_t>(r));
        } else if (r == 0) {
          c.eof = true;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          close_conn(fd);
          continue;
        }
      }
      service(fd, c);
    }
  }
  while (!conns.empty()) close_conn(conns.begin()->first);
}

void Backend::reap(bool all) {
  std::vector<Conn> finished;
  {
    std::lock_guard lock(mu_);
    for (auto it = conns_.begin(); it != conns_.end();) {
      if (all || it->done->load()) {
        finished.push_back(std::move(*it));
        it = conns_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& c : finished) {
    if (!c.done->load()) ::shutdown(c.fd, SHUT_RDWR);
    c.thread.join();
    ::close(c.fd);
  }
}

void Backend::close_listener() {
  std::lock_guard control(control_mu_);
  if (!loop_.joinable()) {
    listener_.reset();
    return;
  }
  std::unique_lock lock(mu_);
  close_requested_ = true;
  wake();
  cv_.wait(lock, [&] { return listener_closed_ || stop_requested_; });
}

void Backend::stop() {
  close_listener();
  {
    std::lock_guard control(control_mu_);
    {
      std::lock_guard lock(mu_);
      stop_requested_ = true;
    }
    wake();
    if (loop_.joinable()) loop_.join();
  }
  reap(true);
}

Backend::Handler echo_handler() {
  return [](int fd) {
    char buf[64 * 1024];
    for (;;) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      if (!send_all(fd, buf, static_cast<std::size_t>(n), 30000ms)) return;
    }
  };
}

Backend::Handler identify_handler(const std::string& id) {
  auto echo = echo_handler();
  return [id, echo](int fd) {
    if (!send_all(fd, id + "\n")) return;
    echo(fd);
  };
}

std::unique_ptr<Backend> make_echo(const std::string& id) { return Backend::echo_loop(id, ""); }

std::unique_ptr<Backend> make_identify(const std::string& id) { return Backend::echo_loop(id, id + "\n"); }

// ---------------------------------------------------------------------------------------------
// Config

std::string ConfigSpec::to_yaml() const {
  std::ostringstream y;
  y << "workers: " << workers << "\n";
  y << "log: { level: " << log_level << ", access_log: off";
  if (!error_log.empty()) y << ", error_log: " << error_log;
  y << " }\n";
  if (!drain_timeout.empty()) y << "shutdown: { drain_timeout: " << drain_timeout << " }\n";
  y << "listeners:\n";
  for (const auto& l : listeners) {
    y << "  - name: " << l.name << "\n";
    y << "    listen: 127.0.0.1:" << l.port << "\n";
    y << "    protocol: tcp\n";
    y << "    cluster: " << l.cluster << "\n";
    if (l.max_connections > 0) y << "    max_connections: " << l.max_connections << "\n";
    if (!l.forwarding.empty()) y << "    forwarding: " << l.forwarding << "\n";
    y << l.extra;
  }
  y << "clusters:\n";
  for (const auto& c : clusters) {
    y << "  - name: " << c.name << "\n";
    y << "    balance: " << c.balance << "\n";
    y << "    retries: " << c.retries << "\n";
    if (!c.connect_timeout.empty()) y << "    timeouts: { connect: " << c.connect_timeout << " }\n";
    y << "    endpoints:\n";
    for (const auto& e : c.endpoints) y << "      - { address: " << e.address << ", weight: " << e.weight << " }\n";
    y << c.extra;
  }
  return y.str();
}

ClusterSpec cluster_of(const std::vector<Backend*>& backends, const std::string& balance, const std::string& name) {
  ClusterSpec c;
  c.name = name;
  c.balance = balance;
  for (Backend* b : backends) c.endpoints.push_back({b->address(), 1});
  return c;
}

// ---------------------------------------------------------------------------------------------
// The lbd process

std::string ExitStatus::to_string() const {
  return exited ? "exit code " + std::to_string(code) : "killed by signal " + std::to_string(code);
}

namespace {

ExitStatus decode(int wstatus) {
  if (WIFEXITED(wstatus)) return {true, WEXITSTATUS(wstatus)};
  if (WIFSIGNALED(wstatus)) return {false, WTERMSIG(wstatus)};
  return {false, -1};
}

// posix_spawn with stdout/stderr redirected, default signal dispositions and an empty mask
// (the test process ignores SIGPIPE; an exec'd child would inherit that).
pid_t spawn_lbd(const std::vector<std::string>& args, const std::string& out_path, const std::string& err_path,
                const std::string& io) {
  std::vector<std::string> argv_s;
  argv_s.push_back(lbd_binary());
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);

  std::vector<std::string> env_s;
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "LBD_IO=", 7) != 0) env_s.emplace_back(*e);
  if (!io.empty()) env_s.push_back("LBD_IO=" + io);
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (err_path == out_path) {
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
  } else {
    posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  }
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, argv[0], &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    ADD_FAILURE() << "posix_spawn " << argv[0] << ": " << std::strerror(rc);
    return -1;
  }
  return pid;
}

}  // namespace

LbdProcess::LbdProcess(std::vector<std::string> args, const std::string& log_path, const std::string& io)
    : log_path_(log_path) {
  pid_ = spawn_lbd(args, log_path, log_path, io);
}

LbdProcess::~LbdProcess() {
  if (pid_ > 0 && !status_) {
    ::kill(pid_, SIGKILL);
    int ws = 0;
    ::waitpid(pid_, &ws, 0);
  }
  if (::testing::Test::HasFailure() && !log_dumped_) dump_log();
}

void LbdProcess::dump_log() const {
  log_dumped_ = true;
  std::cerr << "----- lbd log (pid " << pid_ << ", " << log_path_ << ") -----\n"
            << log() << "----- end of lbd log -----\n";
}

std::string LbdProcess::log() const { return read_file(log_path_); }

std::size_t LbdProcess::log_size() const {
  struct stat st {};
  return ::stat(log_path_.c_str(), &st) == 0 ? static_cast<std::size_t>(st.st_size) : 0;
}

bool LbdProcess::wait_log(const std::string& needle, Ms limit, std::size_t from) const {
  return wait_until(
      [&] {
        std::string text = log();
        return text.size() > from && text.find(needle, from) != std::string::npos;
      },
      limit, 5ms);
}

int LbdProcess::count_log(const std::string& needle) const {
  std::string text = log();
  int n = 0;
  for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + needle.size())) ++n;
  return n;
}

bool port_listening(uint16_t port) {
  std::ifstream f("/proc/net/tcp");
  std::string line;
  std::getline(f, line);  // header
  char want[8];
  std::snprintf(want, sizeof want, "%04X", port);
  while (std::getline(f, line)) {
    std::istringstream ls(line);
    std::string sl, local, remote, state;
    ls >> sl >> local >> remote >> state;
    if (state != "0A") continue;
    auto colon = local.find(':');
    if (colon == std::string::npos || local.substr(colon + 1) != want) continue;
    std::string ip = local.substr(0, colon);
    if (ip == "0100007F" || ip == "00000000") return true;
  }
  return false;
}

std::string LbdProcess::wait_ready(const std::vector<uint16_t>& ports, Ms limit) {
  auto deadline = Clock::now() + limit;
  bool started = wait_until(
      [&] {
        if (!running()) return true;
        return log().find(" started: ") != std::string::npos;
      },
      limit, 5ms);
  if (!running()) return "lbd exited before it started (" + status_->to_string() + ")";
  if (!started) return "no \"started\" line in the log within " + std::to_string(limit.count()) + "ms";
  for (uint16_t port : ports) {
    if (!wait_until([&] { return port_listening(port); }, Ms(remaining_ms(deadline)), 5ms))
      return "port " + std::to_string(port) + " is not listening";
  }
  return "";
}

bool LbdProcess::signal(int sig) { return pid_ > 0 && !status_ && ::kill(pid_, sig) == 0; }

bool LbdProcess::running() {
  if (pid_ <= 0) return false;
  if (status_) return false;
  int ws = 0;
  pid_t r = ::waitpid(pid_, &ws, WNOHANG);
  if (r == pid_) {
    status_ = decode(ws);
    return false;
  }
  return true;
}

std::optional<ExitStatus> LbdProcess::wait_exit(Ms limit) {
  wait_until([&] { return !running(); }, limit, 2ms);
  return status_;
}

RunResult run_lbd(const std::vector<std::string>& args, const TempDir& dir, Ms limit) {
  static std::atomic<int> seq{0};
  int n = seq++;
  std::string out = dir.file("run" + std::to_string(n) + ".out");
  std::string err = dir.file("run" + std::to_string(n) + ".err");
  RunResult r;
  pid_t pid = spawn_lbd(args, out, err, "");
  if (pid <= 0) return r;
  int ws = 0;
  bool done = wait_until([&] { return ::waitpid(pid, &ws, WNOHANG) == pid; }, limit, 2ms);
  if (!done) {
    r.timed_out = true;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &ws, 0);
  }
  r.status = decode(ws);
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

// ---------------------------------------------------------------------------------------------
// Workloads

std::string identify_once(uint16_t port, const std::string& source, std::string* error) {
  auto c = connect_to(port, source);
  if (!c.fd) {
    if (error) *error = std::string("connect: ") + std::strerror(c.error);
    return "";
  }
  auto line = read_line(c.fd.get(), 5000ms);
  if (line.data.empty() || line.data.back() != '\n') {
    if (error) *error = std::string("no id line (") + to_string(line.end) + ")";
    return "";
  }
  line.data.pop_back();
  // Close gracefully and wait for the end to come back through lbd: by then lbd's session has
  // ended (the backend saw our FIN and closed), so the next connection meets settled balancer
  // state (least_conn and random_two count open sessions).
  ::shutdown(c.fd.get(), SHUT_WR);
  auto rest = read_to_end(c.fd.get(), 5000ms);
  if (!rest.data.empty() || rest.end != End::kEof) {
    if (error) *error = std::string("no clean end after the id (") + to_string(rest.end) + ")";
    return "";
  }
  return line.data;
}

std::map<std::string, int> identify_many(uint16_t port, int total, int threads,
                                         const std::function<std::string(int)>& source) {
  std::mutex mu;
  std::map<std::string, int> counts;
  std::atomic<int> next{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      std::map<std::string, int> local;
      for (int i = next++; i < total; i = next++) {
        std::string error;
        auto t0 = Clock::now();
        std::string id = identify_once(port, source ? source(i) : "", &error);
        ++local[id.empty() ? "<error: " + error + ">" : id];
        // A connection this slow points at a lost SYN or a stalled lbd: say so, it explains a
        // slow test even when the counts pass.
        auto took = std::chrono::duration_cast<Ms>(Clock::now() - t0);
        if (took > 1000ms) {
          std::lock_guard lock(mu);
          std::cerr << "note: connection " << i << " to port " << port << " took " << took.count() << "ms ("
                    << (id.empty() ? error : "id " + id) << ")\n";
        }
      }
      std::lock_guard lock(mu);
      for (auto& [k, v] : local) counts[k] += v;
    });
  }
  for (auto& w : workers) w.join();
  return counts;
}

}  // namespace lbd::it
