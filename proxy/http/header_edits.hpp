#pragma once
// Header edits as an operator configures them (route.request_headers / response_headers) and
// the serializers apply them. Defined here, below config/, so that the config file's structs
// and the code that sends messages use the same type.

#include <string>
#include <vector>

namespace lbd::http {

/// One `name: value` field line held by value (HeaderField is a view into a message).
struct FieldLine {
  std::string name;
  std::string value;
  bool operator==(const FieldLine&) const = default;
};

/// Field edits, applied after hop-by-hop removal: `remove` drops every field of those names
/// (case-insensitive; the config stores them lowercase), then `add` appends fields at the end,
/// as written. So remove + add replaces a field.
struct HeaderEdits {
  std::vector<FieldLine> add;
  std::vector<std::string> remove;
  bool operator==(const HeaderEdits&) const = default;
};

}  // namespace lbd::http
