// An approximate index of which endpoint holds which prompt prefix in its KV cache.
//
// The gateway cannot see the servers' caches, but it knows where it sent each prompt. A
// prompt is cut into fixed-size character blocks; block i's hash chains the hashes of
// blocks 0..i-1 (seeded with the target model), so equal hashes mean equal prefixes. After
// each dispatch the chosen endpoint is recorded as holding the prompt's blocks; a request
// is matched by counting, per endpoint, the longest run of leading blocks it holds.
// Each endpoint's entries live in a bounded LRU, approximating the server evicting cold
// blocks. This is the GIE prefix-cache plugin's design; its defaults are ours:
//
//   block_chars                64      characters per block (16 tokens × 4 characters)
//   max_blocks                 256     leading blocks hashed; the rest of a prompt is ignored
//   lru_capacity_per_endpoint  31,250  blocks remembered per endpoint (500k tokens)
//
// Differences from GIE, on purpose:
//  * Each block is hashed on its own with XXH3-64 and linked to the previous link by a
//    multiply, a rotation and an xor, instead of XXH64 seeded with the previous hash: the
//    block hashes do not wait for each other, so hashing runs at XXH3's throughput rather
//    than at the latency of a chain of whole hashes (a 32 KB prompt, 512 blocks, in ~2 µs
//    instead of 8 µs for GIE's chain).
//  * An endpoint's match is the run of leading blocks *it* holds; GIE credits an endpoint
//    for every block it holds until no endpoint holds the next one.
//  * A chain is inserted deepest block first, so block 0 is the most recently used and
//    eviction takes the tail of a prompt before its head (a head evicted first would make
//    the whole chain unmatchable while its tail still used space).
//  * SetEndpointCapacity lets the caller size an endpoint's LRU to its real KV capacity
//    (num_gpu_blocks × block_size tokens) instead of one fixed guess, and Age fills it with
//    the blocks of the tokens the server generated, so the index evicts an idle prefix about
//    when the server does (a tenant whose prompt is gone is then cold there, not warm).
//
// Layout, for speed: each distinct block hash maps to a bitset of the endpoints holding
// it, so matching costs one hash lookup and a few word operations per block however many
// endpoints share a prefix (a system prompt is typically held by all of them); a second
// table maps (hash, endpoint) to that endpoint's LRU node for refreshes and evictions.
//
// Memory: at most lru_capacity_per_endpoint entries per endpoint (a 32-byte node and a
// table slot each) plus one bitset per distinct hash, reclaimed by RemoveEndpoint.
//
// Thread-safety: not synchronised. ComputeBlockHashes is pure and thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace infergate {

struct PrefixIndexOptions {
  std::size_t block_chars = 64;
  std::size_t max_blocks = 256;
  std::size_t lru_capacity_per_endpoint = 31'250;
  // Blocks an endpoint's LRU is aged by (PrefixIndex::Age) per block of tokens it generated,
  // applied by the scheduler when a request completes: a server caches what it generates
  // too, which pushes idle prefixes out sooner than the prompts alone would. 0: prompts only
  // (GIE's index).
  double output_aging = 0;
};

// Replaces *out with the hash chain of the full leading blocks of `prompt` (a trailing
// partial block is not hashed), at most options.max_blocks of them.
void ComputeBlockHashes(std::string_view target_model, std::string_view prompt,
                        const PrefixIndexOptions& options, std::vector<std::uint64_t>* out);

class PrefixIndex {
 public:
  explicit PrefixIndex(PrefixIndexOptions options = {});
  PrefixIndex(const PrefixIndex&) = delete;
  PrefixIndex& operator=(const PrefixIndex&) = delete;

  const PrefixIndexOptions& options() const { return options_; }

  // Sets match[s], for every endpoint slot s < match.size(), to the number of leading
  // blocks of `hashes` that slot s holds. Cost: one lookup per matched block, stopping at
  // the first block no endpoint holds with the run so far.
  void Match(std::span<const std::uint64_t> hashes, std::span<std::uint32_t> match) const;

  // Records that endpoint `slot` now holds `hashes` (refreshing their recency) and evicts
  // its least recently used blocks beyond its capacity.
  void Insert(std::uint32_t slot, std::span<const std::uint64_t> hashes);

