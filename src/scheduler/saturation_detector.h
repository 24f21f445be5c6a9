// Decides whether the pool has room for work that may be shed.
//
// GIE's detector: each endpoint's utilisation is max(queue / queue_threshold,
// kv / kv_threshold); the pool is saturated when no endpoint with fresh metrics is below
// 1. Without the ledger (use_ledger false, GIE's rule), metrics older than
// `metrics_staleness` (200 ms, four missed 50 ms scrapes) or a failed last scrape count as
// saturated.
//
// Augmented with the ledger (use_ledger, on by default): queue and KV are the estimates
// of scheduler/endpoint_view.h, so a burst dispatched since the last scrape counts at
// once instead of one scrape later, and late metrics are discounted by their age there
// rather than read as "full" (a busy server answering its page late is not saturated by
// that fact). Either way an endpoint that cannot be reached, or has never been scraped,
// counts as saturated.
//
// Used to shed Sheddable requests (429) and to hold flow-control queues (late binding);
// Critical requests are never shed.
//
// Thread-safety: immutable after construction; safe to share.
#pragma once

#include <span>

#include "core/clock.h"
#include "scheduler/endpoint_view.h"

namespace infergate {

struct SaturationOptions {
  double queue_threshold = 5;  // GIE queueDepthThreshold
  double kv_threshold = 0.8;   // GIE kvCacheUtilThreshold
  TimeNs metrics_staleness = 200 * kNanosPerMilli;
  bool use_ledger = true;
};

class SaturationDetector {
 public:
  SaturationDetector() = default;
  explicit SaturationDetector(SaturationOptions options) : options_(options) {}

  const SaturationOptions& options() const { return options_; }

  // max(queue / queue_threshold, kv / kv_threshold); +infinity when the endpoint cannot be
  // reached or has no metrics, and without the ledger also when its last scrape failed or
  // is older than metrics_staleness. An endpoint is saturated at >= 1.
  double Utilisation(const EndpointView& endpoint) const;
  bool IsEndpointSaturated(const EndpointView& endpoint) const {
    return Utilisation(endpoint) >= 1.0;
  }
  // True when no endpoint is below 1 (including when there are none).
  bool IsSaturated(std::span<const EndpointView> endpoints) const;

 private:
  SaturationOptions options_;
};

}  // namespace infergate
