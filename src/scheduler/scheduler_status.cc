// What the Scheduler reports about itself: pick reasons, the pool's summary, each
// endpoint's state and the cost model's predictions (the admin API and metrics read
// them). Part of the Scheduler class (scheduler/scheduler.h).
#include "scheduler/scheduler.h"

#include <string>
#include <vector>

namespace infergate {

std::string_view PickReasonName(PickReason reason) {
  switch (reason) {
    case PickReason::kScheduled:
      return "scheduled";
    case PickReason::kFailOpen:
      return "fail-open";
    case PickReason::kSaturated:
      return "saturated";
    case PickReason::kShedByProfile:
      return "shed-by-profile";
    case PickReason::kNoEndpoints:
      return "no-endpoints";
    case PickReason::kNoFreshMetrics:
      return "no-fresh-metrics";
    case PickReason::kNoCandidate:
      return "no-candidate";
  }
  return "unknown";
}

int PickResult::http_status() const {
  switch (status) {
    case PickStatus::kPicked:
      return 200;
    case PickStatus::kShed:
      return 429;
    case PickStatus::kUnavailable:
      return 503;
  }
  return 503;
}

std::string PickResult::DestinationHeader() const {
  std::string out;
  for (const std::string& e : endpoints) {
    if (!out.empty()) out.push_back(',');
    out += e;
  }
  return out;
}

PoolStatus Scheduler::Summary() {
  const TimeNs now = clock_->Now();
  PoolScrapeSummary summary(now, options_.metrics_staleness);
  for (const auto& ep : slots_) {
    if (ep) summary.Add(ep->scrape, ep->ready);
  }
  PoolStatus s;
  s.endpoints = summary.endpoints();
  s.ready = summary.ready();
  s.fresh = summary.fresh();
  s.reachable = summary.reachable();
  s.average_kv_usage = summary.average_kv_usage();
  s.average_queue = summary.average_queue();
  s.inflight = ledger_.inflight();
  s.saturated = IsSaturated();
  return s;
}

std::vector<EndpointStatus> Scheduler::Endpoints() {
  const TimeNs now = clock_->Now();
  std::vector<EndpointStatus> out;
  out.reserve(by_id_.size());
  for (std::uint32_t slot = 0; slot < slots_.size(); ++slot) {
    const Endpoint* ep = slots_[slot].get();
    if (ep == nullptr) continue;
    const EndpointMetrics& m = ep->scrape.metrics();
    EndpointStatus st;
    st.id = ep->id;
    st.ready = ep->ready;
    st.fresh = ep->scrape.IsFresh(now, options_.metrics_staleness);
    st.metrics_age = ep->scrape.Age(now);
    st.consecutive_failures = ep->scrape.consecutive_failures();
    st.reachable = ep->scrape.IsReachable();
    for (int k = 0; k < kScrapeFailureKinds; ++k) {
      st.scrape_failures[k] = ep->scrape.failures(static_cast<ScrapeFailure>(k));
    }
    st.waiting = m.waiting_requests;
    st.running = m.running_requests;
    st.kv_usage = m.kv_usage;
    st.kv_capacity_tokens = m.kv_capacity_tokens;
    st.ledger = ledger_.Counts(slot);
    st.load = EstimateLoad(m, ep->scrape.has_metrics(), st.ledger, ledger_.mean_prompt_tokens(),
                           MetricsTrust(st.metrics_age, options_.metrics_staleness));
    st.prefix_entries = prefix_.EndpointEntries(slot);
    out.push_back(std::move(st));
  }
  return out;
}

std::vector<EndpointPrediction> Scheduler::PredictTtft(const RequestInfo& request) {
  const TimeNs now = clock_->Now();
  BuildViews(now);
  std::vector<std::uint64_t> storage;
  const std::size_t blocks = MatchPrefix(request, &storage).size();
  SchedulingContext ctx = MakeContext(request, now, blocks);
  std::vector<EndpointPrediction> out;
  out.reserve(views_.size());
  for (const EndpointView& v : views_) {
    out.push_back(EndpointPrediction{std::string(v.id), ctx.Predict(v)});
  }
  return out;
}

}  // namespace infergate
