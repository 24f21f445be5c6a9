#include "scheduler/scheduler.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "scheduler/profiles.h"

namespace infergate {

Result<std::unique_ptr<Scheduler>> Scheduler::Create(SchedulerOptions options, const Clock* clock) {
  if (clock == nullptr) return Error{"scheduler: no clock"};
  if (options.metrics_staleness <= 0) return Error{"scheduler: metrics staleness must be > 0"};
  if (options.max_fallbacks > 64) return Error{"scheduler: at most 64 fallbacks"};
  if (options.prefix.block_chars == 0) return Error{"scheduler: prefix block size must be > 0"};
  if (options.pipeline_virtual_engines < 1 ||
      options.pipeline_virtual_engines > TokenLedger::kMaxVirtualEngines) {
    return Error{"scheduler: pipeline virtual engines must be in [1, " +
                 std::to_string(TokenLedger::kMaxVirtualEngines) + "]"};
  }

  EndpointPickerConfig config;
  bool shed = true;
  bool prefix_from_kv = false;
  if (options.picker_config) {
    config = *options.picker_config;
  } else {
    Result<NamedProfile> named = FindNamedProfile(options.profile);
    if (!named.ok()) return named.error();
    config = named->config;
    shed = named->shed_when_saturated;
    prefix_from_kv = named->prefix_lru_from_kv_capacity;
  }
  if (config.saturation_detector) {
    const SaturationDetectorSpec& s = *config.saturation_detector;
    if (s.queue_depth_threshold) options.saturation.queue_threshold = *s.queue_depth_threshold;
    if (s.kv_cache_util_threshold) options.saturation.kv_threshold = *s.kv_cache_util_threshold;
    if (s.metrics_staleness_threshold) {
      options.saturation.metrics_staleness = *s.metrics_staleness_threshold;
    }
  }
  if (!(options.saturation.queue_threshold > 0) || !(options.saturation.kv_threshold > 0)) {
    return Error{"saturationDetector: thresholds must be positive"};
  }
  if (options.shed_when_saturated) shed = *options.shed_when_saturated;
  if (options.prefix_lru_from_kv_capacity) prefix_from_kv = *options.prefix_lru_from_kv_capacity;

  Result<std::unique_ptr<SchedulingPipeline>> pipeline =
      SchedulingPipeline::Build(config, options.scheduling_profile);
  if (!pipeline.ok()) return pipeline.error();
  PrefixIndexOptions prefix =
      (*pipeline)->prefix_options() ? *(*pipeline)->prefix_options() : options.prefix;
  return std::unique_ptr<Scheduler>(new Scheduler(
      std::move(options), clock, std::move(pipeline).value(), prefix, shed, prefix_from_kv));
}

namespace {

// The ledger replays the virtual engines the cost model asks for, or the pool's.
TokenLedger::Options LedgerOptions(const SchedulerOptions& options, const TtftModelParams& ttft) {
  TokenLedger::Options ledger = options.ledger;
  ledger.virtual_engines =
      ttft.virtual_engines > 0 ? ttft.virtual_engines : options.pipeline_virtual_engines;
  return ledger;
}

}  // namespace

Scheduler::Scheduler(SchedulerOptions options, const Clock* clock,
                     std::unique_ptr<SchedulingPipeline> pipeline, PrefixIndexOptions prefix,
                     bool shed, bool prefix_from_kv)
    : options_(std::move(options)),
      clock_(clock),
      pipeline_(std::move(pipeline)),
      shed_when_saturated_(shed),
      prefix_from_kv_(prefix_from_kv),
      ttft_(pipeline_->ttft_params() ? *pipeline_->ttft_params() : options_.ttft),
      ledger_(LedgerOptions(options_, ttft_)),
      prefix_(prefix),
      sessions_(options_.session_capacity, options_.session_idle_timeout),
      saturation_(options_.saturation),
      rng_(options_.seed) {}

Scheduler::~Scheduler() = default;

std::int64_t Scheduler::BlockTokens() const {
  // Characters per block over characters per token, the latter as calibrated from usage.
  const double tokens = static_cast<double>(prefix_.options().block_chars) / kCharsPerToken *
                        ledger_.prompt_token_ratio();
  return std::max<std::int64_t>(1, RoundToInt(tokens));
}

Scheduler::Endpoint* Scheduler::Find(std::string_view id, std::uint32_t* slot) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return nullptr;
  if (slot) *slot = it->second;
  return slots_[it->second].get();
}

