// The scheduler of one InferencePool: decides which endpoint gets each request.
//
// It owns everything a decision needs and nothing that does I/O:
//   endpoints     declared by the caller (UpsertEndpoint / RemoveEndpoint), each with its
//                 scrape state (datalayer/scrape_state.h);
//   TokenLedger   what this gateway dispatched and has not seen finish;
//   PrefixIndex   which endpoint probably holds which prompt prefix;
//   SessionTable  which endpoint served each session;
//   SaturationDetector, and one SchedulingPipeline built from a named profile or an
//   EndpointPickerConfig.
// Time comes from the injected Clock; randomness from a seeded Rng. The same object serves
// the live gateway (real clock) and the cluster simulation (virtual clock, scrapes as
// events); decisions are deterministic given the seed and the sequence of calls.
//
// A request's life, as the caller drives it:
//   Pick(request)                 → PickResult: endpoint + fallbacks, or shed / unavailable
//   Dispatch(request, pick, id)   → handle; records the request in the ledger, the prefix
//                                   index and the session table for endpoint `id` (the
//                                   primary, or the fallback actually used)
//   OnFirstToken(handle)          first response byte: prefill is done
//   OnComplete(handle, usage)     finished (usage when the server reported it)
//   OnFailure(handle)             failed or cancelled
// and, independently, ReportScrape / ReportMetrics / ReportScrapeFailure per endpoint.
//
// Outcomes of Pick (see PickStatus): kPicked; kShed (429: a Sheddable request while the
// pool is saturated, or the profile's own shedding; Critical requests are never shed);
// kUnavailable (503: no ready endpoint, no candidate left, or, under FailClose, no endpoint
// that can be reached and has metrics; under FailOpen the last case picks any ready
// endpoint).
//
// Late is not down (datalayer/scrape_state.h): an endpoint whose metrics page is late or
// failed but which accepts connections or answers our requests stays a candidate of
// metric-driven profiles; its scraped values weigh less as they age and the ledger
// carries what was sent since (EstimateLoad, MetricsTrust in endpoint_view.h). Only an
// endpoint that cannot be reached (or was never scraped) is left out; responses seen by
// OnFirstToken and OnComplete count as contact.
//
// Thread-safety: NOT synchronised. The gateway's event-loop threads share one Scheduler
// per pool behind one mutex; Pick takes a few microseconds (bench/scheduler_bench.cc).
// Work that needs no lock can be done before taking it: ComputeBlockHashes (pass the
// result in RequestInfo::block_hashes; prefix_options() is immutable) and
// ExtractEndpointMetrics (then ReportMetrics instead of ReportScrape).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "datalayer/scrape_state.h"
#include "scheduler/endpoint_view.h"
#include "scheduler/picker_config.h"
#include "scheduler/pipeline.h"
#include "scheduler/prefix_index.h"
#include "scheduler/random.h"
#include "scheduler/request.h"
#include "scheduler/saturation_detector.h"
#include "scheduler/session_table.h"
#include "scheduler/token_ledger.h"
#include "scheduler/ttft_model.h"

namespace infergate {

// InferencePool failureMode: what to do when no endpoint has fresh metrics.
enum class FailureMode : std::uint8_t {
  kFailOpen,   // route to any ready endpoint
  kFailClose,  // answer 503 (GIE's default)
};

struct SchedulerOptions {
  // A named profile (scheduler/profiles.h), used when picker_config is not set.
  std::string profile = "infergate";
  // A configuration from YAML; overrides `profile`. `scheduling_profile` names the
  // profile in it to use (empty: its only one).
  std::optional<EndpointPickerConfig> picker_config;
  std::string scheduling_profile;

