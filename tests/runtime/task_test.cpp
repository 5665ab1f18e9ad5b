// Task<T>, spawn/JoinHandle, yield_now and the run queue (runtime/task.hpp, runtime/spawn.hpp,
// runtime/runtime.hpp).

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <string>
#include <vector>

#include "runtime/event.hpp"
#include "runtime/runtime.hpp"
#include "runtime/spawn.hpp"
#include "runtime/timer.hpp"
#include "tests/runtime/runtime_test_support.hpp"

namespace lbd {
namespace {

using namespace std::chrono_literals;
using test::RuntimeTest;

class TaskTest : public RuntimeTest {};
LBD_INSTANTIATE_FOR_DRIVERS(TaskTest);

// --- nested await chains ----------------------------------------------------------------------

Task<int> depth_sum(int n) {
  if (n == 0) co_return 0;
  int below = co_await depth_sum(n - 1);
  co_return n + below;
}

Task<std::string> greet(std::string who) { co_return "hello " + who; }

Task<std::unique_ptr<int>> boxed(int v) { co_return std::make_unique<int>(v); }

Task<std::string> chain() {
  std::string g = co_await greet("lbd");
  auto box = co_await boxed(41);
  int sum = co_await depth_sum(10);
  co_return g + " " + std::to_string(*box + 1) + " " + std::to_string(sum);
}

TEST_P(TaskTest, NestedAwaitChainsReturnValues) {
  EXPECT_EQ(run(chain()), "hello lbd 42 55");
  EXPECT_EQ(run(depth_sum(1000)), 1000 * 1001 / 2);
}

Task<void> set_flag(bool* flag) {
  co_await yield_now();
  *flag = true;
}

TEST_P(TaskTest, TaskIsLazyUntilAwaited) {
  bool flag = false;
  {
    Task<void> t = set_flag(&flag);
    EXPECT_FALSE(flag);
  }  // destroyed without running
  EXPECT_FALSE(flag);
  run(set_flag(&flag));
  EXPECT_TRUE(flag);
}

// --- deep await loops ---------------------------------------------------------------------------

Task<int> ready_value(int i) { co_return i; }

Task<long long> sequential_loop(int n) {
  long long sum = 0;
  for (int i = 0; i < n; ++i) sum += co_await ready_value(i);
  co_return sum;
}

// Each child completes synchronously. If an await nests a resume() per iteration on the stack,
// 100,000 iterations overflow an 8 MiB stack. Runs in a forked child so an overflow fails this
// test only, with a message, instead of killing the test binary.
//
// Regression test: with symmetric transfer alone (await_suspend returning the child's handle)
// this relied on GCC making that a tail call, which GCC 12 does only at -O2 without
// sanitizers: 128 B per iteration at -O0 (Debug overflowed), 80 B at -O1, ~690 B with ASan even
// at -O2. Fixed in e5e4d85 (a task that finishes inline returns to its awaiter's await_suspend).
class TaskStackTest : public test::DriverTest {};
LBD_INSTANTIATE_FOR_DRIVERS(TaskStackTest);

TEST_P(TaskStackTest, DeepSequentialAwaitLoopDoesNotOverflowTheStack) {
  constexpr int kN = 100'000;
  RuntimeOptions opts = driver_options();
  auto child = test::run_in_child([opts](int report) {
    test::ScopedEnv no_env("LBD_IO", nullptr);
    Runtime rt(opts);
    test::write_report(report, rt.driver_info().name + "\n");
    long long got = rt.block_on(sequential_loop(kN));
    return got == static_cast<long long>(kN) * (kN - 1) / 2 ? 0 : 3;
  });
  if (mode() == IoMode::kIoUring && child.report.rfind("io_uring", 0) != 0 && child.exited_ok())
    GTEST_SKIP() << "io_uring is not usable here (child ran on " << child.report << ")";
  EXPECT_TRUE(child.exited_ok()) << child.describe()
                                 << (child.report.empty() ? "" : "; driver " + child.report)
                                 << " -- a SIGSEGV here is a stack overflow: awaits nest on the stack";
}

// --- spawn / join ------------------------------------------------------------------------------

Task<int> compute(int x) {
  co_await yield_now();
  co_await sleep_for(1ms);
  co_return x * 2;
}

Task<int> immediate(int x) { co_return x + 1; }

Task<void> spawn_and_join() {
  auto h = spawn(compute(21));
  EXPECT_FALSE(h.is_finished());
  int v = co_await h;
  EXPECT_EQ(v, 42);

  // Joining a task that has already finished does not suspend.
  auto h2 = spawn(immediate(9));
  for (int i = 0; i < 10 && !h2.is_finished(); ++i) co_await yield_now();
  CO_ASSERT_TRUE(h2.is_finished());
  int v2 = co_await h2;
  EXPECT_EQ(v2, 10);

  // Move-only results come through.
  auto h3 = spawn(boxed(7));
  auto box = co_await h3;
  CO_ASSERT_TRUE(box != nullptr);
  EXPECT_EQ(*box, 7);
}

TEST_P(TaskTest, SpawnJoinReturnsTheValue) { run(spawn_and_join()); }

Task<int> spawn_tree(int depth) {
  if (depth == 0) co_return 1;
  auto left = spawn(spawn_tree(depth - 1));
  auto right = spawn(spawn_tree(depth - 1));
  int l = co_await left;
  int r = co_await right;
  co_return l + r;
}

TEST_P(TaskTest, SpawnedTasksSpawnAndJoinTheirOwn) { EXPECT_EQ(run(spawn_tree(8)), 256); }

TEST_P(TaskTest, BlockOnReturnsValueOfTaskThatNeverSuspends) { EXPECT_EQ(run(immediate(1)), 2); }

Task<void> long_sleeper(Duration d) { (void)co_await sleep_for(d); }
Task<int> after_yield(int x) {
  co_await yield_now();
  co_return x + 1;
}
Task<int> after_sleep(int x) {
  co_await sleep_for(1ms);
  co_return x + 1;
}

/// Runs rt.block_on(task) without the test-suite workaround. If it has not returned after
/// `rescue_after`, another thread posts a job to wake the loop so the test ends (and fails)
/// instead of hanging. Returns how long block_on took and whether it needed rescuing.
struct BlockOnTiming {
  Duration took;
  bool rescued;
};
BlockOnTiming time_raw_block_on(Runtime& rt, Task<int> task, Duration rescue_after) {
  std::mutex mu;
  std::condition_variable cv;
  bool returned = false;
  std::atomic<bool> rescued{false};
  std::thread rescuer([&] {
    std::unique_lock lock(mu);
    if (!cv.wait_for(lock, rescue_after, [&] { return returned; })) {
      rescued = true;
      rt.post(make_remote_job([] {}));
    }
  });
  auto start = Clock::now();
  int v = rt.block_on(std::move(task));
  auto took = Clock::now() - start;
  EXPECT_EQ(v, 2);
  {
    std::lock_guard lock(mu);
    returned = true;
  }
  cv.notify_all();
  rescuer.join();
  return {took, rescued.load()};
}

// Regression test: block_on used to check is_finished() only between loop turns. Its task ends
// inside run_once's ready loop, and run_once then still blocked in driver_->poll() with the
// nearest timer as deadline, or none (-1) when there was no timer, so block_on returned only
// when an unrelated event woke the loop (never, in the common case). Fixed in e5e4d85.
TEST_P(TaskTest, BlockOnReturnsWhenItsTaskEnds) {
  constexpr auto kRescue = 1s;
  struct Case {
    const char* name;
    Task<int> (*make)(int);
  };
  for (Case c : {Case{"task that never suspends", &immediate}, Case{"task that yields once", &after_yield},
                 Case{"task that sleeps 1ms", &after_sleep}}) {
    auto t = time_raw_block_on(rt(), c.make(1), kRescue);
    EXPECT_FALSE(t.rescued) << "block_on(" << c.name << ") did not return until another thread woke the loop ("
                            << std::chrono::duration_cast<std::chrono::milliseconds>(t.took).count() << " ms)";
  }
  // With an unrelated detached task sleeping, block_on must not wait for that timer either.
  (void)spawn(long_sleeper(10s));
  auto t = time_raw_block_on(rt(), immediate(1), kRescue);
  EXPECT_FALSE(t.rescued) << "block_on waited for an unrelated timer ("
                          << std::chrono::duration_cast<std::chrono::milliseconds>(t.took).count() << " ms)";
}

struct DetachState {
  Event done;
  int steps = 0;
};

Task<void> detached_worker(DetachState* st) {
  for (int i = 0; i < 5; ++i) {
    co_await yield_now();
    ++st->steps;
  }
  co_await sleep_for(2ms);
  ++st->steps;
  st->done.set();
}

Task<void> drop_handle() {
  DetachState st;
  std::size_t before = Runtime::current().live_tasks();
  (void)spawn(detached_worker(&st));  // handle dropped at once
  EXPECT_EQ(Runtime::current().live_tasks(), before + 1);
  auto waited = co_await timeout(st.done.wait(), 5s);
  CO_ASSERT_OK(waited);
  EXPECT_EQ(st.steps, 6);
  // The detached task's frame is gone once it finished.
  for (int i = 0; i < 3; ++i) co_await yield_now();
  EXPECT_EQ(Runtime::current().live_tasks(), before);
}

TEST_P(TaskTest, DroppingJoinHandleDetachesTheTask) { run(drop_handle()); }

// --- yield_now and the run queue ----------------------------------------------------------------

Task<void> yielder(std::string* log, char name, int rounds) {
  for (int i = 0; i < rounds; ++i) {
    log->push_back(name);
    co_await yield_now();
  }
}

Task<void> two_yielders(std::string* log) {
  auto a = spawn(yielder(log, 'A', 20));
  auto b = spawn(yielder(log, 'B', 20));
  co_await a;
  co_await b;
}

TEST_P(TaskTest, YieldingTasksInterleaveStrictly) {
  std::string log;
  run(two_yielders(&log));
  std::string want;
  for (int i = 0; i < 20; ++i) want += "AB";
  EXPECT_EQ(log, want);
}

Task<void> record(std::vector<std::string>* log, std::string name) {
  log->push_back(std::move(name));
  co_return;
}

Task<void> yield_behind_spawned(std::vector<std::string>* log) {
  auto x = spawn(record(log, "x"));
  auto y = spawn(record(log, "y"));
  auto z = spawn(record(log, "z"));
  co_await yield_now();
  log->push_back("main");
  co_await x;
  co_await y;
  co_await z;
}

TEST_P(TaskTest, YieldNowGoesBehindTasksSpawnedEarlier) {
  std::vector<std::string> log;
  run(yield_behind_spawned(&log));
  EXPECT_EQ(log, (std::vector<std::string>{"x", "y", "z", "main"}));
}

// A task that keeps yielding must not keep timers (or I/O) from running.
Task<void> spin_until(bool* stop, int* spins) {
  while (!*stop) {
    ++*spins;
    co_await yield_now();
  }
}

Task<void> timer_fires_during_spin() {
  bool stop = false;
  int spins = 0;
  auto h = spawn(spin_until(&stop, &spins));
  auto slept = co_await sleep_for(5ms);
  EXPECT_TRUE(slept);
  stop = true;
  co_await h;
  EXPECT_GT(spins, 0);
}

TEST_P(TaskTest, YieldLoopDoesNotStarveTimers) { run(timer_fires_during_spin()); }

Task<void> current_runtime_is_ours(Runtime* expected) {
  EXPECT_EQ(&Runtime::current(), expected);
  co_return;
}

TEST_P(TaskTest, RuntimeCurrentIsTheBlockOnRuntime) {
  EXPECT_EQ(Runtime::current_or_null(), &rt());
  run(current_runtime_is_ours(&rt()));
}

// One runtime per thread: a second one on the same thread is a bug and stops the process.
TEST_P(TaskTest, SecondRuntimeOnOneThreadAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH({ Runtime second; }, "one runtime per thread");
}

}  // namespace
}  // namespace lbd
