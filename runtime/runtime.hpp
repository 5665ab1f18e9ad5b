#pragma once
// Runtime: one per thread. Its loop runs ready tasks, submits every queued operation in one
// call, waits for completions with the nearest timer as the deadline, and wakes the tasks
// whose operations completed.
//
//   Runtime rt;                          // picks io_uring, else epoll (LBD_IO overrides)
//   int n = rt.block_on(main_task());    // runs until main_task ends (runtime/spawn.hpp)
//
// Inside a task: spawn() and yield_now() (runtime/spawn.hpp), sleep_for() and timeout()
// (runtime/timer.hpp), cancellation (runtime/cancel.hpp), and the net types (runtime/net.hpp).

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "runtime/clock.hpp"
#include "runtime/driver.hpp"
#include "runtime/io_mode.hpp"
#include "runtime/op.hpp"
#include "runtime/task.hpp"
#include "runtime/timer_queue.hpp"

namespace lbd {

struct TaskCtx;

/// How a Runtime is built; the defaults suit a proxy worker.
struct RuntimeOptions {
  IoMode io = IoMode::kAuto;        // LBD_IO ("io_uring" | "epoll" | "auto"), when set, overrides this
  unsigned ring_entries = 1024;    // io_uring submission queue size
  bool provided_buffers = true;    // io_uring: recv from a provided buffer ring when possible
  std::size_t recv_buffer_size = 16 * 1024;
  unsigned provided_buffer_count = 256;  // power of two
};

/// Work posted to a runtime from another thread.
class RemoteJob {
 public:
  virtual ~RemoteJob() = default;
  virtual void run() = 0;
};

/// Wraps a callable as a RemoteJob for Runtime::post().
template <class F>
std::unique_ptr<RemoteJob> make_remote_job(F f) {
  struct Job final : RemoteJob {
    explicit Job(F fn) : fn_(std::move(fn)) {}
    void run() override { fn_(); }
    F fn_;
  };
  return std::make_unique<Job>(std::move(f));
}

/// Where the runtime's own diagnostics go (driver choice, accept pauses). lbd points it at
/// spdlog; the default writes to stderr. Level: 0 debug, 1 info, 2 warn, 3 error.
using LogSink = void (*)(int level, const std::string& message);
/// Thread-safe; a null `sink` restores the stderr default.
void set_runtime_log_sink(LogSink sink);
/// Sends `message` to the sink.
void runtime_log(int level, const std::string& message);

/// The loop of one thread (see above). Only post() may be called from another thread.
class Runtime {
 public:
  explicit Runtime(RuntimeOptions opts = {});
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  /// The runtime of the calling thread. Precondition: one exists.
  static Runtime& current() { return *current_; }
  /// Null on a thread without one.
  static Runtime* current_or_null() { return current_; }

  /// Runs the loop until `task` ends and returns its result. Defined in runtime/spawn.hpp,
  /// which a caller of block_on includes.
  template <class T>
  T block_on(Task<T> task);

  /// Thread-safe: runs `job` on this runtime's thread soon, waking it if it sleeps.
  void post(std::unique_ptr<RemoteJob> job);

  /// Which driver runs, and why it was chosen.
  const DriverInfo& driver_info() const { return driver_->info(); }
  Driver& driver() { return *driver_; }
  const RuntimeOptions& options() const { return opts_; }
  /// The loop's clock, read once per turn.
  Clock::time_point now() const { return now_; }
  /// Spawned tasks that have not ended.
  std::size_t live_tasks() const { return live_tasks_; }
  /// True while the runtime is being destroyed: its tasks are gone, its driver reaps the last
  /// completions. Nothing may be spawned then.
  bool tearing_down() const { return tearing_down_; }
  /// Op slots handed out and not yet freed.
  std::size_t ops_in_flight() const { return ops_in_flight_; }
  /// How many times the loop has asked the kernel for completions (one per turn): what was
  /// submitted while this stays the same has not been looked at by the kernel's side yet.
  uint64_t polls() const { return polls_; }

  // --- for awaitables and drivers -----------------------------------------------------------
  /// Queues `h`, a coroutine of the task whose context is `ctx`, to be resumed by the loop.
  void schedule(std::coroutine_handle<> h, TaskCtx* ctx) { ready_.push_back({h, ctx}); }
  Op* alloc_op();
  void free_op(Op* op);
  /// The out-of-line address state of an op (see Op::a()); returned by free_op.
  std::unique_ptr<Op::AddressPart> take_address_part();
  /// A driver hands back a completed operation.
  void complete(Op* op, int32_t res, uint32_t cqe_flags);
  /// The deadlines the loop waits for.
  TimerQueue& timers() { return timers_; }
  // spawn()'s bookkeeping: live roots are destroyed with the runtime.
  void task_started() { ++live_tasks_; }
  void task_ended() { --live_tasks_; }
  void register_root(std::coroutine_handle<> h);
  void unregister_root(std::coroutine_handle<> h);

 private:
  /// One loop turn. `stop`: when it becomes true while tasks run, return before waiting.
  void run_once(const bool* stop = nullptr);
  void drain_inbox();

  struct Ready {
    std::coroutine_handle<> h;
    TaskCtx* ctx;
  };

  static inline thread_local Runtime* current_ = nullptr;

  RuntimeOptions opts_;
  std::unique_ptr<Driver> driver_;
  std::deque<Ready> ready_;
  TimerQueue timers_;
  Clock::time_point now_;

  std::vector<Op*> free_ops_;
  std::vector<std::unique_ptr<Op[]>> op_blocks_;
  std::vector<std::unique_ptr<Op::AddressPart>> free_address_parts_;
  std::size_t ops_in_flight_ = 0;
  uint64_t polls_ = 0;
  std::size_t live_tasks_ = 0;
  bool tearing_down_ = false;
  std::vector<std::coroutine_handle<>> roots_;  // live spawned tasks, destroyed at teardown

  std::mutex inbox_mu_;
  std::vector<std::unique_ptr<RemoteJob>> inbox_;
  std::atomic<bool> notified_{false};
};

}  // namespace lbd