Status Scheduler::UpsertEndpoint(const EndpointSpec& spec) {
  if (spec.id.empty()) return Error{"endpoint without an id"};
  std::uint32_t slot = 0;
  Endpoint* ep = Find(spec.id, &slot);
  if (ep == nullptr) {
    if (!free_slots_.empty()) {
      slot = free_slots_.back();
      free_slots_.pop_back();
    } else {
      slot = static_cast<std::uint32_t>(slots_.size());
      slots_.emplace_back();
    }
    slots_[slot] = std::make_unique<Endpoint>();
    ep = slots_[slot].get();
    ep->id = spec.id;
    by_id_.emplace(ep->id, slot);
  }
  ep->labels = spec.labels;
  ep->ready = spec.ready;
  ep->engine = EngineKind::kAuto;
  auto label = spec.labels.find(std::string(kEngineTypeLabel));
  if (label != spec.labels.end()) {
    Result<EngineKind> kind = ParseEngineKind(label->second);
    if (!kind.ok()) return Error{"endpoint " + spec.id + ": " + kind.error().message};
    ep->engine = *kind;
  }
  return Ok();
}

bool Scheduler::RemoveEndpoint(std::string_view id) {
  std::uint32_t slot = 0;
  if (Find(id, &slot) == nullptr) return false;
  by_id_.erase(by_id_.find(id));
  ledger_.RemoveEndpoint(slot);
  prefix_.RemoveEndpoint(slot);
  slots_[slot].reset();
  free_slots_.push_back(slot);
  return true;
}

bool Scheduler::SetReady(std::string_view id, bool ready) {
  Endpoint* ep = Find(id, nullptr);
  if (ep == nullptr) return false;
  ep->ready = ready;
  return true;
}

void Scheduler::AfterScrape(std::uint32_t slot) {
  Endpoint& ep = *slots_[slot];
  ledger_.Rebase(slot, ep.scrape.metrics_time());
  if (!prefix_from_kv_) return;
  const std::int64_t cap = ep.scrape.metrics().kv_capacity_tokens;
  const auto block_tokens =
      std::max<std::size_t>(1, prefix_.options().block_chars / kCharsPerToken);
  if (cap > 0) {
    const auto blocks = static_cast<std::size_t>(cap) / block_tokens;
    if (blocks > 0 && blocks != ep.prefix_capacity) {
      ep.prefix_capacity = blocks;
      prefix_.SetEndpointCapacity(slot, blocks);
    }
  }
}

Status Scheduler::ReportScrape(std::string_view id, TimeNs at, std::string_view body) {
  std::uint32_t slot = 0;
  Endpoint* ep = Find(id, &slot);
  if (ep == nullptr) return Error{"unknown endpoint " + std::string(id)};
  Status s = ep->scrape.RecordBody(at, body, ep->engine);
  if (!s.ok()) return Error{"endpoint " + ep->id + ": " + s.error().message};
  AfterScrape(slot);
  return Ok();
}

bool Scheduler::ReportMetrics(std::string_view id, TimeNs at, EndpointMetrics metrics) {
  std::uint32_t slot = 0;
  Endpoint* ep = Find(id, &slot);
  if (ep == nullptr) return false;
  ep->scrape.RecordMetrics(at, std::move(metrics));
  AfterScrape(slot);
  return true;
}

bool Scheduler::ReportScrapeFailure(std::string_view id, TimeNs at, std::string_view error,
                                    ScrapeFailure kind) {
  Endpoint* ep = Find(id, nullptr);
  if (ep == nullptr) return false;
  ep->scrape.RecordFailure(at, error, kind);
  return true;
}

void Scheduler::RecordContact(TokenLedger::Handle handle, TimeNs now) {
  if (ledger_.IsRemote(handle)) return;  // a peer's request says nothing of our reach
  const auto slot = ledger_.SlotOf(handle);
  if (!slot || *slot >= slots_.size() || !slots_[*slot]) return;
  slots_[*slot]->scrape.RecordContact(now);
}

