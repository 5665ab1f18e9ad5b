#pragma once
// IoMode: which I/O driver a runtime uses, and its one spelling ("auto", "io_uring", "epoll").
// RuntimeOptions, the LBD_IO variable, the config file's `io` key and lbd's --io all read and
// print it through this header, so the names cannot drift apart.

#include <optional>
#include <string_view>

namespace lbd {

/// kAuto probes io_uring and falls back to epoll; the other two force a driver.
enum class IoMode { kAuto, kIoUring, kEpoll };

/// Every IoMode, in the order the documentation lists them.
inline constexpr IoMode kIoModes[] = {IoMode::kAuto, IoMode::kIoUring, IoMode::kEpoll};

/// "auto", "io_uring" or "epoll".
constexpr std::string_view to_string(IoMode mode) {
  switch (mode) {
    case IoMode::kAuto:
      return "auto";
    case IoMode::kIoUring:
      return "io_uring";
    case IoMode::kEpoll:
      return "epoll";
  }
  return "?";
}

/// The mode `text` spells exactly (case matters); nullopt for anything else.
constexpr std::optional<IoMode> parse_io_mode(std::string_view text) {
  for (IoMode mode : kIoModes)
    if (to_string(mode) == text) return mode;
  return std::nullopt;
}

}  // namespace lbd
