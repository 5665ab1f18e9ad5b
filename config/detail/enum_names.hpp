#pragma once
// The config-file spelling of every enum, in one table each. The loader parses with these
// tables and to_string() prints with them, so the two cannot drift apart.

#include <span>
#include <string_view>

#include "config/config.hpp"

namespace lbd::config::detail {

template <class E>
struct EnumName {
  std::string_view name;
  E value;
};

inline constexpr EnumName<IoMode> kIoModeNames[] = {
    {"auto", IoMode::Auto}, {"io_uring", IoMode::IoUring}, {"epoll", IoMode::Epoll}};

inline constexpr EnumName<LogLevel> kLogLevelNames[] = {
    {"trace", LogLevel::Trace}, {"debug", LogLevel::Debug}, {"info", LogLevel::Info},
    {"warn", LogLevel::Warn},   {"error", LogLevel::Error}, {"critical", LogLevel::Critical},
    {"off", LogLevel::Off}};

inline constexpr EnumName<AccessLogFormat> kAccessLogFormatNames[] = {
    {"combined", AccessLogFormat::Combined}, {"json", AccessLogFormat::Json}};

inline constexpr EnumName<Protocol> kProtocolNames[] = {{"tcp", Protocol::Tcp},
                                                        {"http", Protocol::Http}};

inline constexpr EnumName<Balance> kBalanceNames[] = {{"round_robin", Balance::RoundRobin},
                                                      {"least_conn", Balance::LeastConn},
                                                      {"random_two", Balance::RandomTwo},
                                                      {"hash", Balance::Hash}};

inline constexpr EnumName<HashKeyKind> kHashKeyKindNames[] = {{"source_ip", HashKeyKind::SourceIp},
                                                              {"header", HashKeyKind::Header}};

inline constexpr EnumName<HealthCheckType> kHealthCheckTypeNames[] = {
    {"tcp", HealthCheckType::Tcp}, {"http", HealthCheckType::Http}};

inline constexpr EnumName<Forwarding> kForwardingNames[] = {
    {"auto", Forwarding::Auto}, {"copy", Forwarding::Copy}, {"splice", Forwarding::Splice}};

template <class E>
std::string_view enum_name(std::span<const EnumName<E>> table, E value) {
  for (const auto& entry : table)
    if (entry.value == value) return entry.name;
  return "?";
}

}  // namespace lbd::config::detail
