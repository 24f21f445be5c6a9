// BlockPool: the paged KV cache of one virtual engine, with automatic prefix caching.
//
// Blocks are counted, not stored: a block is an index with a reference count and, once it
// holds a full block of tokens that was registered, the hash of its content. A free block
// is one nobody references; free blocks sit in a queue, least recently freed first, and
// are handed out from its front. A free block that still holds a registered hash can be
// found again by that hash (a prefix-cache hit) until it is handed out for new content,
// which evicts the hash. This is vLLM's scheme (V1 KVCacheManager / V0 prefix-caching
// block allocator): cached-but-unused blocks count as free for KV usage and admission.
//
// Block hashes form a chain: hash(parent hash, the block's token ids, extra key such as
// the LoRA adapter), so equal hashes mean equal whole prefixes (ChainHash below).
//
// Thread-safety: not thread-safe; owned by one engine.
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "core/tokenizer.h"

namespace infergate::sim {

using BlockId = std::int32_t;
using BlockHash = std::uint64_t;

// Hash of a full block of `tokens` following the block whose hash is `parent` (0 for the
// first block); `extra` separates caches that must not mix (e.g. LoRA adapters).
BlockHash ChainHash(BlockHash parent, std::span<const TokenId> tokens, std::uint64_t extra);

class BlockPool {
 public:
  // `caching` enables lookups by hash; without it Register is a no-op.
  BlockPool(std::int64_t num_blocks, bool caching);

  std::int64_t num_blocks() const { return static_cast<std::int64_t>(refs_.size()); }
  // Blocks nobody references (including cached ones that can be evicted).
  std::int64_t num_free() const { return num_free_; }
  // Blocks holding a registered hash (whether referenced or free).
  std::int64_t num_cached() const { return static_cast<std::int64_t>(by_hash_.size()); }

  // Number of leading hashes of `chain` whose blocks are cached, and how many of those
  // blocks are currently free (taking them reduces num_free()).
  struct Hit {
    int blocks = 0;
    int free_blocks = 0;
  };
  Hit Lookup(std::span<const BlockHash> chain) const;

  // Takes a reference on the cached blocks of the first `n` hashes of `chain` (requires
  // n <= Lookup(chain).blocks) and appends their ids to `out`.
  void AcquireCached(std::span<const BlockHash> chain, int n, std::vector<BlockId>& out);

  // Appends `n` newly allocated blocks (referenced once) to `out`, evicting the cached
  // content of the free blocks it takes. Requires n <= num_free().
  void Allocate(std::int64_t n, std::vector<BlockId>& out);

  // Records that `block` now holds the full block with hash `hash`. If another block
  // already holds that hash, the first one stays the cached copy.
  void Register(BlockId block, BlockHash hash);

  // Drops one reference from each block of a sequence's block table. Blocks that become
  // free join the back of the free queue, last block of the table first, so a sequence's
  // tail is evicted before its (more shareable) head.
  void Release(std::span<const BlockId> blocks);

 private:
  static constexpr BlockId kNone = -1;
  void PushBack(BlockId b);
  void Unlink(BlockId b);

  bool caching_;
  std::vector<std::int32_t> refs_;
  std::vector<BlockHash> hash_;
  std::vector<bool> has_hash_;
  // Intrusive doubly linked free queue.
  std::vector<BlockId> prev_, next_;
  BlockId head_ = kNone, tail_ = kNone;
  std::int64_t num_free_ = 0;
  std::unordered_map<BlockHash, BlockId> by_hash_;
};

}  // namespace infergate::sim
