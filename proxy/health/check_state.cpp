#include "proxy/health/check_state.hpp"

#include <algorithm>

namespace lbd::health {

CheckState::Change CheckState::record(bool success, uint32_t rise, uint32_t fall) {
  ++checks_;
  if (success) {
    ++successes_in_row_;
    failures_in_row_ = 0;
  } else {
    ++failures_;
    ++failures_in_row_;
    successes_in_row_ = 0;
  }
  // `>=` rather than `==`: a reload may lower rise or fall below a run already under way.
  if (up_ && failures_in_row_ >= std::max(fall, 1u)) {
    up_ = false;
    ++transitions_;
    return Change::kWentDown;
  }
  if (!up_ && successes_in_row_ >= std::max(rise, 1u)) {
    up_ = true;
    ++transitions_;
    return Change::kWentUp;
  }
  return Change::kNone;
}

}  // namespace lbd::health
