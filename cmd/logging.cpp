#include "cmd/logging.hpp"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/async.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "proxy/l7/access_log.hpp"
#include "runtime/runtime.hpp"

namespace lbd::cmd {

namespace {

/// A file sink that can be reopened in place, so loggers held by worker threads stay valid.
class ReopenableFileSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit ReopenableFileSink(std::string path) : path_(std::move(path)) {}
  ~ReopenableFileSink() override {
    if (file_) std::fclose(file_);
  }
  std::string open() {
    std::lock_guard lock(mutex_);
    return open_locked();
  }
  std::string reopen() { return open(); }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    if (!file_) return;
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    std::fwrite(formatted.data(), 1, formatted.size(), file_);
  }
  void flush_() override {
    if (file_) std::fflush(file_);
  }

 private:
  std::string open_locked() {
    FILE* f = std::fopen(path_.c_str(), "a");
    if (!f) return "cannot open log file " + path_ + ": " + std::strerror(errno);
    if (file_) std::fclose(file_);
    file_ = f;
    return "";
  }
  std::string path_;
  FILE* file_ = nullptr;
};

std::shared_ptr<ReopenableFileSink> g_file_sink;
std::shared_ptr<ReopenableFileSink> g_access_sink;

spdlog::level::level_enum to_spdlog(config::LogLevel l) {
  switch (l) {
    case config::LogLevel::kTrace: return spdlog::level::trace;
    case config::LogLevel::kDebug: return spdlog::level::debug;
    case config::LogLevel::kInfo: return spdlog::level::info;
    case config::LogLevel::kWarn: return spdlog::level::warn;
    case config::LogLevel::kError: return spdlog::level::err;
    case config::LogLevel::kCritical: return spdlog::level::critical;
    case config::LogLevel::kOff: return spdlog::level::off;
  }
  return spdlog::level::info;
}

void runtime_to_spdlog(int level, const std::string& message) {
  switch (level) {
    case 0: spdlog::debug("{}", message); break;
    case 1: spdlog::info("{}", message); break;
    case 2: spdlog::warn("{}", message); break;
    default: spdlog::error("{}", message); break;
  }
}

}  // namespace

std::string setup_logging(const config::LogConfig& log) {
  spdlog::sink_ptr sink;
  if (log.error_log == "stderr") {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  } else if (log.error_log == "stdout") {
    sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
  } else {
    auto file = std::make_shared<ReopenableFileSink>(log.error_log);
    if (auto err = file->open(); !err.empty()) return err;
    g_file_sink = file;
    sink = file;
  }
  auto logger = std::make_shared<spdlog::logger>("lbd", sink);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z [%l] %v");
  logger->set_level(to_spdlog(log.level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  set_runtime_log_sink(&runtime_to_spdlog);
  return "";
}

std::string setup_access_log(const config::LogConfig& log) {
  // On a reload the previous logger may still be in use by a worker for a moment; the proxy
  // keeps it (and so its sink) alive. Only the file SIGUSR1 reopens changes here.
  if (log.access_log == "off") {
    proxy::set_access_log(nullptr, log.access_log_format);
    g_access_sink.reset();
    return "";
  }
  spdlog::sink_ptr sink;
  std::shared_ptr<ReopenableFileSink> file;
  if (log.access_log == "stdout") {
    sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
  } else if (log.access_log == "stderr") {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  } else {
    file = std::make_shared<ReopenableFileSink>(log.access_log);
    if (auto err = file->open(); !err.empty()) return err;
    sink = file;
  }
  g_access_sink = file;
  // Workers format the line; one background thread writes it. A full queue drops the oldest
  // lines rather than blocking a worker.
  static std::once_flag pool_once;
  std::call_once(pool_once, [] { spdlog::init_thread_pool(8192, 1); });
  auto logger = std::make_shared<spdlog::async_logger>("access", sink, spdlog::thread_pool(),
                                                       spdlog::async_overflow_policy::overrun_oldest);
  logger->set_pattern("%v");
  logger->set_level(spdlog::level::info);
  logger->flush_on(spdlog::level::info);
  proxy::set_access_log(std::move(logger), log.access_log_format);
  return "";
}

void set_log_level(config::LogLevel level) { spdlog::default_logger_raw()->set_level(to_spdlog(level)); }

void reopen_logs() {
  for (auto* sink : {g_file_sink.get(), g_access_sink.get()}) {
    if (!sink) continue;
    if (auto err = sink->reopen(); !err.empty()) spdlog::error("{}", err);
  }
  spdlog::info("log files reopened");
}

}  // namespace lbd::cmd
