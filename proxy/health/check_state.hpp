#pragma once
// CheckState: one endpoint's verdict from its active checks, with HAProxy's rise/fall
// hysteresis. Pure: it sees only results, no I/O and no clock, so the rules are tested alone.
//
// An endpoint starts UP (HAProxy's default: up until proven down, so that a new endpoint or a
// restarted daemon sends traffic at once rather than after `rise` checks). `fall` failures in a
// row take an UP endpoint DOWN; `rise` successes in a row bring a DOWN one back UP. A single
// result of the other kind breaks a run, so a flapping endpoint keeps its state.

#include <cstdint>

namespace lbd::health {

class CheckState {
 public:
  enum class Change { kNone, kWentDown, kWentUp };

  /// Takes one check's result in. `rise` and `fall` are read on every call, so a reload that
  /// changes them applies from the next result (0 counts as 1). Returns the change this result
  /// caused, if any: each transition is reported by exactly one call.
  Change record(bool success, uint32_t rise, uint32_t fall);

  bool up() const { return up_; }
  bool down() const { return !up_; }
  /// Length of the current run of successes / failures (one of the two is 0 after a check).
  /// At a transition, the run that caused it: "3 checks in a row".
  uint32_t successes_in_row() const { return successes_in_row_; }
  uint32_t failures_in_row() const { return failures_in_row_; }
  /// Checks taken in, failed checks among them, and UP <-> DOWN changes, since the start.
  uint64_t checks() const { return checks_; }
  uint64_t failures() const { return failures_; }
  uint64_t transitions() const { return transitions_; }

 private:
  bool up_ = true;
  uint32_t successes_in_row_ = 0;
  uint32_t failures_in_row_ = 0;
  uint64_t checks_ = 0;
  uint64_t failures_ = 0;
  uint64_t transitions_ = 0;
};

}  // namespace lbd::health
