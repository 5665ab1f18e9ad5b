#include "proxy/core/byte_stream.hpp"

#include <sys/socket.h>

#include "runtime/timer.hpp"

namespace lbd::proxy {

ByteStream::ReadAwaiter ByteStream::read(Duration limit) const {
  if (!tls_) return ReadAwaiter(sock_->read_pooled(limit));
  return ReadAwaiter(timeout(tls_->read_pooled(), limit));
}

ByteStream::InputAwaiter ByteStream::await_input(Duration limit) const {
  if (!tls_ || tls_->has_buffered_input()) return InputAwaiter();
  return InputAwaiter(tls_, sock_->read_pooled(limit));
}

Task<BufWriteResult> ByteStream::write_all(Buffer buf, Duration limit) const {
  if (tls_) co_return co_await timeout(tls_->write_all(std::move(buf)), limit);
  co_return co_await timeout(sock_->write_all(std::move(buf)), limit);
}

Task<Result<void>> ByteStream::shutdown(Duration limit) const {
  if (tls_) co_return co_await timeout(tls_->shutdown(), limit);
  co_return sock_->shutdown_write();
}

bool ByteStream::has_unread_input() const {
  if (tls_ && tls_->has_buffered_input()) return true;
  char byte;
  return ::recv(sock_->fd(), &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

Task<void> ByteStream::linger(Duration limit) const {
  const auto until = Clock::now() + limit;
  if (!co_await shutdown(limit)) co_return;
  std::size_t dropped = 0;
  while (dropped <= kLingerBytes) {
    const auto left = until - Clock::now();
    if (left <= Duration::zero()) co_return;
    Result<Buffer> r = co_await read(left);
    if (!r || r->empty()) co_return;
    dropped += r->size();
  }
}

}  // namespace lbd::proxy
