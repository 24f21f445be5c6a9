#include "datalayer/scrape_state.h"

#include <utility>

namespace infergate {

std::string_view ScrapeFailureName(ScrapeFailure kind) {
  switch (kind) {
    case ScrapeFailure::kUnreachable:
      return "unreachable";
    case ScrapeFailure::kConnectTimeout:
      return "connect-timeout";
    case ScrapeFailure::kTimeout:
      return "timeout";
    case ScrapeFailure::kBadResponse:
      return "bad-response";
  }
  return "unknown";
}

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
  if (first_report_ == kNoTime) first_report_ = at;
  consecutive_failures_ = 0;
  ++successes_;
  last_error_.clear();
  Contact(at);
}

void EndpointScrapeState::RecordFailure(TimeNs at, std::string_view error, ScrapeFailure kind) {
  if (last_report_ != kNoTime && at < last_report_) return;
  last_report_ = at;
  if (first_report_ == kNoTime) first_report_ = at;
  ++consecutive_failures_;
  ++failures_;
  ++failures_by_kind_[static_cast<int>(kind)];
  last_error_.assign(error);
  switch (kind) {
    case ScrapeFailure::kTimeout:
    case ScrapeFailure::kBadResponse:
      Contact(at);  // it accepted the connection: up, if slow
      break;
    case ScrapeFailure::kConnectTimeout:
      if (++connect_timeouts_ < kUnreachableAfter) break;
      [[fallthrough]];
    case ScrapeFailure::kUnreachable:
      if (!unreachable_) down_since_ = at;
      unreachable_ = true;
      break;
  }
}

void EndpointScrapeState::RecordContact(TimeNs at) { Contact(at); }

void EndpointScrapeState::Contact(TimeNs at) {
  // A sign of life older than the failure that marked the endpoint down says nothing.
  if (unreachable_ && at < down_since_) return;
  if (last_contact_ == kNoTime || at > last_contact_) last_contact_ = at;
  unreachable_ = false;
  connect_timeouts_ = 0;
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
  if (state.IsReachable() && state.has_metrics()) ++reachable_;
  if (!state.IsFresh(now_, staleness_)) return;
  ++fresh_;
  kv_sum_ += state.metrics().kv_usage;
  queue_sum_ += state.metrics().waiting_requests;
}

}  // namespace infergate