  FailureMode failure_mode = FailureMode::kFailClose;
  // Metrics older than this make an endpoint stale: left out of pool averages, and its
  // scraped values discounted by their age (MetricsTrust halves every this much beyond
  // it); it stays a candidate while it can be reached.
  TimeNs metrics_staleness = kDefaultMetricsStaleness;
  // Overridden by picker_config's saturationDetector section when present.
  SaturationOptions saturation;
  // Shed Sheddable requests when saturated; unset: the named profile's default (true for
  // picker_config).
  std::optional<bool> shed_when_saturated;
  // Prefix index settings; a prefix-cache-scorer's parameters override them.
  PrefixIndexOptions prefix;
  // Size each endpoint's prefix LRU from its KV capacity; unset: the profile's default.
  std::optional<bool> prefix_lru_from_kv_capacity;
  // Virtual engines per endpoint: vLLM V0's pipeline-parallel size (each of P virtual
  // engines owns 1/P of the KV blocks and takes new requests by count; V1 has none: 1).
  // The ledger replays vLLM's assignment and the KV outlook judges the virtual engine a
  // request would land in (the cost model's virtual_engines, virtualEngines on
  // predicted-ttft-scorer, overrides it). In [1, TokenLedger::kMaxVirtualEngines].
  int pipeline_virtual_engines = 1;
  // Cost model constants when the profile's plugins do not set them.
  TtftModelParams ttft;
  TokenLedger::Options ledger;
  // Fallback endpoints returned after the primary (retries on connect failure).
  std::size_t max_fallbacks = 2;
  std::uint64_t seed = 1;
  std::size_t session_capacity = 65'536;
  TimeNs session_idle_timeout = 30LL * 60 * kNanosPerSecond;
};

enum class PickStatus : std::uint8_t {
  kPicked,       // endpoints[0] is the choice
  kShed,         // answer 429
  kUnavailable,  // answer 503
};

enum class PickReason : std::uint8_t {
  kScheduled,       // the profile chose
  kFailOpen,        // no fresh metrics; FailOpen chose a ready endpoint at random
  kSaturated,       // shed: Sheddable request, pool saturated
  kShedByProfile,   // shed: a filter of the profile refused it
  kNoEndpoints,     // unavailable: no ready endpoint
  kNoFreshMetrics,  // unavailable: FailClose and no endpoint reachable with metrics (late
                    // metrics count: only unreachable or never-scraped endpoints do not)
  kNoCandidate,     // unavailable: the profile's filters left no candidate
};
std::string_view PickReasonName(PickReason reason);

struct PickResult {
  PickStatus status = PickStatus::kUnavailable;
  PickReason reason = PickReason::kNoEndpoints;
  // The plugin that shed or rejected, when one did.
  std::string decided_by;
  // Endpoint ids ("ip:port"): the choice first, then fallbacks in order.
  std::vector<std::string> endpoints;
  // The prompt's prefix block hashes (for Dispatch); empty when the profile does not
  // use the prefix index or the caller supplied them in RequestInfo.
  std::vector<std::uint64_t> block_hashes;
  // The prefix-index blocks the choice (endpoints[0]) holds for this prompt, when the
  // profile matches prefixes (Dispatch to it then needs no second match).
  bool prefix_matched = false;
  std::uint32_t prefix_blocks = 0;

