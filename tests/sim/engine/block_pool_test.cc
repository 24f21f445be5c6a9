#include "sim/engine/block_pool.h"

#include <gtest/gtest.h>

#include <vector>

namespace infergate::sim {
namespace {

std::vector<BlockHash> Chain(int n, std::uint32_t salt, std::uint64_t extra = 0) {
  std::vector<BlockHash> out;
  BlockHash parent = 0;
  for (int b = 0; b < n; ++b) {
    std::vector<TokenId> block(16);
    for (int i = 0; i < 16; ++i) block[static_cast<std::size_t>(i)] = salt + b * 16 + i;
    parent = ChainHash(parent, block, extra);
    out.push_back(parent);
  }
  return out;
}

TEST(SimBlockPool, AllocatesAndReleases) {
  BlockPool pool(8, /*caching=*/false);
  std::vector<BlockId> a, b;
  pool.Allocate(3, a);
  pool.Allocate(5, b);
  EXPECT_EQ(pool.num_free(), 0);
  EXPECT_EQ(a, (std::vector<BlockId>{0, 1, 2}));
  pool.Release(a);
  EXPECT_EQ(pool.num_free(), 3);
  pool.Release(b);
  EXPECT_EQ(pool.num_free(), 8);
}

TEST(SimBlockPool, ChainHashDependsOnTheWholePrefixAndTheExtraKey) {
  const auto x = Chain(3, 100);
  const auto y = Chain(3, 100);
  EXPECT_EQ(x, y);
  // Same third block content after a different first block: different hash.
  std::vector<TokenId> block(16, 7);
  EXPECT_NE(ChainHash(x[1], block, 0), ChainHash(Chain(2, 999)[1], block, 0));
  EXPECT_NE(Chain(3, 100, /*extra=*/1), x);
}

TEST(SimBlockPool, CachedBlocksAreFoundUntilEvictedLeastRecentlyFreedFirst) {
  BlockPool pool(4, /*caching=*/true);
  const auto chain = Chain(2, 1);
  std::vector<BlockId> seq;
  pool.Allocate(2, seq);
  pool.Register(seq[0], chain[0]);
  pool.Register(seq[1], chain[1]);
  EXPECT_EQ(pool.Lookup(chain).blocks, 2);
  EXPECT_EQ(pool.Lookup(chain).free_blocks, 0);
  pool.Release(seq);
  // Free but still cached: counts as free and can be hit.
  EXPECT_EQ(pool.num_free(), 4);
  EXPECT_EQ(pool.Lookup(chain).blocks, 2);
  EXPECT_EQ(pool.Lookup(chain).free_blocks, 2);
  // The two never-used blocks go first; then the sequence's tail (released first).
  std::vector<BlockId> other;
  pool.Allocate(2, other);
  EXPECT_EQ(pool.Lookup(chain).blocks, 2);
  pool.Allocate(1, other);
  EXPECT_EQ(other.back(), seq[1]);
  EXPECT_EQ(pool.Lookup(chain).blocks, 1);  // the head of the chain survives
  // Acquiring a cached free block takes it off the free queue.
  std::vector<BlockId> hit;
  pool.AcquireCached(chain, 1, hit);
  EXPECT_EQ(hit, (std::vector<BlockId>{seq[0]}));
  EXPECT_EQ(pool.num_free(), 0);
}

TEST(SimBlockPool, SharedBlocksStayReferencedUntilTheLastUserReleases) {
  BlockPool pool(4, /*caching=*/true);
  const auto chain = Chain(1, 5);
  std::vector<BlockId> a, b;
  pool.Allocate(1, a);
  pool.Register(a[0], chain[0]);
  pool.AcquireCached(chain, 1, b);
  EXPECT_EQ(a, b);
  pool.Release(a);
  EXPECT_EQ(pool.num_free(), 3);
  pool.Release(b);
  EXPECT_EQ(pool.num_free(), 4);
}

TEST(SimBlockPool, DuplicateContentKeepsTheFirstCopy) {
  BlockPool pool(4, /*caching=*/true);
  const auto chain = Chain(1, 5);
  std::vector<BlockId> a, b;
  pool.Allocate(1, a);
  pool.Allocate(1, b);
  pool.Register(a[0], chain[0]);
  pool.Register(b[0], chain[0]);
  EXPECT_EQ(pool.num_cached(), 1);
  std::vector<BlockId> hit;
  pool.AcquireCached(chain, 1, hit);
  EXPECT_EQ(hit[0], a[0]);
}

TEST(SimBlockPool, WithoutCachingNothingIsFound) {
  BlockPool pool(4, /*caching=*/false);
  const auto chain = Chain(1, 5);
  std::vector<BlockId> a;
  pool.Allocate(1, a);
  pool.Register(a[0], chain[0]);
  EXPECT_EQ(pool.Lookup(chain).blocks, 0);
  EXPECT_EQ(pool.num_cached(), 0);
}

}  // namespace
}  // namespace infergate::sim