std::span<const std::uint64_t> Scheduler::MatchPrefix(const RequestInfo& request,
                                                      std::vector<std::uint64_t>* storage) {
  const std::vector<std::uint64_t>* hashes = request.block_hashes;
  if (hashes == nullptr) {
    ComputeBlockHashes(request.target_model, request.prompt, prefix_.options(), storage);
    hashes = storage;
  }
  match_.resize(slots_.size());
  prefix_.Match(*hashes, match_);
  if (occupancy_.size() < slots_.size()) occupancy_.resize(slots_.size());
  for (EndpointView& v : views_) {
    v.prefix_blocks = match_[v.slot];
    // The division is only redone when the endpoint's entries or capacity changed.
    Occupancy& o = occupancy_[v.slot];
    const std::size_t capacity = prefix_.EndpointCapacity(v.slot);
    const std::size_t entries = prefix_.EndpointEntries(v.slot);
    if (o.entries != entries || o.capacity != capacity) {
      o.entries = entries;
      o.capacity = capacity;
      o.value = capacity > 0
                    ? std::min(1.0, static_cast<double>(entries) / static_cast<double>(capacity))
                    : 0.0;
    }
    v.prefix_occupancy = o.value;
  }
  return *hashes;
}

SchedulingContext Scheduler::MakeContext(const RequestInfo& request, TimeNs now,
                                         std::size_t prompt_blocks) {
  SchedulingContext ctx;
  ctx.request = &request;
  ctx.now = now;
  ctx.prompt_tokens =
      request.prompt_tokens >= 0
          ? request.prompt_tokens
          : ledger_.CalibratedPromptTokens(EstimatePromptTokens(request.prompt.size()));
  ctx.expected_output_tokens = ledger_.ExpectedOutputTokens(request.max_tokens);
  ctx.prompt_blocks = prompt_blocks;
  ctx.block_tokens = BlockTokens();
  ctx.shape = RequestShape{ctx.prompt_tokens, ctx.expected_output_tokens, ctx.block_tokens,
                           request.lora_adapter};
  ctx.endpoints = views_;
  ctx.rng = &rng_;
  ctx.saturation = &saturation_;
  ctx.sessions = &sessions_;
  ctx.ttft = &ttft_;
  ctx.prefill_timing = LearnedPrefill();
  if (prediction_memo_.size() < views_.size()) prediction_memo_.resize(views_.size());
  prediction_known_.assign(views_.size(), 0);
  ctx.prediction_memo = prediction_memo_.data();
  ctx.prediction_known = prediction_known_.data();
  if (pipeline_->needs() & kNeedsKvOutlook) ctx.kv_outlooks = this;
  return ctx;
}

void Scheduler::AppendFallbacks(PickResult* out, std::size_t want) {
  if (out->endpoints.size() >= want) return;
  chosen_.assign(slots_.size(), 0);
  for (const std::string& id : out->endpoints) chosen_[by_id_.find(id)->second] = 1;
  // The remaining ready endpoints, fresh first, then by estimated queue and KV.
  auto better = [](const EndpointView& a, const EndpointView& b) {
    if (a.fresh != b.fresh) return a.fresh;
    if (a.load.waiting_est != b.load.waiting_est) return a.load.waiting_est < b.load.waiting_est;
    return a.load.kv_usage_est < b.load.kv_usage_est;
  };
  while (out->endpoints.size() < want) {
    const EndpointView* best = nullptr;
    for (const EndpointView& v : views_) {
      if (chosen_[v.slot]) continue;
      if (best == nullptr || better(v, *best)) best = &v;
    }
    if (best == nullptr) return;
    chosen_[best->slot] = 1;
    out->endpoints.emplace_back(best->id);
  }
}

