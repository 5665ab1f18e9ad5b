#include "proxy/l7/access_log.hpp"

#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <chrono>
#include <ctime>
#include <vector>

namespace lbd::proxy {

namespace {
// Set at start-up (and on reload, from the control thread); read by every worker through the
// raw pointer. Loggers are kept for the life of the process, so a worker still writing through
// a replaced one never touches freed memory; reloads are rare, so this stays small.
std::vector<std::shared_ptr<spdlog::logger>> g_loggers;
std::atomic<spdlog::logger*> g_logger_raw{nullptr};
std::atomic<config::AccessLogFormat> g_format{config::AccessLogFormat::kCombined};

/// "[25/Nov/2026:06:40:01 +0000]", cached per thread for the current second.
std::string_view local_time_field() {
  thread_local std::time_t cached_second = 0;
  thread_local char buf[40];
  thread_local std::size_t len = 0;
  std::time_t now = std::time(nullptr);
  if (now != cached_second) {
    cached_second = now;
    std::tm tm{};
    localtime_r(&now, &tm);
    len = std::strftime(buf, sizeof(buf), "[%d/%b/%Y:%H:%M:%S %z]", &tm);
  }
  return {buf, len};
}

void append_seconds(std::string& out, Duration d) {
  char buf[32];
  auto ms = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  int n = std::snprintf(buf, sizeof(buf), "%.3f", static_cast<double>(ms) / 1e6);
  out.append(buf, static_cast<std::size_t>(n));
}

/// How one format writes a byte inside a quoted field: as is, after a backslash, or as a hex
/// escape. Combined (nginx's escaping) and JSON differ only in the hex form and in DEL.
struct EscapeTable {
  enum Kind : uint8_t { kRaw, kBackslash, kHex };
  std::array<Kind, 256> kind{};
  const char* hex_format;  // for kHex bytes; takes the byte as unsigned

  constexpr EscapeTable(const char* hex, bool escape_del) : hex_format(hex) {
    for (std::size_t c = 0; c < 0x20; ++c) kind[c] = kHex;
    if (escape_del) kind[0x7f] = kHex;
    kind['"'] = kBackslash;
    kind['\\'] = kBackslash;
  }
};
constexpr EscapeTable kCombinedEscapes("\\x%02X", /*escape_del=*/true);
constexpr EscapeTable kJsonEscapes("\\u%04x", /*escape_del=*/false);

void append_escaped(std::string& out, std::string_view v, const EscapeTable& table) {
  out += '"';
  for (char c : v) {
    auto u = static_cast<unsigned char>(c);
    switch (table.kind[u]) {
      case EscapeTable::kRaw:
        out += c;
        break;
      case EscapeTable::kBackslash:
        out += '\\';
        out += c;
        break;
      case EscapeTable::kHex: {
        char buf[8];
        int n = std::snprintf(buf, sizeof(buf), table.hex_format, static_cast<unsigned>(u));
        out.append(buf, static_cast<std::size_t>(n));
        break;
      }
    }
  }
  out += '"';
}

void append_quoted_field(std::string& out, std::string_view v) {
  if (v.empty()) {
    out += "\"-\"";
    return;
  }
  append_escaped(out, v, kCombinedEscapes);
}

void append_json_string(std::string& out, std::string_view v) { append_escaped(out, v, kJsonEscapes); }
}  // namespace

void set_access_log(std::shared_ptr<spdlog::logger> logger, config::AccessLogFormat format) {
  g_format.store(format);
  g_logger_raw.store(logger.get(), std::memory_order_release);
  if (logger) g_loggers.push_back(std::move(logger));
}

std::string format_access(const AccessRecord& r, config::AccessLogFormat format) {
  std::string out;
  out.reserve(256);
  std::string client = r.client ? r.client->host_string() : "-";
  if (format == config::AccessLogFormat::kJson) {
    auto now = std::chrono::system_clock::now();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    out += "{\"time_ms\":" + std::to_string(ms);
    out += ",\"listener\":";
    append_json_string(out, r.listener);
    out += ",\"client\":";
    append_json_string(out, client);
    out += ",\"method\":";
    append_json_string(out, r.method);
    out += ",\"target\":";
    append_json_string(out, r.target);
    out += ",\"version\":";
    append_json_string(out, r.version);
    out += ",\"host\":";
    append_json_string(out, r.host);
    out += ",\"status\":" + std::to_string(r.status);
    out += ",\"bytes_sent\":" + std::to_string(r.bytes_sent);
    out += ",\"referer\":";
    append_json_string(out, r.referer);
    out += ",\"user_agent\":";
    append_json_string(out, r.user_agent);
    out += ",\"upstream\":";
    append_json_string(out, r.upstream);
    out += ",\"request_time\":";
    append_seconds(out, r.request_time);
    out += ",\"upstream_time\":";
    if (r.upstream_time.count() < 0) out += "null";
    else append_seconds(out, r.upstream_time);
    out += ",\"cause\":";
    append_json_string(out, r.cause);
    if (!r.client_subject.empty()) {  // TLS client certificates only
      out += ",\"client_subject\":";
      append_json_string(out, r.client_subject);
    }
    out += '}';
    return out;
  }
  out += client;
  out += " - - ";
  out += local_time_field();
  out += ' ';
  if (r.method.empty()) {
    out += "\"-\"";
  } else {
    std::string request;
    request.reserve(r.method.size() + r.target.size() + r.version.size() + 2);
    request.append(r.method).append(" ").append(r.target).append(" ").append(r.version);
    append_quoted_field(out, request);
  }
  out += ' ';
  out += std::to_string(r.status);
  out += ' ';
  out += std::to_string(r.bytes_sent);
  out += ' ';
  append_quoted_field(out, r.referer);
  out += ' ';
  append_quoted_field(out, r.user_agent);
  out += " upstream=";
  out += r.upstream.empty() ? "-" : r.upstream;
  out += " rt=";
  append_seconds(out, r.request_time);
  out += " urt=";
  if (r.upstream_time.count() < 0) out += "-";
  else append_seconds(out, r.upstream_time);
  out += " cause=";
  out += r.cause;
  out += " listener=";
  out += r.listener;
  return out;
}

bool access_log_enabled() { return g_logger_raw.load(std::memory_order_acquire) != nullptr; }

void log_access(const AccessRecord& r) {
  spdlog::logger* logger = g_logger_raw.load(std::memory_order_acquire);
  if (!logger) return;
  logger->info(format_access(r, g_format.load(std::memory_order_relaxed)));
}

}  // namespace lbd::proxy
