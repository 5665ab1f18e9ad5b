// Tests config/units.cpp: duration and size spellings.
#include "config/units.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <limits>

namespace lbd::config {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

TEST(ParseDuration, ReadsEveryUnit) {
  EXPECT_EQ(parse_duration("250ms").value(), milliseconds(250));
  EXPECT_EQ(parse_duration("2s").value(), seconds(2));
  EXPECT_EQ(parse_duration("1m").value(), minutes(1));
  EXPECT_EQ(parse_duration("1h").value(), hours(1));
  EXPECT_EQ(parse_duration("90s").value(), seconds(90));
  EXPECT_EQ(parse_duration("0ms").value(), milliseconds(0));
  EXPECT_EQ(parse_duration("007s").value(), seconds(7));
}

TEST(ParseDuration, BareZeroIsTheOnlyNumberWithoutUnit) {
  EXPECT_EQ(parse_duration("0").value(), milliseconds(0));
  EXPECT_EQ(parse_duration("30").errno_value(), EINVAL);
  EXPECT_EQ(parse_duration("00").errno_value(), EINVAL);
  EXPECT_EQ(parse_duration("1").errno_value(), EINVAL);
}

TEST(ParseDuration, RejectsMalformedText) {
  for (const char* text : {"", "s", "ms", "-1s", "+1s", "-0", "1.5s", "1 s", " 1s", "1s ", "1S",
                           "1sec", "1d", "1us", "1m30s", "yes", "0x10s", "1e3ms", "1msx"}) {
    auto d = parse_duration(text);
    EXPECT_FALSE(d.has_value()) << text;
    EXPECT_EQ(d.errno_value(), EINVAL) << text;
  }
}

TEST(ParseDuration, ReportsOverflowAsRange) {
  // A Duration is 2^63-1 ns at most (about 292 years): each unit's largest count fits, one
  // more does not.
  EXPECT_EQ(parse_duration("9223372036854ms").value(), milliseconds(9223372036854));
  EXPECT_EQ(parse_duration("9223372036855ms").errno_value(), ERANGE);
  EXPECT_EQ(parse_duration("9223372036s").value(), seconds(9223372036));
  EXPECT_EQ(parse_duration("9223372037s").errno_value(), ERANGE);
  EXPECT_EQ(parse_duration("153722867m").value(), minutes(153722867));
  EXPECT_EQ(parse_duration("153722868m").errno_value(), ERANGE);
  EXPECT_EQ(parse_duration("2562047h").value(), hours(2562047));
  EXPECT_EQ(parse_duration("2562048h").errno_value(), ERANGE);
  // The largest values of each unit while config durations were milliseconds: too large now.
  EXPECT_EQ(parse_duration("9223372036854775807ms").errno_value(), ERANGE);
  EXPECT_EQ(parse_duration("9223372036854775s").errno_value(), ERANGE);
  EXPECT_EQ(parse_duration("2562047788015h").errno_value(), ERANGE);
  // Fits in uint64 as a number but overflows once scaled.
  EXPECT_EQ(parse_duration("9223372036854775808ms").errno_value(), ERANGE);
  EXPECT_EQ(parse_duration("9223372036854776s").errno_value(), ERANGE);
  EXPECT_EQ(parse_duration("2562047788016h").errno_value(), ERANGE);
  // Does not even fit in uint64.
  EXPECT_EQ(parse_duration("99999999999999999999999s").errno_value(), ERANGE);
}

TEST(ParseSize, ReadsBytesAndBinaryUnits) {
  EXPECT_EQ(parse_size("0").value(), 0u);
  EXPECT_EQ(parse_size("512").value(), 512u);
  EXPECT_EQ(parse_size("512B").value(), 512u);
  EXPECT_EQ(parse_size("16KiB").value(), 16u * 1024);
  EXPECT_EQ(parse_size("1MiB").value(), 1024u * 1024);
  EXPECT_EQ(parse_size("2GiB").value(), 2ull << 30);
}

TEST(ParseSize, RejectsMalformedText) {
  for (const char* text : {"", "B", "KiB", "-1", "-1KiB", "+1", "1.5KiB", "16KB", "16kib", "16k",
                           "16K", "1 KiB", "1TiB", "1Mi", "0x10", "lots"}) {
    auto s = parse_size(text);
    EXPECT_FALSE(s.has_value()) << text;
    EXPECT_EQ(s.errno_value(), EINVAL) << text;
  }
}

TEST(ParseSize, ReportsOverflowAsRange) {
  EXPECT_EQ(parse_size("18446744073709551615").value(), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(parse_size("18446744073709551616").errno_value(), ERANGE);
  EXPECT_EQ(parse_size("17179869183GiB").value(), 17179869183ull << 30);
  EXPECT_EQ(parse_size("17179869184GiB").errno_value(), ERANGE);
  EXPECT_EQ(parse_size("18014398509481984KiB").errno_value(), ERANGE);
}

TEST(FormatUnits, PicksTheLargestExactUnitAndRoundTrips) {
  EXPECT_EQ(format_duration(milliseconds(0)), "0s");
  EXPECT_EQ(format_duration(milliseconds(250)), "250ms");
  EXPECT_EQ(format_duration(milliseconds(1500)), "1500ms");
  EXPECT_EQ(format_duration(seconds(90)), "90s");
  EXPECT_EQ(format_duration(minutes(10)), "10m");
  EXPECT_EQ(format_duration(hours(2)), "2h");
  EXPECT_EQ(format_size(0), "0B");
  EXPECT_EQ(format_size(1000), "1000B");
  EXPECT_EQ(format_size(8 * 1024), "8KiB");
  EXPECT_EQ(format_size(3 << 20), "3MiB");
  EXPECT_EQ(format_size(uint64_t{1} << 30), "1GiB");
  for (auto d : {milliseconds(0), milliseconds(1), milliseconds(59'999), milliseconds(3'600'000),
                 milliseconds(86'400'000)})
    EXPECT_EQ(parse_duration(format_duration(d)).value(), d) << d.count();
  for (uint64_t s : {uint64_t{0}, uint64_t{1}, uint64_t{1023}, uint64_t{1} << 40})
    EXPECT_EQ(parse_size(format_size(s)).value(), s) << s;
}

}  // namespace
}  // namespace lbd::config
