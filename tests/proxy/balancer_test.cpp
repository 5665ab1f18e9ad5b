// Tests for proxy/balancer: each algorithm's distribution and ordering, and the rules every
// balancer shares (down endpoints, exclusion, empty and single-endpoint clusters).
//
// Every test uses fixed seeds, so a run is reproducible; tolerances are still set wide enough
// (several standard deviations) that they would hold for any seed.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <algorithm>
#include <deque>
#include <string>
#include <vector>

#include "proxy/balancer/balancer.hpp"
#include "proxy/balancer/hash_key.hpp"

namespace lbd::balancer {

// Test names and failure messages say "least_conn" rather than "4-byte object <01-00 00-00>".
void PrintTo(BalanceKind kind, std::ostream* os) { *os << to_string(kind); }

namespace {

std::vector<EndpointState> endpoints_with_weights(std::vector<uint32_t> weights) {
  std::vector<EndpointState> endpoints;
  for (uint32_t w : weights) endpoints.push_back({.weight = w});
  return endpoints;
}

PickContext key_context(uint64_t i) { return {.hash_key = hash_bytes("client-" + std::to_string(i))}; }

// `picks` picks with no exclusion and, for the hash balancer, a different key each time.
std::vector<int> count_picks(Balancer& balancer, size_t endpoint_count, int picks) {
  std::vector<int> counts(endpoint_count, 0);
  for (int i = 0; i < picks; ++i) {
    auto picked = balancer.pick(key_context(i), {});
    if (!picked) {
      ADD_FAILURE() << "pick " << i << " returned nullopt";
      break;
    }
    ++counts.at(*picked);
  }
  return counts;
}

// Picks with load feedback, the way sessions drive least_conn and random_two: each pick opens a
// connection (active + 1), and once `concurrency` are open the oldest closes first.
std::vector<int> count_picks_with_load(Balancer& balancer, std::vector<EndpointState>& endpoints,
                                       int picks, size_t concurrency) {
  std::vector<int> counts(endpoints.size(), 0);
  std::deque<size_t> open;
  for (int i = 0; i < picks; ++i) {
    auto picked = balancer.pick(key_context(i), {});
    if (!picked) {
      ADD_FAILURE() << "pick " << i << " returned nullopt";
      break;
    }
    ++counts.at(*picked);
    ++endpoints[*picked].active;
    open.push_back(*picked);
    if (open.size() > concurrency) {
      --endpoints[open.front()].active;
      open.pop_front();
    }
  }
  return counts;
}

std::string describe(const std::vector<int>& counts) {
  std::string out = "counts:";
  for (int c : counts) {
    out += ' ';  // appended piecewise: GCC 12 warns (-Wrestrict) on " " + std::to_string(c)
    out += std::to_string(c);
  }
  return out;
}

// Each count within `tolerance` (a fraction, e.g. 0.10) of its expected value.
void expect_near_counts(const std::vector<int>& counts, const std::vector<int>& expected,
                        double tolerance) {
  ASSERT_EQ(counts.size(), expected.size());
  for (size_t i = 0; i < counts.size(); ++i) {
    EXPECT_NEAR(counts[i], expected[i], expected[i] * tolerance)
        << "endpoint " << i << ", " << describe(counts);
  }
}

ExcludeSet exclude_of(std::initializer_list<size_t> indices) {
  ExcludeSet set;
  for (size_t i : indices) set.insert(i);
  return set;
}

// ---------------------------------------------------------------------------------------------
// Names and ExcludeSet

TEST(BalanceKindTest, NamesAreTheConfigSpelling) {
  EXPECT_EQ(to_string(BalanceKind::kRoundRobin), "round_robin");
  EXPECT_EQ(to_string(BalanceKind::kLeastConn), "least_conn");
  EXPECT_EQ(to_string(BalanceKind::kRandomTwo), "random_two");
  EXPECT_EQ(to_string(BalanceKind::kHash), "hash");
}

TEST(ExcludeSetTest, InsertContainsAndCapacity) {
  ExcludeSet set;
  EXPECT_TRUE(set.empty());
  EXPECT_FALSE(set.contains(0));
  EXPECT_TRUE(set.insert(7));
  EXPECT_TRUE(set.insert(7));  // already there: no second entry
  EXPECT_EQ(set.size(), 1u);
  EXPECT_TRUE(set.contains(7));
  EXPECT_FALSE(set.contains(6));
  for (size_t i = 100; set.size() < ExcludeSet::kCapacity; ++i) EXPECT_TRUE(set.insert(i));
  EXPECT_FALSE(set.insert(5));
  EXPECT_FALSE(set.contains(5));
  set.clear();
  EXPECT_TRUE(set.empty());
  EXPECT_FALSE(set.contains(7));
}

// ---------------------------------------------------------------------------------------------
// Round robin

TEST(RoundRobinTest, WeightsFiveOneOneGiveNginxSequence) {
  // nginx documents {5, 1, 1} as a a b a c a a: the heavy endpoint is interleaved.
  auto endpoints = endpoints_with_weights({5, 1, 1});
  auto rr = make_balancer(BalanceKind::kRoundRobin, endpoints, /*seed=*/0);
  const std::vector<size_t> period = {0, 0, 1, 0, 2, 0, 0};
  std::vector<size_t> got;
  for (int i = 0; i < 21; ++i) got.push_back(rr->pick({}, {}).value());
  std::vector<size_t> expected;
  for (int i = 0; i < 3; ++i) expected.insert(expected.end(), period.begin(), period.end());
  EXPECT_EQ(got, expected);
}

TEST(RoundRobinTest, HeavyEndpointNeverGetsItsWholeWeightInARow) {
  // Plain weighted round robin gives a a a a a b c. The smooth sequence repeats a a b a c a a, so
  // the longest run of a is 4 (the end of one period and the start of the next), whatever the
  // starting offset, and every period still holds 5 a.
  auto endpoints = endpoints_with_weights({5, 1, 1});
  for (uint64_t seed : {0, 1, 3, 6, 12345}) {
    auto rr = make_balancer(BalanceKind::kRoundRobin, endpoints, seed);
    int run = 0;
    int longest = 0;
    for (int i = 0; i < 70; ++i) {
      run = rr->pick({}, {}).value() == 0 ? run + 1 : 0;
      longest = std::max(longest, run);
    }
    EXPECT_EQ(longest, 4) << "seed " << seed;
  }
}

TEST(RoundRobinTest, WeightsThreeOneOneAreExactOverWholePeriods) {
  // 3000 picks = 600 periods of 5: the counts are exact, tolerance 0.
  auto endpoints = endpoints_with_weights({3, 1, 1});
  auto rr = make_balancer(BalanceKind::kRoundRobin, endpoints, /*seed=*/42);
  EXPECT_EQ(count_picks(*rr, 3, 3000), (std::vector<int>{1800, 600, 600}));
}

TEST(RoundRobinTest, EqualWeightsAreExact) {
  auto endpoints = endpoints_with_weights({1, 1, 1});
  auto rr = make_balancer(BalanceKind::kRoundRobin, endpoints, /*seed=*/7);
  EXPECT_EQ(count_picks(*rr, 3, 3000), (std::vector<int>{1000, 1000, 1000}));
}

TEST(RoundRobinTest, SeedsStartWorkersOnDifferentEndpoints) {
  auto endpoints = endpoints_with_weights({1, 1, 1, 1});
  std::vector<size_t> first_picks;
  for (uint64_t seed = 0; seed < 4; ++seed) {
    first_picks.push_back(make_balancer(BalanceKind::kRoundRobin, endpoints, seed)->pick({}, {}).value());
  }
  std::sort(first_picks.begin(), first_picks.end());
  EXPECT_EQ(first_picks, (std::vector<size_t>{0, 1, 2, 3}));
}

TEST(RoundRobinTest, DownEndpointsShareIsSpreadOverTheOthers) {
  auto endpoints = endpoints_with_weights({3, 1, 1});
  auto rr = make_balancer(BalanceKind::kRoundRobin, endpoints, /*seed=*/0);
  endpoints[1].up = false;
  rr->on_state_change();
  EXPECT_EQ(count_picks(*rr, 3, 3000), (std::vector<int>{2250, 0, 750}));
}

// ---------------------------------------------------------------------------------------------
// Least connections

TEST(LeastConnTest, PicksTheLeastLoaded) {
  auto endpoints = endpoints_with_weights({1, 1, 1});
  endpoints[0].active = 5;
  endpoints[1].active = 2;
  endpoints[2].active = 7;
  auto lc = make_balancer(BalanceKind::kLeastConn, endpoints, /*seed=*/0);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(lc->pick({}, {}), 1u);
  endpoints[2].active = 0;
  EXPECT_EQ(lc->pick({}, {}), 2u);
}

TEST(LeastConnTest, LoadIsRelativeToWeight) {
  // (6 + 1) / 4 = 1.75 beats (1 + 1) / 1 = 2: the heavier endpoint wins with more connections.
  auto endpoints = endpoints_with_weights({4, 1});
  endpoints[0].active = 6;
  endpoints[1].active = 1;
  auto lc = make_balancer(BalanceKind::kLeastConn, endpoints, /*seed=*/0);
  EXPECT_EQ(lc->pick({}, {}), 0u);
  endpoints[0].active = 8;  // 9 / 4 = 2.25 > 2
  EXPECT_EQ(lc->pick({}, {}), 1u);
}

TEST(LeastConnTest, TiesAreSpreadRoundRobin) {
  // Loads never change here, so every pick is a three-way tie: each endpoint gets exactly a third.
  auto endpoints = endpoints_with_weights({1, 1, 1});
  for (auto& e : endpoints) e.active = 4;
  auto lc = make_balancer(BalanceKind::kLeastConn, endpoints, /*seed=*/9);
  EXPECT_EQ(count_picks(*lc, 3, 3000), (std::vector<int>{1000, 1000, 1000}));
}

TEST(LeastConnTest, TiesAmongTheLeastLoadedOnlyAreSpread) {
  auto endpoints = endpoints_with_weights({1, 1, 1, 1});
  endpoints[2].active = 1;
  auto lc = make_balancer(BalanceKind::kLeastConn, endpoints, /*seed=*/0);
  EXPECT_EQ(count_picks(*lc, 4, 3000), (std::vector<int>{1000, 1000, 0, 1000}));
}

TEST(LeastConnTest, WeightsAreRespectedUnderLoad) {
  // Tolerance 5%: once 50 connections are open the split is exactly 30/10/10; the few percent
  // of slack is the ramp-up, when the heavy endpoint takes the first connections.
  auto endpoints = endpoints_with_weights({3, 1, 1});
  auto lc = make_balancer(BalanceKind::kLeastConn, endpoints, /*seed=*/1);
  expect_near_counts(count_picks_with_load(*lc, endpoints, 3000, 50), {1800, 600, 600}, 0.05);
}

// ---------------------------------------------------------------------------------------------
// Random of two choices

TEST(RandomTwoTest, PicksTheLessLoadedOfTwo) {
  // With two endpoints both are always drawn, so the less loaded one always wins.
  auto endpoints = endpoints_with_weights({1, 1});
  endpoints[0].active = 10;
  auto r2 = make_balancer(BalanceKind::kRandomTwo, endpoints, /*seed=*/3);
  EXPECT_EQ(count_picks(*r2, 2, 1000), (std::vector<int>{0, 1000}));
}

TEST(RandomTwoTest, ChoosesAmongTwoNotAll) {
  // Loads 0 < 50 < 100. The most loaded always meets a lighter one and never wins. The lightest
  // wins whenever drawn, in 2 of 3 pairs: 2000 of 3000 (±10%); least_conn would give it all 3000.
  auto endpoints = endpoints_with_weights({1, 1, 1});
  endpoints[1].active = 50;
  endpoints[2].active = 100;
  auto r2 = make_balancer(BalanceKind::kRandomTwo, endpoints, /*seed=*/4);
  auto counts = count_picks(*r2, 3, 3000);
  EXPECT_EQ(counts[2], 0) << describe(counts);
  expect_near_counts(counts, {2000, 1000, 0}, 0.10);
}

TEST(RandomTwoTest, EqualLoadIsRoughlyUniform) {
  // Loads are equal and never change: the winner is a uniform draw. 1000 each ±10% (about 4
  // standard deviations).
  auto endpoints = endpoints_with_weights({1, 1, 1});
  auto r2 = make_balancer(BalanceKind::kRandomTwo, endpoints, /*seed=*/5);
  expect_near_counts(count_picks(*r2, 3, 3000), {1000, 1000, 1000}, 0.10);
}

TEST(RandomTwoTest, WeightsAreRespectedUnderLoad) {
  auto endpoints = endpoints_with_weights({3, 1, 1});
  auto r2 = make_balancer(BalanceKind::kRandomTwo, endpoints, /*seed=*/6);
  expect_near_counts(count_picks_with_load(*r2, endpoints, 3000, 50), {1800, 600, 600}, 0.10);
}

TEST(RandomTwoTest, DrawsAreWeighted) {
  // Weights 8:1:1 with loads held equal in weight terms ((a + 1) / w the same for all), so the
  // winner is the first draw: the draw alone must follow the weights. 30000 picks so that the
  // light endpoints' 3000 have ±10% at about 6 standard deviations.
  auto endpoints = endpoints_with_weights({8, 1, 1});
  endpoints[0].active = 7;
  auto r2 = make_balancer(BalanceKind::kRandomTwo, endpoints, /*seed=*/7);
  expect_near_counts(count_picks(*r2, 3, 30000), {24000, 3000, 3000}, 0.10);
}

// ---------------------------------------------------------------------------------------------
// Consistent hash

std::vector<size_t> map_keys(Balancer& balancer, int keys) {
  std::vector<size_t> mapping;
  for (int i = 0; i < keys; ++i) mapping.push_back(balancer.pick(key_context(i), {}).value());
  return mapping;
}

TEST(ConsistentHashTest, SameKeySameEndpointInEveryWorker) {
  auto endpoints = endpoints_with_weights({1, 1, 1, 1, 1});
  auto worker_a = make_balancer(BalanceKind::kHash, endpoints, /*seed=*/1);
  auto worker_b = make_balancer(BalanceKind::kHash, endpoints, /*seed=*/2);
  const auto first = map_keys(*worker_a, 1000);
  EXPECT_EQ(map_keys(*worker_a, 1000), first);
  EXPECT_EQ(map_keys(*worker_b, 1000), first);
}

TEST(ConsistentHashTest, KeysSpreadEvenly) {
  // 3000 distinct keys: 1000 each ±10% (about 4 standard deviations).
  auto endpoints = endpoints_with_weights({1, 1, 1});
  auto hash = make_balancer(BalanceKind::kHash, endpoints, /*seed=*/0);
  expect_near_counts(count_picks(*hash, 3, 3000), {1000, 1000, 1000}, 0.10);
}

TEST(ConsistentHashTest, WeightsSkewTheSpread) {
  auto endpoints = endpoints_with_weights({3, 1, 1});
  auto hash = make_balancer(BalanceKind::kHash, endpoints, /*seed=*/0);
  expect_near_counts(count_picks(*hash, 3, 3000), {1800, 600, 600}, 0.10);
}

TEST(ConsistentHashTest, WeightChangeRebuildsTheTable) {
  auto endpoints = endpoints_with_weights({1, 1, 1});
  auto hash = make_balancer(BalanceKind::kHash, endpoints, /*seed=*/0);
  endpoints[2].weight = 3;
  hash->on_state_change();
  expect_near_counts(count_picks(*hash, 3, 3000), {600, 600, 1800}, 0.10);
}

TEST(ConsistentHashTest, DownEndpointMovesOnlyItsOwnKeys) {
  constexpr int kKeys = 10000;
  auto endpoints = endpoints_with_weights({1, 1, 1, 1, 1});
  auto hash = make_balancer(BalanceKind::kHash, endpoints, /*seed=*/0);
  const auto before = map_keys(*hash, kKeys);

  endpoints[3].up = false;
  hash->on_state_change();
  const auto during = map_keys(*hash, kKeys);
  int moved = 0;
  std::vector<int> moved_to(5, 0);
  for (int i = 0; i < kKeys; ++i) {
    if (before[i] == 3) {
      ASSERT_NE(during[i], 3u) << "key " << i << " still on the down endpoint";
      ++moved;
      ++moved_to[during[i]];
    } else {
      ASSERT_EQ(during[i], before[i]) << "key " << i << " of a surviving endpoint moved";
    }
  }
  // One endpoint of five owns about 1/5 of the keys: between 15% and 25% move.
  EXPECT_GE(moved, kKeys * 15 / 100);
  EXPECT_LE(moved, kKeys * 25 / 100);
  // The orphans spread over the four survivors, not onto one neighbour: a quarter each ±25%.
  for (size_t e : {0, 1, 2, 4}) {
    EXPECT_NEAR(moved_to[e], moved / 4.0, moved / 4.0 * 0.25) << "endpoint " << e;
  }

  endpoints[3].up = true;
  hash->on_state_change();
  EXPECT_EQ(map_keys(*hash, kKeys), before);
}

TEST(ConsistentHashTest, FallThroughIsTheSameInEveryWorker) {
  auto endpoints = endpoints_with_weights({1, 1, 1, 1, 1});
  endpoints[0].up = false;
  endpoints[2].up = false;
  auto worker_a = make_balancer(BalanceKind::kHash, endpoints, /*seed=*/11);
  auto worker_b = make_balancer(BalanceKind::kHash, endpoints, /*seed=*/12);
  EXPECT_EQ(map_keys(*worker_a, 2000), map_keys(*worker_b, 2000));
}

TEST(ConsistentHashTest, MostKeysStayAcrossAReloadThatRemovesAnEndpoint) {
  // With hash_id set from the address, a new balancer over the list without one endpoint keeps
  // the survivors' keys where they were; Maglev's rebuild may move a few (allowed: up to 5%).
  std::vector<EndpointState> before_reload;
  for (int i = 0; i < 5; ++i) {
    before_reload.push_back(
        {.weight = 1, .hash_id = hash_bytes("10.0.0." + std::to_string(10 + i) + ":8080")});
  }
  std::vector<EndpointState> after_reload = before_reload;
  after_reload.erase(after_reload.begin() + 1);
  auto old_hash = make_balancer(BalanceKind::kHash, before_reload, 0);
  auto new_hash = make_balancer(BalanceKind::kHash, after_reload, 0);
  const auto before = map_keys(*old_hash, 10000);
  const auto after = map_keys(*new_hash, 10000);
  int survivors = 0;
  int stayed = 0;
  for (size_t i = 0; i < before.size(); ++i) {
    if (before[i] == 1) continue;
    ++survivors;
    const size_t new_index = before[i] < 1 ? before[i] : before[i] - 1;
    if (after[i] == new_index) ++stayed;
  }
  EXPECT_GE(stayed, survivors * 95 / 100) << stayed << " of " << survivors << " stayed";
}

TEST(ConsistentHashTest, WithoutAKeyPicksAreWeightedRandom) {
  auto endpoints = endpoints_with_weights({3, 1, 1});
  auto hash = make_balancer(BalanceKind::kHash, endpoints, /*seed=*/8);
  std::vector<int> counts(3, 0);
  for (int i = 0; i < 3000; ++i) ++counts.at(hash->pick({}, {}).value());
  expect_near_counts(counts, {1800, 600, 600}, 0.10);
}

// ---------------------------------------------------------------------------------------------
// Hash keys

TEST(HashKeyTest, HashBytesIsStableAndSensitive) {
  // The value is part of the contract: a change would move every client after an upgrade, and
  // would map keys differently in two lbd versions running side by side.
  EXPECT_EQ(hash_bytes(""), 0xa706dd2f4d197e6full);
  EXPECT_EQ(hash_bytes("10.0.0.1"), 0x3ea426f9b74844f8ull);
  EXPECT_EQ(hash_bytes("abcdefghijklmnopq"), 0xbf76721d0b01e715ull);  // two words and a tail
  EXPECT_EQ(hash_bytes("10.0.0.1"), hash_bytes(std::string("10.0.0.1")));
  EXPECT_NE(hash_bytes("10.0.0.1"), hash_bytes("10.0.0.2"));
  EXPECT_NE(hash_bytes(""), hash_bytes(std::string_view("\0", 1)));
  EXPECT_NE(hash_bytes("abcdefgh"), hash_bytes(std::string_view("abcdefgh\0", 9)));
  EXPECT_NE(hash_bytes("abcdefghi"), hash_bytes("abcdefghj"));  // difference in the tail word
}

sockaddr_in ipv4(const char* ip, uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  EXPECT_EQ(inet_pton(AF_INET, ip, &sa.sin_addr), 1);
  return sa;
}

sockaddr_in6 ipv6(const char* ip, uint16_t port) {
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_port = htons(port);
  EXPECT_EQ(inet_pton(AF_INET6, ip, &sa.sin6_addr), 1);
  return sa;
}

const sockaddr& as_sockaddr(const auto& sa) { return reinterpret_cast<const sockaddr&>(sa); }

TEST(HashKeyTest, SourceAddressIgnoresThePort) {
  const auto a = ipv4("192.0.2.7", 40000);
  const auto b = ipv4("192.0.2.7", 40001);
  const auto c = ipv4("192.0.2.8", 40000);
  ASSERT_TRUE(hash_source_address(as_sockaddr(a)).has_value());
  EXPECT_EQ(hash_source_address(as_sockaddr(a)), hash_source_address(as_sockaddr(b)));
  EXPECT_NE(hash_source_address(as_sockaddr(a)), hash_source_address(as_sockaddr(c)));

  const auto d = ipv6("2001:db8::1", 1);
  const auto e = ipv6("2001:db8::1", 2);
  const auto f = ipv6("2001:db8::2", 1);
  EXPECT_EQ(hash_source_address(as_sockaddr(d)), hash_source_address(as_sockaddr(e)));
  EXPECT_NE(hash_source_address(as_sockaddr(d)), hash_source_address(as_sockaddr(f)));
}

TEST(HashKeyTest, MappedIpv4HashesAsIpv4) {
  const auto v4 = ipv4("192.0.2.7", 1);
  const auto mapped = ipv6("::ffff:192.0.2.7", 2);
  EXPECT_EQ(hash_source_address(as_sockaddr(v4)), hash_source_address(as_sockaddr(mapped)));
}

TEST(HashKeyTest, UnixAddressHasNoKey) {
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  EXPECT_EQ(hash_source_address(as_sockaddr(un)), std::nullopt);
}

// ---------------------------------------------------------------------------------------------
// Rules every balancer follows

class EveryBalancerTest : public ::testing::TestWithParam<BalanceKind> {
 protected:
  std::unique_ptr<Balancer> make(std::vector<EndpointState>& endpoints, uint64_t seed = 1) {
    return make_balancer(GetParam(), endpoints, seed);
  }
};

TEST_P(EveryBalancerTest, DownEndpointsAreNeverPicked) {
  auto endpoints = endpoints_with_weights({1, 2, 1, 3, 1});
  auto balancer = make(endpoints);
  endpoints[1].up = false;
  endpoints[3].up = false;
  balancer->on_state_change();
  auto counts = count_picks(*balancer, 5, 3000);
  EXPECT_EQ(counts[1], 0) << describe(counts);
  EXPECT_EQ(counts[3], 0) << describe(counts);
  // The rest still share the traffic.
  EXPECT_GT(counts[0], 0) << describe(counts);
  EXPECT_GT(counts[2], 0) << describe(counts);
  EXPECT_GT(counts[4], 0) << describe(counts);
}

TEST_P(EveryBalancerTest, DownEndpointsAreNeverPickedEvenWithoutNotification) {
  // A cluster that forgets on_state_change() sends fewer connections where they belong, but
  // never to a down endpoint.
  auto endpoints = endpoints_with_weights({1, 1, 1});
  auto balancer = make(endpoints);
  endpoints[0].up = false;
  auto counts = count_picks(*balancer, 3, 1000);
  EXPECT_EQ(counts[0], 0) << describe(counts);
}

TEST_P(EveryBalancerTest, ComesBackAfterUp) {
  auto endpoints = endpoints_with_weights({1, 1, 1});
  auto balancer = make(endpoints);
  endpoints[0].up = false;
  balancer->on_state_change();
  EXPECT_EQ(count_picks(*balancer, 3, 300)[0], 0);
  endpoints[0].up = true;
  balancer->on_state_change();
  EXPECT_GT(count_picks(*balancer, 3, 300)[0], 0);
}

TEST_P(EveryBalancerTest, AllDownGivesNothing) {
  auto endpoints = endpoints_with_weights({1, 1, 1});
  auto balancer = make(endpoints);
  for (auto& e : endpoints) e.up = false;
  balancer->on_state_change();
  for (int i = 0; i < 20; ++i) EXPECT_EQ(balancer->pick(key_context(i), {}), std::nullopt);
}

TEST_P(EveryBalancerTest, WeightZeroDrains) {
  auto endpoints = endpoints_with_weights({1, 0, 1});
  auto balancer = make(endpoints);
  EXPECT_EQ(count_picks(*balancer, 3, 1000)[1], 0);
  endpoints[0].weight = 0;
  endpoints[2].weight = 0;
  balancer->on_state_change();
  EXPECT_EQ(balancer->pick(key_context(0), {}), std::nullopt);
}

TEST_P(EveryBalancerTest, RetriesGoElsewhere) {
  auto endpoints = endpoints_with_weights({1, 1, 1});
  auto balancer = make(endpoints);
  for (int i = 0; i < 300; ++i) {
    const PickContext ctx = key_context(i);
    ExcludeSet tried;
    const size_t first = balancer->pick(ctx, tried).value();
    tried.insert(first);
    const size_t second = balancer->pick(ctx, tried).value();
    ASSERT_NE(second, first) << "request " << i;
    tried.insert(second);
    const size_t third = balancer->pick(ctx, tried).value();
    ASSERT_EQ(first + second + third, 3u) << "request " << i << ": " << first << second << third;
    tried.insert(third);
    ASSERT_EQ(balancer->pick(ctx, tried), std::nullopt) << "request " << i;
  }
}

TEST_P(EveryBalancerTest, ExcludedEndpointsAreAvoidedEveryTime) {
  auto endpoints = endpoints_with_weights({3, 1, 2, 1});
  auto balancer = make(endpoints);
  const ExcludeSet tried = exclude_of({0, 2});
  std::vector<int> counts(4, 0);
  for (int i = 0; i < 1000; ++i) ++counts.at(balancer->pick(key_context(i), tried).value());
  EXPECT_EQ(counts[0], 0) << describe(counts);
  EXPECT_EQ(counts[2], 0) << describe(counts);
  EXPECT_GT(counts[1], 0) << describe(counts);
  EXPECT_GT(counts[3], 0) << describe(counts);
}

TEST_P(EveryBalancerTest, ExcludingEverythingUpGivesNothing) {
  auto endpoints = endpoints_with_weights({1, 1, 1});
  auto balancer = make(endpoints);
  endpoints[1].up = false;
  balancer->on_state_change();
  EXPECT_EQ(balancer->pick(key_context(0), exclude_of({0, 2})), std::nullopt);
}

TEST_P(EveryBalancerTest, SingleEndpoint) {
  auto endpoints = endpoints_with_weights({1});
  auto balancer = make(endpoints);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(balancer->pick(key_context(i), {}), 0u);
  EXPECT_EQ(balancer->pick(key_context(0), exclude_of({0})), std::nullopt);
  endpoints[0].up = false;
  balancer->on_state_change();
  EXPECT_EQ(balancer->pick(key_context(0), {}), std::nullopt);
}

TEST_P(EveryBalancerTest, NoEndpoints) {
  std::vector<EndpointState> endpoints;
  auto balancer = make(endpoints);
  EXPECT_EQ(balancer->pick(key_context(0), {}), std::nullopt);
  balancer->on_state_change();
  EXPECT_EQ(balancer->pick({}, exclude_of({0})), std::nullopt);
}

TEST_P(EveryBalancerTest, ManyEndpointsAllGetTraffic) {
  // 200 endpoints, weights 1..4, under load: every endpoint receives connections and none
  // receives more than three times its weighted share.
  std::vector<EndpointState> endpoints;
  uint64_t total_weight = 0;
  for (uint32_t i = 0; i < 200; ++i) {
    endpoints.push_back({.weight = 1 + i % 4});
    total_weight += endpoints.back().weight;
  }
  auto balancer = make(endpoints);
  constexpr int kPicks = 20000;
  auto counts = count_picks_with_load(*balancer, endpoints, kPicks, 400);
  for (size_t i = 0; i < endpoints.size(); ++i) {
    const double share = static_cast<double>(kPicks) * endpoints[i].weight / total_weight;
    EXPECT_GT(counts[i], 0) << "endpoint " << i;
    EXPECT_LT(counts[i], 3 * share) << "endpoint " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Kinds, EveryBalancerTest,
                         ::testing::Values(BalanceKind::kRoundRobin, BalanceKind::kLeastConn,
                                           BalanceKind::kRandomTwo, BalanceKind::kHash),
                         [](const auto& info) { return std::string(to_string(info.param)); });

}  // namespace
}  // namespace lbd::balancer
