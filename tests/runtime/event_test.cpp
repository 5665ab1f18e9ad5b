// Event: a one-thread flag tasks wait for (runtime/event.hpp).

#include <vector>

#include "runtime/cancel.hpp"
#include "runtime/event.hpp"
#include "runtime/spawn.hpp"
#include "runtime/timer.hpp"
#include "tests/runtime/runtime_test_support.hpp"

namespace lbd {
namespace {

using namespace std::chrono_literals;
using test::RuntimeTest;

class EventTest : public RuntimeTest {};
LBD_INSTANTIATE_FOR_DRIVERS(EventTest);

Task<void> wait_and_record(Event* e, int id, std::vector<int>* woke) {
  auto r = co_await e->wait();
  EXPECT_TRUE(r);
  woke->push_back(id);
}

Task<void> set_wakes_all() {
  Event e;
  std::vector<int> woke;
  std::vector<JoinHandle<void>> hs;
  for (int i = 0; i < 10; ++i) hs.push_back(spawn(wait_and_record(&e, i, &woke)));
  for (int i = 0; i < 3; ++i) co_await yield_now();
  EXPECT_TRUE(woke.empty());
  e.set();
  for (auto& h : hs) co_await h;
  EXPECT_EQ(woke.size(), 10u);
  // Already set: wait returns at once; after reset it blocks again.
  auto r = co_await e.wait();
  EXPECT_TRUE(r);
  e.reset();
  EXPECT_FALSE(e.is_set());
  auto t = co_await timeout(e.wait(), 20ms);
  EXPECT_TRUE(!t && t.error().is(ETIMEDOUT));
}

TEST_P(EventTest, SetWakesEveryWaiter) { run(set_wakes_all()); }

Task<int> cancellable_wait(Event* ev, CancelSource* src) {
  auto r = co_await with_cancel(ev->wait(), src);
  co_return r.errno_value();
}

// A waiter that timed out is unlinked: setting the event later touches nothing freed (ASan).
Task<void> timed_out_waiter_unlinked() {
  Event e;
  {
    auto t = co_await timeout(e.wait(), 10ms);
    EXPECT_TRUE(!t && t.error().is(ETIMEDOUT));
  }
  CancelSource src;
  auto h = spawn(cancellable_wait(&e, &src));
  co_await yield_now();
  src.cancel();
  int err = co_await h;
  EXPECT_EQ(err, ECANCELED);
  e.set();  // no stale waiter left
  auto r = co_await e.wait();
  EXPECT_TRUE(r);
}

TEST_P(EventTest, CancelledWaitersAreUnlinked) { run(timed_out_waiter_unlinked()); }

}  // namespace
}  // namespace lbd