  bool picked() const { return status == PickStatus::kPicked; }
  // 200 when picked, 429 when shed, 503 when unavailable.
  int http_status() const;
  // "a:1,b:2,c:3": the x-gateway-destination-endpoint header value.
  std::string DestinationHeader() const;
};

// One candidate's predicted TTFT under the cost model (Scheduler::PredictTtft).
struct EndpointPrediction {
  std::string endpoint;
  TtftPrediction prediction;
};

// A snapshot of one endpoint for metrics and debugging.
struct EndpointStatus {
  std::string id;
  bool ready = false;
  bool fresh = false;
  bool reachable = false;
  TimeNs metrics_age = kNever;
  int consecutive_failures = 0;
  std::uint64_t scrape_failures[kScrapeFailureKinds] = {};  // by ScrapeFailure
  double waiting = 0, running = 0, kv_usage = 0;
  std::int64_t kv_capacity_tokens = 0;
  LoadEstimate load;
  LedgerCounts ledger;
  std::size_t prefix_entries = 0;
};

struct PoolStatus {
  int endpoints = 0;
  int ready = 0;
  int fresh = 0;
  int reachable = 0;            // ready, reachable and with metrics (fresh or late): candidates
  double average_kv_usage = 0;  // over fresh endpoints (scraped values)
  double average_queue = 0;     // over fresh endpoints (scraped values)
  std::size_t inflight = 0;     // ledger
  bool saturated = false;
};

// What a Scheduler tells its event sink about its own (local) requests, for other gateway
// replicas (src/sync). Called synchronously from Dispatch / OnFirstToken / OnComplete /
// OnFailure, under whatever serialises the scheduler: implementations must be quick and
// must not call back into the scheduler. Never called for remote entries.
struct LocalDispatchEvent {
  TokenLedger::Handle handle = TokenLedger::kInvalidHandle;
  std::string_view endpoint;                    // the endpoint id it was sent to
  std::int64_t prompt_tokens = 0;               // as accounted (calibrated)
  std::int64_t expected_output_tokens = 0;      // max_tokens or the learned mean
  std::span<const std::uint64_t> block_hashes;  // the prompt's prefix chain (may be empty)
  std::string_view session_key;                 // empty: none
};
class SchedulerEventSink {
 public:
  virtual ~SchedulerEventSink() = default;
  virtual void OnLocalDispatch(const LocalDispatchEvent& event) = 0;
  virtual void OnLocalFirstToken(TokenLedger::Handle handle) = 0;
  // Completion (usage when reported) or, with `failed`, a failure or cancellation.
  virtual void OnLocalFinish(TokenLedger::Handle handle, const std::optional<Usage>& usage,
                             bool failed) = 0;
};

// A request another gateway replica dispatched, as its routing events describe it.
struct RemoteDispatch {
  std::string_view endpoint;  // endpoint id; unknown here: not applied
  TimeNs dispatched = 0;      // on this scheduler's clock (apply time less the event's age)
  std::int64_t prompt_tokens = 0;
  std::int64_t expected_output_tokens = 0;
  std::span<const std::uint64_t> block_hashes;
};

class Scheduler final : private KvOutlookSource {
 public:
  // Builds the profile; errors name the bad profile, plugin or parameter. `clock` must
  // outlive the scheduler.
  static Result<std::unique_ptr<Scheduler>> Create(SchedulerOptions options, const Clock* clock);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // --- Endpoints -------------------------------------------------------------------
  // Adds or updates an endpoint. The engine comes from the label
  // inference.networking.k8s.io/engine-type (detected from the metrics when absent). An
  // unknown engine label is reported as an error, and the endpoint is still added with
  // detection.
  Status UpsertEndpoint(const EndpointSpec& spec);
  // Removes an endpoint with its ledger entries (their handles become invalid), prefix
  // entries and scrape state. False when unknown.
  bool RemoveEndpoint(std::string_view id);
  // Sets the ready flag (Pod readiness). False when unknown.
  bool SetReady(std::string_view id, bool ready);
  std::size_t endpoint_count() const { return by_id_.size(); }

  // --- Scrapes (time = when the scrape request was sent) -----------------------------
  // Parses and records a /metrics body. Errors: unknown endpoint, or a body without the
  // engine's metrics (then recorded as a failed scrape).
  Status ReportScrape(std::string_view id, TimeNs at, std::string_view body);
  // Records metrics extracted by the caller. False when the endpoint is unknown.
  bool ReportMetrics(std::string_view id, TimeNs at, EndpointMetrics metrics);
  // `kind` says whether the endpoint still counts as reachable (kTimeout, kBadResponse) or
  // not (kUnreachable at once, kConnectTimeout when repeated).
  bool ReportScrapeFailure(std::string_view id, TimeNs at, std::string_view error,
                           ScrapeFailure kind = ScrapeFailure::kUnreachable);

  // --- Decisions ---------------------------------------------------------------------
  // Decides for `request` into *out (reusing its buffers). Does not change the ledger.
  void Pick(const RequestInfo& request, PickResult* out);
  PickResult Pick(const RequestInfo& request);

