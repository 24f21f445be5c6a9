// Bounded recent-history structures for live views: a ring of the last N records, and a
// window of timed samples with percentiles over the last T seconds. Both cap their memory
// whatever the request rate (old entries are overwritten), so they can sit on the request
// path; times are passed in by the caller.
//
// Thread-safety: every member is safe to call from any thread (one mutex each; the
// critical sections copy or write a few words).
#pragma once

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <span>
#include <vector>

#include "core/clock.h"

namespace infergate::telemetry {

// The last `capacity` records pushed, newest last in Snapshot().
template <class T>
class RecentRing {
 public:
  explicit RecentRing(std::size_t capacity) : capacity_(std::max<std::size_t>(capacity, 1)) {}

  void Push(T record) {
    std::lock_guard lock(mu_);
    if (items_.size() < capacity_) {
      items_.push_back(std::move(record));
    } else {
      items_[next_] = std::move(record);
    }
    next_ = (next_ + 1) % capacity_;
    ++pushed_;
  }
  std::vector<T> Snapshot() const {
    std::lock_guard lock(mu_);
    std::vector<T> out;
    out.reserve(items_.size());
    if (items_.size() < capacity_) {
      out = items_;
    } else {
      out.insert(out.end(), items_.begin() + static_cast<std::ptrdiff_t>(next_), items_.end());
      out.insert(out.end(), items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(next_));
    }
    return out;
  }
  std::uint64_t pushed() const {
    std::lock_guard lock(mu_);
    return pushed_;
  }

 private:
  const std::size_t capacity_;
  mutable std::mutex mu_;
  std::vector<T> items_;
  std::size_t next_ = 0;
  std::uint64_t pushed_ = 0;
};

struct WindowSummary {
  std::size_t count = 0;  // samples inside the window (at most the capacity)
  double p50 = 0, p90 = 0, p99 = 0, max = 0;
};

// Values with the time they were observed; summaries over the ones younger than the
// window. Holds at most `capacity` samples: under heavier traffic the window is the most
// recent `capacity` samples, which keeps the percentiles representative.
class SampleWindow {
 public:
  SampleWindow(TimeNs window, std::size_t capacity)
      : window_(window), ring_(std::max<std::size_t>(capacity, 1)) {}

  void Add(TimeNs at, double value) {
    std::lock_guard lock(mu_);
    ring_[next_] = Sample{at, value};
    next_ = (next_ + 1) % ring_.size();
    size_ = std::min(size_ + 1, ring_.size());
  }
  // Nearest-rank percentiles of the samples observed in (now - window, now].
  WindowSummary Summarize(TimeNs now) const;

 private:
  struct Sample {
    TimeNs at = 0;
    double value = 0;
  };
  const TimeNs window_;
  mutable std::mutex mu_;
  std::vector<Sample> ring_;
  std::size_t next_ = 0, size_ = 0;
};

}  // namespace infergate::telemetry
