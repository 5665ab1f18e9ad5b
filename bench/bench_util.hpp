#pragma once
// Small helpers the bench programs share: another process's CPU time from /proc, the fd limit,
// and command-line values (numbers, sizes such as "2GiB", the I/O driver).

#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

#include "config/units.hpp"
#include "runtime/io_mode.hpp"

namespace lbd::bench {

/// utime + stime of a process (all its threads, live and ended), in µs; nullopt when it cannot
/// be read. The kernel keeps it in clock ticks (usually 10 ms), so measure windows of seconds.
inline std::optional<double> process_cpu_us(long pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!f || !std::getline(f, line)) return std::nullopt;
  // Field 2 (comm) may hold spaces and parentheses: fields 3.. start after the last ')'.
  auto close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(line.substr(close + 1));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int n = 3; n <= 15 && rest >> field; ++n) {
    if (n == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
    if (n == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
  }
  static const double us_per_tick = 1e6 / static_cast<double>(sysconf(_SC_CLK_TCK));
  return static_cast<double>(utime + stime) * us_per_tick;
}

/// This process's own CPU time (all threads), in µs.
inline double self_cpu_us() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto us = [](const timeval& t) { return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_usec); };
  return us(ru.ru_utime) + us(ru.ru_stime);
}

/// Raises RLIMIT_NOFILE's soft limit to the hard one, and warns when that still leaves fewer
/// than `needed` descriptors.
inline void raise_fd_limit(const char* prog, unsigned long needed) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) std::perror((std::string(prog) + ": setrlimit(RLIMIT_NOFILE)").c_str());
  }
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < needed)
    std::fprintf(stderr, "%s: warning: RLIMIT_NOFILE %llu is low for %lu descriptors\n", prog,
                 static_cast<unsigned long long>(rl.rlim_cur), needed);
}

// Command-line values. `usage` is the tool's own [[noreturn]] usage(const std::string& why).

/// A flag's number: `text` spelled exactly as a T (a decimal for double).
template <class T, class Usage>
T number_flag(std::string_view flag, std::string_view text, Usage usage) {
  T v{};
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size())
    usage(std::string(flag) + ": not a number: " + std::string(text));
  return v;
}

/// A flag's size in the config file's spelling: "4096", "4096B", "256KiB", "16MiB", "2GiB".
template <class Usage>
uint64_t size_flag(std::string_view flag, std::string_view text, Usage usage) {
  auto n = config::parse_size(text);
  if (!n) usage(std::string(flag) + ": not a size: " + std::string(text));
  return *n;
}

/// --io: auto, io_uring or epoll.
template <class Usage>
IoMode io_flag(std::string_view text, Usage usage) {
  auto mode = parse_io_mode(text);
  if (!mode) usage("--io takes auto, io_uring or epoll");
  return *mode;
}

}  // namespace lbd::bench