  // --- Request lifecycle ---------------------------------------------------------------
  // Records `request` as sent to endpoint `endpoint_id` (normally pick.endpoints[0]).
  // Returns kInvalidHandle when the endpoint is unknown.
  TokenLedger::Handle Dispatch(const RequestInfo& request, const PickResult& pick,
                               std::string_view endpoint_id);
  // False for an unknown or finished handle (e.g. its endpoint was removed). `at`: when
  // the event happened, for a peer replica's event learned a sync hop late (the ledger
  // places it against the last scrape: TokenLedger::FirstToken); kNever (and any time
  // after now) means now.
  bool OnFirstToken(TokenLedger::Handle handle, TimeNs at = kNever);
  bool OnComplete(TokenLedger::Handle handle, const std::optional<Usage>& usage = std::nullopt,
                  TimeNs at = kNever);
  bool OnFailure(TokenLedger::Handle handle, TimeNs at = kNever);

  // --- Other gateway replicas (src/sync) ---------------------------------------------
  // Reports every local request's life to `sink` (nullptr: none). Not owned; it must
  // outlive the scheduler or be unset first.
  void SetEventSink(SchedulerEventSink* sink) { sink_ = sink; }
  // Applies a peer replica's dispatch: a remote ledger entry (TokenLedger::DispatchRemote:
  // counted in every estimate, never in calibration; its uncached part judged from this
  // scheduler's prefix index) and its prefix blocks in the index (the endpoint holds them
  // whoever sent the prompt). kInvalidHandle when the endpoint is unknown. The handle
  // then takes OnFirstToken / OnComplete / OnFailure like a local one (without reaching
  // the event sink).
  TokenLedger::Handle ApplyRemoteDispatch(const RemoteDispatch& dispatch);
  // A peer replica bound `session_key` to `endpoint_id` (session affinity).
  void ApplyRemoteSession(std::string_view session_key, std::string_view endpoint_id);

  // --- Observation ---------------------------------------------------------------------
  // True when the saturation detector says no endpoint has room (used by flow control).
  bool IsSaturated();
  // Late binding (flow control): true when `request` should stay in the gateway queue
  // for now rather than be picked. Profiles with a hold rule (infergate's
  // kv-headroom-filter) answer for this request: hold while no fresh endpoint could
  // admit it soon. Other profiles answer IsSaturated(), GIE's pool-level rule. True
  // when no ready endpoint has fresh metrics (nothing to decide with yet).
  bool ShouldHold(const RequestInfo& request);
  // Late binding: may a request be held at all? True when some ready endpoint can be
  // reached and has metrics (fresh or late: slow is not dead), or has not given metrics
  // yet while nothing says it is down (a new endpoint, a gateway just started, a server
  // whose first pages are late), for up to twice the staleness bound after its first
  // scrape outcome (datalayer/scrape_state.h AwaitingFirstMetrics), so a hold ends at the next
  // event that frees capacity (a scrape, a first token, a completion); false otherwise,
  // and then the failure mode decides at once (Pick: FailOpen routes, FailClose answers
  // 503) rather than a wait of unknown length. The one place that says which endpoints a
  // hold can count on (AdmissionController asks it before ShouldHold).
  bool CanHold() const;
  // True when every endpoint has reported its KV capacity and `request`'s prompt exceeds
  // the largest (per virtual engine: with pipeline parallelism a request lands in one,
  // with 1/P of the blocks). No endpoint will ever have room for such a prompt, so a hold
  // could end only with its client or its TTL, holding back every request behind it at
  // the head of the queue; AdmissionController picks it at once instead, and its server
  // answers (vLLM's context-length 400: max_model_len is within the KV capacity).
  bool LargerThanEveryKvCache(const RequestInfo& request) const;
  // Re-dispatch (`serve --redirect-after`, `simulate --redirect-after`): should `request`,
  // dispatched as `handle` and still awaiting its first token, be aborted where it is and
  // sent elsewhere? Yes only when it is the oldest of the gateway's requests awaiting in
  // its virtual engine (so it waits for KV space there, not behind other prefills), it has
  // been silent for at least twice its own predicted prefill (so it is not merely
  // prefilling), some endpoint can admit it now (ShouldHold is false), and the pick for it
  // (*out) is another endpoint whose virtual engine has no prefill of ours queued. The
  // caller then reports OnFailure(handle) and Dispatch(request, *out, ...). Does not
  // change the ledger.
  bool ShouldRedirect(const RequestInfo& request, TokenLedger::Handle handle, PickResult* out);
  PoolStatus Summary();
  std::vector<EndpointStatus> Endpoints();
  // Each ready endpoint's predicted TTFT for `request` under the cost model, in endpoint
  // order; for tests, debugging and comparing policies.
  std::vector<EndpointPrediction> PredictTtft(const RequestInfo& request);

