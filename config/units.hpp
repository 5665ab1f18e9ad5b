#pragma once
// Durations and byte sizes as they are written in the config file.
//
//   durations: a whole number followed by ms, s, m or h ("250ms", "30s", "10m", "1h"). A unit is
//              required, except for a bare "0", so that "30" (seconds? milliseconds?) cannot pass.
//   sizes:     a whole number of bytes, optionally followed by B, KiB, MiB or GiB ("512",
//              "512B", "16KiB", "1MiB"). Only binary units: "16KB" or "16k" are rejected rather
//              than guessed.
//
// No signs, fractions, spaces or compound forms ("1m30s"): write "90s" or "1500ms".
//
// A duration is an lbd::Duration (runtime/clock.hpp), the type every timeout in the runtime
// takes, so a config value goes to the runtime as it is.

#include <cstdint>
#include <string>
#include <string_view>

#include "runtime/clock.hpp"
#include "runtime/result.hpp"

namespace lbd::config {

/// Parses a duration. Errors: EINVAL for malformed text (including a negative number, a missing
/// or unknown unit), ERANGE when the value does not fit in Duration (nanoseconds in an int64:
/// up to 2562047h, about 292 years).
Result<Duration> parse_duration(std::string_view text);

/// Parses a size in bytes. Errors: EINVAL for malformed text, ERANGE when it exceeds uint64_t.
Result<uint64_t> parse_size(std::string_view text);

/// For d >= 0, the shortest exact spelling that parse_duration() reads back: "250ms", "30s",
/// "10m", "0s". A part below a millisecond, which no config file can spell, is dropped.
std::string format_duration(Duration d);

/// The shortest exact spelling that parse_size() reads back: "16KiB", "1MiB", "1000B".
std::string format_size(uint64_t bytes);

}  // namespace lbd::config
