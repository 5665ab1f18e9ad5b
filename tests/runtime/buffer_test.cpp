// Buffer: the owned bytes of the rent model (runtime/buffer.hpp). The pool tests at the end run
// on both drivers: read_pooled hands out slots of the driver's pool (provided-buffer ring on
// io_uring, plain pool on epoll) that must go back when the Buffer dies.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "runtime/buffer.hpp"
#include "runtime/net.hpp"
#include "runtime/timer.hpp"
#include "tests/runtime/runtime_test_support.hpp"

namespace lbd {
namespace {

using namespace std::chrono_literals;

TEST(BufferTest, DefaultAndSizedBuffers) {
  Buffer empty;
  EXPECT_EQ(empty.data(), nullptr);
  EXPECT_EQ(empty.size(), 0u);
  EXPECT_EQ(empty.capacity(), 0u);
  EXPECT_TRUE(empty.empty());
  EXPECT_TRUE(empty.spare().empty());

  Buffer zero(0);
  EXPECT_EQ(zero.capacity(), 0u);

  Buffer b(64);
  EXPECT_NE(b.data(), nullptr);
  EXPECT_EQ(b.capacity(), 64u);
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(b.spare().size(), 64u);
  EXPECT_FALSE(b.pooled());
}

TEST(BufferTest, AppendConsumeAndSpare) {
  Buffer b(8);
  EXPECT_EQ(b.append("abc"), 3u);
  EXPECT_EQ(b.view(), "abc");
  EXPECT_EQ(b.spare().size(), 5u);
  EXPECT_EQ(b.spare().data(), b.data() + 3);
  EXPECT_EQ(b.append("defghijk"), 5u);  // only what fits
  EXPECT_EQ(b.view(), "abcdefgh");
  EXPECT_EQ(b.append("x"), 0u);
  b.consume(3);
  EXPECT_EQ(b.view(), "defgh");
  b.consume(100);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.capacity(), 8u);

  // Filling spare() then set_size() is how reads deliver bytes.
  std::memcpy(b.spare().data(), "xyz", 3);
  b.set_size(3);
  EXPECT_EQ(b.view(), "xyz");
  b.set_size(1000);  // clamped to capacity
  EXPECT_EQ(b.size(), 8u);
  b.clear();
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(std::string(b.span().data(), b.span().size()), "");
}

TEST(BufferTest, CopyOfAndMoves) {
  Buffer a = Buffer::copy_of("hello");
  EXPECT_EQ(a.view(), "hello");
  EXPECT_EQ(a.capacity(), 5u);
  const char* p = a.data();

  Buffer b(std::move(a));
  EXPECT_EQ(b.data(), p);  // moved, not copied
  EXPECT_EQ(b.view(), "hello");
  EXPECT_EQ(a.data(), nullptr);  // NOLINT(bugprone-use-after-move): the moved-from state is specified
  EXPECT_EQ(a.size(), 0u);
  EXPECT_EQ(a.capacity(), 0u);

  Buffer c(16);
  c.append("old");
  c = std::move(b);
  EXPECT_EQ(c.view(), "hello");
  EXPECT_EQ(c.data(), p);

  Buffer e = Buffer::copy_of("");
  EXPECT_TRUE(e.empty());
}

/// Counts the slots given back.
class CountingPool final : public BufferPool {
 public:
  explicit CountingPool(std::size_t slot_size) : size_(slot_size) {}
  ~CountingPool() override {
    for (auto* p : storage_) delete[] p;
  }
  Buffer take(uint32_t slot) {
    char* p = new char[size_];
    storage_.push_back(p);
    return Buffer(p, size_, this, slot);
  }
  void give_back(char*, uint32_t slot) override { returned.push_back(slot); }
  std::vector<uint32_t> returned;

