#include "runtime/runtime.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "runtime/cancel.hpp"

namespace lbd {

namespace {
void stderr_sink(int level, const std::string& message) {
  static const char* const kNames[] = {"debug", "info", "warn", "error"};
  std::fprintf(stderr, "lbd runtime [%s] %s\n", kNames[level < 0 ? 0 : level > 3 ? 3 : level],
               message.c_str());
}
std::atomic<LogSink> g_log_sink{&stderr_sink};
constexpr std::size_t kOpBlock = 256;
// AddressParts kept for reuse; more than this many connects or accepts at once pay a malloc.
constexpr std::size_t kMaxFreeAddressParts = 256;
}  // namespace

void set_runtime_log_sink(LogSink sink) { g_log_sink.store(sink ? sink : &stderr_sink); }
void runtime_log(int level, const std::string& message) { g_log_sink.load()(level, message); }

void Op::reset() {
  code = OpCode::kNop;
  fd = fd_out = -1;
  flags = 0;
  len = 0;
  offset = 0;
  buf = Buffer();
  res = 0;
  cqe_flags = 0;
  waiter = {};
  ctx = nullptr;
  detached = completed = cancel_requested = false;
  cancel_reason = 0;
  on_cqe = nullptr;
  owner = nullptr;
  next = prev = nullptr;
  waiting_for = kNotWaiting;
  tracked_fd = -1;
  wait_out = false;
}

Runtime::Runtime(RuntimeOptions opts) : opts_(opts), now_(Clock::now()) {
  if (current_) {
    runtime_log(3, "a second Runtime was created on one thread; one runtime per thread");
    std::abort();
  }
  current_ = this;
  driver_ = make_driver(*this, opts_);
}

Runtime::~Runtime() {
  // Teardown order: forget what was about to run, destroy the tasks still suspended (their
  // in-flight ops become detached and are cancelled), let the driver reap those completions
  // as it shuts down, then free the op slots.
  tearing_down_ = true;
  ready_.clear();
  while (!roots_.empty()) {
    auto h = roots_.back();
    h.destroy();  // unregisters itself
  }
  driver_.reset();
  for (Op* op : free_ops_) (void)op;
  current_ = nullptr;
}

void Runtime::register_root(std::coroutine_handle<> h) { roots_.push_back(h); }

void Runtime::unregister_root(std::coroutine_handle<> h) {
  for (std::size_t i = roots_.size(); i-- > 0;) {
    if (roots_[i] == h) {
      roots_[i] = roots_.back();
      roots_.pop_back();
      return;
    }
  }
}

Op* Runtime::alloc_op() {
  if (free_ops_.empty()) {
    auto block = std::make_unique<Op[]>(kOpBlock);
    for (std::size_t i = 0; i < kOpBlock; ++i) free_ops_.push_back(&block[kOpBlock - 1 - i]);
    op_blocks_.push_back(std::move(block));
  }
  Op* op = free_ops_.back();
  free_ops_.pop_back();
  ++ops_in_flight_;
  return op;
}

Op::AddressPart& Op::a() {
  if (!address_part) address_part = Runtime::current().take_address_part();
  return *address_part;
}

std::unique_ptr<Op::AddressPart> Runtime::take_address_part() {
  if (free_address_parts_.empty()) return std::make_unique<Op::AddressPart>();
  auto part = std::move(free_address_parts_.back());
  free_address_parts_.pop_back();
  *part = Op::AddressPart{};
  return part;
}

void Runtime::free_op(Op* op) {
  if (op->address_part && free_address_parts_.size() < kMaxFreeAddressParts)
    free_address_parts_.push_back(std::move(op->address_part));
  op->address_part.reset();
  op->reset();
  free_ops_.push_back(op);
  --ops_in_flight_;
}

void Runtime::complete(Op* op, int32_t res, uint32_t cqe_flags) {
  if (op->on_cqe) {
    op->on_cqe(op, res, cqe_flags);
    return;
  }
  op->res = op->reason_if_cancelled(res);
  op->cqe_flags = cqe_flags;
  op->completed = true;
  if (op->detached) {
    free_op(op);
    return;
  }
  schedule(op->waiter, op->ctx);
}

void Runtime::post(std::unique_ptr<RemoteJob> job) {
  {
    std::lock_guard lock(inbox_mu_);
    inbox_.push_back(std::move(job));
  }
  if (!notified_.exchange(true, std::memory_order_acq_rel)) driver_->wake();
}

void Runtime::drain_inbox() {
  if (!notified_.load(std::memory_order_acquire)) return;
  notified_.store(false, std::memory_order_release);
  std::vector<std::unique_ptr<RemoteJob>> jobs;
  {
    std::lock_guard lock(inbox_mu_);
    jobs.swap(inbox_);
  }
  for (auto& job : jobs) job->run();
}

void Runtime::run_once(const bool* stop) {
  drain_inbox();
  // Run what is ready now; what these tasks make ready (yield_now, spawn) runs next turn,
  // after I/O has been polled, so no task can starve the others or the network.
  for (std::size_t n = ready_.size(); n > 0 && !ready_.empty(); --n) {
    Ready r = ready_.front();
    ready_.pop_front();
    detail::current_ctx = r.ctx;
    r.h.resume();
  }
  detail::current_ctx = nullptr;
  if (stop && *stop) return;
  now_ = Clock::now();
  timers_.fire_expired(now_);

  int64_t wait_ns = -1;
  if (!ready_.empty() || notified_.load(std::memory_order_acquire)) {
    wait_ns = 0;
  } else if (!timers_.empty()) {
    auto until = timers_.next_deadline() - now_;
    wait_ns = until.count() <= 0 ? 0 : std::chrono::duration_cast<std::chrono::nanoseconds>(until).count();
  }
  ++polls_;
  driver_->poll(wait_ns);
  now_ = Clock::now();
  timers_.fire_expired(now_);
}

}  // namespace lbd
