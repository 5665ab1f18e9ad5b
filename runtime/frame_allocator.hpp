#pragma once
// Coroutine frames come and go with every request. A per-thread cache of freed frames, by size
// class, turns most of those allocations into a pointer pop. Frames freed on another thread go
// to that thread's cache, which is fine: each cache only ever holds memory from operator new.
// Task's and spawn's promises allocate through it; LBD_NO_FRAME_CACHE (the sanitizer build)
// turns it into plain new/delete so that ASan sees every frame's lifetime.

#include <cstddef>
#include <new>

namespace lbd {

/// Per-thread free lists of coroutine frames by size class.
class FrameCache {
 public:
  // Size classes: 16 bytes apart up to 512 (most frames, and an idle session is a handful of
  // them: coarser classes would waste ~10 % of each), 64 bytes apart up to 2 KiB.
  static constexpr std::size_t kSmallGranule = 16;
  static constexpr std::size_t kSmallLimit = 512;
  static constexpr std::size_t kLargeGranule = 64;
  static constexpr std::size_t kLargeLimit = 2048;  // larger frames are not cached
  static constexpr std::size_t kClasses =
      kSmallLimit / kSmallGranule + (kLargeLimit - kSmallLimit) / kLargeGranule + 1;
  static constexpr std::size_t kMaxCachedPerClass = 1024;

  /// The class of a block of `total` bytes (header included); 0 when it is not cached.
  static constexpr std::size_t class_of(std::size_t total) {
    if (total <= kSmallLimit) return (total + kSmallGranule - 1) / kSmallGranule;
    if (total <= kLargeLimit)
      return kSmallLimit / kSmallGranule + (total - kSmallLimit + kLargeGranule - 1) / kLargeGranule;
    return 0;
  }
  static constexpr std::size_t class_bytes(std::size_t cls) {
    constexpr std::size_t kSmallClasses = kSmallLimit / kSmallGranule;
    return cls <= kSmallClasses ? cls * kSmallGranule : kSmallLimit + (cls - kSmallClasses) * kLargeGranule;
  }

  /// `n` bytes for a frame; freed with deallocate(), on any thread.
  static void* allocate(std::size_t n) {
#ifdef LBD_NO_FRAME_CACHE
    return ::operator new(n);
#endif
    std::size_t cls = class_of(n + sizeof(Header));
    if (cls != 0) {
      auto& c = cache();
      if (Node* node = c.free[cls]) {
        c.free[cls] = node->next;
        --c.count[cls];
        auto* h = reinterpret_cast<Header*>(node);
        h->cls = cls;
        return h + 1;
      }
      auto* h = static_cast<Header*>(::operator new(class_bytes(cls)));
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

}  // namespace lbd
