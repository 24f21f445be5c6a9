#include "scheduler/saturation_detector.h"

#include <algorithm>
#include <limits>

namespace infergate {

double SaturationDetector::Utilisation(const EndpointView& e) const {
  if (!e.has_metrics || !e.reachable) return std::numeric_limits<double>::infinity();
  // Without the ledger only recent scraped values mean anything (GIE's rule); with it, the
  // estimates already discount late metrics by their age and carry what was sent since.
  if (!options_.use_ledger && (!e.scrape_ok || e.metrics_age > options_.metrics_staleness)) {
    return std::numeric_limits<double>::infinity();
  }
  const double queue = options_.use_ledger ? e.load.waiting_est : e.waiting;
  const double kv = options_.use_ledger ? e.load.kv_usage_est : e.kv_usage;
  const double q = options_.queue_threshold > 0 ? queue / options_.queue_threshold : 0.0;
  const double k = options_.kv_threshold > 0 ? kv / options_.kv_threshold : 0.0;
  return std::max(q, k);
}

bool SaturationDetector::IsSaturated(std::span<const EndpointView> endpoints) const {
  return std::none_of(endpoints.begin(), endpoints.end(),
                      [this](const EndpointView& e) { return Utilisation(e) < 1.0; });
}

}  // namespace infergate
