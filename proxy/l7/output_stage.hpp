#pragma once
// OutputStage: where an HTTP/1 exchange gathers what it writes, so that a head and the first
// body bytes, or many small chunks, leave in one send. It writes to one socket at a time, named
// on each call: a request goes upstream through it, then its response to the client through the
// same stage. Its buffer is taken on the first append and given back between requests, so an
// idle keep-alive connection holds none.

#include <span>
#include <string>
#include <string_view>

#include "proxy/core/byte_stream.hpp"
#include "runtime/buffer.hpp"

namespace lbd::proxy {

class OutputStage {
 public:
  static constexpr std::size_t kCapacity = 16 * 1024;
  static constexpr std::size_t kScratchReserve = 512;

  /// Appends `data`, writing the stage to `to` whenever it fills; each such write within `limit`.
  Task<Result<void>> append(ByteStream to, std::span<const char> data, Duration limit);
  /// Appends one chunk of a chunked body: its size line, `data` (not empty) and CRLF.
  Task<Result<void>> append_chunk(ByteStream to, std::span<const char> data, Duration limit);
  /// Writes everything staged to `to` within `limit` (a total deadline); the stage is empty
  /// afterwards, also when the write failed.
  Task<Result<void>> flush(ByteStream to, Duration limit);
  /// Replaces whatever is staged with `bytes` and writes them (an error page).
  Task<Result<void>> send(ByteStream to, std::string_view bytes, Duration limit);

  bool empty() const { return buf_.empty(); }
  /// Drops what is staged and keeps the buffer.
  void clear() { buf_.clear(); }
  /// Gives the buffer and the scratch text back (between requests).
  void release() {
    buf_ = Buffer();
    scratch_.clear();
    scratch_.shrink_to_fit();
  }

  /// Text to serialize a head or a last chunk into before appending it, reused for every one
  /// of an exchange. Precondition: nothing appended from it is still being appended.
  std::string& scratch() {
    scratch_.clear();
    // Most heads fit: one allocation per exchange rather than one per doubling.
    if (scratch_.capacity() < kScratchReserve) scratch_.reserve(kScratchReserve);
    return scratch_;
  }

 private:
  Buffer buf_;
  std::string scratch_;
};

}  // namespace lbd::proxy
