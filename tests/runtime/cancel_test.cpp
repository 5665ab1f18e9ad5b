// Cancellation: timeout(), CancelSource/with_cancel, JoinHandle::cancel, and runtime teardown
// with operations in flight (runtime/cancel.hpp, runtime/timer.hpp, runtime/spawn.hpp; the
// drivers' cancel paths).
//
// The rent model promises that a cancelled read hands its buffer back only once the kernel is
// done with it: the returned buffer must not change afterwards, and bytes that arrive after
// the cancel must go to the next read, not be lost to the cancelled one.

#include <cstring>
#include <thread>
#include <vector>

#include "runtime/cancel.hpp"
#include "runtime/event.hpp"
#include "runtime/net.hpp"
#include "runtime/spawn.hpp"
#include "runtime/timer.hpp"
#include "tests/runtime/runtime_test_support.hpp"

namespace lbd {
namespace {

using namespace std::chrono_literals;
using test::RuntimeTest;

class CancelTest : public RuntimeTest {};
LBD_INSTANTIATE_FOR_DRIVERS(CancelTest);

constexpr unsigned char kPattern = 0xA5;

/// A heap buffer whose whole capacity is filled with kPattern (size 0).
Buffer patterned(std::size_t cap) {
  Buffer b(cap);
  std::memset(b.data(), kPattern, cap);
  return b;
}

bool untouched(const Buffer& b) {
  if (b.size() != 0) return false;
  for (std::size_t i = 0; i < b.capacity(); ++i)
    if (static_cast<unsigned char>(b.data()[i]) != kPattern) return false;
  return true;
}

/// After a cancelled read on `reader`: the peer sends `late`, a fresh read must get exactly it,
/// and the buffer handed back by the cancelled read must still be untouched.
Task<void> check_nothing_lost(TcpStream* reader, TcpStream* peer, const Buffer* returned, std::string late) {
  auto [w, b] = co_await peer->write_all(Buffer::copy_of(late));
  CO_ASSERT_OK(w);
  std::string got = co_await test::read_exactly(reader, late.size());
  EXPECT_EQ(got, late) << "data sent after the cancel was lost or mangled";
  // One more turn of the loop for any stray completion to land.
  co_await yield_now();
  EXPECT_TRUE(untouched(*returned)) << "the cancelled read's buffer was written after it came back";
}

long long ms(Duration d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); }

// --- timeout() ---------------------------------------------------------------------------------

Task<void> timeout_on_read() {
  auto pair = co_await test::make_tcp_pair();
  CO_ASSERT_OK(pair);
  constexpr auto kLimit = 50ms;
  auto start = Clock::now();
  auto [res, buf] = co_await timeout(pair->server.read(patterned(256)), kLimit);
  auto took = Clock::now() - start;
  CO_ASSERT_TRUE(!res);
  EXPECT_TRUE(res.error().is(ETIMEDOUT)) << res.error().message();
  EXPECT_GE(took, kLimit);
  EXPECT_LT(took, kLimit + 5s);
  EXPECT_EQ(buf.capacity(), 256u);  // the buffer comes back with the error
  EXPECT_TRUE(untouched(buf));
  co_await check_nothing_lost(&pair->server, &pair->client, &buf, "late bytes after timeout");
  bool settled = co_await test::settle_ops();
  EXPECT_TRUE(settled) << Runtime::current().ops_in_flight() << " op slots still in use";
}

TEST_P(CancelTest, TimeoutCancelsReadInFlightWithEtimedout) { run(timeout_on_read()); }

Task<void> timeout_on_read_pooled() {
  auto pair = co_await test::make_tcp_pair();
  CO_ASSERT_OK(pair);
  auto r = co_await timeout(pair->server.read_pooled(), 30ms);
  CO_ASSERT_TRUE(!r);
  EXPECT_TRUE(r.error().is(ETIMEDOUT)) << r.error().message();
  Buffer none;
  co_await check_nothing_lost(&pair->server, &pair->client, &none, "pooled late bytes");
  // And read_pooled itself still works on that socket afterwards.
  auto [w, b] = co_await pair->client.write_all(Buffer::copy_of("again"));
  CO_ASSERT_OK(w);
  auto again = co_await timeout(pair->server.read_pooled(), 5s);
  CO_ASSERT_OK(again);
  EXPECT_EQ(again->view(), "again");
}

TEST_P(CancelTest, TimeoutCancelsReadPooledWithoutLosingData) { run(timeout_on_read_pooled()); }

Task<void> timeout_on_sleep() {
  auto start = Clock::now();
  auto r = co_await timeout(sleep_for(10s), 30ms);
  auto took = Clock::now() - start;
  CO_ASSERT_TRUE(!r);
  EXPECT_TRUE(r.error().is(ETIMEDOUT)) << r.error().message();
  EXPECT_GE(took, 30ms);
  EXPECT_LT(took, 5s) << "took " << ms(took) << "ms";
  EXPECT_EQ(Runtime::current().timers().size(), 0u) << "the cancelled sleep left its timer queued";
}

TEST_P(CancelTest, TimeoutFiresOnSleep) { run(timeout_on_sleep()); }

Task<int> forty_two_after(Duration d) {
  co_await sleep_for(d);
  co_return 42;
}

Task<void> timeout_not_reached() {
  auto r = co_await timeout(sleep_for(5ms), 5s);
  EXPECT_TRUE(r);
  int v = co_await timeout(forty_two_after(1ms), 5s);
  EXPECT_EQ(v, 42);
  // The timeout's own timer is gone once it returns.
  EXPECT_EQ(Runtime::current().timers().size(), 0u);
  // A data read that completes in time returns the data.
  auto pair = co_await test::make_tcp_pair();
  CO_ASSERT_OK(pair);
  auto [w, b] = co_await pair->client.write_all(Buffer::copy_of("in time"));
  CO_ASSERT_OK(w);
  auto [res, buf] = co_await timeout(pair->server.read(Buffer(64)), 5s);
  CO_ASSERT_OK(res);
  EXPECT_EQ(buf.view(), "in time");
}

TEST_P(CancelTest, TimeoutNotReachedReturnsTheValue) { run(timeout_not_reached()); }

Task<void> two_reads(TcpStream* s, std::vector<int>* errors, std::vector<Duration>* took) {
  for (int i = 0; i < 2; ++i) {
    auto start = Clock::now();
    auto [res, buf] = co_await s->read(patterned(64));
    took->push_back(Clock::now() - start);
    errors->push_back(res.errno_value());
    EXPECT_TRUE(untouched(buf));
  }
  auto slept = co_await sleep_for(10s);
  errors->push_back(slept.errno_value());
}

// Once a timeout fired, every later await inside it fails at once with the same error, and
// does not even start (bytes already waiting are not consumed).
Task<void> fired_scope_fails_at_once() {
  auto pair = co_await test::make_tcp_pair();
  CO_ASSERT_OK(pair);
  std::vector<int> errors;
  std::vector<Duration> took;
  auto start = Clock::now();
  co_await timeout(two_reads(&pair->server, &errors, &took), 30ms);
  EXPECT_LT(Clock::now() - start, 5s);
  CO_ASSERT_TRUE(errors.size() == 3u);
  EXPECT_EQ(errors[0], ETIMEDOUT);
  EXPECT_EQ(errors[1], ETIMEDOUT);
  EXPECT_EQ(errors[2], ETIMEDOUT);  // the 10 s sleep did not wait
  EXPECT_LT(took[1], 1s);

  // With data already waiting, an op inside an already-cancelled CancelSource still fails and
  // leaves the data for the next read.
  auto [w, b] = co_await pair->client.write_all(Buffer::copy_of("waiting"));
  CO_ASSERT_OK(w);
  CancelSource src;
  src.cancel();
  auto [res, buf] = co_await with_cancel(pair->server.read(patterned(64)), &src);
  CO_ASSERT_TRUE(!res);
  EXPECT_TRUE(res.error().is(ECANCELED)) << res.error().message();
  EXPECT_TRUE(untouched(buf));
  std::string got = co_await test::read_exactly(&pair->server, 7);
  EXPECT_EQ(got, "waiting");
}

TEST_P(CancelTest, OpInsideAlreadyFiredScopeFailsAtOnce) { run(fired_scope_fails_at_once()); }

Task<int> inner_then_outer() {
  auto inner = co_await timeout(sleep_for(10s), 10ms);  // inner fires first
  EXPECT_TRUE(!inner && inner.error().is(ETIMEDOUT));
  auto after = co_await sleep_for(5ms);  // the outer scope has not fired: this just sleeps
  EXPECT_TRUE(after) << "an await after the inner timeout failed: " << after.errno_value();
  co_return 7;
}

Task<void> nested_timeouts() {
  int v = co_await timeout(inner_then_outer(), 5s);
  EXPECT_EQ(v, 7);
  // Outer fires first: the inner (longer) timeout reports the outer's ETIMEDOUT.
  auto start = Clock::now();
  auto r = co_await timeout(timeout(sleep_for(10s), 5s), 20ms);
  EXPECT_TRUE(!r && r.error().is(ETIMEDOUT));
  EXPECT_LT(Clock::now() - start, 4s);
  EXPECT_EQ(Runtime::current().timers().size(), 0u);
}

TEST_P(CancelTest, NestedTimeoutsEachFireTheirOwnScope) { run(nested_timeouts()); }

// A write that cannot finish (the peer never reads) is cancelled too; its buffer comes back.
Task<void> timeout_on_write() {
  auto pair = co_await test::make_tcp_pair();
  CO_ASSERT_OK(pair);
  test::small_socket_buffers(pair->client, pair->server);
  std::string big(4 * 1024 * 1024, 'w');
  auto start = Clock::now();
  auto [res, buf] = co_await timeout(pair->client.write_all(Buffer::copy_of(big)), 100ms);
  CO_ASSERT_TRUE(!res);
  EXPECT_TRUE(res.error().is(ETIMEDOUT)) << res.error().message();
  EXPECT_GE(Clock::now() - start, 100ms);
  EXPECT_EQ(buf.size(), big.size());
  bool settled = co_await test::settle_ops();
  EXPECT_TRUE(settled) << Runtime::current().ops_in_flight() << " op slots still in use";
}

TEST_P(CancelTest, TimeoutCancelsBlockedWrite) { run(timeout_on_write()); }

// --- CancelSource / with_cancel ----------------------------------------------------------------

struct CancelledRead {
  bool started = false;
  int error = -1;
  Buffer buf;
  Event done;
};

Task<void> read_with_source(TcpStream* s, CancelSource* src, CancelledRead* out) {
  out->started = true;
  auto [res, buf] = co_await with_cancel(s->read(patterned(128)), src);
  out->error = res.errno_value();
  out->buf = std::move(buf);
  out->done.set();
}

/// Yields until `*flag`, then once more so an io_uring SQE queued by that task is submitted.
Task<void> until_started(const bool* flag) {
  for (int i = 0; i < 100 && !*flag; ++i) co_await yield_now();
  EXPECT_TRUE(*flag);
  co_await yield_now();
}

Task<void> cancel_source_case() {
  auto pair = co_await test::make_tcp_pair();
  CO_ASSERT_OK(pair);
  CancelSource src;
  CancelledRead out;
  auto h = spawn(read_with_source(&pair->server, &src, &out));
  co_await until_started(&out.started);
  CO_ASSERT_TRUE(!h.is_finished());
  src.cancel();
  auto waited = co_await timeout(out.done.wait(), 5s);
  CO_ASSERT_OK(waited);
  co_await h;
  EXPECT_EQ(out.error, ECANCELED);
  EXPECT_TRUE(untouched(out.buf));
  co_await check_nothing_lost(&pair->server, &pair->client, &out.buf, "late bytes after CancelSource");
}

TEST_P(CancelTest, CancelSourceCancelsReadInFlightWithEcanceled) { run(cancel_source_case()); }

Task<void> many_readers_one_source() {
  constexpr int kReaders = 20;
  std::vector<TcpStream> clients, servers;
  for (int i = 0; i < kReaders; ++i) {
    auto p = co_await test::make_tcp_pair();
    CO_ASSERT_OK(p);
    clients.push_back(std::move(p->client));
    servers.push_back(std::move(p->server));
  }
  CancelSource src;
  std::vector<CancelledRead> outs(kReaders);
  std::vector<JoinHandle<void>> hs;
  for (int i = 0; i < kReaders; ++i) hs.push_back(spawn(read_with_source(&servers[i], &src, &outs[i])));
  for (int i = 0; i < kReaders; ++i) co_await until_started(&outs[i].started);
  src.cancel(ETIMEDOUT);  // a custom reason is what the reads report
  for (auto& h : hs) co_await h;
  for (int i = 0; i < kReaders; ++i) {
    EXPECT_EQ(outs[i].error, ETIMEDOUT) << "reader " << i;
    EXPECT_TRUE(untouched(outs[i].buf)) << "reader " << i;
  }
  // A with_cancel on a source that was not cancelled is unaffected by another source.
  CancelSource other;
  auto [w, b] = co_await clients[0].write_all(Buffer::copy_of("x"));
  CO_ASSERT_OK(w);
  auto [res, buf] = co_await with_cancel(servers[0].read(Buffer(8)), &other);
  CO_ASSERT_OK(res);
  EXPECT_EQ(buf.view(), "x");
}

TEST_P(CancelTest, OneCancelSourceCancelsManyReads) { run(many_readers_one_source()); }

// --- JoinHandle::cancel ------------------------------------------------------------------------

struct JoinRead {
  bool started = false;
  Buffer buf;
};

Task<int> read_until_cancelled(TcpStream* s, JoinRead* out) {
  out->started = true;
  auto [res, buf] = co_await s->read(patterned(128));
  out->buf = std::move(buf);
  co_return res.errno_value();
}

Task<void> join_handle_cancel_case() {
  auto pair = co_await test::make_tcp_pair();
  CO_ASSERT_OK(pair);
  JoinRead out;
  auto h = spawn(read_until_cancelled(&pair->server, &out));
  co_await until_started(&out.started);
  CO_ASSERT_TRUE(!h.is_finished());
  h.cancel();
  int err = co_await h;
  EXPECT_EQ(err, ECANCELED);
  EXPECT_TRUE(untouched(out.buf));
  co_await check_nothing_lost(&pair->server, &pair->client, &out.buf, "late bytes after JoinHandle::cancel");
}

TEST_P(CancelTest, JoinHandleCancelCancelsReadInFlight) { run(join_handle_cancel_case()); }

Task<int> sleep_then_sleep() {
  auto first = co_await sleep_for(10s);
  auto second = co_await sleep_for(10s);  // the task stays cancelled
  co_return first.errno_value() * 1000 + second.errno_value();
}

Task<void> join_handle_cancel_sleep() {
  auto h = spawn(sleep_then_sleep());
  co_await yield_now();
  auto start = Clock::now();
  h.cancel();
  int v = co_await h;
  EXPECT_EQ(v, ECANCELED * 1000 + ECANCELED);
  EXPECT_LT(Clock::now() - start, 5s);
  // Cancelling a finished task is harmless.
  h.cancel();
}

TEST_P(CancelTest, JoinHandleCancelInterruptsSleepAndLaterAwaits) { run(join_handle_cancel_sleep()); }

// --- per-op deadlines: IoAwaiter::with_timeout() ----------------------------------------------

Task<void> op_deadline_fires() {
  auto pair = co_await test::make_tcp_pair();
  CO_ASSERT_OK(pair);
  constexpr auto kLimit = 40ms;
  auto start = Clock::now();
  auto [res, buf] = co_await pair->server.read(patterned(256)).with_timeout(kLimit);
  auto took = Clock::now() - start;
  CO_ASSERT_TRUE(!res);
  EXPECT_TRUE(res.error().is(ETIMEDOUT)) << res.error().message();
  EXPECT_GE(took, kLimit);
  EXPECT_LT(took, kLimit + 5s);
  EXPECT_TRUE(untouched(buf));
  EXPECT_EQ(Runtime::current().timers().size(), 0u);
  co_await check_nothing_lost(&pair->server, &pair->client, &buf, "late bytes after with_timeout");

  auto pooled = co_await pair->server.read_pooled().with_timeout(20ms);
  CO_ASSERT_TRUE(!pooled);
  EXPECT_TRUE(pooled.error().is(ETIMEDOUT)) << pooled.error().message();
  bool settled = co_await test::settle_ops();
  EXPECT_TRUE(settled) << Runtime::current().ops_in_flight() << " op slots still in use";
}

TEST_P(CancelTest, OpDeadlineCancelsReadWithEtimedout) { run(op_deadline_fires()); }

Task<void> send_later(TcpStream* s, std::string data) {
  (void)co_await sleep_for(10ms);
  auto [w, b] = co_await s->write_all(Buffer::copy_of(data));
  EXPECT_TRUE(w);
}

Task<void> op_deadline_not_reached() {
  auto pair = co_await test::make_tcp_pair();
  CO_ASSERT_OK(pair);
  // Data that is already there, and data that arrives while the read waits.
  auto [w, b] = co_await pair->client.write_all(Buffer::copy_of("ready"));
  CO_ASSERT_OK(w);
  auto [r1, b1] = co_await pair->server.read(Buffer(64)).with_timeout(5s);
  CO_ASSERT_OK(r1);
  EXPECT_EQ(b1.view(), "ready");
  auto sender = spawn(send_later(&pair->client, "later"));
  auto [r2, b2] = co_await pair->server.read(Buffer(64)).with_timeout(5s);
  CO_ASSERT_OK(r2);
  EXPECT_EQ(b2.view(), "later");
  co_await sender;
  // No deadline is left queued to fire later into a finished await.
  EXPECT_EQ(Runtime::current().timers().size(), 0u);
}

TEST_P(CancelTest, OpDeadlineNotReachedReturnsDataAndDisarms) { run(op_deadline_not_reached()); }

Task<int> read_with_deadline(TcpStream* s, bool* started) {
  *started = true;
  auto [res, buf] = co_await s->read(patterned(64)).with_timeout(10s);
  EXPECT_TRUE(untouched(buf));
  co_return res.errno_value();
}

// Another cancellation wins over the deadline; the deadline's timer goes with the await.
Task<void> op_deadline_then_cancel() {
  auto pair = co_await test::make_tcp_pair();
  CO_ASSERT_OK(pair);
  bool started = false;
  auto h = spawn(read_with_deadline(&pair->server, &started));
  co_await until_started(&started);
  EXPECT_EQ(Runtime::current().timers().size(), 1u);
  h.cancel();
  int err = co_await h;
  EXPECT_EQ(err, ECANCELED);
  EXPECT_EQ(Runtime::current().timers().size(), 0u);
}

TEST_P(CancelTest, OpDeadlineYieldsToJoinHandleCancel) { run(op_deadline_then_cancel()); }

// --- CancelLink: a whole task tied to a CancelSource -------------------------------------------

struct LinkedTask {
  bool started = false;
  int read_err = -1;
  int sleep_err = -1;
  Buffer buf;
};

Task<void> linked_reader(TcpStream* s, CancelSource* src, LinkedTask* out) {
  CancelLink link(src);
  out->started = true;
  auto [res, buf] = co_await s->read(patterned(64));
  out->read_err = res.errno_value();
  out->buf = std::move(buf);
  auto slept = co_await sleep_for(10s);  // the task stays cancelled
  out->sleep_err = slept.errno_value();
}

Task<void> cancel_link_case() {
  auto pair = co_await test::make_tcp_pair();
  CO_ASSERT_OK(pair);
  CancelSource src;
  LinkedTask out;
  auto h = spawn(linked_reader(&pair->server, &src, &out));
  co_await until_started(&out.started);
  auto start = Clock::now();
  src.cancel();
  co_await h;
  EXPECT_LT(Clock::now() - start, 5s);
  EXPECT_EQ(out.read_err, ECANCELED);
  EXPECT_EQ(out.sleep_err, ECANCELED);
  EXPECT_TRUE(untouched(out.buf));
  co_await check_nothing_lost(&pair->server, &pair->client, &out.buf, "late bytes after CancelLink");
}

TEST_P(CancelTest, CancelLinkCancelsTheLinkedTask) { run(cancel_link_case()); }

Task<int> link_then_unlink(TcpStream* s, CancelSource* src, bool* unlinked) {
  {
    CancelLink link(src);
    co_await yield_now();
  }
  *unlinked = true;
  auto [res, buf] = co_await s->read(Buffer(64));
  co_return res ? static_cast<int>(*res) : -res.errno_value();
}

Task<int> linked_to_cancelled(CancelSource* src) {
  CancelLink link(src);
  auto slept = co_await sleep_for(10s);
  co_return slept.errno_value();
}

Task<void> cancel_link_scope() {
  auto pair = co_await test::make_tcp_pair();
  CO_ASSERT_OK(pair);
  // Once the link is gone, cancelling the source leaves the task alone.
  CancelSource src;
  bool unlinked = false;
  auto h = spawn(link_then_unlink(&pair->server, &src, &unlinked));
  co_await until_started(&unlinked);
  src.cancel();
  auto [w, b] = co_await pair->client.write_all(Buffer::copy_of("still here"));
  CO_ASSERT_OK(w);
  int n = co_await h;
  EXPECT_EQ(n, 10) << "the unlinked task's read was cancelled (" << n << ")";

  // Linking to a source that is already cancelled fails the next await at once.
  auto start = Clock::now();
  int err = co_await spawn(linked_to_cancelled(&src));
  EXPECT_EQ(err, ECANCELED);
  EXPECT_LT(Clock::now() - start, 5s);
}

TEST_P(CancelTest, CancelLinkOnlyActsWhileAlive) { run(cancel_link_scope()); }

// --- runtime teardown with operations in flight ------------------------------------------------

Task<void> park_read(TcpStream s) {
  auto [res, buf] = co_await s.read(Buffer(4096));
  ADD_FAILURE() << "a parked read completed: " << res.errno_value();
}
Task<void> park_read_pooled(TcpStream s) {
  auto r = co_await s.read_pooled();
  ADD_FAILURE() << "a parked read_pooled completed: " << r.errno_value();
}
Task<void> park_accept(TcpListener l) {
  auto r = co_await l.accept();
  ADD_FAILURE() << "a parked accept completed: " << r.errno_value();
}
Task<void> park_read_deadline(TcpStream s) {
  auto [res, buf] = co_await s.read(Buffer(4096)).with_timeout(std::chrono::hours(1));
  ADD_FAILURE() << "a parked read with a deadline completed: " << res.errno_value();
}
Task<void> park_sleep() {
  (void)co_await sleep_for(1h);
  ADD_FAILURE() << "a parked sleep completed";
}
Task<void> park_write(TcpStream s, TcpStream peer) {  // `peer` stays open, never reads
  test::small_socket_buffers(s, peer);
  std::string big(4 * 1024 * 1024, 'z');
  auto [w, b] = co_await s.write_all(Buffer::copy_of(big));
  ADD_FAILURE() << "a parked write completed: " << w.errno_value() << " on fd " << peer.fd();
}

struct Parked {
  int tasks = 0;
  bool ok = false;
};

/// Leaves tasks suspended in reads (some with deadlines), read_pooled, accept, a blocked write
/// and a sleep, then
/// returns: the runtime is destroyed with all of them in flight.
Task<void> park_everything(Parked* out) {
  std::vector<TcpStream> keep;  // the peers stay open so nothing completes
  for (int i = 0; i < 16; ++i) {
    auto p = co_await test::make_tcp_pair();
    CO_ASSERT_OK(p);
    keep.push_back(std::move(p->client));
    if (i % 4 == 1) (void)spawn(park_read_pooled(std::move(p->server)));
    else if (i % 4 == 3) (void)spawn(park_read_deadline(std::move(p->server)));
    else (void)spawn(park_read(std::move(p->server)));
    ++out->tasks;
  }
  auto l = TcpListener::bind(SocketAddress::ipv4_loopback(0));
  CO_ASSERT_OK(l);
  (void)spawn(park_accept(std::move(*l)));
  ++out->tasks;
  auto wp = co_await test::make_tcp_pair();
  CO_ASSERT_OK(wp);
  (void)spawn(park_write(std::move(wp->client), std::move(wp->server)));
  ++out->tasks;
  (void)spawn(park_sleep());
  ++out->tasks;
  for (int i = 0; i < 5; ++i) co_await yield_now();  // everything submitted and parked
  (void)co_await sleep_for(5ms);
  // The peers are handed to detached tasks too, so they stay open until teardown.
  for (auto& s : keep) (void)spawn(park_read(std::move(s)));
  co_await yield_now();
  out->ok = true;
}

// Runs on its own thread: one runtime per thread, and the fixture's owns the main one.
TEST_P(CancelTest, DestroyingRuntimeWithOpsInFlightIsClean) {
  int fds_before = test::count_open_fds();
  Parked parked;
  RuntimeOptions opts = driver_options();
  std::string driver;
  std::thread t([&] {
    std::optional<Runtime> rt;
    {
      test::ScopedEnv no_env("LBD_IO", nullptr);
      rt.emplace(opts);
    }
    driver = rt->driver_info().name;
    test::run_bounded(*rt, park_everything(&parked), 10s);
    EXPECT_GT(rt->live_tasks(), 30u);
    EXPECT_GT(rt->ops_in_flight(), 30u);
    test::ThreadWatchdog wd(10s, "runtime teardown");
    rt.reset();  // ASan/LSan: no use-after-free, no leak
  });
  t.join();
  EXPECT_EQ(driver, mode_name());
  EXPECT_TRUE(parked.ok);
  EXPECT_EQ(parked.tasks, 19);
  EXPECT_EQ(test::count_open_fds(), fds_before) << "teardown leaked file descriptors";
}

}  // namespace
}  // namespace lbd
