#include "proxy/l7/output_stage.hpp"

#include <cerrno>

#include "proxy/http/forward.hpp"

namespace lbd::proxy {

Task<Result<void>> OutputStage::append(ByteStream to, std::span<const char> data, Duration limit) {
  if (buf_.capacity() == 0) buf_ = Buffer(kCapacity);
  while (!data.empty()) {
    std::size_t n = buf_.append(std::string_view(data.data(), data.size()));
    data = data.subspan(n);
    if (!data.empty()) {
      auto r = co_await flush(to, limit);
      if (!r) co_return r;
    }
  }
  co_return Result<void>{};
}

Task<Result<void>> OutputStage::append_chunk(ByteStream to, std::span<const char> data, Duration limit) {
  http::ChunkSizeLine line(data.size());
  const std::size_t framed = line.view().size() + data.size() + http::kChunkDataEnd.size();
  if (buf_.capacity() - buf_.size() >= framed) {  // the usual case: no write, no nested awaits
    buf_.append(line.view());
    buf_.append(std::string_view(data.data(), data.size()));
    buf_.append(http::kChunkDataEnd);
    co_return Result<void>{};
  }
  Result<void> w = co_await append(to, line.view(), limit);
  if (w) w = co_await append(to, data, limit);
  if (w) w = co_await append(to, http::kChunkDataEnd, limit);
  co_return w;
}

// The sends are awaited here, each with the time left as its own deadline, rather than through
// write_all() under timeout(): that would cost two coroutine frames and a cancel scope on every
// flush.
Task<Result<void>> OutputStage::flush(ByteStream to, Duration limit) {
  if (buf_.empty()) co_return Result<void>{};
  if (to.tls()) {  // TLS writes a whole buffer per call, in records
    auto [sent, back] = co_await to.write_all(std::move(buf_), limit);
    buf_ = std::move(back);
    buf_.clear();
    co_return sent;
  }
  const auto deadline = Clock::now() + limit;
  Result<void> result;
  for (std::size_t done = 0; done < buf_.size();) {
    const auto left = deadline - Clock::now();
    if (left <= Duration::zero()) {
      result = errno_error(ETIMEDOUT);
      break;
    }
    auto [sent, back] = co_await to.socket()->write(std::move(buf_), done).with_timeout(left);
    buf_ = std::move(back);
    if (!sent) {
      result = sent.error();
      break;
    }
    if (*sent == 0) {
      result = errno_error(EPIPE);
      break;
    }
    done += *sent;
  }
  buf_.clear();
  co_return result;
}

Task<Result<void>> OutputStage::send(ByteStream to, std::string_view bytes, Duration limit) {
  buf_ = Buffer::copy_of(bytes);
  co_return co_await flush(to, limit);
}

}  // namespace lbd::proxy
