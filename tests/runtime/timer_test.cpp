// Timers: sleep_for / sleep_until / Interval and the per-runtime timer heap
// (runtime/timer.hpp, runtime/timer_queue.hpp). Lower bounds only: the machine is
// shared, so a timer may fire late but never early.

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "runtime/cancel.hpp"
#include "runtime/runtime.hpp"
#include "runtime/spawn.hpp"
#include "runtime/timer.hpp"
#include "tests/runtime/runtime_test_support.hpp"

namespace lbd {
namespace {

using namespace std::chrono_literals;
using test::RuntimeTest;

class TimerTest : public RuntimeTest {};
LBD_INSTANTIATE_FOR_DRIVERS(TimerTest);

long long ms(Duration d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); }

Task<void> sleeps_are_not_early() {
  for (Duration d : {Duration(1ms), Duration(10ms), Duration(30ms)}) {
    auto start = Clock::now();
    auto r = co_await sleep_for(d);
    auto took = Clock::now() - start;
    EXPECT_TRUE(r);
    EXPECT_GE(took, d) << "sleep_for(" << ms(d) << "ms) returned after " << ms(took) << "ms";
    EXPECT_LT(took, d + 5s);
  }
  auto deadline = Clock::now() + 15ms;
  auto r = co_await sleep_until(deadline);
  EXPECT_TRUE(r);
  EXPECT_GE(Clock::now(), deadline);
}

TEST_P(TimerTest, SleepReturnsNoEarlierThanAsked) { run(sleeps_are_not_early()); }

Task<void> past_deadlines() {
  auto start = Clock::now();
  auto r1 = co_await sleep_until(Clock::now() - 1s);
  auto r2 = co_await sleep_for(Duration::zero());
  auto r3 = co_await sleep_for(-5ms);
  EXPECT_TRUE(r1);
  EXPECT_TRUE(r2);
  EXPECT_TRUE(r3);
  EXPECT_LT(Clock::now() - start, 2s);
}

TEST_P(TimerTest, DeadlineInThePastReturnsPromptly) { run(past_deadlines()); }

Task<void> sleep_and_record(Clock::time_point deadline, int id, std::vector<int>* fired) {
  auto r = co_await sleep_until(deadline);
  EXPECT_TRUE(r);
  EXPECT_GE(Clock::now(), deadline);
  fired->push_back(id);
}

Task<void> shuffled_deadlines(std::vector<int>* fired) {
  constexpr int kTimers = 50;
  std::vector<int> order(kTimers);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937(12345));
  auto base = Clock::now() + 20ms;
  std::vector<JoinHandle<void>> handles;
  for (int id : order) handles.push_back(spawn(sleep_and_record(base + id * 1ms, id, fired)));
  for (auto& h : handles) co_await h;
}

TEST_P(TimerTest, ShuffledDeadlinesFireInDeadlineOrder) {
  std::vector<int> fired;
  run(shuffled_deadlines(&fired));
  std::vector<int> want(50);
  std::iota(want.begin(), want.end(), 0);
  EXPECT_EQ(fired, want);
}

// Task `id` yields `delay` times before arming, so arming order differs from spawn order.
Task<void> arm_after_yields(Clock::time_point deadline, int id, int delay, std::vector<int>* armed,
                            std::vector<int>* fired) {
  for (int i = 0; i < delay; ++i) co_await yield_now();
  armed->push_back(id);
  auto r = co_await sleep_until(deadline);
  EXPECT_TRUE(r);
  fired->push_back(id);
}

Task<void> equal_deadlines(std::vector<int>* armed, std::vector<int>* fired) {
  constexpr int kTimers = 20;
  auto deadline = Clock::now() + 30ms;
  std::vector<JoinHandle<void>> handles;
  for (int id = 0; id < kTimers; ++id)
    handles.push_back(spawn(arm_after_yields(deadline, id, kTimers - 1 - id, armed, fired)));
  for (auto& h : handles) co_await h;
}

TEST_P(TimerTest, EqualDeadlinesFireInArmingOrder) {
  std::vector<int> armed, fired;
  run(equal_deadlines(&armed, &fired));
  ASSERT_EQ(armed.size(), 20u);
  EXPECT_EQ(armed.front(), 19);  // really armed in reverse of spawn order
  EXPECT_EQ(fired, armed);
}

// Many timers, half of them cancelled while queued (removal from the middle of the heap): the
// rest still fire in deadline order and nothing is left queued.
Task<void> sleep_with_cancel(Clock::time_point deadline, int id, CancelSource* src, std::vector<int>* fired,
                             int* cancelled) {
  auto r = co_await with_cancel(sleep_until(deadline), src);
  if (r) {
    fired->push_back(id);
  } else {
    EXPECT_TRUE(r.error().is(ECANCELED)) << r.error().message();
    ++*cancelled;
  }
}

