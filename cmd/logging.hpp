#pragma once
// The daemon's logging: spdlog's default logger writes the error log (stderr, stdout or a
// file that SIGUSR1 reopens), and the runtime's diagnostics are routed into it.

#include <string>

#include "config/config.hpp"

namespace lbd::cmd {

/// Points spdlog's default logger at `log.error_log` with `log.level`. Returns "" or an error.
std::string setup_logging(const config::LogConfig& log);
/// Opens the access log (`log.access_log`: stdout, stderr, off or a file) behind spdlog's
/// asynchronous logger and hands it to the proxy. Returns "" or an error, and then changes
/// nothing (a reload keeps the access log it had).
std::string setup_access_log(const config::LogConfig& log);
/// Applies a new level (reload).
void set_log_level(config::LogLevel level);
/// Reopens log files (SIGUSR1), e.g. after logrotate moved them.
void reopen_logs();

}  // namespace lbd::cmd
