#include "proxy/http/header_list.hpp"

#include <algorithm>

#include "proxy/http/syntax.hpp"

namespace lbd::http {


HeaderField HeaderList::operator[](size_t i) const {
  const Entry& e = entries_[i];
  std::string_view text(text_);
  return {text.substr(e.name_off, e.name_len), text.substr(e.value_off, e.value_len)};
}

void HeaderList::add(std::string_view name, std::string_view value) {
  start_field();
  append_name(name);
  append_value(value);
}

std::optional<std::string_view> HeaderList::get(std::string_view name) const {
  for (HeaderField f : *this) {
    if (iequals(f.name, name)) return f.value;
  }
  return std::nullopt;
}

size_t HeaderList::count(std::string_view name) const {
  size_t n = 0;
  for (HeaderField f : *this) n += iequals(f.name, name) ? 1 : 0;
  return n;
}

void HeaderList::remove(std::string_view name) {
  std::string_view text(text_);
  std::erase_if(entries_,
                [&](const Entry& e) { return iequals(text.substr(e.name_off, e.name_len), name); });
}

void HeaderList::clear() {
  text_.clear();
  entries_.clear();
}

void HeaderList::start_field() {
  auto off = static_cast<uint32_t>(text_.size());
  entries_.push_back(Entry{off, 0, off, 0});
}

void HeaderList::append_name(std::string_view piece) {
  Entry& e = entries_.back();
  text_.append(piece);
  e.name_len += static_cast<uint32_t>(piece.size());
  e.value_off = static_cast<uint32_t>(text_.size());
}

void HeaderList::append_value(std::string_view piece) {
  text_.append(piece);
  entries_.back().value_len += static_cast<uint32_t>(piece.size());
}

void HeaderList::end_field() {
  Entry& e = entries_.back();
  while (e.value_len > 0 && is_ows(text_[e.value_off + e.value_len - 1])) {
    --e.value_len;
  }
}

}  // namespace lbd::http
