// The scheduler's source of randomness: seeded, so a run is reproducible.
//
// xoshiro256** (Blackman and Vigna) seeded through SplitMix64: fast, small state, and good
// enough statistically for tie-breaking and random choice; not for anything secret.
//
// Thread-safety: not synchronised; one per scheduler.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>

namespace infergate {

class Rng {
 public:
  explicit Rng(std::uint64_t seed = 1) { Seed(seed); }

  // A generator that starts from `state` as given, for a caller that seeds it its own way
  // (cluster::WorkloadRng); the state must not be all zero.
  static Rng FromState(const std::array<std::uint64_t, 4>& state) {
    Rng rng;
    std::copy(state.begin(), state.end(), rng.s_);
    return rng;
  }

  void Seed(std::uint64_t seed) {
    for (std::uint64_t& s : s_) {
      seed += 0x9e3779b97f4a7c15ull;
      std::uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      s = z ^ (z >> 31);
    }
  }

  std::uint64_t Next() {
    const std::uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, n); requires n > 0. (Lemire's multiply-shift; the bias is < n / 2^64.)
  std::uint64_t Uniform(std::uint64_t n) {
    return static_cast<std::uint64_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
  }

  // Uniform in [0, 1).
  double NextDouble() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

 private:
  static std::uint64_t Rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4];
};

}  // namespace infergate
