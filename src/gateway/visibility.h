// What the gateway shows about itself beyond its basic counters: GIE's remaining EPP
// metrics (request and response sizes, normalized time per output token, plugin
// durations, prefix index hit ratios, info), a bounded ring of recent scheduling decisions
// and per-pool TTFT windows for the live page (admin `/` and `/api/live`).
//
// Label values clients control are bounded here: a model name becomes a label value only
// when the configuration names it (InferenceModel) or a pool server lists it; any other
// name folds into "other".
//
// Thread-safety: every member is safe to call from any thread.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/container/small_vector.hpp>

#include "core/clock.h"
#include "scheduler/scheduler.h"
#include "telemetry/metrics.h"
#include "telemetry/recent.h"

namespace infergate::config {
struct ModelRoute;
}

namespace infergate::gateway {

class PoolState;

// The live page (admin `/`): one HTML document with its script and style inline.
extern const std::string_view kLivePageHtml;

// The label value for a requested model name: itself when the pool's configuration names
// it (`configured`: an InferenceModel or a rewrite) or an endpoint of the pool lists it,
// otherwise "other".
std::string ModelLabel(bool configured, const PoolState* pool, std::string_view name);

struct VisibilityMetrics {
  explicit VisibilityMetrics(telemetry::Registry& r);

  telemetry::Family<telemetry::Histogram>& request_sizes;
  telemetry::Family<telemetry::Histogram>& response_sizes;
  telemetry::Family<telemetry::Histogram>& ntpot;
  telemetry::Family<telemetry::Histogram>& plugin_duration;
  telemetry::Family<telemetry::Counter>& scheduler_attempts;
  telemetry::Histogram& prefix_hit_ratio;
  telemetry::Histogram& prefix_hit_bytes;
  telemetry::Family<telemetry::Counter>& decisions;
};

// Reports one pool's pipeline stage durations to
// inference_extension_plugin_duration_seconds.
class StageTimer final : public StageObserver {
 public:
  explicit StageTimer(telemetry::Family<telemetry::Histogram>& family) : family_(family) {}
  const Clock& clock() const override { return clock_; }
  void Describe(std::size_t stage, std::string_view extension_point, std::string_view type,
                std::string_view name) override;
  void Observe(std::size_t stage, TimeNs duration) override;

 private:
  telemetry::Family<telemetry::Histogram>& family_;
  SteadyClock clock_;
  std::vector<telemetry::Histogram*> stages_;
};

// One candidate of a decision as the live page shows it.
struct CandidateView {
  std::string endpoint;
  double predicted_ttft_s = 0;
  bool kv_fits = true;
};

// One request's way through a pool: decided, then finished (or refused).
struct DecisionRecord {
  std::int64_t wall_ms = 0;  // when it was decided (Unix ms)
  std::string pool;
  std::string model;   // bounded label value
  std::string target;  // bounded label value
  std::string priority;
  std::string reason;  // PickReasonName, or the gateway's own (queue_full, ...)
  std::string decided_by;
  std::vector<std::string> endpoints;  // chosen first, then fallbacks
  std::string served_by;               // where it ended up (after fallbacks / re-dispatch)
  std::uint32_t prefix_blocks = 0, prompt_blocks = 0;
  double decide_s = 0;     // arrival at the scheduler → decision (includes queueing)
  double ttft_s = -1;      // dispatch → first byte; -1 when none came
  double duration_s = -1;  // arrival → end
  int status = 0;
  std::vector<CandidateView> candidates;  // sampled: empty on most decisions
};

// One request as the access log records it; filled along the request path, written at its
// end. Never holds the prompt or the output.
struct AccessEntry {
  TimeNs arrival = 0;
  std::string_view listener, backend;
  // The route rule, written "route/rules[i]"; its text is the configuration's, which the
  // request holds until the entry is written.
  std::string_view route;
  int rule_index = -1;
  // Views into the request and the session, which outlive the entry.
  std::string_view client, method, path;
  // The request id, kept or generated (at most kMaxRequestId bytes): in place, since a
  // copy in a std::string was an allocation per logged request.
  static constexpr std::size_t kMaxRequestId = 200;
  std::array<char, kMaxRequestId> request_id_bytes;
  std::uint8_t request_id_size = 0;
  std::string_view request_id() const { return {request_id_bytes.data(), request_id_size}; }
  void SetRequestId(std::string_view id) {
    request_id_size = static_cast<std::uint8_t>(std::min(id.size(), kMaxRequestId));
    std::copy_n(id.data(), request_id_size, request_id_bytes.data());
  }
  std::string model, served_model;  // as asked, and as sent upstream (pool requests)
  std::string_view pool;
  // Endpoints attempted, in order; the last one served. Inline for the usual one to three
  // ("ip:port" fits a std::string's own buffer): no allocation on most requests.
  boost::container::small_vector<std::string, 3> tried;
  std::string dropped;  // why the gateway refused it, when it did
  std::uint64_t bytes_in = 0, bytes_out = 0;
  double queue_wait_s = -1, ttfb_s = -1;
  std::int64_t prompt_tokens = -1, output_tokens = -1;
  int attempts = 0, redirects = 0;
};

class Visibility {
 public:
  explicit Visibility(telemetry::Registry& r) : metrics(r) {}

  VisibilityMetrics metrics;

  // Installs a StageTimer on a pool's scheduler (once per scheduler; the timer lives as
  // long as the gateway, so a scheduler retired by a reload may finish its requests).
  void InstallStageTimer(Scheduler& s);

  // The live page was read now: decisions get candidate predictions for a while.
  void MarkViewed(TimeNs now) { viewed_at_.store(now, std::memory_order_relaxed); }
  // True when this decision should carry per-candidate predictions: someone looked at the
  // live page in the last 30 s, and at most one decision in 200 ms does.
  bool ShouldSamplePredictions(TimeNs now);

  void RecordDecision(DecisionRecord record) { decisions_.Push(std::move(record)); }
  std::vector<DecisionRecord> RecentDecisions() const { return decisions_.Snapshot(); }
  // Time to first byte per pool over the last minute.
  void ObserveTtft(const std::string& pool, TimeNs at, double seconds);
  telemetry::WindowSummary TtftSummary(const std::string& pool, TimeNs now) const;

 private:
  std::atomic<TimeNs> viewed_at_{-kNanosPerSecond * 3600};
  std::atomic<TimeNs> next_sample_{0};
  telemetry::RecentRing<DecisionRecord> decisions_{64};
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<StageTimer>> timers_;
  std::map<std::string, std::unique_ptr<telemetry::SampleWindow>, std::less<>> ttft_;
};

}  // namespace infergate::gateway
