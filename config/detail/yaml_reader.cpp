#include "config/detail/yaml_reader.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>

#include "config/detail/suggest.hpp"

namespace lbd::config::detail {

Position position_of(const YAML::Mark& mark) {
  if (mark.is_null() || mark.line < 0 || mark.column < 0) return {};
  return {mark.line + 1, mark.column + 1};
}

void ErrorSink::add(Position at, std::string key_path, std::string message) {
  errors_.push_back(
      ConfigError{file_, at.line, at.column, std::move(key_path), std::move(message)});
}

void ErrorSink::warn(Position at, std::string key_path, std::string message) {
  warnings_.push_back(
      ConfigError{file_, at.line, at.column, std::move(key_path), std::move(message)});
}

namespace {

std::vector<ConfigError> sorted(std::vector<ConfigError>& list) {
  std::stable_sort(list.begin(), list.end(), [](const ConfigError& a, const ConfigError& b) {
    return a.line != b.line ? a.line < b.line : a.column < b.column;
  });
  return std::move(list);
}

}  // namespace

std::vector<ConfigError> ErrorSink::take_sorted() { return sorted(errors_); }
std::vector<ConfigError> ErrorSink::take_sorted_warnings() { return sorted(warnings_); }

Field root_field(const YAML::Node& root) {
  const Position at = position_of(root.Mark());
  return Field{root, "", at, at};
}

std::string child_path(std::string_view parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  std::string out(parent);
  out += '.';
  out += key;
  return out;
}

std::string quoted(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          char hex[8];
          std::snprintf(hex, sizeof(hex), "\\x%02x", static_cast<unsigned char>(c));
          out += hex;
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

std::string describe_node(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return quoted(node.Scalar());
    default:
      return "an empty value";
  }
}

namespace {

Position value_position(const YAML::Node& value, Position fallback) {
  if (value.IsNull()) return fallback;
  Position p = position_of(value.Mark());
  return p.line == 0 ? fallback : p;
}

void report_type(ErrorSink& errors, const Field& field, std::string_view expected) {
  errors.add(field.at, field.path,
             "expected " + std::string(expected) + ", got " + describe_node(field.node));
}

}  // namespace

std::optional<std::vector<MapEntry>> map_entries(ErrorSink& errors, const Field& field,
                                                 std::string_view expected) {
  if (!field.node.IsMap()) {
    report_type(errors, field, expected);
    return std::nullopt;
  }
  std::vector<MapEntry> entries;
  for (const auto& pair : field.node) {
    // Node copies are cheap handles. Not references: yaml-cpp's iterator hands out a
    // temporary pair, and `it->first` would dangle past the statement.
    const YAML::Node key = pair.first;
    const YAML::Node value = pair.second;
    const Position key_at = value_position(key, field.at);
    if (!key.IsScalar()) {
      errors.add(key_at, field.path, "expected a key name, got " + describe_node(key));
      continue;
    }
    const std::string& name = key.Scalar();
    auto earlier = std::find_if(entries.begin(), entries.end(),
                                [&](const MapEntry& e) { return e.key == name; });
    if (earlier != entries.end()) {
      errors.add(key_at, field.path,
                 "duplicate key " + quoted(name) + " (first at line " +
                     std::to_string(earlier->key_at.line) + ")");
      continue;
    }
    entries.push_back(MapEntry{
        name, key_at,
        Field{value, child_path(field.path, name), value_position(value, key_at), key_at}});
  }
  return entries;
}

std::optional<std::vector<Field>> list_items(ErrorSink& errors, const Field& field) {
  if (!field.node.IsSequence()) {
    report_type(errors, field, "a list");
    return std::nullopt;
  }
  std::vector<Field> items;
  std::size_t index = 0;
  for (const YAML::Node& item : field.node) {
    const Position at = value_position(item, field.at);
    items.push_back(Field{item, field.path + "[" + std::to_string(index) + "]", at, at});
    ++index;
  }
  return items;
}

MapReader::MapReader(ErrorSink& errors, const Field& field)
    : errors_(errors), field_(field), entries_(map_entries(errors, field)) {
  if (entries_) used_.assign(entries_->size(), false);
}

std::optional<Field> MapReader::get(std::string_view key) {
  known_.emplace_back(key);
  if (!entries_) return std::nullopt;
  for (std::size_t i = 0; i < entries_->size(); ++i) {
    if ((*entries_)[i].key != key) continue;
    used_[i] = true;
    return (*entries_)[i].value;
  }
  return std::nullopt;
}

std::optional<Field> MapReader::require(std::string_view key) {
  auto field = get(key);
  if (!field && ok()) report_missing(key);
  return field;
}

void MapReader::report_missing(std::string_view key, std::string_view why) {
  std::string message = "missing required key " + quoted(key);
  if (!why.empty()) message += " (" + std::string(why) + ")";
  errors_.add(field_.at, field_.path, std::move(message));
}

void MapReader::finish() {
  if (!entries_) return;
  for (std::size_t i = 0; i < entries_->size(); ++i) {
    if (used_[i]) continue;
    const MapEntry& entry = (*entries_)[i];
    std::string message = "unknown key " + quoted(entry.key);
    if (auto suggestion = closest_match(entry.key, known_))
      message += " (did you mean " + quoted(*suggestion) + "?)";
    else
      message += " (valid keys: " + join(known_) + ")";
    errors_.add(entry.key_at, field_.path, std::move(message));
  }
}

std::optional<std::string> read_scalar(ErrorSink& errors, const Field& field,
                                       std::string_view expected) {
  if (!field.node.IsScalar()) {
    report_type(errors, field, expected);
    return std::nullopt;
  }
  return field.node.Scalar();
}

std::optional<std::string> read_string(ErrorSink& errors, const Field& field) {
  return read_scalar(errors, field, "a string");
}

std::optional<int64_t> read_int(ErrorSink& errors, const Field& field, int64_t min, int64_t max) {
  auto text = read_scalar(errors, field, "an integer");
  if (!text) return std::nullopt;
  int64_t value = 0;
  const char* first = text->data();
  const char* last = first + text->size();
  auto [end, ec] = std::from_chars(first, last, value);
  const bool out_of_range = ec == std::errc::result_out_of_range && end == last;
  if (!out_of_range && (ec != std::errc() || end != last || text->empty())) {
    errors.add(field.at, field.path, "expected an integer, got " + quoted(*text));
    return std::nullopt;
  }
  if (out_of_range || value < min || value > max) {
    std::string range = max == kNoUpperBound
                            ? "at least " + std::to_string(min)
                            : "between " + std::to_string(min) + " and " + std::to_string(max);
    errors.add(field.at, field.path, "must be " + range + ", got " + *text);
    return std::nullopt;
  }
  return value;
}

std::optional<bool> read_bool(ErrorSink& errors, const Field& field) {
  // Only true/false: YAML 1.1's yes/no/on/off are exactly the spellings that surprise people.
  auto text = read_scalar(errors, field, "true or false");
  if (!text) return std::nullopt;
  if (*text == "true") return true;
  if (*text == "false") return false;
  errors.add(field.at, field.path, "expected true or false, got " + quoted(*text));
  return std::nullopt;
}

std::optional<Duration> read_duration(ErrorSink& errors, const Field& field) {
  auto text = read_scalar(errors, field, "a duration");
  if (!text) return std::nullopt;
  auto d = parse_duration(*text);
  if (d) return *d;
  if (d.error().is(ERANGE))
    errors.add(field.at, field.path, "duration " + quoted(*text) + " is too large");
  else
    errors.add(field.at, field.path,
               "invalid duration " + quoted(*text) +
                   " (expected a whole number followed by ms, s, m or h, e.g. 250ms or 30s)");
  return std::nullopt;
}

std::optional<Duration> read_positive_duration(ErrorSink& errors, const Field& field) {
  auto d = read_duration(errors, field);
  if (d && *d <= Duration::zero()) {
    errors.add(field.at, field.path, "must be greater than 0");
    return std::nullopt;
  }
  return d;
}

std::optional<uint64_t> read_size(ErrorSink& errors, const Field& field) {
  auto text = read_scalar(errors, field, "a size");
  if (!text) return std::nullopt;
  auto size = parse_size(*text);
  if (size) return *size;
  if (size.error().is(ERANGE))
    errors.add(field.at, field.path, "size " + quoted(*text) + " is too large");
  else
    errors.add(field.at, field.path,
               "invalid size " + quoted(*text) +
                   " (expected a whole number of bytes, optionally followed by B, KiB, MiB or "
                   "GiB, e.g. 16KiB)");
  return std::nullopt;
}

std::optional<SocketAddress> read_address(ErrorSink& errors, const Field& field) {
  auto text = read_scalar(errors, field, "an address");
  if (!text) return std::nullopt;
  auto address = SocketAddress::parse(*text);
  if (address) return *address;
  errors.add(field.at, field.path,
             "invalid address " + quoted(*text) + " (expected ip:port, [ipv6]:port or unix:/path)");
  return std::nullopt;
}

std::optional<std::size_t> read_choice(ErrorSink& errors, const Field& field,
                                       std::span<const std::string_view> names) {
  std::string list;
  for (std::string_view name : names) {
    if (!list.empty()) list += ", ";
    list += name;
  }
  auto text = read_scalar(errors, field, "one of " + list);
  if (!text) return std::nullopt;
  for (std::size_t i = 0; i < names.size(); ++i)
    if (*text == names[i]) return i;
  errors.add(field.at, field.path,
             "invalid value " + quoted(*text) + " (expected one of: " + list + ")");
  return std::nullopt;
}

}  // namespace lbd::config::detail
