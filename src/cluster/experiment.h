// Experiments on the virtual-time cluster: benchmark_serving's workloads, routing policies
// from the real scheduling core, and benchmark_serving's results (what `infergate
// simulate` runs).
//
// A workload is drawn exactly as `infergate bench` draws it: one numpy stream seeded with
// the workload seed gives the dataset (random or shared-prefix) and then the arrival gaps,
// so the seed preset has the seed's exact 1,014,085 input tokens. Prompts are kept as
// text (what the gateway reads) and as token ids (what the engines process).
//
// A policy is a scheduling profile (round-robin, gie-v0, gie-default, gie-ledger,
// infergate), with or without a gateway queue (late binding). RunPolicy replays the
// workload through a SchedulerRouter over fresh simulated engines and converts every
// request into a loadgen::RequestOutcome, so the result table, JSON, comparison and HTML are
// `infergate bench`'s own. Alongside: the idle-engine floor (each request's TTFT alone on
// an idle engine, network included), preemptions, and what the gateway queue did.
//
// Everything is deterministic in the workload seed and the scheduler seed.
//
// Thread-safety: pure functions of their arguments.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cluster/cluster_simulation.h"
#include "cluster/replica_router.h"
#include "cluster/scheduler_router.h"
#include "cluster/workload.h"
#include "core/status.h"
#include "loadgen/dataset.h"
#include "loadgen/result.h"
#include "sim/engine/profile.h"

namespace infergate::cluster {

enum class DatasetKind { kRandom, kSharedPrefix };

struct WorkloadSpec {
  DatasetKind dataset = DatasetKind::kRandom;
  loadgen::RandomDatasetOptions random;        // dataset kRandom (num_prompts is used)
  loadgen::SharedPrefixOptions shared_prefix;  // dataset kSharedPrefix (num_prompts is used)
  double request_rate = std::numeric_limits<double>::infinity();
  double burstiness = 1.0;
  int max_concurrency = 0;  // 0: none
  std::uint32_t seed = 0;   // numpy seed of the dataset and the arrivals
  bool ignore_eos = false;
  // Shared-prefix: the model seed (ClusterSetup::engine_seed) of the engines that will run
  // the workload. When set, each assistant turn in a session's history is the simulated
  // model's own answer to the previous request (the tokens those engines generate for it,
  // to its max_tokens), so a later turn can hit the blocks the engine cached while
  // generating it, as with a chat client that sends back what it received. Unset: answers
  // are words of their own and a later turn prefills its history's answers again.
  std::optional<std::uint64_t> answers_from_model;
  // Warm-up: the first `warmup_prompts` requests (in arrival order) are sent and served as
  // usual but left out of every statistic, so a steady-state run is measured without its
  // cold start (every cache empty, every tenant's first request at once). The measurement
  // runs from the first measured request's send to the last measured completion. 0: none.
  int warmup_prompts = 0;

