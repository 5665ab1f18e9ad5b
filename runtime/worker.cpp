#include "runtime/worker.hpp"

#include <pthread.h>
#include <sched.h>

#include <condition_variable>
#include <deque>
#include <latch>
#include <mutex>

namespace lbd {

unsigned WorkerPool::default_count() {
  unsigned n = std::thread::hardware_concurrency();
  return n ? n : 1;
}

WorkerPool::WorkerPool(WorkerOptions opts, Entry entry) {
  unsigned n = opts.count ? opts.count : default_count();
  runtimes_.assign(n, nullptr);
  std::latch ready(n);
  for (unsigned i = 0; i < n; ++i) {
    threads_.emplace_back([this, i, opts, entry, &ready] {
      if (opts.pin) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(i % default_count(), &set);
        if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
          runtime_log(2, "worker " + std::to_string(i) + ": could not pin to a CPU");
      }
      Runtime rt(opts.runtime);
      runtimes_[i] = &rt;
      ready.count_down();
      rt.block_on(entry(i));
    });
  }
  ready.wait();
}

WorkerPool::~WorkerPool() { join(); }

void WorkerPool::join() {
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

// ---------------------------------------------------------------------------------------------
// The blocking pool: a few threads started on first use, living until the process ends.

namespace detail {
namespace {
class BlockingPool {
 public:
  static constexpr unsigned kThreads = 4;

  void submit(std::function<void()> job) {
    {
      std::lock_guard lock(mu_);
      jobs_.push_back(std::move(job));
      if (idle_ == 0 && threads_.size() < kThreads) {
        threads_.emplace_back([this] { run(); });
        threads_.back().detach();
      }
    }
    cv_.notify_one();
  }

 private:
  void run() {
    std::unique_lock lock(mu_);
    for (;;) {
      ++idle_;
      cv_.wait(lock, [this] { return !jobs_.empty(); });
      --idle_;
      auto job = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      job();
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  unsigned idle_ = 0;
};

BlockingPool& blocking_pool() {
  static auto* pool = new BlockingPool();  // never destroyed: detached threads use it to the end
  return *pool;
}
}  // namespace

void submit_blocking(std::function<void()> job) { blocking_pool().submit(std::move(job)); }
}  // namespace detail

}  // namespace lbd
