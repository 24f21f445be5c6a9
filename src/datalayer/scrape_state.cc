#include "datalayer/scrape_state.h"

#include <utility>

namespace infergate {

Status EndpointScrapeState::RecordBody(TimeNs at, std::string_view body, EngineKind kind) {
  if (last_report_ != kNoTime && at < last_report_) return Ok();
  Result<EndpointMetrics> m = ExtractEndpointMetrics(body, kind);
  if (!m.ok()) {
    RecordFailure(at, m.error().message);
    return m.error();
  }
  RecordMetrics(at, std::move(m).value());
  return Ok();
}

void EndpointScrapeState::RecordMetrics(TimeNs at, EndpointMetrics metrics) {
  if (last_report_ != kNoTime && at < last_report_) return;
  metrics_ = std::move(metrics);
  metrics_time_ = at;
  last_report_ = at;
  consecutive_failures_ = 0;
  ++successes_;
  last_error_.clear();
}

void EndpointScrapeState::RecordFailure(TimeNs at, std::string_view error) {
  if (last_report_ != kNoTime && at < last_report_) return;
  last_report_ = at;
  ++consecutive_failures_;
  ++failures_;
  last_error_.assign(error);
}

TimeNs EndpointScrapeState::Age(TimeNs now) const {
  if (!has_metrics()) return kNever;
  return now - metrics_time_;
}

bool EndpointScrapeState::IsFresh(TimeNs now, TimeNs staleness) const {
  return has_metrics() && consecutive_failures_ == 0 && Age(now) <= staleness;
}

void PoolScrapeSummary::Add(const EndpointScrapeState& state, bool ready) {
  ++endpoints_;
  if (!ready) return;
  ++ready_;
  if (!state.IsFresh(now_, staleness_)) return;
  ++fresh_;
  kv_sum_ += state.metrics().kv_usage;
  queue_sum_ += state.metrics().waiting_requests;
}

}  // namespace infergate
