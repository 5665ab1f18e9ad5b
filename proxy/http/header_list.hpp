#pragma once
// HeaderList: the header fields of one HTTP message, in the order and letter case they were
// received. Duplicates stay separate entries (Set-Cookie must never be joined).
//
// All names and values live in one text buffer and the list keeps offsets into it, so a list
// costs two allocations however many fields it holds, and none at all once a reused list has
// grown to the size of the requests it sees: clear() keeps the capacity. This runs per request.

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lbd::http {

struct HeaderField {
  std::string_view name;
  std::string_view value;
};

class HeaderList {
 public:
  class Iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = HeaderField;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = HeaderField;

    Iterator() = default;
    HeaderField operator*() const { return (*list_)[index_]; }
    Iterator& operator++() {
      ++index_;
      return *this;
    }
    Iterator operator++(int) {
      Iterator old = *this;
      ++index_;
      return old;
    }
    bool operator==(const Iterator& o) const { return index_ == o.index_; }

   private:
    friend class HeaderList;
    Iterator(const HeaderList* list, size_t index) : list_(list), index_(index) {}
    const HeaderList* list_ = nullptr;  // not owned; iterators die with their list
    size_t index_ = 0;
  };

  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  HeaderField operator[](size_t i) const;
  Iterator begin() const { return {this, 0}; }
  Iterator end() const { return {this, entries_.size()}; }

  /// Appends a complete field.
  void add(std::string_view name, std::string_view value);
  /// Value of the first field named `name` (ASCII case-insensitive).
  std::optional<std::string_view> get(std::string_view name) const;
  /// Number of fields named `name`.
  size_t count(std::string_view name) const;
  bool contains(std::string_view name) const { return get(name).has_value(); }
  /// Removes every field named `name`. Their text stays in the buffer until clear().
  void remove(std::string_view name);
  /// Empties the list and keeps its capacity.
  void clear();

  // Incremental building, for parsers that receive a field in pieces: start_field(), then any
  // number of append_name() followed by any number of append_value(), then end_field(), which
  // drops trailing whitespace from the value. The name pieces and value pieces each end up
  // contiguous because nothing else is appended in between.
  void start_field();
  void append_name(std::string_view piece);
  void append_value(std::string_view piece);
  void end_field();

  /// Bytes of text held (names and values), for limits.
  size_t text_size() const { return text_.size(); }

 private:
  struct Entry {
    uint32_t name_off;
    uint32_t name_len;
    uint32_t value_off;
    uint32_t value_len;
  };
  std::string text_;
  std::vector<Entry> entries_;
};

}  // namespace lbd::http