void Scheduler::Pick(const RequestInfo& request, PickResult* out) {
  const TimeNs now = clock_->Now();
  out->status = PickStatus::kUnavailable;
  out->reason = PickReason::kNoEndpoints;
  out->decided_by.clear();
  out->endpoints.clear();
  out->block_hashes.clear();
  out->prefix_matched = false;
  out->prefix_blocks = 0;

  BuildViews(now, request.allowed_endpoints);
  if (views_.empty()) return;
  const std::size_t want = 1 + options_.max_fallbacks;

  const bool needs_metrics = (pipeline_->needs() & kNeedsMetrics) != 0;
  candidates_.clear();
  // Late metrics do not drop an endpoint (their age discounts them in the estimates);
  // only an endpoint that cannot be reached, or was never scraped, is left out.
  for (const EndpointView& v : views_) {
    if (!needs_metrics || IsCandidate(v)) candidates_.push_back(&v);
  }
  if (candidates_.empty()) {
    if (options_.failure_mode == FailureMode::kFailClose) {
      out->reason = PickReason::kNoFreshMetrics;
      return;
    }
    // FailOpen: any ready endpoint, chosen at random; the rest as fallbacks.
    out->status = PickStatus::kPicked;
    out->reason = PickReason::kFailOpen;
    order_.resize(views_.size());
    for (std::uint32_t i = 0; i < views_.size(); ++i) order_[i] = i;
    const std::size_t n = std::min(want, views_.size());
    for (std::size_t i = 0; i < n; ++i) {
      std::size_t j = i + rng_.Uniform(views_.size() - i);
      std::swap(order_[i], order_[j]);
      out->endpoints.emplace_back(views_[order_[i]].id);
    }
    return;
  }

  if (shed_when_saturated_ && request.IsSheddable() && !request.IsCritical() &&
      saturation_.IsSaturated(views_)) {
    out->status = PickStatus::kShed;
    out->reason = PickReason::kSaturated;
    return;
  }

  std::size_t blocks = 0;
  if (pipeline_->needs() & kNeedsPrefixMatch) {
    blocks = MatchPrefix(request, &out->block_hashes).size();
  }
  SchedulingContext ctx = MakeContext(request, now, blocks);
  SchedulingPipeline::Outcome outcome = pipeline_->Run(ctx, candidates_, want, order_);
  if (outcome.verdict == FilterVerdict::kShed) {
    out->status = PickStatus::kShed;
    out->reason = PickReason::kShedByProfile;
    out->decided_by.assign(outcome.decided_by);
    return;
  }
  if (outcome.verdict == FilterVerdict::kReject || order_.empty()) {
    out->reason = PickReason::kNoCandidate;
    out->decided_by.assign(outcome.decided_by);
    return;
  }
  out->status = PickStatus::kPicked;
  out->reason = PickReason::kScheduled;
  for (std::uint32_t i : order_) out->endpoints.emplace_back(candidates_[i]->id);
  if (pipeline_->needs() & kNeedsPrefixMatch) {
    out->prefix_matched = true;
    out->prefix_blocks = candidates_[order_.front()]->prefix_blocks;
  }
  AppendFallbacks(out, want);
}

PickResult Scheduler::Pick(const RequestInfo& request) {
  PickResult r;
  Pick(request, &r);
  return r;
}

TokenLedger::Handle Scheduler::Dispatch(const RequestInfo& request, const PickResult& pick,
                                        std::string_view endpoint_id) {
  std::uint32_t slot = 0;
  Endpoint* ep = Find(endpoint_id, &slot);
  if (ep == nullptr) return TokenLedger::kInvalidHandle;
  const TimeNs now = clock_->Now();
  std::int64_t raw = -1;
  std::int64_t prompt = request.prompt_tokens;
  if (prompt < 0) {
    raw = EstimatePromptTokens(request.prompt.size());
    prompt = ledger_.CalibratedPromptTokens(raw);
  }
  const std::int64_t expected_output = ledger_.ExpectedOutputTokens(request.max_tokens);
  TokenLedger::Handle h = TokenLedger::kInvalidHandle;
  std::span<const std::uint64_t> sent_hashes;
  std::vector<std::uint64_t> computed;
  if (pipeline_->needs() & kNeedsPrefixMatch) {
    const std::vector<std::uint64_t>* hashes = request.block_hashes;
    if (hashes == nullptr) {
      hashes = &pick.block_hashes;
      if (hashes->empty() && request.prompt.size() >= prefix_.options().block_chars) {
        ComputeBlockHashes(request.target_model, request.prompt, prefix_.options(), &computed);
        hashes = &computed;
      }
    }
    std::optional<std::uint32_t> known;
    if (pick.prefix_matched && !pick.endpoints.empty() && pick.endpoints.front() == endpoint_id) {
      known = pick.prefix_blocks;
    }
    const std::int64_t uncached = UncachedTokens(*ep, slot, prompt, *hashes, known);
    h = ledger_.Dispatch(slot, now, prompt, expected_output, raw, uncached);
    if (!hashes->empty()) prefix_.Insert(slot, *hashes);
    sent_hashes = *hashes;
  } else {
    h = ledger_.Dispatch(slot, now, prompt, expected_output, raw);
  }
  if (!request.session_key.empty()) sessions_.Record(request.session_key, ep->id, now);
  if (sink_ != nullptr) {
    sink_->OnLocalDispatch(
        LocalDispatchEvent{h, ep->id, prompt, expected_output, sent_hashes, request.session_key});
  }
  return h;
}

