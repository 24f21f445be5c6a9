#include "scheduler/prefix_index.h"

// Header-only xxHash: the hash of a 64-byte block is a few nanoseconds, and a call into
// the shared library per block costs as much again.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <algorithm>

namespace infergate {

namespace {

// One link of the chain: the previous link, mixed by a bijection (an odd multiplier and a
// rotation), xor the block's own hash. Bijective in either argument, so two chains that
// differ once stay different while their later blocks agree; the block hashes carry the
// avalanche. A link is three instructions of latency, so the block hashes (independent of
// each other) run ahead out of order instead of waiting for the previous link.
inline std::uint64_t Link(std::uint64_t previous, std::uint64_t block_hash) {
  const std::uint64_t x = previous * 0x9e3779b97f4a7c15ull;
  return ((x << 31) | (x >> 33)) ^ block_hash;
}

template <std::size_t kBlock>
void HashBlocks(std::uint64_t h, const char* p, std::size_t block, std::size_t blocks,
                std::uint64_t* out) {
  // kBlock != 0 gives the compiler the length, so XXH3 is straight-line code.
  const std::size_t size = kBlock != 0 ? kBlock : block;
  for (std::size_t i = 0; i < blocks; ++i, p += size) {
    h = Link(h, XXH3_64bits(p, size));
    out[i] = h;
  }
}

}  // namespace

void ComputeBlockHashes(std::string_view target_model, std::string_view prompt,
                        const PrefixIndexOptions& options, std::vector<std::uint64_t>* out) {
  out->clear();
  const std::size_t block = options.block_chars;
  if (block == 0) return;
  const std::size_t blocks = std::min(prompt.size() / block, options.max_blocks);
  out->resize(blocks);
  const std::uint64_t seed = XXH3_64bits(target_model.data(), target_model.size());
  if (block == 64) {
    HashBlocks<64>(seed, prompt.data(), block, blocks, out->data());
  } else {
    HashBlocks<0>(seed, prompt.data(), block, blocks, out->data());
  }
}

namespace {

inline int CountTrailingZeros(std::uint64_t x) { return __builtin_ctzll(x); }

}  // namespace

// ---- FlatMap ----------------------------------------------------------------------

PrefixIndex::FlatMap::FlatMap() : slots_(1024, Slot{0, 0}), mask_(1023) {}

const std::uint32_t* PrefixIndex::FlatMap::Find(std::uint64_t key) const {
  for (std::size_t i = Home(key);; i = (i + 1) & mask_) {
    const Slot& s = slots_[i];
    if (s.key == key) return &s.value;
    if (s.key == 0) return nullptr;
  }
}

std::uint32_t* PrefixIndex::FlatMap::Find(std::uint64_t key) {
  return const_cast<std::uint32_t*>(static_cast<const FlatMap*>(this)->Find(key));
}

void PrefixIndex::FlatMap::Insert(std::uint64_t key, std::uint32_t value) {
  if ((size_ + 1) * 4 > slots_.size() * 3) Grow();
  std::size_t i = Home(key);
  while (slots_[i].key != 0) i = (i + 1) & mask_;
  slots_[i] = Slot{key, value};
  ++size_;
}

void PrefixIndex::FlatMap::Erase(std::uint64_t key) {
  std::size_t i = Home(key);
  while (slots_[i].key != key) i = (i + 1) & mask_;
  // Backward-shift deletion keeps probe sequences intact without tombstones.
  for (std::size_t j = i;;) {
    j = (j + 1) & mask_;
    if (slots_[j].key == 0) break;
    const std::size_t k = Home(slots_[j].key);
    // Entry j may move into the hole at i unless its home k lies cyclically in (i, j].
    const bool stays = (i <= j) ? (i < k && k <= j) : (i < k || k <= j);
    if (!stays) {
      slots_[i] = slots_[j];
      i = j;
    }
  }
  slots_[i] = Slot{0, 0};
  --size_;
}

void PrefixIndex::FlatMap::Grow() {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(old.size() * 2, Slot{0, 0});
  mask_ = slots_.size() - 1;
  for (const Slot& s : old) {
    if (s.key == 0) continue;
    std::size_t i = Home(s.key);
    while (slots_[i].key != 0) i = (i + 1) & mask_;
    slots_[i] = s;
  }
}

// ---- PrefixIndex --------------------------------------------------------------------

PrefixIndex::PrefixIndex(PrefixIndexOptions options) : options_(options) {}

std::uint64_t PrefixIndex::NodeKey(std::uint64_t hash, std::uint32_t slot) {
  // A bijective mix of (hash, slot): distinct pairs collide only if the hashes differ by
  // exactly the slot term, as improbable as a 64-bit hash collision.
  std::uint64_t k = hash + (std::uint64_t{slot} + 1) * 0x9e3779b97f4a7c15ull;
  k ^= k >> 31;
  k *= 0xbf58476d1ce4e5b9ull;
  k ^= k >> 29;
  return k == 0 ? 1 : k;
}

PrefixIndex::Lru& PrefixIndex::LruOf(std::uint32_t slot) {
  if (slot >= lrus_.size()) lrus_.resize(slot + 1);
  if (slot >= words_ * 64) WidenSets(slot / 64 + 1);
  return lrus_[slot];
}

void PrefixIndex::WidenSets(std::size_t words) {
  const std::size_t sets = set_words_.size() / words_;
  std::vector<std::uint64_t> wider(sets * words, 0);
  for (std::size_t s = 0; s < sets; ++s) {
    std::copy_n(&set_words_[s * words_], words_, &wider[s * words]);
  }
  set_words_ = std::move(wider);
  words_ = words;
}

std::size_t PrefixIndex::CapacityOf(const Lru& lru) const {
  return lru.capacity ? lru.capacity : options_.lru_capacity_per_endpoint;
}

std::size_t PrefixIndex::EndpointEntries(std::uint32_t slot) const {
  return slot < lrus_.size() ? lrus_[slot].size : 0;
}

std::size_t PrefixIndex::EndpointCapacity(std::uint32_t slot) const {
  return slot < lrus_.size() ? CapacityOf(lrus_[slot]) : options_.lru_capacity_per_endpoint;
}

void PrefixIndex::Match(std::span<const std::uint64_t> hashes,
                        std::span<std::uint32_t> match) const {
  std::fill(match.begin(), match.end(), 0u);
  if (hashes.empty() || hashes[0] == 0) return;
  const std::uint32_t* first = holders_.Find(HashKey(hashes[0]));
  if (first == nullptr) return;
  const std::size_t w = words_;
  alive_.assign(SetWords(*first), SetWords(*first) + w);
  auto record = [&](std::size_t word, std::uint64_t bits, std::uint32_t run) {
    while (bits) {
      const std::size_t s = word * 64 + static_cast<std::size_t>(CountTrailingZeros(bits));
      if (s < match.size()) match[s] = run;
      bits &= bits - 1;
    }
  };
  // The tables are far larger than the caches, so each block costs two misses: its
  // holders_ slot, then its holder set. Both are fetched ahead, the slot kSlotAhead blocks
  // before it is needed and (the slot having arrived by then) the set kSetAhead blocks
  // before; `ahead` keeps the sets looked up but not yet consumed.
  constexpr std::size_t kSlotAhead = 24;
  constexpr std::size_t kSetAhead = 12;
  constexpr std::uint32_t kNoSet = UINT32_MAX;
  std::uint32_t ahead[16];
  static_assert(kSetAhead <= 16 && kSetAhead < kSlotAhead);
  const std::size_t n = hashes.size();
  auto lookup = [&](std::size_t j) {
    if (hashes[j] == 0) return kNoSet;  // never indexed (Touch)
    const std::uint32_t* set = holders_.Find(HashKey(hashes[j]));
    if (set == nullptr) return kNoSet;
    __builtin_prefetch(SetWords(*set));
    return *set;
  };
  for (std::size_t j = 1; j <= std::min(n - 1, kSlotAhead); ++j) {
    holders_.Prefetch(HashKey(hashes[j]));
  }
  for (std::size_t j = 1; j <= std::min(n - 1, kSetAhead); ++j) ahead[j % 16] = lookup(j);
  for (std::size_t i = 1; i < n; ++i) {
    if (i + kSlotAhead < n) holders_.Prefetch(HashKey(hashes[i + kSlotAhead]));
    if (i + kSetAhead < n) ahead[(i + kSetAhead) % 16] = lookup(i + kSetAhead);
    const std::uint32_t set = ahead[i % 16];
    const std::uint64_t* holder = set != kNoSet ? SetWords(set) : nullptr;
    bool any = false;
    for (std::size_t k = 0; k < w; ++k) {
      const std::uint64_t next = holder ? alive_[k] & holder[k] : 0;
      record(k, alive_[k] & ~next, static_cast<std::uint32_t>(i));
      alive_[k] = next;
      any |= next != 0;
    }
    if (!any) return;
  }
  for (std::size_t k = 0; k < w; ++k)
    record(k, alive_[k], static_cast<std::uint32_t>(hashes.size()));
}

void PrefixIndex::LruUnlink(Lru& lru, std::uint32_t n) {
  Node& node = nodes_[n];
  if (node.lru_prev != kNil) {
    nodes_[node.lru_prev].lru_next = node.lru_next;
  } else {
    lru.head = node.lru_next;
  }
  if (node.lru_next != kNil) {
    nodes_[node.lru_next].lru_prev = node.lru_prev;
  } else {
    lru.tail = node.lru_prev;
  }
  node.lru_prev = node.lru_next = kNil;
}

void PrefixIndex::LruPushFront(Lru& lru, std::uint32_t n) {
  Node& node = nodes_[n];
  node.lru_prev = kNil;
  node.lru_next = lru.head;
  if (lru.head != kNil) nodes_[lru.head].lru_prev = n;
  lru.head = n;
  if (lru.tail == kNil) lru.tail = n;
}

void PrefixIndex::Touch(std::uint32_t slot, std::uint64_t hash) {
  // Hash 0 is never indexed: holders_ (whose empty key is 0) files it under 1, and two
  // hashes sharing one holder set would leave a node without a set once the other's node
  // clears it. Local hashes are xxHash values (0 with probability 2^-64); a peer's message
  // may carry any value.
  if (hash == 0) return;
  Lru& lru = lrus_[slot];
  const std::uint64_t key = NodeKey(hash, slot);
  if (const std::uint32_t* n = entries_.Find(key)) {
    const Node& node = nodes_[*n];
    // A (hash, slot) pair whose key collides with another's is left out of the index.
    if (node.hash != hash || node.slot != slot) return;
    if (lru.head != *n) {
      LruUnlink(lru, *n);
      LruPushFront(lru, *n);
    }
    return;
  }
  std::uint32_t n;
  if (!free_nodes_.empty()) {
    n = free_nodes_.back();
    free_nodes_.pop_back();
  } else {
    n = static_cast<std::uint32_t>(nodes_.size());
    nodes_.push_back({});
  }
  nodes_[n].hash = hash;
  nodes_[n].slot = slot;
  entries_.Insert(key, n);
  LruPushFront(lru, n);
  ++lru.size;

  std::uint32_t set;
  if (const std::uint32_t* existing = holders_.Find(HashKey(hash))) {
    set = *existing;
  } else {
    if (!free_sets_.empty()) {
      set = free_sets_.back();
      free_sets_.pop_back();
    } else {
      set = static_cast<std::uint32_t>(set_words_.size() / words_);
      set_words_.resize(set_words_.size() + words_, 0);
    }
    holders_.Insert(HashKey(hash), set);
    ++live_sets_;
  }
  SetWords(set)[slot / 64] |= std::uint64_t{1} << (slot % 64);
}

void PrefixIndex::EvictTail(Lru& lru) {
  const std::uint32_t n = lru.tail;
  LruUnlink(lru, n);
  --lru.size;
  const Node& node = nodes_[n];
  entries_.Erase(NodeKey(node.hash, node.slot));
  std::uint32_t* set = holders_.Find(HashKey(node.hash));
  std::uint64_t* words = SetWords(*set);
  words[node.slot / 64] &= ~(std::uint64_t{1} << (node.slot % 64));
  if (std::all_of(words, words + words_, [](std::uint64_t x) { return x == 0; })) {
    free_sets_.push_back(*set);
    holders_.Erase(HashKey(node.hash));
    --live_sets_;
  }
  free_nodes_.push_back(n);
}

void PrefixIndex::Insert(std::uint32_t slot, std::span<const std::uint64_t> hashes) {
  Lru& lru = LruOf(slot);
  for (std::size_t i = hashes.size(); i-- > 0;) {
    if (i >= 8) entries_.Prefetch(NodeKey(hashes[i - 8], slot));
    Touch(slot, hashes[i]);
  }
  const std::size_t cap = CapacityOf(lru);
  while (lru.size > cap) EvictTail(lru);
}

void PrefixIndex::Age(std::uint32_t slot, std::size_t blocks) {
  Lru& lru = LruOf(slot);
  const std::size_t cap = CapacityOf(lru);
  // Beyond a full LRU of new blocks every older entry is gone anyway (and a server's
  // absurd token count costs no more than that).
  blocks = std::min(blocks, cap);
  for (std::size_t i = 0; i < blocks; ++i) {
    // splitmix64 of a counter: distinct, and (2^-64 apart) never a prompt's block hash.
    std::uint64_t z = (aged_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    Touch(slot, z ^ (z >> 31));
    if (lru.size > cap) EvictTail(lru);
  }
}

void PrefixIndex::RemoveEndpoint(std::uint32_t slot) {
  if (slot >= lrus_.size()) return;
  Lru& lru = lrus_[slot];
  while (lru.size > 0) EvictTail(lru);
  lru.capacity = 0;
}

void PrefixIndex::SetEndpointCapacity(std::uint32_t slot, std::size_t blocks) {
  Lru& lru = LruOf(slot);
  lru.capacity = blocks;
  const std::size_t cap = CapacityOf(lru);
  while (lru.size > cap) EvictTail(lru);
}

}  // namespace infergate
