#pragma once
// One timer structure per runtime: an indexed binary min-heap of intrusive nodes. Nodes live
// in the awaiting coroutine's frame and their owners unlink them when destroyed, so a cancelled
// wait never leaves a dangling entry. No syscall per timer: the loop waits once per turn with the
// nearest deadline.

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "runtime/clock.hpp"

namespace lbd {

/// One armed deadline. The owner (an awaiter, a timeout scope) embeds it; `fire` is called from
/// the loop, after the node left the queue, once the deadline passed.
struct TimerNode {
  static constexpr std::size_t kNotQueued = ~std::size_t{0};
  Clock::time_point deadline{};
  uint64_t seq = 0;  // ties fire in the order they were armed
  std::size_t index = kNotQueued;
  void (*fire)(TimerNode*) = nullptr;
  void* owner = nullptr;  // what `fire` works on
  bool queued() const { return index != kNotQueued; }
};

/// The runtime's deadlines, earliest first (Runtime::timers()). Not thread-safe: only the
/// runtime's own thread touches it.
class TimerQueue {
 public:
  /// Arms `n`. Precondition: not queued already.
  void add(TimerNode* n) {
    n->seq = next_seq_++;
    n->index = heap_.size();
    heap_.push_back(n);
    sift_up(n->index);
  }
  /// Disarms `n`; a no-op when it is not queued (fired or never armed).
  void remove(TimerNode* n) {
    if (!n->queued()) return;
    std::size_t i = n->index;
    std::size_t last = heap_.size() - 1;
    if (i != last) {
      swap_nodes(i, last);
      heap_.pop_back();
      sift_down(i);
      sift_up(i);
    } else {
      heap_.pop_back();
    }
    n->index = TimerNode::kNotQueued;
  }
  bool empty() const { return heap_.empty(); }
  std::size_t size() const { return heap_.size(); }
  /// Precondition: !empty().
  Clock::time_point next_deadline() const { return heap_.front()->deadline; }

  /// Fires (and unlinks) every node whose deadline is <= now, earliest first.
  std::size_t fire_expired(Clock::time_point now) {
    std::size_t fired = 0;
    while (!heap_.empty() && heap_.front()->deadline <= now) {
      TimerNode* n = heap_.front();
      remove(n);
      n->fire(n);
      ++fired;
    }
    return fired;
  }

 private:
  static bool less(const TimerNode* a, const TimerNode* b) {
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
  }
  void swap_nodes(std::size_t a, std::size_t b) {
    std::swap(heap_[a], heap_[b]);
    heap_[a]->index = a;
    heap_[b]->index = b;
  }
  void sift_up(std::size_t i) {
    while (i > 0) {
      std::size_t p = (i - 1) / 2;
      if (!less(heap_[i], heap_[p])) break;
      swap_nodes(i, p);
      i = p;
    }
  }
  void sift_down(std::size_t i) {
    for (;;) {
      std::size_t l = 2 * i + 1, r = l + 1, m = i;
      if (l < heap_.size() && less(heap_[l], heap_[m])) m = l;
      if (r < heap_.size() && less(heap_[r], heap_[m])) m = r;
      if (m == i) break;
      swap_nodes(i, m);
      i = m;
    }
  }

  std::vector<TimerNode*> heap_;
  uint64_t next_seq_ = 0;
};

}  // namespace lbd
