#pragma once
// Coroutine frames come and go with every request. A per-thread cache of freed frames, by size
// class, turns most of those allocations into a pointer pop. Frames freed on another thread go
// to that thread's cache, which is fine: each cache only ever holds memory from operator new.

#include <cstddef>
#include <new>

namespace lbd::detail {

class FrameCache {
 public:
  static constexpr std::size_t kGranule = 64;
  static constexpr std::size_t kClasses = 32;  // frames up to 2 KiB are cached
  static constexpr std::size_t kMaxCachedPerClass = 1024;

  static void* allocate(std::size_t n) {
#ifdef LBD_NO_FRAME_CACHE
    return ::operator new(n);
#endif
    std::size_t cls = (n + sizeof(Header) + kGranule - 1) / kGranule;
    if (cls < kClasses) {
      auto& c = cache();
      if (Node* node = c.free[cls]) {
        c.free[cls] = node->next;
        --c.count[cls];
        auto* h = reinterpret_cast<Header*>(node);
        h->cls = cls;
        return h + 1;
      }
      auto* h = static_cast<Header*>(::operator new(cls * kGranule));
      h->cls = cls;
      return h + 1;
    }
    auto* h = static_cast<Header*>(::operator new(n + sizeof(Header)));
    h->cls = 0;
    return h + 1;
  }

  static void deallocate(void* p) noexcept {
#ifdef LBD_NO_FRAME_CACHE
    ::operator delete(p);
    return;
#endif
    auto* h = static_cast<Header*>(p) - 1;
    std::size_t cls = h->cls;
    if (cls != 0) {
      auto& c = cache();
      if (c.count[cls] < kMaxCachedPerClass) {
        auto* node = reinterpret_cast<Node*>(h);
        node->next = c.free[cls];
        c.free[cls] = node;
        ++c.count[cls];
        return;
      }
    }
    ::operator delete(h);
  }

 private:
  struct alignas(16) Header {
    std::size_t cls;
  };
  struct Node {
    Node* next;
  };
  struct Cache {
    Node* free[kClasses] = {};
    std::size_t count[kClasses] = {};
    ~Cache() {
      for (auto*& head : free) {
        while (head) {
          Node* n = head;
          head = n->next;
          ::operator delete(n);
        }
      }
    }
  };
  static Cache& cache() {
    thread_local Cache c;
    return c;
  }
};

/// Base for promise types: routes frame allocation through FrameCache.
struct FrameAllocated {
  static void* operator new(std::size_t n) { return FrameCache::allocate(n); }
  static void operator delete(void* p) noexcept { FrameCache::deallocate(p); }
};

}  // namespace lbd::detail
