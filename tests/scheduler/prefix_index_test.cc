#include "scheduler/prefix_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "scheduler_harness.h"

namespace infergate {
namespace {

using testing::Text;

std::vector<std::uint64_t> Hashes(std::string_view model, std::string_view prompt,
                                  PrefixIndexOptions o = {}) {
  std::vector<std::uint64_t> h;
  ComputeBlockHashes(model, prompt, o, &h);
  return h;
}

std::vector<std::uint32_t> MatchAll(const PrefixIndex& idx, const std::vector<std::uint64_t>& h,
                                    std::size_t slots) {
  std::vector<std::uint32_t> m(slots, 99);
  idx.Match(h, m);
  return m;
}

TEST(ComputeBlockHashes, FullBlocksOnlyAndCapped) {
  EXPECT_TRUE(Hashes("m", Text(63, 1)).empty());
  EXPECT_EQ(Hashes("m", Text(64, 1)).size(), 1u);
  EXPECT_EQ(Hashes("m", Text(64 * 5 + 63, 1)).size(), 5u);
  EXPECT_EQ(Hashes("m", Text(64 * 300, 1)).size(), 256u);
  PrefixIndexOptions small{16, 3, 100};
  EXPECT_EQ(Hashes("m", Text(100, 1), small).size(), 3u);
}

TEST(ComputeBlockHashes, ChainEncodesThePrefix) {
  const std::string shared = Text(64 * 4, 7);
  const auto a = Hashes("m", shared + Text(64 * 2, 8));
  const auto b = Hashes("m", shared + Text(64 * 2, 9));
  ASSERT_EQ(a.size(), 6u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(a[i], b[i]);
  EXPECT_NE(a[4], b[4]);
  // A different model seeds a different chain; a change in block 0 changes every hash.
  const auto other_model = Hashes("other", shared);
  for (int i = 0; i < 4; ++i) EXPECT_NE(a[i], other_model[i]);
  std::string changed = shared;
  changed[3] = changed[3] == 'x' ? 'y' : 'x';
  const auto c = Hashes("m", changed);
  for (int i = 0; i < 4; ++i) EXPECT_NE(a[i], c[i]);
  // Equal blocks at different depths hash differently (the chain, not the block).
  const std::string block = Text(64, 3);
  const auto rep = Hashes("m", block + block);
  EXPECT_NE(rep[0], rep[1]);
}

TEST(PrefixIndex, LongestLeadingRunPerEndpoint) {
  PrefixIndex idx;
  const auto h = Hashes("m", Text(64 * 10, 1));
  idx.Insert(0, std::span(h).first(10));
  idx.Insert(1, std::span(h).first(4));
  // Endpoint 2 holds blocks 0..1 and 5..9 but not 2: its run stops at 2.
  idx.Insert(2, std::span(h).first(2));
  idx.Insert(2, std::span(h).subspan(5, 5));
  const auto m = MatchAll(idx, h, 4);
  EXPECT_EQ(m, (std::vector<std::uint32_t>{10, 4, 2, 0}));
}

TEST(ComputeBlockHashes, ChainHoldsForAnyBlockSize) {
  const PrefixIndexOptions o{16, 1024, 100};
  const std::string shared = Text(16 * 9, 4);
  const auto a = Hashes("m", shared + Text(16 * 3, 5), o);
  const auto b = Hashes("m", shared + Text(16 * 3, 6), o);
  ASSERT_EQ(a.size(), 12u);
  for (int i = 0; i < 9; ++i) EXPECT_EQ(a[i], b[i]);
  for (int i = 9; i < 12; ++i) EXPECT_NE(a[i], b[i]);
  EXPECT_EQ(std::set<std::uint64_t>(a.begin(), a.end()).size(), a.size());
}

TEST(PrefixIndex, LongChainsMatchTheirRunWhereverItStops) {
  // Matching looks blocks up well ahead of the one it checks; runs ending before, inside
  // and past that window, and at the very end, must all come out exact.
  PrefixIndex idx;
  const auto h = Hashes("m", Text(64 * 300, 11), PrefixIndexOptions{64, 1024, 100'000});
  ASSERT_EQ(h.size(), 300u);
  const std::vector<std::uint32_t> runs = {0, 1, 11, 12, 13, 24, 25, 40, 299, 300};
  for (std::uint32_t s = 0; s < runs.size(); ++s) {
    idx.Insert(s, std::span(h).first(runs[s]));
  }
  // A hole: slot 10 holds blocks 0..99 and 101..299 (its run stops at 100).
  idx.Insert(10, std::span(h).first(100));
  idx.Insert(10, std::span(h).subspan(101));
  std::vector<std::uint32_t> want = runs;
  want.push_back(100);
  EXPECT_EQ(MatchAll(idx, h, runs.size() + 1), want);
  // A prompt shorter than the lookahead.
  EXPECT_EQ(MatchAll(idx, std::vector<std::uint64_t>(h.begin(), h.begin() + 5), 3),
            (std::vector<std::uint32_t>{0, 1, 5}));
}

TEST(PrefixIndex, NoMatchAndOutOfRangeSlots) {
  PrefixIndex idx;
  const auto h = Hashes("m", Text(64 * 3, 1));
  idx.Insert(5, h);
  EXPECT_EQ(MatchAll(idx, Hashes("m", Text(64 * 3, 2)), 6), (std::vector<std::uint32_t>(6, 0)));
  // A match array shorter than the slot ids simply does not report them.
  EXPECT_EQ(MatchAll(idx, h, 3), (std::vector<std::uint32_t>(3, 0)));
  EXPECT_EQ(MatchAll(idx, h, 6)[5], 3u);
}

TEST(PrefixIndex, LruEvictsTheTailOfAPromptFirst) {
  PrefixIndex idx(PrefixIndexOptions{64, 256, 6});
  const auto a = Hashes("m", Text(64 * 4, 1));
  const auto b = Hashes("m", Text(64 * 4, 2));
  idx.Insert(0, a);
  idx.Insert(0, b);  // 8 blocks > 6: two of a's are evicted, deepest first
  EXPECT_EQ(idx.EndpointEntries(0), 6u);
  EXPECT_EQ(MatchAll(idx, a, 1)[0], 2u);
  EXPECT_EQ(MatchAll(idx, b, 1)[0], 4u);
  // Touching a again makes it recent; now b's tail goes.
  idx.Insert(0, a);
  EXPECT_EQ(MatchAll(idx, a, 1)[0], 4u);
  EXPECT_EQ(MatchAll(idx, b, 1)[0], 2u);
}

// A peer's message can carry any hash values. Hash 0 and hash 1 once shared a holder set:
// evicting one node cleared the other's bit and dropped the set, and evicting the other
// then dereferenced no set (sync_fuzz, regression-prefix-hash-zero). 0 is never indexed.
TEST(PrefixIndex, AHashOfZeroIsNeverIndexedAndEvictionStaysWhole) {
  PrefixIndex idx(PrefixIndexOptions{64, 256, 2});
  const std::vector<std::uint64_t> zero_one = {0, 1}, one = {1}, zero = {0};
  idx.Insert(0, zero_one);
  EXPECT_EQ(idx.EndpointEntries(0), 1u);
  EXPECT_EQ(MatchAll(idx, zero, 2), (std::vector<std::uint32_t>{0, 0}));
  EXPECT_EQ(MatchAll(idx, zero_one, 2), (std::vector<std::uint32_t>{0, 0}))
      << "a chain that starts at an unindexed block matches nothing";
  EXPECT_EQ(MatchAll(idx, one, 2), (std::vector<std::uint32_t>{1, 0}));
  // Newer blocks push both out of endpoint 0's LRU (the old code crashed here).
  idx.Insert(0, std::vector<std::uint64_t>{5, 6, 7});
  EXPECT_EQ(MatchAll(idx, one, 2), (std::vector<std::uint32_t>{0, 0}));
  // And the other ways out: ageing and removal.
  idx.Insert(1, zero_one);
  idx.Insert(0, zero_one);
  idx.Age(1, 10);
  idx.RemoveEndpoint(0);
  EXPECT_EQ(MatchAll(idx, one, 2), (std::vector<std::uint32_t>{0, 0}));
  EXPECT_EQ(idx.EndpointEntries(1), 2u);
}

TEST(PrefixIndex, CapacitiesArePerEndpoint) {
  PrefixIndex idx(PrefixIndexOptions{64, 256, 100});
  const auto h = Hashes("m", Text(64 * 50, 1));
  idx.Insert(0, h);
  idx.Insert(1, h);
  idx.SetEndpointCapacity(1, 10);
  EXPECT_EQ(idx.EndpointEntries(0), 50u);
  EXPECT_EQ(idx.EndpointEntries(1), 10u);
  EXPECT_EQ(idx.EndpointCapacity(1), 10u);
  EXPECT_EQ(MatchAll(idx, h, 2), (std::vector<std::uint32_t>{50, 10}));
  idx.SetEndpointCapacity(1, 0);  // back to the default
  EXPECT_EQ(idx.EndpointCapacity(1), 100u);
}

TEST(PrefixIndex, AgingPushesIdlePrefixesOutOfThatEndpointOnly) {
  PrefixIndex idx(PrefixIndexOptions{64, 256, 10});
  const auto a = Hashes("m", Text(64 * 4, 1));
  const auto b = Hashes("m", Text(64 * 4, 2));
  idx.Insert(0, a);
  idx.Insert(0, b);
  idx.Insert(1, a);
  // Generated blocks take 2 of endpoint 0's free room, then push a (the older prompt) out
  // tail first; b, touched after a, keeps its blocks longer.
  idx.Age(0, 2);
  EXPECT_EQ(idx.EndpointEntries(0), 10u);
  EXPECT_EQ(MatchAll(idx, a, 2), (std::vector<std::uint32_t>{4, 4}));
  idx.Age(0, 3);
  EXPECT_EQ(idx.EndpointEntries(0), 10u);
  EXPECT_EQ(MatchAll(idx, a, 2), (std::vector<std::uint32_t>{1, 4}));
  EXPECT_EQ(MatchAll(idx, b, 2), (std::vector<std::uint32_t>{4, 0}));
  // A prompt used again is recent, and aging takes the idle one.
  idx.Insert(0, a);
  idx.Age(0, 4);
  EXPECT_EQ(MatchAll(idx, a, 2), (std::vector<std::uint32_t>{4, 4}));
  EXPECT_EQ(MatchAll(idx, b, 2)[0], 0u);
  // The aged blocks match no prompt, and each is its own entry (no two collide): b is gone.
  EXPECT_EQ(idx.DistinctHashes(), 4u + 6u);  // a, and the 6 aged blocks not yet evicted
  // A huge count costs one capacity's worth: everything else is gone, nothing hangs.
  idx.Age(0, SIZE_MAX);
  EXPECT_EQ(idx.EndpointEntries(0), 10u);
  EXPECT_EQ(MatchAll(idx, a, 2), (std::vector<std::uint32_t>{0, 4}));
  idx.RemoveEndpoint(0);
  EXPECT_EQ(idx.TotalEntries(), 4u);
}

TEST(PrefixIndex, RemoveEndpointForgetsOnlyIt) {
  PrefixIndex idx;
  const auto h = Hashes("m", Text(64 * 8, 1));
  idx.Insert(0, h);
  idx.Insert(1, h);
  EXPECT_EQ(idx.TotalEntries(), 16u);
  EXPECT_EQ(idx.DistinctHashes(), 8u);
  idx.RemoveEndpoint(0);
  EXPECT_EQ(MatchAll(idx, h, 2), (std::vector<std::uint32_t>{0, 8}));
  EXPECT_EQ(idx.TotalEntries(), 8u);
  idx.RemoveEndpoint(1);
  EXPECT_EQ(idx.TotalEntries(), 0u);
  EXPECT_EQ(idx.DistinctHashes(), 0u);
}

TEST(PrefixIndex, ManyEndpointsAcrossBitsetWords) {
  PrefixIndex idx;
  const auto h = Hashes("m", Text(64 * 6, 1));
  idx.Insert(3, h);
  idx.Insert(63, std::span(h).first(5));
  idx.Insert(64, std::span(h).first(4));  // widens the holder sets past one word
  idx.Insert(200, std::span(h).first(2));
  std::vector<std::uint32_t> m(256);
  idx.Match(h, m);
  EXPECT_EQ(m[3], 6u);
  EXPECT_EQ(m[63], 5u);
  EXPECT_EQ(m[64], 4u);
  EXPECT_EQ(m[200], 2u);
  EXPECT_EQ(std::count(m.begin(), m.end(), 0u), 252);
  idx.RemoveEndpoint(64);
  idx.Match(h, m);
  EXPECT_EQ(m[64], 0u);
  EXPECT_EQ(m[200], 2u);
  EXPECT_EQ(idx.DistinctHashes(), 6u);
}

// Random inserts, evictions and removals against a simple model of per-endpoint LRUs.
TEST(PrefixIndex, AgreesWithAReferenceModel) {
  constexpr std::size_t kCap = 40;
  constexpr std::uint32_t kSlots = 70;  // more than one bitset word
  PrefixIndex idx(PrefixIndexOptions{64, 256, kCap});
  std::vector<std::vector<std::uint64_t>> lru(kSlots);  // front = most recent
  std::mt19937_64 rng(42);
  // A small universe of prompts sharing prefixes, so table entries are shared.
  std::vector<std::vector<std::uint64_t>> prompts;
  const std::string base = Text(64 * 12, 100);
  for (int i = 0; i < 30; ++i) {
    const std::size_t shared = (rng() % 12) * 64;
    prompts.push_back(Hashes("m", base.substr(0, shared) + Text(64 * (1 + rng() % 10), i)));
  }
  for (int step = 0; step < 6000; ++step) {
    const std::uint32_t slot = rng() % kSlots;
    if (rng() % 50 == 0) {
      idx.RemoveEndpoint(slot);
      lru[slot].clear();
      continue;
    }
    const auto& p = prompts[rng() % prompts.size()];
    idx.Insert(slot, p);
    for (std::size_t i = p.size(); i-- > 0;) {
      auto& l = lru[slot];
      l.erase(std::remove(l.begin(), l.end(), p[i]), l.end());
      l.insert(l.begin(), p[i]);
    }
    if (lru[slot].size() > kCap) lru[slot].resize(kCap);

    const auto& q = prompts[rng() % prompts.size()];
    std::vector<std::uint32_t> got(kSlots);
    idx.Match(q, got);
    // Check the endpoint just changed and a few others; everything every 200 steps.
    std::vector<std::uint32_t> check{slot, static_cast<std::uint32_t>(rng() % kSlots),
                                     static_cast<std::uint32_t>(rng() % kSlots)};
    if (step % 200 == 0) {
      check.clear();
      for (std::uint32_t s = 0; s < kSlots; ++s) check.push_back(s);
    }
    for (std::uint32_t s : check) {
      std::set<std::uint64_t> held(lru[s].begin(), lru[s].end());
      std::uint32_t run = 0;
      while (run < q.size() && held.count(q[run])) ++run;
      // The walk stops only when no endpoint extends its run, so runs agree exactly.
      ASSERT_EQ(got[s], run) << "step " << step << " slot " << s;
      ASSERT_EQ(idx.EndpointEntries(s), lru[s].size());
    }
  }
}

}  // namespace
}  // namespace infergate
