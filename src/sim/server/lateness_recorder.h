// LatenessRecorder: how late the server wrote what the engine produced, as a histogram.
//
// Each replica records, for every token chunk it writes, the wall time between the
// engine's scheduled time for that token and the write. Values are kept in microseconds:
// exactly below 1,024 µs, then in 64 buckets per power of two (within 1.6%), so a
// recorder stays small (24 KB) whatever the range.
//
// Thread-safety: not thread-safe; one replica's loop owns its recorder (Merge after the
// loops have stopped).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/clock.h"
#include "sim/server/sim_server.h"

namespace infergate::sim {

class LatenessRecorder {
 public:
  static constexpr int kLinear = 1024;
  static constexpr int kMaxExponent = 40;  // 2^40 µs: anything later counts as that
  static constexpr std::size_t kBuckets = kLinear + (kMaxExponent - 9) * 64;

  LatenessRecorder() : counts_(kBuckets, 0) {}

  // Records one lateness (negative values count as 0).
  void Record(TimeNs late_ns) {
    if (late_ns < 0) late_ns = 0;
    ++counts_[Index(static_cast<std::uint64_t>(late_ns) / 1000)];
    ++total_;
    max_ns_ = std::max(max_ns_, late_ns);
  }

  // Adds another recorder's values.
  void Merge(const LatenessRecorder& o) {
    for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
    total_ += o.total_;
    max_ns_ = std::max(max_ns_, o.max_ns_);
  }

  // The p-th percentile in microseconds (the lower bound of its bucket).
  double Percentile(double p) const {
    if (total_ == 0) return 0;
    const auto rank = std::max<std::uint64_t>(
        1, static_cast<std::uint64_t>(std::ceil(p / 100.0 * static_cast<double>(total_))));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return static_cast<double>(LowerBound(i));
    }
    return static_cast<double>(max_ns_) / 1000;
  }

  std::uint64_t count() const { return total_; }
  // Count, p50, p99 and the exact maximum, in microseconds.
  TokenLateness Summary() const {
    return {total_, Percentile(50), Percentile(99), static_cast<double>(max_ns_) / 1000};
  }

 private:
  static std::size_t Index(std::uint64_t us) {
    if (us < kLinear) return static_cast<std::size_t>(us);
    const int e = std::min(63 - __builtin_clzll(us), kMaxExponent);
    const std::uint64_t sub = std::min<std::uint64_t>((us >> (e - 6)) - 64, 63);
    return static_cast<std::size_t>(kLinear + (e - 10) * 64) + static_cast<std::size_t>(sub);
  }
  static std::uint64_t LowerBound(std::size_t i) {
    if (i < kLinear) return i;
    const int e = 10 + static_cast<int>((i - kLinear) / 64);
    return (64 + (i - kLinear) % 64) << (e - 6);
  }

  std::vector<std::uint64_t> counts_;
  std::uint64_t total_ = 0;
  TimeNs max_ns_ = 0;
};

}  // namespace infergate::sim