  const SchedulingPipeline& pipeline() const { return *pipeline_; }
  // See SchedulingPipeline::set_stage_observer.
  void set_stage_observer(StageObserver* observer, std::uint32_t sample_every = 8) {
    pipeline_->set_stage_observer(observer, sample_every);
  }
  const PrefixIndexOptions& prefix_options() const { return prefix_.options(); }
  const TokenLedger& ledger() const { return ledger_; }
  // The virtual engines per endpoint in effect (the mirror is off at 1).
  int virtual_engines() const { return ledger_.virtual_engines(); }
  const SchedulerOptions& options() const { return options_; }
  const Clock& clock() const { return *clock_; }

 private:
  struct Endpoint {
    std::string id;
    std::map<std::string, std::string> labels;
    bool ready = true;
    EngineKind engine = EngineKind::kAuto;
    EndpointScrapeState scrape;
    std::size_t prefix_capacity = 0;  // blocks, when sized from KV capacity
  };
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  Scheduler(SchedulerOptions options, const Clock* clock, std::unique_ptr<SchedulingPipeline> p,
            PrefixIndexOptions prefix, bool shed, bool prefix_from_kv);

  Endpoint* Find(std::string_view id, std::uint32_t* slot);
  // A candidate of metric-driven profiles: reachable and scraped at least once.
  static bool IsCandidate(const EndpointView& v) { return v.reachable && v.has_metrics; }
  // A response from the handle's endpoint arrived at `now`.
  void RecordContact(TokenLedger::Handle handle, TimeNs now);
  // ShouldHold; with admission_only, the hold rule asks only whether some endpoint can
  // admit the request now (ShouldRedirect).
  bool Hold(const RequestInfo& request, bool admission_only);
  // The prefill timing the ledger has learned so far.
  PrefillTiming LearnedPrefill() const {
    const TokenLedger::PrefillFit& fit = ledger_.prefill_fit();
    return PrefillTiming{fit.base_s, fit.per_token_s, fit.samples};
  }
  void AfterScrape(std::uint32_t slot);
  // Fills views_ with every ready endpoint as of `now`; when the profile needs KV
  // outlooks, readies each endpoint's (its TPOT and skeleton) for Project.
  // allowed: only these endpoint ids (a subset hint); nullptr: every ready endpoint.
  void BuildViews(TimeNs now, const std::vector<std::string>* allowed = nullptr);
  // Prompt tokens in one prefix-index block (its characters at the calibrated ratio).
  std::int64_t BlockTokens() const;
  // Sets up endpoint `v`'s outlook *out for this decision: capacity, TPOT, and its
  // skeleton brought up to date with the ledger.
  void PrepareKvOutlook(const EndpointView& v, KvOutlook* out);
  // KvOutlookSource: projects prepared endpoints' KV caches forward to `outlook_now_`.
  void Project(const EndpointView& endpoint) override;
  void ProjectAll(std::span<const EndpointView* const> endpoints) override;
  // Projects view `i`'s in-flight requests into its outlook, and each one's whole prompt
  // and output into *full, in the same order; returns false when the outlook is complete
  // already (nothing in flight), true when SumOutlooks must finish it.
  bool MergeOutlook(std::size_t i, std::vector<double>* full);
  // MergeOutlook's merge for endpoints with several virtual engines, into `out` (view v's
  // outlook), once the decoding requests are projected.
  void MergeVirtualEngineOutlook(const EndpointView& v, KvOutlook* out, std::vector<double>* full);
  // Completes the outlooks of views `group` (at most kOutlookGroup; the view at group[k]
  // merged into group_full_[k]): `other` and `held`.
  void SumOutlooks(std::span<const std::size_t> group);
  // Hashes (or takes) the prompt's blocks and sets views_[i].prefix_blocks.
  std::span<const std::uint64_t> MatchPrefix(const RequestInfo& request,
                                             std::vector<std::uint64_t>* storage);
  SchedulingContext MakeContext(const RequestInfo& request, TimeNs now, std::size_t prompt_blocks);
  void AppendFallbacks(PickResult* out, std::size_t want);