 private:
  std::size_t size_;
  std::vector<char*> storage_;
};

TEST(BufferTest, PooledSlotGoesBackExactlyOnce) {
  CountingPool pool(32);
  {
    Buffer a = pool.take(7);
    EXPECT_TRUE(a.pooled());
    EXPECT_EQ(a.capacity(), 32u);
    a.append("pooled");
    Buffer b = std::move(a);  // the slot moves along, not returned twice
    EXPECT_FALSE(a.pooled());  // NOLINT(bugprone-use-after-move)
    EXPECT_TRUE(pool.returned.empty());
    Buffer c = pool.take(9);
    c = std::move(b);  // assigning over a pooled buffer returns its slot (9)
    ASSERT_EQ(pool.returned.size(), 1u);
    EXPECT_EQ(pool.returned[0], 9u);
    EXPECT_EQ(c.view(), "pooled");
  }
  EXPECT_EQ(pool.returned, (std::vector<uint32_t>{9, 7}));
}

// --- pooled buffers from the drivers -----------------------------------------------------------

class PooledBufferTest : public test::RuntimeTest {
 protected:
  RuntimeOptions options() override {
    RuntimeOptions o;
    o.provided_buffer_count = 8;  // a small ring, so a leaked slot would run it dry at once
    o.recv_buffer_size = 4096;
    return o;
  }
};
LBD_INSTANTIATE_FOR_DRIVERS(PooledBufferTest);

// 200 reads through an 8-slot ring. A slot that did not go back when its Buffer died would run
// the ring dry; io_uring then reads into fallback heap blocks, so the test checks where the
// bytes landed: every read's memory lies within one 8-slot span (the ring's mmap on io_uring;
// one recycled block on epoll). Holding several slots at once gives distinct memory.
Task<void> recycle_slots() {
  constexpr std::size_t kSlots = 8, kSlotSize = 4096;
  auto pair = co_await test::make_tcp_pair();
  CO_ASSERT_OK(pair);
  std::string all, want;
  uintptr_t lo = UINTPTR_MAX, hi = 0;
  for (int i = 0; i < 200; ++i) {
    std::string msg = "message " + std::to_string(i) + ";";
    want += msg;
    auto [w, b] = co_await pair->client.write_all(Buffer::copy_of(msg));
    CO_ASSERT_OK(w);
    while (all.size() < want.size()) {
      auto r = co_await timeout(pair->server.read_pooled(), 5s);
      CO_ASSERT_OK(r);
      CO_ASSERT_TRUE(!r->empty());
      EXPECT_TRUE(r->pooled());
      EXPECT_LE(r->capacity(), kSlotSize);
      auto addr = reinterpret_cast<uintptr_t>(r->data());
      lo = std::min(lo, addr);
      hi = std::max(hi, addr);
      all.append(r->view());
    }
  }
  EXPECT_EQ(all, want);
  EXPECT_LT(hi - lo, kSlots * kSlotSize) << "reads landed outside one ring's worth of slots: "
                                            "slots were not given back (or the ring ran dry)";

  std::vector<Buffer> held;
  for (int i = 0; i < 4; ++i) {
    auto [w, b] = co_await pair->client.write_all(Buffer::copy_of(std::string(10, static_cast<char>('a' + i))));
    CO_ASSERT_OK(w);
    auto r = co_await timeout(pair->server.read_pooled(), 5s);
    CO_ASSERT_OK(r);
    EXPECT_EQ(r->view(), std::string(10, static_cast<char>('a' + i)));
    held.push_back(std::move(*r));
  }
  for (std::size_t i = 0; i < held.size(); ++i)
    for (std::size_t j = i + 1; j < held.size(); ++j) EXPECT_NE(held[i].data(), held[j].data());
  for (std::size_t i = 0; i < held.size(); ++i)  // nobody wrote into a held slot meanwhile
    EXPECT_EQ(held[i].view(), std::string(10, static_cast<char>('a' + i)));
}

TEST_P(PooledBufferTest, ReadPooledSlotsAreRecycled) { run(recycle_slots()); }

}  // namespace
}  // namespace lbd
