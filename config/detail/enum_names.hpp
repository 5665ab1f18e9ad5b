#pragma once
// The config-file spelling of every enum, in one table each. The loader parses with these
// tables and to_string() prints with them, so the two cannot drift apart.

#include <span>
#include <string_view>

#include "config/config.hpp"
#include "runtime/io_mode.hpp"

namespace lbd::config::detail {

template <class E>
struct EnumName {
  std::string_view name;
  E value;
};

// The runtime owns this one's spelling (runtime/io_mode.hpp); the table only lists it.
inline constexpr EnumName<lbd::IoMode> kIoModeNames[] = {
    {lbd::to_string(lbd::IoMode::kAuto), lbd::IoMode::kAuto},
    {lbd::to_string(lbd::IoMode::kIoUring), lbd::IoMode::kIoUring},
    {lbd::to_string(lbd::IoMode::kEpoll), lbd::IoMode::kEpoll}};

inline constexpr EnumName<LogLevel> kLogLevelNames[] = {
    {"trace", LogLevel::kTrace}, {"debug", LogLevel::kDebug}, {"info", LogLevel::kInfo},
    {"warn", LogLevel::kWarn},   {"error", LogLevel::kError}, {"critical", LogLevel::kCritical},
    {"off", LogLevel::kOff}};

inline constexpr EnumName<AccessLogFormat> kAccessLogFormatNames[] = {
    {"combined", AccessLogFormat::kCombined}, {"json", AccessLogFormat::kJson}};

inline constexpr EnumName<Protocol> kProtocolNames[] = {{"tcp", Protocol::kTcp},
                                                        {"http", Protocol::kHttp}};

// Spelled by the balancer library, which owns the enum.
inline constexpr EnumName<balancer::BalanceKind> kBalanceNames[] = {
    {to_string(balancer::BalanceKind::kRoundRobin), balancer::BalanceKind::kRoundRobin},
    {to_string(balancer::BalanceKind::kLeastConn), balancer::BalanceKind::kLeastConn},
    {to_string(balancer::BalanceKind::kRandomTwo), balancer::BalanceKind::kRandomTwo},
    {to_string(balancer::BalanceKind::kHash), balancer::BalanceKind::kHash}};

inline constexpr EnumName<HashKeyKind> kHashKeyKindNames[] = {{"source_ip", HashKeyKind::kSourceIp},
                                                              {"header", HashKeyKind::kHeader}};

inline constexpr EnumName<HealthCheckType> kHealthCheckTypeNames[] = {
    {"tcp", HealthCheckType::kTcp}, {"http", HealthCheckType::kHttp}};

inline constexpr EnumName<Forwarding> kForwardingNames[] = {
    {"auto", Forwarding::kAuto}, {"copy", Forwarding::kCopy}, {"splice", Forwarding::kSplice}};

inline constexpr EnumName<NotTls> kNotTlsNames[] = {{"close", NotTls::kClose}, {"default", NotTls::kDefault}};

template <class E>
std::string_view enum_name(std::span<const EnumName<E>> table, E value) {
  for (const auto& entry : table)
    if (entry.value == value) return entry.name;
  return "?";
}

}  // namespace lbd::config::detail
