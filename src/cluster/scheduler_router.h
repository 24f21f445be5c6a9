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
// Admission is the gateway's own AdmissionController (flowcontrol/admission.h), the one
// the live pool runs: with late binding (late_binding = true) a request enters its queue
// (priority bands, fair flows, FCFS, TTL, capacity) and Route answers Hold, or 429 when
// the queue is full; the decisions that request's pass over the queue makes (usually its
// own pick) are handed out by the Release that follows at the same instant, and every
// later Release (a scrape, a first token, a completion) pumps the queue again. Expired
// requests are answered 503. Sheddable requests are never held (picked at once, shed
// when the pool is saturated); nothing is held while no endpoint has fresh metrics.
// Without late binding every request is picked at once.
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
#include <unordered_map>
#include <vector>

#include "cluster/router.h"
#include "core/clock.h"
#include "core/status.h"
#include "datalayer/engine_metrics.h"
#include "flowcontrol/admission.h"
#include "scheduler/scheduler.h"
#include "sim/engine/engine_config.h"
#include "sim/engine/profile.h"

namespace infergate::cluster {

// The metrics a vLLM server in state `stats` exposes, as ExtractEndpointMetrics reads them
// (waiting, running, KV use, cache_config_info's capacity and enable_prefix_caching, the
// LoRA info when LoRA is enabled, V1's prefix-cache counters).
EndpointMetrics ScrapedMetrics(const sim::EngineStats& stats, const sim::EngineConfig& config);

// The metrics a llama.cpp server in state `stats` exposes, as ExtractEndpointMetrics reads
// them and ApplyLlamacppSlots completes them with /props' total_slots (max_num_seqs):
// requests_deferred (waiting), requests_processing (running) and processing / slots as
// the KV use; no KV capacity, no prefix-cache facts.
EndpointMetrics ScrapedLlamacppMetrics(const sim::EngineStats& stats,
                                       const sim::EngineConfig& config);

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
  // The metric names the engines speak: kVllm (ScrapedMetrics) or kLlamacpp
  // (ScrapedLlamacppMetrics; the endpoints are labelled llamacpp).
  EngineKind engine_api = EngineKind::kVllm;
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
  AdmissionController& admission() { return *admission_; }
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
  // The simulation's form of an admission decision for request `index`; records the
  // dispatch (handle, re-dispatch watch) or the refusal.
  RouteDecision Apply(const RouteRequest& request, const AdmissionDecision& decision, TimeNs now,
                      bool from_queue);
  // The engine index of an endpoint id.
  int EngineOf(std::string_view id) const;
  void CountRefusal(PickReason reason);

  SchedulerRouterOptions options_;
  std::vector<sim::EngineConfig> configs_;
  std::vector<std::string> ids_;
  ManualClock clock_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<AdmissionController> admission_;
  // Requests held by admission_, by workload index (node-stable: admission_ points at
  // their RequestInfo).
  struct Held {
    RouteRequest request;
    RequestInfo info;
  };
  std::unordered_map<std::size_t, Held> held_;
  // Decisions of queued requests not yet handed to the simulation (Release does).
  std::vector<ReleasedRequest> decided_;
  TimeNs now_ = 0;  // the time of the call that pumps the queue
  AdmissionController::DecidedFn on_decided_;

  // Per workload index: the ledger handle and, while queued, the request.
  std::vector<TokenLedger::Handle> handles_;
  // Requests awaiting their first token (kept only with options_.redirect_after > 0).
  struct Awaiting {
    RouteRequest request;
    TimeNs dispatched = 0;
    bool redirected = false;  // at most once
  };
  std::map<std::size_t, Awaiting> awaiting_;
  PickResult pick_;
  GatewayQueueStats queue_stats_;
  std::vector<std::pair<std::string, std::uint64_t>> refusals_;
};

}  // namespace infergate::cluster
