#include "sim/engine/block_pool.h"

#include <xxhash.h>

#include <cassert>

namespace infergate::sim {

BlockHash ChainHash(BlockHash parent, std::span<const TokenId> tokens, std::uint64_t extra) {
  // The parent and the extra key go in as the seed; a zero result is remapped so that 0
  // can mean "no parent".
  const XXH64_hash_t seed = parent * 0x9E3779B97F4A7C15ULL ^ extra;
  BlockHash h = XXH3_64bits_withSeed(tokens.data(), tokens.size_bytes(), seed);
  return h == 0 ? 1 : h;
}

BlockPool::BlockPool(std::int64_t num_blocks, bool caching)
    : caching_(caching),
      refs_(static_cast<std::size_t>(num_blocks), 0),
      hash_(static_cast<std::size_t>(num_blocks), 0),
      has_hash_(static_cast<std::size_t>(num_blocks), false),
      prev_(static_cast<std::size_t>(num_blocks), kNone),
      next_(static_cast<std::size_t>(num_blocks), kNone) {
  for (BlockId b = 0; b < static_cast<BlockId>(num_blocks); ++b) PushBack(b);
}

void BlockPool::PushBack(BlockId b) {
  prev_[b] = tail_;
  next_[b] = kNone;
  if (tail_ != kNone) {
    next_[tail_] = b;
  } else {
    head_ = b;
  }
  tail_ = b;
  ++num_free_;
}

void BlockPool::Unlink(BlockId b) {
  if (prev_[b] != kNone) {
    next_[prev_[b]] = next_[b];
  } else {
    head_ = next_[b];
  }
  if (next_[b] != kNone) {
    prev_[next_[b]] = prev_[b];
  } else {
    tail_ = prev_[b];
  }
  prev_[b] = next_[b] = kNone;
  --num_free_;
}

BlockPool::Hit BlockPool::Lookup(std::span<const BlockHash> chain) const {
  Hit hit;
  if (!caching_) return hit;
  for (BlockHash h : chain) {
    auto it = by_hash_.find(h);
    if (it == by_hash_.end()) break;
    ++hit.blocks;
    if (refs_[it->second] == 0) ++hit.free_blocks;
  }
  return hit;
}

void BlockPool::AcquireCached(std::span<const BlockHash> chain, int n, std::vector<BlockId>& out) {
  for (int i = 0; i < n; ++i) {
    auto it = by_hash_.find(chain[static_cast<std::size_t>(i)]);
    assert(it != by_hash_.end());
    const BlockId b = it->second;
    if (refs_[b]++ == 0) Unlink(b);
    out.push_back(b);
  }
}

void BlockPool::Allocate(std::int64_t n, std::vector<BlockId>& out) {
  assert(n <= num_free_);
  for (std::int64_t i = 0; i < n; ++i) {
    const BlockId b = head_;
    Unlink(b);
    if (has_hash_[b]) {
      by_hash_.erase(hash_[b]);
      has_hash_[b] = false;
    }
    refs_[b] = 1;
    out.push_back(b);
  }
}

void BlockPool::Register(BlockId block, BlockHash hash) {
  if (!caching_ || has_hash_[block]) return;
  if (by_hash_.emplace(hash, block).second) {
    hash_[block] = hash;
    has_hash_[block] = true;
  }
}

void BlockPool::Release(std::span<const BlockId> blocks) {
  for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) {
    const BlockId b = *it;
    assert(refs_[b] > 0);
    if (--refs_[b] == 0) PushBack(b);
  }
}

}  // namespace infergate::sim