std::int64_t Scheduler::UncachedTokens(const Endpoint& ep, std::uint32_t slot, std::int64_t prompt,
                                       std::span<const std::uint64_t> hashes,
                                       std::optional<std::uint32_t> known_blocks) {
  // The part of the prompt this endpoint probably holds is not prefilled again: the
  // ledger's prefill backlog counts only the rest.
  const EndpointMetrics& m = ep.scrape.metrics();
  const bool caching = !(m.Has(kFieldPrefixCachingConfig) && !m.prefix_caching_enabled);
  if (!caching || hashes.empty() || prompt <= 1) return prompt;
  std::uint32_t blocks = 0;
  if (known_blocks) {
    blocks = *known_blocks;
  } else {
    match_.resize(slots_.size());
    prefix_.Match(hashes, match_);
    blocks = match_[slot];
  }
  return prompt - std::min<std::int64_t>(blocks * BlockTokens(), prompt - 1);
}

TokenLedger::Handle Scheduler::ApplyRemoteDispatch(const RemoteDispatch& d) {
  std::uint32_t slot = 0;
  Endpoint* ep = Find(d.endpoint, &slot);
  if (ep == nullptr) return TokenLedger::kInvalidHandle;
  const bool prefix = (pipeline_->needs() & kNeedsPrefixMatch) != 0;
  const std::int64_t prompt = std::max<std::int64_t>(d.prompt_tokens, 0);
  const std::int64_t uncached =
      prefix ? UncachedTokens(*ep, slot, prompt, d.block_hashes, std::nullopt) : prompt;
  const TokenLedger::Handle h = ledger_.DispatchRemote(slot, std::min(d.dispatched, clock_->Now()),
                                                       prompt, d.expected_output_tokens, uncached);
  if (prefix && !d.block_hashes.empty()) prefix_.Insert(slot, d.block_hashes);
  return h;
}

void Scheduler::ApplyRemoteSession(std::string_view session_key, std::string_view endpoint_id) {
  std::uint32_t slot = 0;
  Endpoint* ep = Find(endpoint_id, &slot);
  if (ep == nullptr || session_key.empty()) return;
  sessions_.Record(session_key, ep->id, clock_->Now());
}

bool Scheduler::OnFirstToken(TokenLedger::Handle handle, TimeNs at) {
  const TimeNs now = clock_->Now();
  RecordContact(handle, now);  // a response is flowing: the endpoint is up
  const bool ok = ledger_.FirstToken(handle, std::min(at, now));
  if (ok && sink_ != nullptr && !ledger_.IsRemote(handle)) sink_->OnLocalFirstToken(handle);
  return ok;
}

bool Scheduler::OnComplete(TokenLedger::Handle handle, const std::optional<Usage>& reported,
                           TimeNs at) {
  // A server's counts are bounded before they reach any arithmetic: a bogus usage object
  // (negative, or near INT64_MAX) must not overflow the ledger's sums.
  constexpr std::int64_t kMaxUsageTokens = std::int64_t{1} << 32;
  std::optional<Usage> usage = reported;
  if (usage) {
    usage->prompt_tokens = std::clamp<std::int64_t>(usage->prompt_tokens, 0, kMaxUsageTokens);
    usage->completion_tokens =
        std::clamp<std::int64_t>(usage->completion_tokens, 0, kMaxUsageTokens);
  }
  // The server cached the tokens it generated: the prefix index ages the endpoint's LRU by
  // as many blocks (PrefixIndexOptions::output_aging).
  const double aging = prefix_.options().output_aging;
  if (aging > 0 && usage && usage->completion_tokens > 0 &&
      (pipeline_->needs() & kNeedsPrefixMatch)) {
    if (const auto slot = ledger_.SlotOf(handle)) {
      // At most 100 · 2^32 blocks (the bounds above): the conversion cannot overflow, and
      // Age caps the work at the endpoint's capacity.
      const double blocks = aging * static_cast<double>(usage->completion_tokens) /
                            static_cast<double>(BlockTokens());
      prefix_.Age(*slot, static_cast<std::size_t>(blocks));
    }
  }
  RecordContact(handle, clock_->Now());
  const bool local = sink_ != nullptr && !ledger_.IsRemote(handle);
  const bool ok = ledger_.Finish(handle, std::min(at, clock_->Now()), usage ? &*usage : nullptr);
  if (ok && local) sink_->OnLocalFinish(handle, usage, false);
  return ok;
}

