#pragma once
// "Did you mean" suggestions for misspelt keys, enum values and names.

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace lbd::config::detail {

/// Optimal string alignment distance: insertions, deletions, substitutions and transpositions
/// of adjacent characters each cost 1, so "wrokers" is 1 away from "workers".
std::size_t edit_distance(std::string_view a, std::string_view b);

/// The candidate closest to `word` if it is near enough to be a plausible typo: within 2 edits,
/// or 1 for words of up to 3 characters (so that "ab" does not suggest "io"). Ties go to the
/// earlier candidate.
std::optional<std::string> closest_match(std::string_view word,
                                         std::span<const std::string> candidates);

/// "a, b, c": candidates joined for an error message.
std::string join(std::span<const std::string> items, std::string_view separator = ", ");

}  // namespace lbd::config::detail
