#include "config/units.hpp"

#include <charconv>
#include <chrono>
#include <limits>

namespace lbd::config {
namespace {

using namespace std::chrono_literals;

struct DurationUnit {
  std::string_view suffix;
  Duration length;
};

struct SizeUnit {
  std::string_view suffix;
  uint64_t factor;
};

constexpr DurationUnit kDurationUnits[] = {{"h", 1h}, {"m", 1min}, {"s", 1s}, {"ms", 1ms}};
constexpr SizeUnit kSizeUnits[] = {
    {"GiB", uint64_t{1} << 30}, {"MiB", uint64_t{1} << 20}, {"KiB", uint64_t{1} << 10}, {"B", 1}};

// Splits "250ms" into 250 and "ms". The number must be plain decimal digits: from_chars would
// accept a leading '-', which we reject along with '+', spaces and fractions.
Result<std::pair<uint64_t, std::string_view>> split_number(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) return errno_error(EINVAL);
  uint64_t number = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + digits, number);
  if (ec == std::errc::result_out_of_range) return errno_error(ERANGE);
  if (ec != std::errc() || end != text.data() + digits) return errno_error(EINVAL);
  return std::pair{number, text.substr(digits)};
}

Result<uint64_t> scale(uint64_t number, uint64_t factor, uint64_t max) {
  if (number > max / factor) return errno_error(ERANGE);
  return number * factor;
}

}  // namespace

Result<Duration> parse_duration(std::string_view text) {
  if (text == "0") return Duration::zero();
  auto split = split_number(text);
  if (!split) return split.error();
  auto [number, suffix] = *split;
  constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<Duration::rep>::max());
  for (const DurationUnit& unit : kDurationUnits) {
    if (suffix != unit.suffix) continue;
    auto ticks = scale(number, static_cast<uint64_t>(unit.length.count()), kMax);
    if (!ticks) return ticks.error();
    return Duration(static_cast<Duration::rep>(*ticks));
  }
  return errno_error(EINVAL);
}

Result<uint64_t> parse_size(std::string_view text) {
  auto split = split_number(text);
  if (!split) return split.error();
  auto [number, suffix] = *split;
  if (suffix.empty()) return number;
  for (const SizeUnit& unit : kSizeUnits)
    if (suffix == unit.suffix)
      return scale(number, unit.factor, std::numeric_limits<uint64_t>::max());
  return errno_error(EINVAL);
}

std::string format_duration(Duration d) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d);
  if (ms <= 0ms) return ms == 0ms ? "0s" : std::to_string(ms.count()) + "ms";
  for (const DurationUnit& unit : kDurationUnits) {
    if (ms % unit.length == Duration::zero()) return std::to_string(ms / unit.length) + std::string(unit.suffix);
  }
  return std::to_string(ms.count()) + "ms";  // unreachable: the last unit divides everything
}

std::string format_size(uint64_t bytes) {
  for (const SizeUnit& unit : kSizeUnits)
    if (bytes != 0 && bytes % unit.factor == 0)
      return std::to_string(bytes / unit.factor) + std::string(unit.suffix);
  return "0B";
}

}  // namespace lbd::config
