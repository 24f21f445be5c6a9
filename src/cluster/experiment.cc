#include "cluster/experiment.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iterator>
#include <map>

#include <fmt/format.h>

#include "loadgen/arrivals.h"
#include "loadgen/numpy_random.h"
#include "loadgen/statistics.h"
#include "scheduler/profiles.h"
#include "sim/engine/engine.h"
#include "sim/engine/output_model.h"

namespace infergate::cluster {

int WorkloadSpec::num_prompts() const {
  return dataset == DatasetKind::kRandom ? random.num_prompts : shared_prefix.num_prompts;
}

namespace {

// The shared-prefix dataset, with the simulated model's answers when asked for: request
// i's answer is the text of output tokens 0..n-1 of request id i under the model seed
// (the cluster gives engine requests their workload index as id).
Result<std::vector<loadgen::SampleRequest>> SampleSharedPrefixFor(const WorkloadSpec& spec,
                                                                  loadgen::NumpyRandomState& rng) {
  loadgen::SharedPrefixOptions o = spec.shared_prefix;
  if (spec.answers_from_model) {
    const std::uint64_t seed = *spec.answers_from_model;
    o.answer_text = [seed](std::size_t index, int tokens, std::string& out) {
      for (int k = 0; k < tokens; ++k) {
        sim::AppendOutputText(sim::OutputPieceKey(seed, index, k), false, out);
      }
    };
  }
  return loadgen::SampleSharedPrefix(o, rng);
}

}  // namespace

Result<std::vector<WorkloadRequest>> SampleWorkload(const WorkloadSpec& spec) {
  loadgen::NumpyRandomState rng(spec.seed);
  Result<std::vector<loadgen::SampleRequest>> samples =
      spec.dataset == DatasetKind::kRandom ? loadgen::SampleRandom(spec.random, rng)
                                           : SampleSharedPrefixFor(spec, rng);
  if (!samples.ok()) return samples.error();
  Result<std::vector<double>> offsets = loadgen::ArrivalOffsets(
      static_cast<int>(samples->size()), spec.request_rate, spec.burstiness, rng);
  if (!offsets.ok()) return offsets.error();
  std::vector<WorkloadRequest> out(samples->size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    loadgen::SampleRequest& s = (*samples)[i];
    WorkloadRequest& w = out[i];
    w.prompt_text = std::move(s.prompt);
    Tokenizer::Encode(w.prompt_text, w.prompt_tokens);
    w.max_tokens = s.expected_output_len;
    w.ignore_eos = spec.ignore_eos;
    w.arrival = FromSeconds((*offsets)[i]);
    if (s.tenant >= 0) w.fairness_id = "tenant-" + std::to_string(s.tenant);
    w.session = s.session;
    w.turn = s.turn;
  }
  return out;
}

Result<PolicySpec> ParsePolicy(std::string_view text) {
  PolicySpec p;
  std::string_view name = text;
  std::string_view mode;
  if (const std::size_t colon = text.find(':'); colon != std::string_view::npos) {
    name = text.substr(0, colon);
    mode = text.substr(colon + 1);
  }
  Result<NamedProfile> named = FindNamedProfile(name);
  if (!named.ok()) return named.error();
  p.profile = std::string(name);
  p.name = std::string(text);
  if (mode.empty()) {
    p.late_binding = named->late_binding;
  } else if (mode == "queue") {
    p.late_binding = true;
  } else if (mode == "direct") {
    p.late_binding = false;
  } else {
    return Error{"policy '" + std::string(text) + "': the mode after ':' must be queue or direct"};
  }
  return p;
}

Result<SchedulerOptions> SchedulerOptionsFor(const PolicySpec& policy) {
  SchedulerOptions options;
  options.profile = policy.profile;
  if (!policy.params.empty()) {
    Result<NamedProfile> named = FindNamedProfile(policy.profile);
    if (!named.ok()) return named.error();
    for (const auto& [key, value] : policy.params) {
      const std::size_t dot = key.find('.');
      bool applied = false;
      for (PluginSpec& spec : named->config.plugins) {
        if (dot != std::string::npos && spec.type == key.substr(0, dot)) {
          spec.parameters[key.substr(dot + 1)] = value;
          applied = true;
        }
      }
      if (!applied) {
        return Error{"policy " + policy.name + ": no plugin for parameter '" + key +
                     "' (expected TYPE.PARAMETER with a plugin type of the profile)"};
      }
    }
    options.picker_config = named->config;
    options.shed_when_saturated = named->shed_when_saturated;
    options.prefix_lru_from_kv_capacity = named->prefix_lru_from_kv_capacity;
  }
  const ManualClock clock;
  Result<std::unique_ptr<Scheduler>> check = Scheduler::Create(options, &clock);
  if (!check.ok()) return Error{"policy " + policy.name + ": " + check.error().message};
  return options;
}

Result<std::vector<double>> IdleTtftSeconds(const ClusterSetup& setup,
                                            std::span<const WorkloadRequest> workload) {
  if (setup.engines.empty()) return Error{"no engines"};
  class FirstToken final : public sim::EventSink {
   public:
    void OnToken(const sim::TokenEvent& e) override {
      if (e.index == 0 && first < 0) first = e.time;
    }
    TimeNs first = -1;
  };
  const TimeNs network = 2 * (setup.delays.client_to_gateway + setup.delays.gateway_to_engine);
  std::vector<std::map<std::size_t, TimeNs>> memo(setup.engines.size());
  std::vector<double> out(workload.size(), 0.0);
  for (std::size_t i = 0; i < workload.size(); ++i) {
    const WorkloadRequest& w = workload[i];
    const std::vector<TokenId> encoded =
        w.prompt_tokens.empty() ? Tokenizer::Encode(w.prompt_text) : std::vector<TokenId>{};
    const std::vector<TokenId>& prompt = w.prompt_tokens.empty() ? encoded : w.prompt_tokens;
    TimeNs best = kNever;
    for (std::size_t e = 0; e < setup.engines.size(); ++e) {
      auto it = memo[e].find(prompt.size());
      if (it == memo[e].end()) {
        // The prefill of this prompt on an idle engine with an empty cache: its first token.
        Result<std::unique_ptr<sim::Engine>> engine = sim::Engine::Create(setup.engines[e], 0);
        if (!engine.ok()) return engine.error();
        sim::EngineRequest r;
        r.prompt = prompt;
        r.max_tokens = 1;
        if (!(*engine)->Submit(std::move(r), 0).ok()) {
          it = memo[e].emplace(prompt.size(), kNever).first;
        } else {
          FirstToken sink;
          while (sink.first < 0 && (*engine)->NextEventTime() != kNever) {
            (*engine)->AdvanceTo((*engine)->NextEventTime(), sink);
          }
          it = memo[e].emplace(prompt.size(), sink.first < 0 ? kNever : sink.first).first;
        }
      }
      best = std::min(best, it->second);
    }
    out[i] = best == kNever ? 0.0 : ToSeconds(best + network);
  }
  return out;
}

namespace {

double PercentileOf(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return loadgen::PercentileOfSorted(v, p);
}

// PolicyRun::trace_csv. Times are ms from the first send; -1 where the step never happened.
std::string TraceCsv(const ClusterResult& cr, std::span<const WorkloadRequest> workload,
                     std::size_t warmup) {
  std::string out =
      "index,fairness_id,session_key,session,turn,engine,success,ready_ms,routed_ms,dispatched_ms,"
      "scheduled_ms,"
      "first_token_ms,completion_ms,ttft_ms,prompt_tokens,cached_prompt_tokens,output_tokens,"
      "preemptions,held,warmup\n";
  auto ms = [&](TimeNs t) { return t < 0 ? -1.0 : ToMillis(t - cr.start); };
  for (const RequestRecord& r : cr.requests) {
    const WorkloadRequest& w = workload[r.index];
    const double ttft = r.success && r.first_token >= 0 ? ToMillis(r.first_token - r.send) : -1.0;
    fmt::format_to(
        std::back_inserter(out),
        "{},{},{},{},{},{},{},{:.3f},{:.3f},{:.3f},{:.3f},{:.3f},{:.3f},{:.3f},{},{},{},{},{},{}\n",
        r.index, w.fairness_id, w.session_key, w.session, w.turn, r.engine, r.success ? 1 : 0,
        ms(r.ready), ms(r.routed), ms(r.dispatched), ms(r.scheduled), ms(r.first_token),
        ms(r.completion), ttft, r.prompt_tokens, r.cached_prompt_tokens, r.output_tokens,
        r.preemptions, r.held ? 1 : 0, r.index < warmup ? 1 : 0);
  }
  return out;
}

}  // namespace

Result<PolicyRun> RunPolicy(const ClusterSetup& setup, const WorkloadSpec& spec,
                            std::span<const WorkloadRequest> workload,
                            std::span<const double> idle_ttft_s, const PolicySpec& policy,
                            const loadgen::RunInfo& run_info,
                            const loadgen::MetricOptions& metrics) {
  const auto wall_start = std::chrono::steady_clock::now();
  if (spec.warmup_prompts < 0 ||
      (spec.warmup_prompts > 0 &&
       static_cast<std::size_t>(spec.warmup_prompts) >= workload.size())) {
    return Error{fmt::format("warm-up of {} requests: must be fewer than the run's {} requests",
                             spec.warmup_prompts, workload.size())};
  }
  Result<SchedulerOptions> options = SchedulerOptionsFor(policy);
  if (!options.ok()) return options.error();
  SchedulerRouterOptions ro;
  ro.scheduler = std::move(*options);
  ro.scheduler.seed = setup.scheduler_seed;
  ro.criticality = setup.criticality;
  ro.target_model = setup.model_id;
  ro.exact_prompt_tokens = setup.exact_prompt_tokens;
  ro.late_binding = policy.late_binding;
  ro.queue = setup.queue;
  ro.redirect_after = policy.late_binding ? setup.redirect_after : 0;
  const int replicas = setup.gateway_replicas;
  if (replicas < 1 || replicas > 64) {
    return Error{fmt::format("gateway replicas: {} (must be 1 to 64)", replicas)};
  }
  std::unique_ptr<SchedulerRouter> single;
  std::unique_ptr<ReplicaRouter> several;
  if (replicas == 1) {
    Result<std::unique_ptr<SchedulerRouter>> router = SchedulerRouter::Create(ro, setup.engines);
    if (!router.ok()) return router.error();
    single = std::move(*router);
  } else {
    if (setup.scrape_interval > 0 && setup.scrape_latency >= setup.scrape_interval / replicas) {
      return Error{fmt::format(
          "{} gateway replicas scrape {} ms apart: the scrape latency must be below that", replicas,
          ToMillis(setup.scrape_interval / replicas))};
    }
    std::vector<std::unique_ptr<SchedulerRouter>> routers;
    for (int k = 0; k < replicas; ++k) {
      SchedulerRouterOptions rk = ro;
      rk.scheduler.seed = setup.scheduler_seed + static_cast<std::uint64_t>(k);
      Result<std::unique_ptr<SchedulerRouter>> router = SchedulerRouter::Create(rk, setup.engines);
      if (!router.ok()) return router.error();
      routers.push_back(std::move(*router));
    }
    several = std::make_unique<ReplicaRouter>(std::move(routers), setup.replica_sync,
                                              setup.scheduler_seed * 1'000'003 + spec.seed);
  }
  Router& router = single ? static_cast<Router&>(*single) : static_cast<Router&>(*several);

  ClusterOptions co;
  co.engines = setup.engines;
  co.max_concurrency = spec.max_concurrency;
  co.scrape_interval = setup.scrape_interval / replicas;
  co.scrape_latency = setup.scrape_latency;
  co.metrics_at_step_end = setup.metrics_at_step_end;
  co.delays = setup.delays;
  co.seed = setup.engine_seed;
  Result<ClusterResult> sim = RunCluster(co, workload, router);
  if (!sim.ok()) return sim.error();

  PolicyRun run;
  run.policy = policy;
  run.workload_seed = spec.seed;
  const ClusterResult& cr = *sim;
  // Warm-up requests are served but not measured (loadgen::DropWarmup sets the window).
  const auto warmup = static_cast<std::size_t>(spec.warmup_prompts);
  std::vector<loadgen::RequestOutcome> outcomes(cr.requests.size());
  std::vector<double> ttfts, waits;
  double floor_sum = 0;
  for (std::size_t i = 0; i < cr.requests.size(); ++i) {
    const RequestRecord& r = cr.requests[i];
    const bool measured = i >= warmup;
    loadgen::RequestOutcome& o = outcomes[i];
    o.prompt_len = r.prompt_tokens;
    o.send_time = r.send >= 0 ? ToSeconds(r.send - cr.start) : 0.0;
    if (measured && r.held && r.dispatched >= 0) waits.push_back(ToMillis(r.dispatched - r.routed));
    if (!r.success) {
      o.error = r.error.empty() ? "failed" : r.error;
      continue;
    }
    o.success = true;
    o.output_tokens = r.output_tokens;
    o.ttft = ToSeconds(r.first_token - r.send);
    o.latency = ToSeconds(r.token_times.back() - r.send);
    o.itl.reserve(r.token_times.size());
    for (std::size_t k = 1; k < r.token_times.size(); ++k) {
      o.itl.push_back(ToSeconds(r.token_times[k] - r.token_times[k - 1]));
    }
    if (!measured) continue;
    ttfts.push_back(o.ttft * 1e3);
    if (2 * r.cached_prompt_tokens < r.prompt_tokens) ++run.cold_requests;
    const TimeNs at_engine = r.dispatched + setup.delays.gateway_to_engine;
    const TimeNs token_at_engine =
        r.first_token - setup.delays.gateway_to_engine - setup.delays.client_to_gateway;
    run.ttft_gateway_ms += ToMillis(r.dispatched - r.routed);
    if (r.scheduled >= 0) {
      run.ttft_engine_queue_ms += ToMillis(r.scheduled - at_engine);
      run.ttft_prefill_ms += ToMillis(token_at_engine - r.scheduled);
    }
    if (i < idle_ttft_s.size()) floor_sum += idle_ttft_s[i] * 1e3;
  }
  loadgen::RunInfo info = run_info;
  info.num_prompts = static_cast<int>(workload.size() - std::min(workload.size(), warmup));
  info.request_rate = spec.request_rate;
  info.burstiness = spec.burstiness;
  if (spec.max_concurrency > 0) info.max_concurrency = spec.max_concurrency;
  double duration = ToSeconds(cr.end - cr.start);
  outcomes = loadgen::DropWarmup(std::move(outcomes), warmup, &duration);
  duration = std::max(duration, 1e-9);
  run.result = loadgen::ComputeResult(std::move(info), metrics, std::move(outcomes), duration);

  if (!ttfts.empty()) {
    const double n = static_cast<double>(ttfts.size());
    run.ttft_gateway_ms /= n;
    run.ttft_engine_queue_ms /= n;
    run.ttft_prefill_ms /= n;
    run.floor_ttft_ms = floor_sum / n;
    run.ttft_over_floor = run.floor_ttft_ms > 0 ? run.result.ttft_ms.mean / run.floor_ttft_ms : 0.0;
  }
  run.p90_ttft_ms = PercentileOf(ttfts, 90);
  for (const sim::EngineStats& s : cr.engine_stats) {
    run.preemptions += s.num_preemptions;
    run.prefix_cache_hits += s.prefix_cache_hits;
    run.prefix_cache_queries += s.prefix_cache_queries;
  }
  run.gateway_replicas = replicas;
  if (single) {
    run.queue = single->queue_stats();
    run.refusals = single->refusals();
  } else {
    run.queue = several->queue_stats();
    run.refusals = several->refusals();
    run.sync = several->sync_stats();
  }
  if (!waits.empty()) {
    run.mean_queue_wait_ms = loadgen::Mean(waits);
    run.p99_queue_wait_ms = PercentileOf(waits, 99);
  }
  if (setup.keep_trace) run.trace_csv = TraceCsv(cr, workload, warmup);
  run.wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();

  auto& md = run.result.info.metadata;
  md.emplace_back("policy", policy.name);
  md.emplace_back("scheduler_profile", policy.profile);
  md.emplace_back("late_binding", policy.late_binding ? "true" : "false");
  md.emplace_back("servers", std::to_string(setup.engines.size()));
  md.emplace_back("engine_profile", setup.engines.front().name);
  md.emplace_back("scrape_interval_ms", fmt::format("{:g}", ToMillis(setup.scrape_interval)));
  md.emplace_back("workload_seed", std::to_string(spec.seed));
  md.emplace_back("floor_ttft_ms", fmt::format("{:.2f}", run.floor_ttft_ms));
  md.emplace_back("ttft_over_floor", fmt::format("{:.3f}", run.ttft_over_floor));
  md.emplace_back("p90_ttft_ms", fmt::format("{:.2f}", run.p90_ttft_ms));
  md.emplace_back("preemptions", std::to_string(run.preemptions));
  md.emplace_back("gateway_queue_max", std::to_string(run.queue.max_length));
  md.emplace_back("gateway_queue_mean_wait_ms", fmt::format("{:.2f}", run.mean_queue_wait_ms));
  md.emplace_back("gateway_queue_expired", std::to_string(run.queue.expired));
  if (setup.redirect_after > 0) {
    md.emplace_back("gateway_redirected", std::to_string(run.queue.redirected));
  }
  return run;
}

Result<std::vector<PolicyRun>> RunPolicies(ClusterSetup setup, std::span<const PolicySpec> policies,
                                           const WorkloadSpec& spec, bool model_answers,
                                           const std::string& workload_name,
                                           const std::string& date,
                                           const loadgen::MetricOptions& metrics) {
  setup.engine_seed = spec.seed;
  WorkloadSpec drawn = spec;
  if (model_answers) drawn.answers_from_model = setup.engine_seed;
  auto workload = SampleWorkload(drawn);
  if (!workload.ok()) return workload.error();
  auto floor = IdleTtftSeconds(setup, *workload);
  if (!floor.ok()) return floor.error();
  loadgen::RunInfo info;
  info.date = date;
  info.backend = "vllm";
  info.model_id = setup.model_id;
  info.tokenizer_id = setup.model_id;
  std::vector<PolicyRun> runs;
  for (const PolicySpec& p : policies) {
    auto run = RunPolicy(setup, spec, *workload, *floor, p, info, metrics);
    if (!run.ok()) return Error{p.name + ": " + run.error().message};
    run->result.info.metadata.emplace_back("workload", workload_name);
    runs.push_back(std::move(*run));
  }
  return runs;
}

std::vector<SweepPoint> AverageSweep(std::span<const PolicyRun> runs, double percentile) {
  std::vector<SweepPoint> out;
  for (const PolicyRun& r : runs) {
    const double rate = r.result.info.request_rate;
    auto it = std::find_if(out.begin(), out.end(), [&](const SweepPoint& p) {
      return p.policy == r.policy.name && p.rate == rate;
    });
    if (it == out.end()) {
      out.push_back(SweepPoint{r.policy.name, rate});
      it = out.end() - 1;
    }
    std::vector<double> ttfts;
    for (const loadgen::RequestOutcome& o : r.result.requests) {
      if (o.success) ttfts.push_back(o.ttft * 1e3);
    }
    it->slo_ttft_ms += PercentileOf(std::move(ttfts), percentile);
    it->mean_ttft_ms += r.result.ttft_ms.mean;
    it->request_throughput += r.result.request_throughput;
    it->output_throughput += r.result.output_throughput;
    it->ttft_over_floor += r.ttft_over_floor;
    it->failed += r.result.failed;
    ++it->seeds;
  }
  for (SweepPoint& p : out) {
    const double n = std::max(1, p.seeds);
    p.slo_ttft_ms /= n;
    p.mean_ttft_ms /= n;
    p.request_throughput /= n;
    p.output_throughput /= n;
    p.ttft_over_floor /= n;
  }
  std::stable_sort(out.begin(), out.end(), [&](const SweepPoint& a, const SweepPoint& b) {
    if (a.policy != b.policy) {
      auto first = [&](const std::string& name) {
        return std::find_if(runs.begin(), runs.end(),
                            [&](const PolicyRun& r) { return r.policy.name == name; }) -
               runs.begin();
      };
      return first(a.policy) < first(b.policy);
    }
    return a.rate < b.rate;
  });
  return out;
}

double SloCapacity(std::span<const SweepPoint> points, std::string_view policy, double slo_ms) {
  std::vector<const SweepPoint*> mine;
  for (const SweepPoint& p : points) {
    if (p.policy == policy) mine.push_back(&p);
  }
  std::sort(mine.begin(), mine.end(),
            [](const SweepPoint* a, const SweepPoint* b) { return a->rate < b->rate; });
  double capacity = 0;
  for (const SweepPoint* p : mine) {
    if (p->slo_ttft_ms > slo_ms || p->failed > 0) break;
    capacity = p->rate;
  }
  return capacity;
}

Saturation SaturationOf(std::span<const SweepPoint> points, std::string_view policy) {
  Saturation s;
  for (const SweepPoint& p : points) {
    if (p.policy != policy) continue;
    if (p.request_throughput > s.rate) {
      s.rate = p.request_throughput;
      s.output_throughput = p.output_throughput;
    }
    if (p.request_throughput < kSaturatedFraction * p.rate) s.reached = true;
  }
  for (const SweepPoint& p : points) {
    if (p.policy != policy || p.request_throughput < kPlateauFraction * s.rate) continue;
    if (s.offered == 0 || p.rate < s.offered) s.offered = p.rate;
  }
  return s;
}

Knee KneeOf(std::span<const SweepPoint> points, std::string_view policy, double factor,
            int light_rates) {
  std::vector<const SweepPoint*> mine;
  for (const SweepPoint& p : points) {
    if (p.policy == policy) mine.push_back(&p);
  }
  std::sort(mine.begin(), mine.end(),
            [](const SweepPoint* a, const SweepPoint* b) { return a->rate < b->rate; });
  Knee k;
  if (mine.empty()) return k;
  std::vector<double> light;
  for (std::size_t i = 0; i < mine.size() && i < static_cast<std::size_t>(std::max(1, light_rates));
       ++i) {
    light.push_back(mine[i]->slo_ttft_ms);
  }
  std::sort(light.begin(), light.end());
  const std::size_t n = light.size();
  k.light_ms = n % 2 == 1 ? light[n / 2] : (light[n / 2 - 1] + light[n / 2]) / 2;
  for (const SweepPoint* p : mine) {
    if (p->slo_ttft_ms > factor * k.light_ms) {
      k.rate = p->rate;
      k.slo_ttft_ms = p->slo_ttft_ms;
      break;
    }
  }
  return k;
}

std::string FormatRunFacts(std::span<const PolicyRun> runs) {
  std::string out =
      fmt::format("{:<22} {:>11} {:>10} {:>11} {:>24} {:>11} {:>15} {:>9} {:>22}\n", "policy",
                  "floor (ms)", "TTFT/floor", "P90 TTFT", "TTFT: gw/engine/prefill", "preemptions",
                  "APC hit / cold", "queue max", "queue wait mean/p99 ms");
  for (const PolicyRun& r : runs) {
    const std::string hit =
        r.prefix_cache_queries > 0
            ? fmt::format("{:.1f}% / {:.1f}%",
                          100.0 * static_cast<double>(r.prefix_cache_hits) /
                              static_cast<double>(r.prefix_cache_queries),
                          100.0 * r.cold_requests / std::max(1, r.result.completed))
            : "-";
    const std::string queue =
        r.policy.late_binding
            ? fmt::format("{:.1f} / {:.1f}", r.mean_queue_wait_ms, r.p99_queue_wait_ms)
            : "-";
    const std::string split = fmt::format("{:.0f} / {:.0f} / {:.0f}", r.ttft_gateway_ms,
                                          r.ttft_engine_queue_ms, r.ttft_prefill_ms);
    out += fmt::format("{:<22} {:>11.2f} {:>10.3f} {:>11.2f} {:>24} {:>11} {:>15} {:>9} {:>22}\n",
                       r.policy.name, r.floor_ttft_ms, r.ttft_over_floor, r.p90_ttft_ms, split,
                       r.preemptions, hit,
                       r.policy.late_binding ? std::to_string(r.queue.max_length) : "-", queue);
    for (const auto& [reason, n] : r.refusals) {
      out += fmt::format("{:<22}   refused {}: {}\n", "", reason, n);
    }
    if (r.queue.redirected > 0) {
      out += fmt::format("{:<22}   re-dispatched: {} (aborted awaiting their first token)\n", "",
                         r.queue.redirected);
    }
    if (r.queue.expired + r.queue.rejected > 0) {
      out += fmt::format("{:<22}   gateway queue: {} expired (503), {} rejected (429)\n", "",
                         r.queue.expired, r.queue.rejected);
    }
    if (r.gateway_replicas > 1 && r.sync.messages > 0) {
      const double per = r.sync.dispatches > 0 ? static_cast<double>(r.sync.dispatches) : 1.0;
      out += fmt::format(
          "{:<22}   replica sync ({} replicas): {:.0f} bytes and {:.2f} messages per request "
          "published (largest {} bytes), {} deliveries lost, {} entries expired, a peer's "
          "dispatch applied {:.2f} ms after it on average\n",
          "", r.gateway_replicas, static_cast<double>(r.sync.bytes) / per,
          static_cast<double>(r.sync.messages) / per, r.sync.max_message_bytes, r.sync.lost,
          r.sync.expired_entries,
          r.sync.delayed_dispatches > 0
              ? 1e3 * r.sync.dispatch_delay_seconds / static_cast<double>(r.sync.delayed_dispatches)
              : 0.0);
      if (r.sync.order_waits > 0) {
        out += fmt::format(
            "{:<22}   queue order: {} releases waited on a peer's head ({} until the bound)\n", "",
            r.sync.order_waits, r.sync.order_timed_out);
      }
    } else if (r.gateway_replicas > 1) {
      out += fmt::format("{:<22}   {} gateway replicas, no sync\n", "", r.gateway_replicas);
    }
  }
  return out;
}

}  // namespace infergate::cluster
