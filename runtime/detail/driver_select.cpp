// Start-up driver selection: io_uring when it works and has what we need, else epoll; the
// reason is recorded in DriverInfo and logged, so an operator knows which one runs and why.

#include <cstdlib>
#include <optional>
#include <string>

#include "runtime/detail/epoll_driver.hpp"
#include "runtime/detail/io_uring_driver.hpp"
#include "runtime/io_mode.hpp"
#include "runtime/runtime.hpp"

namespace lbd {

namespace {
std::string spelling(IoMode mode) { return std::string(to_string(mode)); }

/// LBD_IO when it names a driver, else `configured`; `source` says which one decided.
IoMode mode_from_env(IoMode configured, std::string& source) {
  const char* env = std::getenv("LBD_IO");
  if (env && *env) {
    std::optional<IoMode> forced = parse_io_mode(env);
    if (forced && *forced != IoMode::kAuto) {
      source = "LBD_IO=" + spelling(*forced);
      return *forced;
    }
    if (!forced)
      runtime_log(2, std::string("ignoring LBD_IO=") + env + " (expected " + spelling(IoMode::kIoUring) + ", " +
                         spelling(IoMode::kEpoll) + " or " + spelling(IoMode::kAuto) + ")");
  }
  if (configured != IoMode::kAuto) source = "io: " + spelling(configured);
  return configured;
}
}  // namespace

std::unique_ptr<Driver> make_driver(Runtime& rt, const RuntimeOptions& opts) {
  std::string source;
  IoMode mode = mode_from_env(opts.io, source);
  std::string uring_error;
  if (mode != IoMode::kEpoll) {
    if (auto d = detail::IoUringDriver::create(rt, opts, uring_error)) {
      d->info_mut().reason = mode == IoMode::kIoUring ? "forced by " + source : "io_uring available";
      return d;
    }
    if (mode == IoMode::kIoUring)
      runtime_log(2, "io_uring was requested (" + source + ") but " + uring_error + "; using epoll");
  }
  std::string epoll_error;
  auto d = detail::EpollDriver::create(rt, opts, epoll_error);
  if (!d) {
    runtime_log(3, "no usable I/O driver: " + epoll_error);
    std::abort();
  }
  d->info_mut().reason = mode == IoMode::kEpoll ? "forced by " + source : uring_error + "; falling back to epoll";
  return d;
}

}  // namespace lbd