  int num_prompts() const;
};

// Draws the dataset, then the arrival offsets, from NumpyRandomState(seed). Each request
// carries its text, token ids, max_tokens, explicit arrival and, for shared-prefix, the
// tenant as fairness id. Errors: the dataset's own (bad lengths, ratios, counts) or a bad
// rate/burstiness.
Result<std::vector<WorkloadRequest>> SampleWorkload(const WorkloadSpec& spec);

// A routing policy: a scheduler profile, and whether requests wait in a gateway queue.
struct PolicySpec {
  std::string name;     // as printed and used in file names
  std::string profile;  // SchedulerOptions::profile
  bool late_binding = false;
  // Plugin parameter overrides, "TYPE.PARAMETER" → value (e.g.
  // "predicted-ttft-scorer.kvPeakFraction" → "1.1"), applied to the named profile.
  std::map<std::string, std::string> params;
};

// "NAME" or "NAME:queue" / "NAME:direct" (with / without the gateway queue). A bare name
// takes the profile's default: the queue for infergate, none for the others. Errors name
// the unknown profile.
Result<PolicySpec> ParsePolicy(std::string_view text);

// The scheduler configuration of `policy` (its named profile, with its parameter
// overrides applied), validated by building a scheduler. Errors name the bad profile,
// plugin or parameter.
Result<SchedulerOptions> SchedulerOptionsFor(const PolicySpec& policy);

// The cluster and the gateway, shared by every policy of an experiment.
struct ClusterSetup {
  std::vector<sim::Profile> engines;
  TimeNs scrape_interval = 50 * kNanosPerMilli;
  TimeNs scrape_latency = kNanosPerMilli;
  bool metrics_at_step_end = true;  // vLLM updates its gauges once per engine step
  NetworkDelays delays{500 * kNanosPerMicro, 250 * kNanosPerMicro};
  std::uint64_t engine_seed = 0;     // output tokens and EOS draws
  std::uint64_t scheduler_seed = 1;  // tie-breaks and random pickers
  Criticality criticality = Criticality::kCritical;
  bool exact_prompt_tokens = false;
  FlowControlOptions queue;
  std::string model_id = "model";  // recorded in results; seeds the prefix hashes
  bool keep_trace = false;         // fill PolicyRun::trace_csv
  // Re-dispatch for policies with the gateway queue (SchedulerRouterOptions::
  // redirect_after), as `infergate serve --redirect-after`'s default; 0: never.
  TimeNs redirect_after = 7 * kNanosPerSecond;
  // Gateway replicas behind a random L4 balancer (ReplicaRouter), each scraping every
  // scrape_interval on its own phase (scrape_latency must be below scrape_interval / R);
  // 1: the single gateway. replica_sync: their routing events (with R > 1).
  int gateway_replicas = 1;
  ReplicaSyncOptions replica_sync;
};

// Each request's TTFT alone on an idle engine (the fastest of `engines`), in seconds,
// including the client→gateway→engine delays both ways. Memoised by prompt length.
Result<std::vector<double>> IdleTtftSeconds(const ClusterSetup& setup,
                                            std::span<const WorkloadRequest> workload);

struct PolicyRun {
  PolicySpec policy;
  std::uint32_t workload_seed = 0;
  loadgen::BenchmarkResult result;
  double floor_ttft_ms = 0;    // mean idle-engine TTFT of the completed requests
  double ttft_over_floor = 0;  // mean TTFT / floor_ttft_ms
  double p90_ttft_ms = 0;      // of the completed requests
  // Engine counters, summed over engines, over the whole run (warm-up included).
  std::uint64_t preemptions = 0;
  std::uint64_t prefix_cache_hits = 0, prefix_cache_queries = 0;  // tokens
  // Completed requests whose prefix-cache hit at admission was under half their prompt.
  int cold_requests = 0;
  GatewayQueueStats queue;
  // Where the mean TTFT goes (completed requests, ms): the gateway queue, the engine's
  // waiting queue (arrival → first scheduled) and the prefill (first scheduled → first
  // token at the engine, including pipeline waits and batching with other prefills).
  double ttft_gateway_ms = 0, ttft_engine_queue_ms = 0, ttft_prefill_ms = 0;
  double mean_queue_wait_ms = 0;  // gateway arrival → dispatch, over queued requests
  double p99_queue_wait_ms = 0;
  std::vector<std::pair<std::string, std::uint64_t>> refusals;  // PickReason → count
  double wall_seconds = 0;                                      // simulation time on this machine
  int gateway_replicas = 1;
  ReplicaSyncStats sync;  // with several replicas and sync on
  // ClusterSetup::keep_trace: one CSV line per request (header first): its fairness id and
  // session, engine, times in ms from the first send (ready, at the gateway, dispatched,
  // first scheduled by the engine, first token and completion at the client), prompt,
  // cached and output tokens, preemptions, whether the gateway queue held it, and whether it
  // was a warm-up request (WorkloadSpec::warmup_prompts; every request is in the trace).
  std::string trace_csv;
};

// Runs `workload` under `policy`. `idle_ttft_s` is IdleTtftSeconds of the same workload.
// `run_info` is recorded in the result (num_prompts, rate, burstiness, concurrency, date
// and metadata are filled in as given, plus the policy's metadata). Errors: a bad
// profile or setup, or the simulation's time limit.
Result<PolicyRun> RunPolicy(const ClusterSetup& setup, const WorkloadSpec& spec,
                            std::span<const WorkloadRequest> workload,
                            std::span<const double> idle_ttft_s, const PolicySpec& policy,
                            const loadgen::RunInfo& run_info,
                            const loadgen::MetricOptions& metrics);

// Draws the workload of `spec` and runs every policy on it (RunPolicy), each over fresh
// engines whose model seed (ClusterSetup::engine_seed) is the workload seed.
// `model_answers`: a shared-prefix session's history carries the simulated model's own
// answers (WorkloadSpec::answers_from_model). Results record `date`, backend vllm, the
// setup's model id and, as metadata "workload", `workload_name`. Errors name the policy.
Result<std::vector<PolicyRun>> RunPolicies(ClusterSetup setup, std::span<const PolicySpec> policies,
                                           const WorkloadSpec& spec, bool model_answers,
                                           const std::string& workload_name,
                                           const std::string& date,
                                           const loadgen::MetricOptions& metrics);

// A rate sweep: one point per (policy, rate), averaged over workload seeds.
struct SweepPoint {
  std::string policy;
  double rate = 0;         // requests per second
  double slo_ttft_ms = 0;  // the TTFT percentile the SLO is about (e.g. P90), ms
  double mean_ttft_ms = 0;
  double request_throughput = 0;  // completed requests per second of the run's duration
  double output_throughput = 0;   // tok/s
  double ttft_over_floor = 0;
  int seeds = 0;   // runs averaged
  int failed = 0;  // failed requests over those runs
};

// Averages runs of the same policy and rate (in first-seen order of policy, then rate
// ascending). `percentile` picks the TTFT percentile of each run (computed from its
// requests).
std::vector<SweepPoint> AverageSweep(std::span<const PolicyRun> runs, double percentile);

// The SLO capacity of one policy: the highest grid rate r such that the TTFT percentile
// stays <= slo_ms, with no failed request, at every grid rate up to r; 0 when the lowest
// rate already misses. Points of other policies are ignored.
double SloCapacity(std::span<const SweepPoint> points, std::string_view policy, double slo_ms);

// Where a policy stops keeping up with the offered load. Delivered request throughput
// (completed requests over the run's duration, benchmark_serving's "Request throughput")
// follows the offered rate until the pool saturates and then stays on a plateau, so the
// saturation rate is the highest delivered throughput at any rate of the sweep. It is a
// throughput, not a grid rate: it does not depend on the grid's step, and under overload
// a finite run measures it without bias (the pool is busy from the first arrival to the
// last completion). A threshold on delivered/offered at each grid rate (e.g. >= 95%)
// would instead be biased by the run's drain tail, which weighs more in short runs at
// high rates.
struct Saturation {
  double rate = 0;               // req/s: the highest delivered request throughput
  double output_throughput = 0;  // tok/s where `rate` was delivered
  // Where the plateau starts: the lowest grid rate delivered at >= kPlateauFraction of
  // `rate` (on a flat plateau the maximum itself may fall at any rate beyond it).
  double offered = 0;
  // True when some grid rate was delivered at under kSaturatedFraction of its offered
  // rate: the pool fell behind within the sweep, so `rate` is the plateau. When false
  // the sweep never saturated the policy and `rate` is only a lower bound.
  bool reached = false;
};
inline constexpr double kSaturatedFraction = 0.9;
inline constexpr double kPlateauFraction = 0.99;

// The Saturation of `policy` over `points` (mean over seeds at each rate); all zero when
// the policy has no points. Points of other policies are ignored.
Saturation SaturationOf(std::span<const SweepPoint> points, std::string_view policy);

// Where a policy's TTFT percentile takes off: its light-load value is the median of the
// percentile over its `light_rates` lowest grid rates (one seed's value at a very low rate
// can land on a single cold request, so one rate alone is noisy), and its knee the first
// grid rate (ascending) where the percentile exceeds `factor` times that.
struct Knee {
  double light_ms = 0;     // light-load value of the percentile
  double rate = 0;         // the knee's grid rate; 0 when the sweep never crosses
  double slo_ttft_ms = 0;  // the percentile at the knee
};
Knee KneeOf(std::span<const SweepPoint> points, std::string_view policy, double factor = 5,
            int light_rates = 5);

// One line per run: the extra facts the result table does not show (floor ratio, P90
// TTFT, preemptions, prefix-cache hit rate, gateway queue).
std::string FormatRunFacts(std::span<const PolicyRun> runs);

}  // namespace infergate::cluster
