#pragma once
// PlainPool: fixed-size heap blocks recycled through a free list. The epoll driver reads into
// these only once a socket is readable, so an idle connection holds none; the io_uring driver
// uses one when its provided-buffer ring runs dry.

#include <cstddef>
#include <vector>

#include "runtime/buffer.hpp"

namespace lbd::detail {

class PlainPool final : public BufferPool {
 public:
  PlainPool(std::size_t block_size, std::size_t max_cached)
      : block_size_(block_size), max_cached_(max_cached) {}
  ~PlainPool() override {
    for (char* p : free_) delete[] p;
  }
  PlainPool(const PlainPool&) = delete;

  Buffer take() {
    char* p;
    if (free_.empty()) {
      p = new char[block_size_];
    } else {
      p = free_.back();
      free_.pop_back();
    }
    return Buffer(p, block_size_, this, 0);
  }
  void give_back(char* data, uint32_t) override {
    if (free_.size() < max_cached_) {
      free_.push_back(data);
    } else {
      delete[] data;
    }
  }
  std::size_t block_size() const { return block_size_; }

 private:
  std::size_t block_size_;
  std::size_t max_cached_;
  std::vector<char*> free_;
};

}  // namespace lbd::detail
