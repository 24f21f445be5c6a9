#include "cluster/scheduler_router.h"

#include <algorithm>

namespace infergate::cluster {

EndpointMetrics ScrapedMetrics(const sim::EngineStats& s, const sim::EngineConfig& config) {
  EndpointMetrics m;
  m.engine = EngineKind::kVllm;
  m.vllm_v1 = config.version == sim::EngineVersion::kV1;
  m.waiting_requests = s.num_waiting;
  m.running_requests = s.num_running;
  m.kv_usage = s.kv_usage;
  m.present = kFieldWaiting | kFieldRunning | kFieldKvUsage;
  // vllm:cache_config_info{block_size, num_gpu_blocks, enable_prefix_caching, ...}.
  m.kv_block_size = config.block_size;
  m.kv_num_blocks = config.num_gpu_blocks;
  m.kv_capacity_tokens = config.kv_capacity_tokens();
  m.prefix_caching_enabled = config.prefix_caching;
  m.present |= kFieldKvCapacity | kFieldPrefixCachingConfig;
  if (m.vllm_v1) {
    m.prefix_cache_queries = static_cast<double>(s.prefix_cache_queries);
    m.prefix_cache_hits = static_cast<double>(s.prefix_cache_hits);
    m.present |= kFieldPrefixCacheCounters;
  } else {
    // V0's vllm:gpu_prefix_cache_hit_rate: -1 when prefix caching is off.
    m.prefix_cache_hit_rate =
        !config.prefix_caching ? -1.0
        : s.prefix_cache_queries > 0
            ? static_cast<double>(s.prefix_cache_hits) / static_cast<double>(s.prefix_cache_queries)
            : 0.0;
    m.present |= kFieldPrefixCacheHitRate;
  }
  if (config.max_loras > 0) {
    m.running_lora_adapters = s.running_loras;
    m.waiting_lora_adapters = s.waiting_loras;
    m.max_lora = config.max_loras;
    m.present |= kFieldLora;
  }
  return m;
}

EndpointMetrics ScrapedLlamacppMetrics(const sim::EngineStats& s, const sim::EngineConfig& config) {
  EndpointMetrics m;
  m.engine = EngineKind::kLlamacpp;
  m.waiting_requests = s.num_waiting;
  m.running_requests = s.num_running;
  m.present = kFieldWaiting | kFieldRunning;
  ApplyLlamacppSlots(m, config.max_num_seqs);
  return m;
}

int PoolVirtualEngines(std::span<const sim::EngineConfig> configs) {
  if (configs.empty()) return 1;
  const int pp = configs.front().pipeline_parallel;
  for (const sim::EngineConfig& c : configs) {
    if (c.version != sim::EngineVersion::kV0 || c.pipeline_parallel != pp) return 1;
  }
  return std::clamp(pp, 1, TokenLedger::kMaxVirtualEngines);
}

Result<std::unique_ptr<SchedulerRouter>> SchedulerRouter::Create(
    SchedulerRouterOptions options, const std::vector<sim::Profile>& engines) {
  if (engines.empty()) return Error{"scheduler router: no engines"};
  std::vector<sim::EngineConfig> configs;
  for (const sim::Profile& p : engines) {
    Result<sim::EngineConfig> c = sim::ResolveEngineConfig(p);
    if (!c.ok()) return Error{"scheduler router: " + c.error().message};
    configs.push_back(*c);
  }
  if (!options.virtual_engines) options.virtual_engines = PoolVirtualEngines(configs);
  options.scheduler.pipeline_virtual_engines = *options.virtual_engines;
  auto router =
      std::unique_ptr<SchedulerRouter>(new SchedulerRouter(std::move(options), std::move(configs)));
  Result<std::unique_ptr<Scheduler>> s =
      Scheduler::Create(router->options_.scheduler, &router->clock_);
  if (!s.ok()) return s.error();
  router->scheduler_ = std::move(s).value();
  for (std::size_t e = 0; e < router->configs_.size(); ++e) {
    router->ids_.push_back("10.0.0." + std::to_string(e + 1) + ":8000");
    EndpointSpec spec;
    spec.id = router->ids_.back();
    spec.labels[std::string(kEngineTypeLabel)] =
        router->options_.engine_api == EngineKind::kLlamacpp ? "llamacpp" : "vllm";
    if (Status st = router->scheduler_->UpsertEndpoint(spec); !st.ok()) return st.error();
  }
  router->admission_ = std::make_unique<AdmissionController>(
      AdmissionOptions{.late_binding = router->options_.late_binding,
                       .queue = router->options_.queue},
      router->scheduler_.get());
  router->on_decided_ = [r = router.get()](QueueItemId id, const AdmissionDecision& d) {
    auto it = r->held_.find(id);
    if (it == r->held_.end()) return;
    r->decided_.push_back(ReleasedRequest{id, r->Apply(it->second.request, d, r->now_, true)});
    r->held_.erase(it);
  };
  return router;
}

SchedulerRouter::SchedulerRouter(SchedulerRouterOptions options,
                                 std::vector<sim::EngineConfig> configs)
    : options_(std::move(options)), configs_(std::move(configs)) {}

RequestInfo SchedulerRouter::Describe(const RouteRequest& request) const {
  const WorkloadRequest& w = *request.request;
  RequestInfo r;
  r.target_model = options_.target_model;
  r.prompt = w.prompt_text;
  if (options_.exact_prompt_tokens || w.prompt_text.empty()) {
    r.prompt_tokens = static_cast<std::int64_t>(request.prompt.size());
  }
  if (w.max_tokens) r.max_tokens = *w.max_tokens;
  r.criticality = options_.criticality;
  r.priority = w.gateway_priority ? *w.gateway_priority : PriorityOf(options_.criticality);
  r.lora_adapter = w.lora;
  if (!w.lora.empty()) r.target_model = w.lora;
  r.session_key = w.session_key;
  r.fairness_id = w.fairness_id;
  return r;
}

int SchedulerRouter::EngineOf(std::string_view id) const {
  return static_cast<int>(std::find(ids_.begin(), ids_.end(), id) - ids_.begin());
}

void SchedulerRouter::CountRefusal(PickReason reason) {
  const std::string_view name = PickReasonName(reason);
  for (auto& [n, count] : refusals_) {
    if (n == name) {
      ++count;
      return;
    }
  }
  refusals_.emplace_back(std::string(name), 1);
}

RouteDecision SchedulerRouter::Apply(const RouteRequest& request, const AdmissionDecision& d,
                                     TimeNs now, bool from_queue) {
  switch (d.reason) {
    case AdmissionReason::kExpired:
      ++queue_stats_.expired;
      return RouteDecision::Reject("503 gateway queue TTL expired");
    case AdmissionReason::kQueueFull:
      ++queue_stats_.rejected;
      return RouteDecision::Reject("429 gateway queue full");
    case AdmissionReason::kDuplicateId:
      ++queue_stats_.rejected;
      return RouteDecision::Reject("500 duplicate queue item");
    case AdmissionReason::kHeld:
      return RouteDecision::Hold();
    case AdmissionReason::kPickRefused:
      if (from_queue) ++queue_stats_.dropped;
      CountRefusal(d.pick.reason);
      return RouteDecision::Reject(std::to_string(d.pick.http_status()) + " " +
                                   std::string(PickReasonName(d.pick.reason)));
    case AdmissionReason::kPicked:
      break;
  }
  if (from_queue) ++queue_stats_.dispatched;
  if (handles_.size() <= request.index) handles_.resize(request.index + 1);
  handles_[request.index] = d.handle;
  if (options_.redirect_after > 0) awaiting_[request.index] = Awaiting{request, now, false};
  return RouteDecision::To(EngineOf(d.pick.endpoints.front()));
}

RouteDecision SchedulerRouter::Route(const RouteRequest& request, std::span<const EngineScrape>,
                                     TimeNs now) {
  clock_.Set(std::max(clock_.Now(), now));
  now_ = now;
  auto [it, inserted] = held_.try_emplace(request.index, Held{request, Describe(request)});
  if (!inserted) {
    ++queue_stats_.rejected;
    return RouteDecision::Reject("500 duplicate queue item");
  }
  const AdmissionDecision d =
      admission_->Admit(request.index, it->second.info, now, 0, true, on_decided_);
  if (d.verdict == AdmissionVerdict::kHold || !held_.count(request.index)) {
    // It entered the gateway queue: held, or decided by the pass its arrival started
    // (the simulation gets that decision from the Release that follows at this instant).
    ++queue_stats_.queued;
    queue_stats_.max_length = admission_->max_queued();
    return RouteDecision::Hold();
  }
  held_.erase(request.index);
  return Apply(request, d, now, false);
}

void SchedulerRouter::Release(std::span<const EngineScrape>, TimeNs now,
                              std::vector<ReleasedRequest>* out) {
  if (!options_.late_binding) return;
  clock_.Set(std::max(clock_.Now(), now));
  now_ = now;
  admission_->Pump(now, false, on_decided_);
  for (ReleasedRequest& r : decided_) out->push_back(std::move(r));
  decided_.clear();
}

TimeNs SchedulerRouter::NextWakeup() const { return admission_->NextDeadline(); }

void SchedulerRouter::Redirect(TimeNs now, std::vector<ReleasedRequest>* out) {
  if (options_.redirect_after <= 0) return;
  clock_.Set(std::max(clock_.Now(), now));
  for (auto& [index, a] : awaiting_) {
    if (a.redirected || now - a.dispatched < options_.redirect_after) continue;
    const RequestInfo info = Describe(a.request);
    if (!scheduler_->ShouldRedirect(info, handles_[index], &pick_)) continue;
    const std::string& id = pick_.endpoints.front();
    const int engine = EngineOf(id);
    scheduler_->OnFailure(handles_[index]);
    handles_[index] = scheduler_->Dispatch(info, pick_, id);
    a.redirected = true;
    ++queue_stats_.redirected;
    out->push_back(ReleasedRequest{index, RouteDecision::To(engine)});
  }
}

void SchedulerRouter::OnFirstToken(std::size_t index, int, TimeNs now) {
  awaiting_.erase(index);
  clock_.Set(std::max(clock_.Now(), now));
  if (index < handles_.size()) scheduler_->OnFirstToken(handles_[index]);
}

void SchedulerRouter::OnCompleted(const Completion& c, TimeNs now) {
  awaiting_.erase(c.index);
  clock_.Set(std::max(clock_.Now(), now));
  if (c.index >= handles_.size()) return;
  const TokenLedger::Handle h = handles_[c.index];
  if (c.success) {
    scheduler_->OnComplete(h, Usage{c.prompt_tokens, c.output_tokens});
  } else {
    scheduler_->OnFailure(h);
  }
  handles_[c.index] = TokenLedger::kInvalidHandle;
}

void SchedulerRouter::OnScrape(std::span<const EngineScrape> engines, TimeNs now) {
  clock_.Set(std::max(clock_.Now(), now));
  for (const EngineScrape& s : engines) {
    if (s.taken_at < 0 || s.engine < 0 || s.engine >= static_cast<int>(ids_.size())) continue;
    const auto e = static_cast<std::size_t>(s.engine);
    if (s.down) {
      scheduler_->ReportScrapeFailure(ids_[e], s.taken_at, "connection refused",
                                      ScrapeFailure::kUnreachable);
      continue;
    }
    if (s.late) {
      // Connected, page late: the endpoint stays reachable (scheduler.h).
      scheduler_->ReportScrapeFailure(ids_[e], s.taken_at, "timed out", ScrapeFailure::kTimeout);
      continue;
    }
    scheduler_->ReportMetrics(ids_[e], s.taken_at,
                              options_.engine_api == EngineKind::kLlamacpp
                                  ? ScrapedLlamacppMetrics(s.stats, configs_[e])
                                  : ScrapedMetrics(s.stats, configs_[e]));
  }
}

}  // namespace infergate::cluster
