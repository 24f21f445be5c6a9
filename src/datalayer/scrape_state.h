// What the gateway knows from scraping one endpoint, and how old that knowledge is.
//
// The caller does the I/O: it reports each scrape's outcome with the time the scrape was
// started (a body, already-extracted EndpointMetrics, or a failure). The state keeps the
// last good metrics with their time, so every reader can ask how old they are. An
// endpoint's metrics are fresh while the last scrape succeeded and its age is within a
// staleness bound (2 s by default, GIE's value); a failed scrape makes them stale at
// once, though the last good values stay readable.
//
// Slow is not dead. Stale metrics say nothing about whether the endpoint is up: a busy
// server (llama.cpp answers /metrics from its model loop) answers its page late while it
// serves requests. The state therefore also tracks reachability, from the kind of each
// failure (ScrapeFailure) and from contact, any sign the endpoint is up: a scrape that
// succeeded, a scrape that connected but was late or answered badly, or a response from
// the endpoint to a request (RecordContact). The endpoint is reachable once it has been
// contacted, and stops being reachable when, after its last contact, a connection was
// refused or reset (kUnreachable, at once) or kUnreachableAfter connection attempts in a
// row went unanswered (kConnectTimeout). A later contact makes it reachable again.
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

// Why a scrape failed; decides whether the endpoint still counts as reachable.
enum class ScrapeFailure : std::uint8_t {
  kUnreachable,     // connection refused or reset, no route: the endpoint is down
  kConnectTimeout,  // the connection attempt went unanswered
  kTimeout,         // connected, but the page did not arrive in time: late, not down
  kBadResponse,     // an HTTP error or a page without the engine's metrics: up
};
inline constexpr int kScrapeFailureKinds = 4;
// "unreachable", "connect-timeout", "timeout", "bad-response" (metric label values).
std::string_view ScrapeFailureName(ScrapeFailure kind);

class EndpointScrapeState {
 public:
  // Extracts metrics from `body` with `kind` and records them as of `at`; on an
  // extraction error records a failure with that message and returns the error.
  // A report older than the newest one recorded is ignored (returns Ok).
  Status RecordBody(TimeNs at, std::string_view body, EngineKind kind);
  // Records metrics the caller extracted itself (e.g. outside a lock).
  void RecordMetrics(TimeNs at, EndpointMetrics metrics);
  // Records a failed scrape (connect error, timeout, HTTP error). The default kind is the
  // most cautious: the endpoint counts as unreachable until its next contact.
  void RecordFailure(TimeNs at, std::string_view error,
                     ScrapeFailure kind = ScrapeFailure::kUnreachable);
  // Records a sign of life at `at` that is not a scrape: bytes of a response from the
  // endpoint. Does not touch the metrics or their age.
  void RecordContact(TimeNs at);

  bool has_metrics() const { return metrics_time_ != kNoTime; }
  // The last good metrics (default values when there were none).
  const EndpointMetrics& metrics() const { return metrics_; }
  // Time of the last good scrape; kNoTime when there was none.
  TimeNs metrics_time() const { return metrics_time_; }
  // now − metrics_time(), or kNever when there are no metrics.
  TimeNs Age(TimeNs now) const;
  // Has metrics, the latest report was not a failure, and Age(now) <= staleness.
  bool IsFresh(TimeNs now, TimeNs staleness = kDefaultMetricsStaleness) const;

  // Contacted, and not refused (nor kUnreachableAfter connect timeouts in a row) since.
  bool IsReachable() const { return last_contact_ != kNoTime && !unreachable_; }
  // No metrics yet, and nothing says the endpoint is down: its first scrape is under way
  // (a new endpoint, a gateway that just started), or its first pages were late or bad
  // while it accepted connections (a server busy from the start: llama.cpp answers
  // /metrics from its model loop) for less than `grace` since the first of them. Past the
  // grace, an endpoint that never gave metrics is left to the failure mode.
  bool AwaitingFirstMetrics(TimeNs now, TimeNs grace) const {
    if (has_metrics() || unreachable_) return false;
    return first_report_ == kNoTime || now - first_report_ < grace;
  }
  // Time of the last contact; kNoTime when there was none.
  TimeNs last_contact() const { return last_contact_; }
  // Failed scrapes of `kind` so far.
  std::uint64_t failures(ScrapeFailure kind) const {
    return failures_by_kind_[static_cast<int>(kind)];
  }

  int consecutive_failures() const { return consecutive_failures_; }
  const std::string& last_error() const { return last_error_; }
  std::uint64_t successes() const { return successes_; }
  std::uint64_t failures() const { return failures_; }

  static constexpr TimeNs kNoTime = INT64_MIN;
  // Unanswered connection attempts in a row that make an endpoint unreachable.
  static constexpr int kUnreachableAfter = 2;

 private:
  void Contact(TimeNs at);

  EndpointMetrics metrics_;
  TimeNs metrics_time_ = kNoTime;
  TimeNs last_report_ = kNoTime;
  TimeNs first_report_ = kNoTime;  // the first scrape outcome, success or failure
  int consecutive_failures_ = 0;
  std::uint64_t successes_ = 0;
  std::uint64_t failures_ = 0;
  std::uint64_t failures_by_kind_[kScrapeFailureKinds] = {};
  std::string last_error_;
  TimeNs last_contact_ = kNoTime;
  TimeNs down_since_ = kNoTime;  // the failure that made it unreachable
  int connect_timeouts_ = 0;     // in a row, since the last contact
  bool unreachable_ = false;
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
  // Ready endpoints that are reachable and have metrics, fresh or late: the candidates of
  // metric-driven profiles.
  int reachable() const { return reachable_; }
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
  int reachable_ = 0;
  double kv_sum_ = 0;
  double queue_sum_ = 0;
};

}  // namespace infergate
