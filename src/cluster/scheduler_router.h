// SchedulerRouter: the real scheduling core behind the cluster simulation's Router
// interface, seen the way the live gateway sees it.
//
// One infergate::Scheduler (any named profile or EndpointPickerConfig) runs on a
// ManualClock that follows the simulation's time. The simulated engines become endpoints
// "10.0.0.<k+1>:8000". Every periodic scrape that reaches the gateway is reported with
// ReportMetrics as of the time it was taken, converted by ScrapedMetrics (below) into the
// EndpointMetrics that ExtractEndpointMetrics returns for the vLLM /metrics page of an
// engine in that state; so the scheduler's staleness is exactly the simulation's scrape
// interval plus its latency, and between scrapes only its own ledger (dispatches, first
// tokens, completions with usage) moves.
//
// Requests are described to the scheduler as the gateway parses them: the prompt text
// (token counts estimated from characters and calibrated by the ledger from usage, unless
// exact_prompt_tokens), max_tokens, the InferenceModel's criticality, the fairness id and
// session key headers. Requests given only as token ids have no text: their exact count is
// passed and they take no part in prefix matching.
//
// Pipeline parallelism: a V0 engine with pp stages runs pp virtual engines; the scheduler
// is told that number (as a pool setting) so its ledger can mirror vLLM's assignment.
//
// Late binding (late_binding = true): every request enters a FlowController (priority
// bands, fair flows, FCFS, TTL, capacity) and Route answers Hold. Release offers the
// queue's items in the queue's order: each is picked and dispatched unless
// Scheduler::ShouldHold says it should wait (the infergate profile: no endpoint can admit
// it now; other profiles: the pool is saturated), in which case the queue stops until the
// next event that may free capacity (a scrape, a first token, a completion). Expired items
// are answered 503, a full queue 429.
//
// Thread-safety: as Router (one thread).
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/router.h"
#include "core/clock.h"
#include "core/status.h"
#include "datalayer/engine_metrics.h"
#include "flowcontrol/flow_controller.h"
#include "scheduler/scheduler.h"
#include "sim/engine/engine_config.h"
#include "sim/engine/profile.h"

namespace infergate::cluster {

// The metrics a vLLM server in state `stats` exposes, as ExtractEndpointMetrics reads them
// (waiting, running, KV use, cache_config_info's capacity and enable_prefix_caching, the
// LoRA info when LoRA is enabled, V1's prefix-cache counters).
EndpointMetrics ScrapedMetrics(const sim::EngineStats& stats, const sim::EngineConfig& config);

// The virtual engines per server of a pool of `configs`: the pipeline-parallel size when
// every engine is vLLM V0 with the same one, else 1.
int PoolVirtualEngines(std::span<const sim::EngineConfig> configs);

struct SchedulerRouterOptions {
  SchedulerOptions scheduler;  // profile, seed, staleness, ...
  // Every request's criticality (the InferenceModel's; the seed's was Critical).
  Criticality criticality = Criticality::kCritical;
  // The target model name seeding the prefix hash chain.
  std::string target_model = "model";
  // Tell the scheduler each prompt's exact token count (a gateway with the model's
  // tokenizer) instead of estimating it from the text.
  bool exact_prompt_tokens = false;
  // Hold requests in a gateway queue until an endpoint can take them.
  bool late_binding = false;
  // The pool's virtual engines per endpoint (SchedulerOptions::pipeline_virtual_engines);
  // unset: from the engines, as a gateway configured for them would be told: vLLM V0's
  // pipeline-parallel size when every engine has the same, else 1 (V1 has none).
  std::optional<int> virtual_engines;
  FlowControlOptions queue;
  // Re-dispatch (experimental, Scheduler::ShouldRedirect): a request with no first token
  // this long after its dispatch is considered, at each scrape, for an abort and a send
  // elsewhere (once). 0: never.
  TimeNs redirect_after = 0;
};

// What the gateway queue did during a run.
struct GatewayQueueStats {
  std::uint64_t queued = 0;      // requests that entered the queue
  std::uint64_t dispatched = 0;  // left it for an engine
  std::uint64_t expired = 0;     // TTL: answered 503
  std::uint64_t rejected = 0;    // queue full: 429
  std::uint64_t dropped = 0;     // shed or unavailable when picked
  std::size_t max_length = 0;    // the longest the queue was
  std::uint64_t redirected = 0;  // requests aborted at their engine and sent to another
};

class SchedulerRouter final : public Router {
 public:
  // `engines` are the simulated engines' profiles, in engine order (their resolved
  // configs give the cache_config_info a scrape reports). Errors: a bad scheduler
  // configuration or a profile that does not resolve.
  static Result<std::unique_ptr<SchedulerRouter>> Create(SchedulerRouterOptions options,
                                                         const std::vector<sim::Profile>& engines);

  RouteDecision Route(const RouteRequest& request, std::span<const EngineScrape> engines,
                      TimeNs now) override;
  void OnFirstToken(std::size_t index, int engine, TimeNs now) override;
  void Redirect(TimeNs now, std::vector<ReleasedRequest>* out) override;
  void OnCompleted(const Completion& completion, TimeNs now) override;
  void OnScrape(std::span<const EngineScrape> engines, TimeNs now) override;
  void Release(std::span<const EngineScrape> engines, TimeNs now,
               std::vector<ReleasedRequest>* out) override;
  TimeNs NextWakeup() const override;

  Scheduler& scheduler() { return *scheduler_; }
  // Moves the scheduler's clock to `now` (never back), for work done between the
  // simulation's calls (e.g. applying peer replicas' events: ReplicaRouter).
  void AdvanceClock(TimeNs now) { clock_.Set(std::max(clock_.Now(), now)); }
  const GatewayQueueStats& queue_stats() const { return queue_stats_; }
  // Pick outcomes other than kPicked, by PickReason name, e.g. {"saturated", 3}.
  const std::vector<std::pair<std::string, std::uint64_t>>& refusals() const { return refusals_; }

 private:
  SchedulerRouter(SchedulerRouterOptions options, std::vector<sim::EngineConfig> configs);

  // The RequestInfo of a routed request (views into the workload; valid while it lives).
  RequestInfo Describe(const RouteRequest& request) const;
  // Picks and dispatches; returns the decision for the simulation.
  RouteDecision PickAndDispatch(const RouteRequest& request, TimeNs now);
  // The engine index of an endpoint id.
  int EngineOf(std::string_view id) const;
  void CountRefusal(PickReason reason);

  SchedulerRouterOptions options_;
  std::vector<sim::EngineConfig> configs_;
  std::vector<std::string> ids_;
  ManualClock clock_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<FlowController> queue_;

  // Per workload index: the ledger handle and, while queued, the request.
  std::vector<TokenLedger::Handle> handles_;
  // Requests awaiting their first token (kept only with options_.redirect_after > 0).
  struct Awaiting {
    RouteRequest request;
    TimeNs dispatched = 0;
    bool redirected = false;  // at most once
  };
  std::map<std::size_t, Awaiting> awaiting_;
  std::vector<std::optional<RouteRequest>> queued_;
  PickResult pick_;
  std::vector<QueueItemId> expired_;
  GatewayQueueStats queue_stats_;
  std::vector<std::pair<std::string, std::uint64_t>> refusals_;
};

}  // namespace infergate::cluster
