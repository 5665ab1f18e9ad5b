#pragma once
// The runtime's clock and its one duration type. Every deadline and timeout in lbd, the
// config's included, is a Duration on this clock, so no caller has to ask which unit a count
// is in.

#include <chrono>

namespace lbd {

/// Monotonic: deadlines do not move when the wall clock is set.
using Clock = std::chrono::steady_clock;
/// Nanoseconds (Clock's own tick), which makes deadline arithmetic exact.
using Duration = Clock::duration;

}  // namespace lbd