  // The part of `prompt` tokens endpoint `slot` must prefill, given `hashes` and the
  // blocks it holds (`known_blocks`, or matched here when unset).
  std::int64_t UncachedTokens(const Endpoint& ep, std::uint32_t slot, std::int64_t prompt,
                              std::span<const std::uint64_t> hashes,
                              std::optional<std::uint32_t> known_blocks);

  SchedulerOptions options_;
  const Clock* clock_;
  SchedulerEventSink* sink_ = nullptr;
  std::unique_ptr<SchedulingPipeline> pipeline_;
  bool shed_when_saturated_;
  bool prefix_from_kv_;
  TtftModelParams ttft_;

  std::vector<std::unique_ptr<Endpoint>> slots_;  // by slot; null when free
  std::vector<std::uint32_t> free_slots_;
  std::unordered_map<std::string, std::uint32_t, StringHash, std::equal_to<>> by_id_;

  TokenLedger ledger_;
  PrefixIndex prefix_;
  SessionTable sessions_;
  SaturationDetector saturation_;
  Rng rng_;

  // Per-decision scratch, reused.
  std::vector<EndpointView> views_;
  CandidateList candidates_;
  std::vector<std::uint32_t> order_;
  std::vector<std::uint32_t> match_;
  std::vector<std::uint8_t> chosen_;
  std::vector<TtftPrediction> prediction_memo_;
  std::vector<std::uint8_t> prediction_known_;
  std::vector<std::uint64_t> hold_hashes_;  // ShouldHold's prompt hashes
  // Each slot's prefix-index occupancy (entries / capacity) as last computed.
  struct Occupancy {
    std::size_t entries = SIZE_MAX;
    std::size_t capacity = SIZE_MAX;
    double value = 0;
  };
  std::vector<Occupancy> occupancy_;           // by slot
  std::vector<KvOutlook> outlooks_;            // per view, when the profile needs them
  std::vector<std::uint8_t> outlook_pending_;  // per view: prepared, not yet projected
  TimeNs outlook_now_ = 0;                     // the time outlooks are projected to
  // One endpoint's in-flight requests in the order they finish, rebuilt only when its
  // ledger version or the TPOT changes, so a decision costs a linear pass per endpoint
  // rather than a sort. Columns rather than records: the pass over the decoding requests
  // is element-wise and runs in vector registers.
  struct OutlookSkeleton {
    std::uint64_t version = UINT64_MAX;
    double tpot_s = 0;
    struct Entry {
      double uncached = 0;
      double prompt = 0;
      double output = 0;
      TimeNs first_token = kNever;  // kNever: awaiting
      TimeNs finish_at = kNever;    // decoding: first_token + output · tpot
      std::uint8_t virtual_engine = 0;
    };
    // Decoding requests, by finish_at.
    std::vector<TimeNs> decoding_finish_at;
    std::vector<TimeNs> decoding_first_token;
    std::vector<double> decoding_output;
    std::vector<double> decoding_uncached;
    std::vector<double> decoding_prompt;
    std::vector<std::uint8_t> decoding_ve;  // virtual engines (only with more than one)
    // Awaiting requests, by output (each finishes output · tpot after it starts), with
    // that time for the TPOT `awaiting_tpot_s`.
    std::vector<double> awaiting_output;
    std::vector<double> awaiting_uncached;
    std::vector<double> awaiting_prompt;
    std::vector<double> awaiting_finish_s;
    std::vector<std::uint8_t> awaiting_ve;
    double awaiting_tpot_s = -1;
  };
  std::vector<OutlookSkeleton::Entry> decoding_sort_, awaiting_sort_;  // rebuild scratch
  std::vector<double> decoding_finish_s_, decoding_generated_;         // projection scratch
  static constexpr std::size_t kOutlookGroup = 4;
  std::vector<double> group_full_[kOutlookGroup];  // MergeOutlook's *full, per group member
  std::vector<OutlookSkeleton> skeletons_;         // by slot
};

}  // namespace infergate
