// WeightedChooser: picks among items with fixed integer weights, deterministically and in
// exact proportion, from any number of threads.
//
// Algorithm: smooth weighted round-robin, as in nginx's upstream module. Every pick adds
// each item's weight to its running value, takes the item with the largest running value
// (the first one on ties) and subtracts the total weight from it. After total/g picks
// (g = gcd of the weights) every running value is back to zero, so the sequence is periodic
// and each period holds every item exactly weight/g times, interleaved rather than in runs:
// weights {5, 1, 1} give a a b a c a a, not a a a a a b c.
//
// Alternatives considered: random choice by weight (only proportional on average and not
// reproducible in tests), plain weighted round-robin (sends runs of requests to the
// heaviest item), a lock around the running values on every pick (correct but every pick
// serialises the callers).
//
// Implementation: when a period has at most kMaxTableSize picks (after dividing by the
// gcd: any split expressed in percent, or small integer weights) the whole period is
// precomputed and a pick is one relaxed atomic increment plus a table read. Longer periods
// (large coprime weights) run the algorithm itself under a mutex. Items with weight 0 are
// never chosen.
//
// Thread-safe: Next() may be called concurrently; the sequence of picks is the same in
// total whatever the interleaving (each call takes the next position of one shared
// counter).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

namespace infergate::routing {

class WeightedChooser {
 public:
  static constexpr std::size_t kMaxTableSize = 4096;

  // weights[i] is item i's weight (0 = never).
  explicit WeightedChooser(std::vector<std::uint32_t> weights);
  // Moving is for building containers before use: it must not race with Next().
  WeightedChooser(WeightedChooser&& other) noexcept;
  WeightedChooser& operator=(WeightedChooser&&) = delete;
  WeightedChooser(const WeightedChooser&) = delete;
  WeightedChooser& operator=(const WeightedChooser&) = delete;

  // The index of the next item, or -1 when no item has a weight above 0.
  int Next() const;

  // Picks after which the sequence repeats (sum of weights / their gcd); 0 if none.
  std::uint64_t period() const { return period_; }

 private:
  std::vector<std::uint32_t> weights_;  // divided by their gcd
  std::uint64_t period_ = 0;
  int single_ = -1;                   // the only item with weight > 0, if exactly one
  std::vector<std::uint32_t> table_;  // one period, when it fits kMaxTableSize
  mutable std::atomic<std::uint64_t> next_{0};
  mutable std::mutex mu_;  // guards current_ (long periods only)
  mutable std::vector<std::int64_t> current_;
};

}  // namespace infergate::routing
