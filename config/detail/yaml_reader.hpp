#pragma once
// Private to config/: typed, error-collecting reads from a yaml-cpp node tree.
//
// Every reader either returns a value or records why the value is unusable (position, key path,
// reason) in an ErrorSink and returns nullopt; the caller then keeps its default and goes on.
// One pass over a file therefore finds all of its errors, not just the first.
//
// Only const yaml-cpp operations that cannot throw on a well-formed tree are used here
// (iteration, Type(), Scalar(), Mark()); the loader still catches at its boundary.

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "config/detail/enum_names.hpp"

namespace lbd::config::detail {

/// 1-based; {0, 0} when unknown.
struct Position {
  int line = 0;
  int column = 0;
};

Position position_of(const YAML::Mark& mark);

class ErrorSink {
 public:
  explicit ErrorSink(std::string file) : file_(std::move(file)) {}

  void add(Position at, std::string key_path, std::string message);
  /// Something that does not stop the file from loading (a certificate close to expiry).
  void warn(Position at, std::string key_path, std::string message);
  bool empty() const { return errors_.empty(); }
  /// The number of errors so far: a caller compares two counts to learn whether its part of
  /// the file added any.
  std::size_t count() const { return errors_.size(); }
  /// The errors in file order (stable for errors at the same position).
  std::vector<ConfigError> take_sorted();
  /// The warnings, in file order like the errors.
  std::vector<ConfigError> take_sorted_warnings();

 private:
  std::string file_;
  std::vector<ConfigError> errors_;
  std::vector<ConfigError> warnings_;
};

/// A value in the tree and where it came from.
struct Field {
  YAML::Node node;
  std::string path;  // "clusters[1].endpoints[0].address"
  // The value's position. For an empty value (`key:` and nothing) yaml-cpp places the mark
  // after the key, often on the next line, so the key's position is used instead.
  Position at;
  // The key's position (a list item's own position): for errors about the key being there at
  // all, such as "only valid for http listeners".
  Position key_at;
};

Field root_field(const YAML::Node& root);

std::string child_path(std::string_view parent, std::string_view key);

/// `"text"`, with quotes, backslashes and control characters escaped.
std::string quoted(std::string_view text);

/// What a node is, for "expected X, got Y": "a map", "a list", "an empty value" or the quoted
/// scalar.
std::string describe_node(const YAML::Node& node);

struct MapEntry {
  std::string key;
  Position key_at;
  Field value;
};

/// The entries of a map, in file order. A node that is not a map is reported as "expected
/// <expected>, got ..." and yields nullopt. Keys that are not scalars, and keys that repeat
/// (yaml-cpp keeps both, which would let the second silently lose), are reported and skipped.
std::optional<std::vector<MapEntry>> map_entries(ErrorSink& errors, const Field& field,
                                                 std::string_view expected = "a map");

/// The items of a list, with paths "parent[i]"; nullopt (reported) if `field` is not a list.
std::optional<std::vector<Field>> list_items(ErrorSink& errors, const Field& field);

/// Reads the known keys of one map. Every key asked for with get() or require() counts as
/// known; finish() then reports each key nobody asked for, with a suggestion.
class MapReader {
 public:
  /// If `field` is not a map this reports it, and get()/require() return nullopt.
  MapReader(ErrorSink& errors, const Field& field);

  bool ok() const { return entries_.has_value(); }
  const Field& field() const { return field_; }

  std::optional<Field> get(std::string_view key);
  /// Like get(), and a missing key is an error.
  std::optional<Field> require(std::string_view key);
  /// `missing required key "<key>"` plus ` (<why>)` when given, at this map.
  void report_missing(std::string_view key, std::string_view why = {});
  /// Reports unknown keys. Call after the last get()/require().
  void finish();

 private:
  ErrorSink& errors_;
  Field field_;
  std::optional<std::vector<MapEntry>> entries_;
  std::vector<bool> used_;
  std::vector<std::string> known_;
};

inline constexpr int64_t kNoUpperBound = std::numeric_limits<uint32_t>::max();

/// A scalar's text; other nodes are reported as "expected <expected>, got <node>".
std::optional<std::string> read_scalar(ErrorSink& errors, const Field& field,
                                       std::string_view expected);
std::optional<std::string> read_string(ErrorSink& errors, const Field& field);
/// A decimal integer in [min, max]. max == kNoUpperBound reads as "at least min" in messages.
std::optional<int64_t> read_int(ErrorSink& errors, const Field& field, int64_t min, int64_t max);
std::optional<bool> read_bool(ErrorSink& errors, const Field& field);
std::optional<Duration> read_duration(ErrorSink& errors, const Field& field);
/// A duration that must be greater than zero (every timeout: 0 would mean "fire at once").
std::optional<Duration> read_positive_duration(ErrorSink& errors, const Field& field);
std::optional<uint64_t> read_size(ErrorSink& errors, const Field& field);
std::optional<SocketAddress> read_address(ErrorSink& errors, const Field& field);

/// The index in `names` of the field's value; anything else is reported with the valid names.
std::optional<std::size_t> read_choice(ErrorSink& errors, const Field& field,
                                       std::span<const std::string_view> names);

template <class E, std::size_t N>
std::optional<E> read_enum(ErrorSink& errors, const Field& field, const EnumName<E> (&table)[N]) {
  std::string_view names[N];
  for (std::size_t i = 0; i < N; ++i) names[i] = table[i].name;
  auto index = read_choice(errors, field, names);
  if (!index) return std::nullopt;
  return table[*index].value;
}

}  // namespace lbd::config::detail
