#pragma once
// The fixture of the integration tests: each test runs once per I/O driver (io_uring, epoll),
// with its own temporary directory, config file and lbd process. The io_uring instance is
// skipped, with the runtime's reason, where io_uring cannot be set up (e.g. Docker's default
// seccomp profile); the driver lbd actually runs is checked in its "started" line.

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/integration/harness.hpp"

namespace lbd::it {

class LbdTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    raise_fd_limit();
    std::string why;
    if (io() == "io_uring" && !io_uring_usable(&why)) GTEST_SKIP() << "io_uring is not usable here: " << why;
  }

  void TearDown() override {
    if (lbd_ && HasFailure()) lbd_->dump_log();
  }

  const std::string& io() const { return GetParam(); }
  std::string config_path() const { return dir_.file("lb.yaml"); }
  /// The log of the current (latest) lbd process; each start gets a fresh file.
  std::string log_path() const { return dir_.file("lbd-" + std::to_string(starts_) + ".log"); }

  /// Writes `yaml` as the config and starts lbd on it with `--io <driver>` (and LBD_IO set
  /// the same), then waits until it has started and `ports` listen. Returns "" or the problem.
  std::string start_yaml(const std::string& yaml, const std::vector<uint16_t>& ports,
                         std::vector<std::string> extra_args = {}) {
    write_file(config_path(), yaml);
    ++starts_;
    std::vector<std::string> args = {"--config", config_path(), "--io", io()};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    lbd_ = std::make_unique<LbdProcess>(args, log_path(), io());
    if (!lbd_->spawned()) return "lbd did not spawn";
    std::string problem = lbd_->wait_ready(ports, 10000ms);
    if (!problem.empty()) return problem;
    if (lbd_->log().find("I/O driver " + io()) == std::string::npos)
      return "lbd does not run the " + io() + " driver";
    return "";
  }

  std::string start(const ConfigSpec& spec) {
    std::vector<uint16_t> ports;
    for (const auto& l : spec.listeners) ports.push_back(l.port);
    return start_yaml(spec.to_yaml(), ports);
  }

  /// Replaces the config file and sends SIGHUP; waits for the outcome in the log: "reload done"
  /// or "reload failed". Returns the log written since the signal, or "" on a timeout.
  std::string reload(const std::string& yaml) {
    write_file(config_path(), yaml);
    std::size_t from = lbd_->log_size();
    if (!lbd_->signal(SIGHUP)) return "";
    bool done = wait_until(
        [&] {
          std::string text = lbd_->log();
          return text.find("reload done", from) != std::string::npos ||
                 text.find("reload failed", from) != std::string::npos;
        },
        10000ms, 5ms);
    if (!done) return "";
    return lbd_->log().substr(from);
  }

  TempDir dir_;
  std::unique_ptr<LbdProcess> lbd_;
  int starts_ = 0;
};

inline std::string driver_param_name(const ::testing::TestParamInfo<std::string>& info) { return info.param; }

#define LBD_INSTANTIATE_DRIVERS(Suite) \
  INSTANTIATE_TEST_SUITE_P(Drivers, Suite, ::testing::Values("io_uring", "epoll"), ::lbd::it::driver_param_name)

}  // namespace lbd::it