  // Records that endpoint `slot` filled `blocks` more cache blocks with content no prompt
  // will match (the tokens it generated), at the most recent end of its LRU: they take
  // room as the server's cache does and push its least recently used prefixes out. Costs
  // at most one insertion per block of the endpoint's capacity.
  void Age(std::uint32_t slot, std::size_t blocks);

  // Forgets everything endpoint `slot` holds (the slot may then be reused).
  void RemoveEndpoint(std::uint32_t slot);

  // Sets endpoint `slot`'s LRU capacity in blocks (0 restores the default), evicting at
  // once if it now holds more.
  void SetEndpointCapacity(std::uint32_t slot, std::size_t blocks);

  std::size_t EndpointEntries(std::uint32_t slot) const;
  std::size_t EndpointCapacity(std::uint32_t slot) const;
  // Entries over all endpoints, and distinct block hashes.
  std::size_t TotalEntries() const { return nodes_.size() - free_nodes_.size(); }
  std::size_t DistinctHashes() const { return live_sets_; }

 private:
  static constexpr std::uint32_t kNil = UINT32_MAX;

  // uint64 key (never 0) → uint32 value; open addressing, linear probing, backward-shift
  // deletion. Keys are already well-mixed hashes.
  class FlatMap {
   public:
    FlatMap();
    const std::uint32_t* Find(std::uint64_t key) const;
    std::uint32_t* Find(std::uint64_t key);
    void Insert(std::uint64_t key, std::uint32_t value);  // requires key absent
    void Erase(std::uint64_t key);                        // requires key present
    void Prefetch(std::uint64_t key) const { __builtin_prefetch(&slots_[Home(key)]); }
    std::size_t size() const { return size_; }

   private:
    struct Slot {
      std::uint64_t key;  // 0 = empty
      std::uint32_t value;
    };
    std::size_t Home(std::uint64_t key) const { return (key ^ (key >> 29)) & mask_; }
    void Grow();
    std::vector<Slot> slots_;
    std::size_t mask_;
    std::size_t size_ = 0;
  };

  struct Node {
    std::uint64_t hash;
    std::uint32_t slot;
    std::uint32_t lru_prev, lru_next;  // within the endpoint's LRU; prev is more recent
  };
  struct Lru {
    std::uint32_t head = kNil;  // most recently used
    std::uint32_t tail = kNil;  // least recently used
    std::size_t size = 0;
    std::size_t capacity = 0;  // 0: options_.lru_capacity_per_endpoint
  };

  // holders_'s key of a block hash (its empty key is 0); hash 0 is never indexed (Touch).
  static std::uint64_t HashKey(std::uint64_t hash) { return hash == 0 ? 1 : hash; }
  static std::uint64_t NodeKey(std::uint64_t hash, std::uint32_t slot);

  Lru& LruOf(std::uint32_t slot);
  std::size_t CapacityOf(const Lru& lru) const;
  void Touch(std::uint32_t slot, std::uint64_t hash);
  void LruUnlink(Lru& lru, std::uint32_t n);
  void LruPushFront(Lru& lru, std::uint32_t n);
  void EvictTail(Lru& lru);
  std::uint64_t* SetWords(std::uint32_t set) { return &set_words_[std::size_t{set} * words_]; }
  const std::uint64_t* SetWords(std::uint32_t set) const {
    return &set_words_[std::size_t{set} * words_];
  }
  // Makes room for endpoint slots below 64 · words.
  void WidenSets(std::size_t words);

  PrefixIndexOptions options_;
  std::vector<Node> nodes_;
  std::vector<std::uint32_t> free_nodes_;
  std::vector<Lru> lrus_;
  FlatMap holders_;        // block hash → holder set index
  FlatMap entries_;        // NodeKey(hash, slot) → node index
  std::size_t words_ = 1;  // 64-bit words per holder set
  std::vector<std::uint64_t> set_words_;
  std::vector<std::uint32_t> free_sets_;
  std::size_t live_sets_ = 0;
  mutable std::vector<std::uint64_t> alive_;  // Match scratch
  std::uint64_t aged_ = 0;                    // Age's counter for its unmatchable hashes
};

}  // namespace infergate