Task<void> heap_with_removals(std::vector<int>* fired, int* cancelled) {
  constexpr int kTimers = 2000;
  std::vector<int> order(kTimers);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937(777));
  auto base = Clock::now() + 40ms;
  std::vector<CancelSource> sources(kTimers);
  std::vector<JoinHandle<void>> handles;
  for (int id : order)
    handles.push_back(spawn(sleep_with_cancel(base + id * 10us, id, &sources[id], fired, cancelled)));
  co_await yield_now();  // every task has armed its timer
  EXPECT_EQ(Runtime::current().timers().size(), static_cast<std::size_t>(kTimers));
  for (int id = 0; id < kTimers; id += 2) sources[id].cancel();
  for (auto& h : handles) co_await h;
  EXPECT_EQ(Runtime::current().timers().size(), 0u);
}

TEST_P(TimerTest, CancelledTimersLeaveTheRestInOrder) {
  std::vector<int> fired;
  int cancelled = 0;
  run(heap_with_removals(&fired, &cancelled));
  EXPECT_EQ(cancelled, 1000);
  std::vector<int> want;
  for (int id = 1; id < 2000; id += 2) want.push_back(id);
  EXPECT_EQ(fired, want);
}

Task<void> interval_ticks(Duration period, int n, std::vector<Duration>* at) {
  auto start = Clock::now();
  Interval iv(period);
  for (int i = 0; i < n; ++i) {
    auto r = co_await iv.tick();
    EXPECT_TRUE(r);
    at->push_back(Clock::now() - start);
  }
}

TEST_P(TimerTest, IntervalTicksAtPeriodSpacing) {
  constexpr auto kPeriod = 20ms;
  constexpr int kTicks = 6;
  std::vector<Duration> at;
  run(interval_ticks(kPeriod, kTicks, &at));
  ASSERT_EQ(at.size(), static_cast<std::size_t>(kTicks));
  for (int i = 0; i < kTicks; ++i)
    EXPECT_GE(at[i], (i + 1) * kPeriod) << "tick " << i << " came at " << ms(at[i]) << "ms";
  EXPECT_LT(at.back(), kTicks * kPeriod + 5s);
}

void busy_wait(Duration d) {
  auto until = Clock::now() + d;
  while (Clock::now() < until) {
  }
}

// A late tick does not cause a burst: after the loop was blocked for 3.5 periods the next tick
// comes at once (it is overdue) and the one after waits for the next multiple of the period.
Task<void> interval_skips_missed(Duration period, std::vector<Duration>* at) {
  auto start = Clock::now();
  Interval iv(period);
  (void)co_await iv.tick();  // ~1 period
  at->push_back(Clock::now() - start);
  busy_wait(3 * period + period / 2);  // a slow task holds the thread
  (void)co_await iv.tick();            // overdue: immediate
  at->push_back(Clock::now() - start);
  (void)co_await iv.tick();
  at->push_back(Clock::now() - start);
  (void)co_await iv.tick();
  at->push_back(Clock::now() - start);
}

TEST_P(TimerTest, IntervalSkipsMissedTicksInsteadOfBursting) {
  constexpr auto kPeriod = 20ms;
  std::vector<Duration> at;
  run(interval_skips_missed(kPeriod, &at));
  ASSERT_EQ(at.size(), 4u);
  // at[1] is >= 4.5 periods (the busy wait); the following ticks are on the period grid after
  // it, so neither comes right away.
  EXPECT_GE(at[1], 4 * kPeriod + kPeriod / 2);
  EXPECT_GE(at[2], 5 * kPeriod) << "burst: tick came " << ms(at[2] - at[1]) << "ms after the overdue one";
  EXPECT_GE(at[3], 6 * kPeriod);
}

// Timers do not cost a syscall each: 10,000 concurrent sleepers all wake.
Task<void> sleeper(Duration d, int* woke) {
  auto r = co_await sleep_for(d);
  if (r) ++*woke;
}

Task<void> many_sleepers(int* woke) {
  std::vector<JoinHandle<void>> hs;
  std::mt19937 rng(99);
  for (int i = 0; i < 10'000; ++i) hs.push_back(spawn(sleeper(std::chrono::microseconds(rng() % 20'000), woke)));
  for (auto& h : hs) co_await h;
}

TEST_P(TimerTest, TenThousandSleepersAllWake) {
  int woke = 0;
  run(many_sleepers(&woke));
  EXPECT_EQ(woke, 10'000);
  EXPECT_EQ(rt().timers().size(), 0u);
}

}  // namespace
}  // namespace lbd