bool Scheduler::OnFailure(TokenLedger::Handle handle, TimeNs at) {
  const bool local = sink_ != nullptr && !ledger_.IsRemote(handle);
  const bool ok = ledger_.Finish(handle, std::min(at, clock_->Now()), nullptr);
  if (ok && local) sink_->OnLocalFinish(handle, std::nullopt, true);
  return ok;
}

bool Scheduler::IsSaturated() {
  BuildViews(clock_->Now());
  return saturation_.IsSaturated(views_);
}

bool Scheduler::ShouldHold(const RequestInfo& request) { return Hold(request, false); }

bool Scheduler::Hold(const RequestInfo& request, bool admission_only) {
  const TimeNs now = clock_->Now();
  BuildViews(now);
  candidates_.clear();
  for (const EndpointView& v : views_) {
    if (IsCandidate(v)) candidates_.push_back(&v);
  }
  if (candidates_.empty()) return true;
  if (!pipeline_->has_hold_rule()) return saturation_.IsSaturated(views_);
  std::size_t blocks = 0;
  if (pipeline_->needs() & kNeedsPrefixMatch) blocks = MatchPrefix(request, &hold_hashes_).size();
  SchedulingContext ctx = MakeContext(request, now, blocks);
  ctx.admission_only = admission_only;
  return pipeline_->WantsHold(ctx, candidates_);
}

bool Scheduler::ShouldRedirect(const RequestInfo& request, TokenLedger::Handle handle,
                               PickResult* out) {
  const auto slot = ledger_.SlotOf(handle);
  if (!slot || ledger_.AwaitingAhead(handle) != 0) return false;
  // The oldest awaiting request may simply be prefilling (a long prompt): it is presumed
  // stuck only once it has been silent for twice its own predicted prefill, which would
  // otherwise be thrown away.
  const auto rec = ledger_.Inflight(handle);
  if (!rec) return false;
  const PrefillTiming learned = LearnedPrefill();
  const PrefillRate rate = EffectivePrefillRate(ttft_, &learned);
  const double prefill_s =
      rate.base_s + rate.per_token_s * static_cast<double>(rec->uncached_tokens);
  if (static_cast<double>(clock_->Now() - rec->dispatched) <
      2.0 * prefill_s * static_cast<double>(kNanosPerSecond)) {
    return false;
  }
  if (Hold(request, /*admission_only=*/true)) return false;
  Pick(request, out);
  if (!out->picked()) return false;
  const auto it = by_id_.find(out->endpoints.front());
  if (it == by_id_.end() || it->second == *slot) return false;
  const std::uint32_t target = it->second;
  const int target_ve = ledger_.NextVirtualEngine(target);
  int queued = 0;
  ledger_.ForEachInflight(target, [&](const TokenLedger::InflightRequest& r) {
    if (r.first_token == kNever && r.virtual_engine == target_ve) ++queued;
  });
  return queued == 0;
}

bool Scheduler::LargerThanEveryKvCache(const RequestInfo& request) const {
  std::int64_t largest = 0;
  for (const auto& ep : slots_) {
    if (!ep) continue;
    // Unknown capacity: that endpoint may have room.
    if (!ep->scrape.has_metrics() || ep->scrape.metrics().kv_capacity_tokens <= 0) return false;
    largest = std::max(largest, ep->scrape.metrics().kv_capacity_tokens);
  }
  if (largest == 0) return false;  // no endpoint
  largest /= std::max(1, virtual_engines());
  return request.PromptTokens() > largest;
}

bool Scheduler::CanHold() const {
  const TimeNs now = clock_->Now();
  // An endpoint that has not given metrics yet, but is not known to be down, may give them
  // soon: hold for it for up to twice the staleness bound from its first scrape outcome.
  const TimeNs first_metrics_grace = 2 * options_.metrics_staleness;
  for (const auto& ep : slots_) {
    if (!ep || !ep->ready) continue;
    if (ep->scrape.IsReachable() && ep->scrape.has_metrics()) return true;
    if (ep->scrape.AwaitingFirstMetrics(now, first_metrics_grace)) return true;
  }
  return false;
}

}  // namespace infergate
