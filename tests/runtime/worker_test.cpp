// Workers, Mailbox and spawn_blocking (runtime/worker.hpp, runtime/worker.cpp).

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <future>
#include <set>
#include <thread>
#include <vector>

#include "runtime/event.hpp"
#include "runtime/spawn.hpp"
#include "runtime/timer.hpp"
#include "runtime/worker.hpp"
#include "tests/runtime/runtime_test_support.hpp"

namespace lbd {
namespace {

using namespace std::chrono_literals;
using test::RuntimeTest;

class WorkerTest : public RuntimeTest {};
LBD_INSTANTIATE_FOR_DRIVERS(WorkerTest);

using ThreadValue = std::pair<std::thread::id, int>;

Task<ThreadValue> compute_here(int x) {
  co_await yield_now();  // a real task on the target's loop, not just a function call
  co_return ThreadValue{std::this_thread::get_id(), x * 2};
}

// --- Mailbox::call between two workers ---------------------------------------------------------

struct TwoWorkers {
  WorkerPool* pool = nullptr;  // set before `go` is posted
  Event go;                    // touched only on worker 0's thread
  Event stop;                  // touched only on worker 1's thread
  std::thread::id ids[2];
  std::string drivers[2];
  ThreadValue result;
  std::thread::id resumed_on;
  Runtime* resumed_runtime = nullptr;
  Runtime* runtimes[2] = {nullptr, nullptr};
};

Task<void> two_workers_main(unsigned i, TwoWorkers* sh) {
  sh->ids[i] = std::this_thread::get_id();
  sh->drivers[i] = Runtime::current().driver_info().name;
  sh->runtimes[i] = &Runtime::current();
  if (i == 1) {
    (void)co_await sh->stop.wait();
    co_return;
  }
  (void)co_await sh->go.wait();
  Mailbox target = sh->pool->mailbox(1);
  auto make = [] { return compute_here(21); };
  auto call = target.call(make);
  sh->result = co_await call;
  sh->resumed_on = std::this_thread::get_id();
  sh->resumed_runtime = &Runtime::current();
  target.post([sh] { sh->stop.set(); });
}

TEST_P(WorkerTest, MailboxCallRunsOnTheOtherWorkerAndReturnsTheValue) {
  TwoWorkers sh;
  WorkerOptions wo;
  wo.count = 2;
  wo.runtime = driver_options();
  {
    test::ScopedEnv no_env("LBD_IO", nullptr);
    test::ThreadWatchdog wd(10s, "two-worker mailbox round trip");
    WorkerPool pool(wo, [&sh](unsigned i) { return two_workers_main(i, &sh); });
    ASSERT_EQ(pool.size(), 2u);
    sh.pool = &pool;
    pool.mailbox(0).post([&sh] { sh.go.set(); });
    pool.join();
  }
  EXPECT_EQ(sh.drivers[0], mode_name());
  EXPECT_EQ(sh.drivers[1], mode_name());
  EXPECT_NE(sh.ids[0], sh.ids[1]);
  EXPECT_NE(sh.ids[0], std::this_thread::get_id());
  EXPECT_EQ(sh.result.second, 42);
  EXPECT_EQ(sh.result.first, sh.ids[1]) << "the task did not run on the target worker";
  EXPECT_EQ(sh.resumed_on, sh.ids[0]) << "the caller was not resumed on its own worker";
  EXPECT_EQ(sh.resumed_runtime, sh.runtimes[0]);
}

// Many calls in flight at once from one worker to another all come back, each to its caller.
Task<int> square_on_target(int x) {
  co_await yield_now();
  co_return x * x;
}

Task<int> one_call(Mailbox target, int x) {
  auto make = [x] { return square_on_target(x); };
  auto call = target.call(make);
  int v = co_await call;
  co_return v;
}

struct ManyCalls {
  WorkerPool* pool = nullptr;
  Event go, stop;
  long long sum = 0;
};

Task<void> many_calls_main(unsigned i, ManyCalls* sh) {
  if (i == 1) {
    (void)co_await sh->stop.wait();
    co_return;
  }
  (void)co_await sh->go.wait();
  std::vector<JoinHandle<int>> hs;
  for (int x = 1; x <= 500; ++x) hs.push_back(spawn(one_call(sh->pool->mailbox(1), x)));
  for (auto& h : hs) sh->sum += co_await h;
  sh->pool->mailbox(1).post([sh] { sh->stop.set(); });
}

TEST_P(WorkerTest, ManyConcurrentMailboxCallsAllReturn) {
  ManyCalls sh;
  WorkerOptions wo;
  wo.count = 2;
  wo.runtime = driver_options();
  {
    test::ScopedEnv no_env("LBD_IO", nullptr);
    test::ThreadWatchdog wd(20s, "500 concurrent mailbox calls");
    WorkerPool pool(wo, [&sh](unsigned i) { return many_calls_main(i, &sh); });
    sh.pool = &pool;
    pool.mailbox(0).post([&sh] { sh.go.set(); });
    pool.join();
  }
  EXPECT_EQ(sh.sum, 500LL * 501 * 1001 / 6);
}

// --- a mailbox wakes a worker blocked in the kernel ---------------------------------------------

/// The syscall a thread of this process is blocked in, from /proc (-1: running or unknown).
long blocked_syscall(pid_t tid) {
  std::ifstream f("/proc/self/task/" + std::to_string(tid) + "/syscall");
  std::string first;
  if (!(f >> first)) return -1;
  if (first == "running") return -1;
  try {
    return std::stol(first);
  } catch (...) {
    return -1;
  }
}

bool is_driver_wait(long nr) {
  return nr == SYS_io_uring_enter || nr == SYS_epoll_pwait || nr == SYS_epoll_pwait2
#ifdef SYS_epoll_wait
         || nr == SYS_epoll_wait
#endif
      ;
}

struct Sleeper {
  std::atomic<pid_t> tid{0};
  Event stop;
};

Task<void> sleeper_main(unsigned, Sleeper* sh) {
  sh->tid = static_cast<pid_t>(::syscall(SYS_gettid));
  (void)co_await sh->stop.wait();  // no timers, no I/O: the loop blocks in the driver
}

TEST_P(WorkerTest, MailboxPostWakesAWorkerBlockedInTheDriver) {
  Sleeper sh;
  WorkerOptions wo;
  wo.count = 1;
  wo.runtime = driver_options();
  test::ScopedEnv no_env("LBD_IO", nullptr);
  test::ThreadWatchdog wd(15s, "waking a sleeping worker");
  WorkerPool pool(wo, [&sh](unsigned i) { return sleeper_main(i, &sh); });

  // Wait (bounded) until the worker is parked in io_uring_enter / epoll_pwait*.
  long nr = -1;
  auto deadline = Clock::now() + 5s;
  while (Clock::now() < deadline) {
    pid_t tid = sh.tid.load();
    if (tid != 0 && is_driver_wait(nr = blocked_syscall(tid))) break;
    std::this_thread::yield();
  }
  EXPECT_TRUE(is_driver_wait(nr)) << "worker never blocked in the driver (last syscall " << nr << ")";

  std::promise<pid_t> ran;
  auto fut = ran.get_future();
  pool.mailbox(0).post([&ran] { ran.set_value(static_cast<pid_t>(::syscall(SYS_gettid))); });
  bool woke = fut.wait_for(5s) == std::future_status::ready;
  EXPECT_TRUE(woke) << "a posted job did not run within 5 s: the worker was not woken";
  if (!woke) std::abort();  // the worker can never be stopped now
  EXPECT_EQ(fut.get(), sh.tid.load()) << "the job ran on the wrong thread";
  pool.mailbox(0).post([&sh] { sh.stop.set(); });
  pool.join();
}

// --- spawn_blocking ----------------------------------------------------------------------------

Task<void> blocking_round_trip() {
  auto me = std::this_thread::get_id();
  Runtime* rt = &Runtime::current();
  auto job = spawn_blocking([] { return ThreadValue{std::this_thread::get_id(), 7}; });
  ThreadValue got = co_await job;
  EXPECT_NE(got.first, me) << "the blocking job ran on the runtime thread";
  EXPECT_EQ(got.second, 7);
  EXPECT_EQ(std::this_thread::get_id(), me) << "resumed on another thread";
  EXPECT_EQ(&Runtime::current(), rt);

  // void jobs and move-only results.
  std::atomic<bool> ran{false};
  auto vjob = spawn_blocking([&ran] { ran = true; });
  co_await vjob;
  EXPECT_TRUE(ran.load());
  auto ujob = spawn_blocking([] { return std::make_unique<std::string>("from the pool"); });
  auto u = co_await ujob;
  CO_ASSERT_TRUE(u != nullptr);
  EXPECT_EQ(*u, "from the pool");
}

TEST_P(WorkerTest, SpawnBlockingResultComesBackToTheCallingThread) { run(blocking_round_trip()); }

Task<int> one_blocking(int x) {
  auto job = spawn_blocking([x] {
    std::this_thread::sleep_for(1ms);  // stands in for blocking work (a file read)
    return x * 3;
  });
  int v = co_await job;
  co_return v;
}

Task<void> many_blocking() {
  std::vector<JoinHandle<int>> hs;
  for (int i = 0; i < 64; ++i) hs.push_back(spawn(one_blocking(i)));
  int sum = 0;
  for (auto& h : hs) sum += co_await h;
  EXPECT_EQ(sum, 3 * 63 * 64 / 2);
}

TEST_P(WorkerTest, ManySpawnBlockingJobsAllComeBack) { run(many_blocking()); }

// A worker's spawn_blocking resumes on that worker, not on the test's thread.
struct BlockingOnWorker {
  std::thread::id worker, job, resumed;
};

Task<void> blocking_on_worker(unsigned, BlockingOnWorker* sh) {
  sh->worker = std::this_thread::get_id();
  auto job = spawn_blocking([] { return std::this_thread::get_id(); });
  sh->job = co_await job;
  sh->resumed = std::this_thread::get_id();
}

TEST_P(WorkerTest, SpawnBlockingFromAWorkerResumesOnThatWorker) {
  BlockingOnWorker sh;
  WorkerOptions wo;
  wo.count = 1;
  wo.runtime = driver_options();
  {
    test::ScopedEnv no_env("LBD_IO", nullptr);
    test::ThreadWatchdog wd(10s, "spawn_blocking on a worker");
    WorkerPool pool(wo, [&sh](unsigned i) { return blocking_on_worker(i, &sh); });
    pool.join();
  }
  EXPECT_NE(sh.worker, std::thread::id());
  EXPECT_NE(sh.job, sh.worker);
  EXPECT_EQ(sh.resumed, sh.worker);
}

// --- the pool itself ---------------------------------------------------------------------------

struct Started {
  std::mutex mu;
  std::set<std::thread::id> ids;
  std::vector<unsigned> indexes;
  std::vector<std::string> drivers;
};

Task<void> record_start(unsigned i, Started* st) {
  std::lock_guard lock(st->mu);
  st->ids.insert(std::this_thread::get_id());
  st->indexes.push_back(i);
  st->drivers.push_back(Runtime::current().driver_info().name);
  co_return;
}

TEST_P(WorkerTest, PoolRunsEachEntryOnItsOwnThreadAndRuntime) {
  Started st;
  WorkerOptions wo;
  wo.count = 3;
  wo.runtime = driver_options();
  {
    test::ScopedEnv no_env("LBD_IO", nullptr);
    test::ThreadWatchdog wd(10s, "three workers");
    WorkerPool pool(wo, [&st](unsigned i) { return record_start(i, &st); });
    EXPECT_EQ(pool.size(), 3u);
    pool.join();  // each thread ends when its entry returns
  }
  EXPECT_EQ(st.ids.size(), 3u);
  std::sort(st.indexes.begin(), st.indexes.end());
  EXPECT_EQ(st.indexes, (std::vector<unsigned>{0, 1, 2}));
  for (auto& d : st.drivers) EXPECT_EQ(d, mode_name());
  EXPECT_EQ(st.ids.count(std::this_thread::get_id()), 0u);
}

}  // namespace
}  // namespace lbd
