#pragma once
// Buffer: owned bytes passed by value into an I/O operation and handed back with its result
// (the "rent" model): while the kernel may write into it, the runtime holds it.
//
// A Buffer either owns heap memory or borrows a slot of a BufferPool (a provided-buffer ring
// or the plain pool used by the epoll driver); a pooled slot goes back to its pool when the
// Buffer dies. Pools belong to a Runtime and must outlive every Buffer taken from them.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <utility>

namespace lbd {

class BufferPool;

class Buffer {
 public:
  Buffer() = default;
  /// A heap buffer of `capacity` bytes, length 0.
  explicit Buffer(std::size_t capacity)
      : data_(capacity ? new char[capacity] : nullptr), cap_(capacity) {}
  /// A heap buffer holding a copy of `bytes`.
  static Buffer copy_of(std::string_view bytes) {
    Buffer b(bytes.size());
    if (!bytes.empty()) std::memcpy(b.data_, bytes.data(), bytes.size());
    b.len_ = bytes.size();
    return b;
  }
  /// Internal: a pooled slot. Use BufferPool::take().
  Buffer(char* data, std::size_t cap, BufferPool* pool, uint32_t slot)
      : data_(data), cap_(cap), pool_(pool), slot_(slot) {}

  Buffer(Buffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)),
        cap_(std::exchange(o.cap_, 0)),
        len_(std::exchange(o.len_, 0)),
        pool_(std::exchange(o.pool_, nullptr)),
        slot_(o.slot_) {}
  Buffer& operator=(Buffer&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      cap_ = std::exchange(o.cap_, 0);
      len_ = std::exchange(o.len_, 0);
      pool_ = std::exchange(o.pool_, nullptr);
      slot_ = o.slot_;
    }
    return *this;
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { release(); }

  char* data() { return data_; }
  const char* data() const { return data_; }
  /// Bytes filled.
  std::size_t size() const { return len_; }
  std::size_t capacity() const { return cap_; }
  bool empty() const { return len_ == 0; }
  void set_size(std::size_t n) { len_ = n <= cap_ ? n : cap_; }
  void clear() { len_ = 0; }
  std::string_view view() const { return {data_, len_}; }
  std::span<const char> span() const { return {data_, len_}; }
  /// Room after the filled bytes.
  std::span<char> spare() { return {data_ + len_, cap_ - len_}; }
  /// Appends as much of `bytes` as fits; returns how many bytes were taken.
  std::size_t append(std::string_view bytes) {
    std::size_t n = std::min(bytes.size(), cap_ - len_);
    if (n) std::memcpy(data_ + len_, bytes.data(), n);
    len_ += n;
    return n;
  }
  /// Drops the first `n` filled bytes, moving the rest to the front.
  void consume(std::size_t n) {
    if (n >= len_) {
      len_ = 0;
      return;
    }
    std::memmove(data_, data_ + n, len_ - n);
    len_ -= n;
  }
  bool pooled() const { return pool_ != nullptr; }

 private:
  void release();

  char* data_ = nullptr;
  std::size_t cap_ = 0;
  std::size_t len_ = 0;
  BufferPool* pool_ = nullptr;  // not owned; null for heap buffers
  uint32_t slot_ = 0;
};

/// Where pooled Buffers return to.
class BufferPool {
 public:
  virtual ~BufferPool() = default;
  virtual void give_back(char* data, uint32_t slot) = 0;
};

inline void Buffer::release() {
  if (pool_) {
    pool_->give_back(data_, slot_);
  } else {
    delete[] data_;
  }
  data_ = nullptr;
  pool_ = nullptr;
  cap_ = len_ = 0;
}

}  // namespace lbd
