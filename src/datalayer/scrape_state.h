// What the gateway knows from scraping one endpoint, and how old that knowledge is.
//
// The caller does the I/O: it reports each scrape's outcome with the time the scrape was
// started (a body, already-extracted EndpointMetrics, or a failure). The state keeps the
// last good metrics with their time, so every reader can ask how old they are. An
// endpoint's metrics are fresh while the last scrape succeeded and its age is within a
// staleness bound (2 s by default, GIE's value); a failed scrape makes them stale at
// once, though the last good values stay readable.
//
// Pass the time the scrape request was *sent*: requests the gateway dispatches after
// that time may be missing from the page, and the scheduler's ledger adds them back
// (see scheduler/token_ledger.h); erring early double-counts for one round trip at most,
// erring late would hide load.
//
// PoolScrapeSummary aggregates several endpoints for the pool's own metrics
// (inference_pool_average_kv_cache_utilization, inference_pool_average_queue_size,
// inference_pool_ready_pods).
//
// Thread-safety: not synchronised; the owner serialises access.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/status.h"
#include "datalayer/engine_metrics.h"

namespace infergate {

inline constexpr TimeNs kDefaultMetricsStaleness = 2 * kNanosPerSecond;

class EndpointScrapeState {
 public:
  // Extracts metrics from `body` with `kind` and records them as of `at`; on an
  // extraction error records a failure with that message and returns the error.
  // A report older than the newest one recorded is ignored (returns Ok).
  Status RecordBody(TimeNs at, std::string_view body, EngineKind kind);
  // Records metrics the caller extracted itself (e.g. outside a lock).
  void RecordMetrics(TimeNs at, EndpointMetrics metrics);
  // Records a failed scrape (connect error, timeout, HTTP error).
  void RecordFailure(TimeNs at, std::string_view error);

  bool has_metrics() const { return metrics_time_ != kNoTime; }
  // The last good metrics (default values when there were none).
  const EndpointMetrics& metrics() const { return metrics_; }
  // Time of the last good scrape; kNoTime when there was none.
  TimeNs metrics_time() const { return metrics_time_; }
  // now − metrics_time(), or kNever when there are no metrics.
  TimeNs Age(TimeNs now) const;
  // Has metrics, the latest report was not a failure, and Age(now) <= staleness.
  bool IsFresh(TimeNs now, TimeNs staleness = kDefaultMetricsStaleness) const;

  int consecutive_failures() const { return consecutive_failures_; }
  const std::string& last_error() const { return last_error_; }
  std::uint64_t successes() const { return successes_; }
  std::uint64_t failures() const { return failures_; }

  static constexpr TimeNs kNoTime = INT64_MIN;

 private:
  EndpointMetrics metrics_;
  TimeNs metrics_time_ = kNoTime;
  TimeNs last_report_ = kNoTime;
  int consecutive_failures_ = 0;
  std::uint64_t successes_ = 0;
  std::uint64_t failures_ = 0;
  std::string last_error_;
};

// Pool-level aggregates over fresh endpoints (stale ones are left out of the averages,
// as GIE does).
class PoolScrapeSummary {
 public:
  PoolScrapeSummary(TimeNs now, TimeNs staleness = kDefaultMetricsStaleness)
      : now_(now), staleness_(staleness) {}

  void Add(const EndpointScrapeState& state, bool ready);

  int endpoints() const { return endpoints_; }
  int ready() const { return ready_; }
  // Ready endpoints whose metrics are fresh.
  int fresh() const { return fresh_; }
  double average_kv_usage() const { return fresh_ ? kv_sum_ / fresh_ : 0.0; }
  double average_queue() const { return fresh_ ? queue_sum_ / fresh_ : 0.0; }

 private:
  TimeNs now_;
  TimeNs staleness_;
  int endpoints_ = 0;
  int ready_ = 0;
  int fresh_ = 0;
  double kv_sum_ = 0;
  double queue_sum_ = 0;
};

}  // namespace infergate
