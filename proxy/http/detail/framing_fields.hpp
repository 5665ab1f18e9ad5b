#pragma once
// FramingFields: what the fields of a head say about framing and the connection, gathered in
// one pass over them, for the request and the response parser alike. Each parser then applies
// its own rules (RFC 9112 §6.1-6.3) to what was found.

#include <cstddef>
#include <string_view>

#include "proxy/http/header_list.hpp"
#include "proxy/http/syntax.hpp"

namespace lbd::http::detail {

struct FramingFields {
  std::size_t content_length_count = 0;
  std::string_view content_length;  // the value of the last Content-Length
  bool has_transfer_encoding = false;
  // The codings of all Transfer-Encoding lines, in order, form one list (RFC 9110 §5.3).
  std::size_t codings = 0;
  bool chunked_last = false;      // the final coding is chunked
  bool chunked_not_last = false;  // a coding follows a chunked one
  bool unknown_coding = false;    // some coding is not chunked
  // Connection options.
  bool close = false;
  bool keep_alive = false;
  bool upgrade = false;
};

/// Scans `fields` once: Content-Length, Transfer-Encoding and Connection fill the result;
/// every other field goes to `other(field)` (a request's Host, Upgrade, Expect).
template <class Other>
FramingFields scan_framing_fields(const HeaderList& fields, Other&& other) {
  FramingFields r;
  for (HeaderField f : fields) {
    if (iequals(f.name, "Content-Length")) {
      ++r.content_length_count;
      r.content_length = f.value;
    } else if (iequals(f.name, "Transfer-Encoding")) {
      r.has_transfer_encoding = true;
      for_each_list_element(f.value, [&](std::string_view coding) {
        ++r.codings;
        if (r.chunked_last) r.chunked_not_last = true;
        r.chunked_last = iequals(coding, "chunked");
        r.unknown_coding |= !r.chunked_last;
        return true;
      });
    } else if (iequals(f.name, "Connection")) {
      for_each_list_element(f.value, [&](std::string_view option) {
        r.close |= iequals(option, "close");
        r.keep_alive |= iequals(option, "keep-alive");
        r.upgrade |= iequals(option, "upgrade");
        return true;
      });
    } else {
      other(f);
    }
  }
  return r;
}

}  // namespace lbd::http::detail
