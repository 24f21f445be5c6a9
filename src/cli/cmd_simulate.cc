// `infergate simulate`: the virtual-time cluster. Simulated vLLM engines, the real
// scheduling core behind a gateway model (stale scrapes, network delays, an optional
// gateway queue) and benchmark_serving's workloads, replayed in simulated time; one result
// table per routing policy, a comparison with ratios to the first policy, result JSON that
// `infergate bench compare` reads, and an HTML report with rate-sweep charts.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cluster/experiment.h"
#include "loadgen/compare.h"
#include "loadgen/html_report.h"
#include "loadgen/report.h"
#include "loadgen/statistics.h"

namespace infergate::cli {
namespace {

using cluster::ClusterSetup;
using cluster::PolicyRun;
using cluster::PolicySpec;
using cluster::WorkloadSpec;

struct SimulateFlags {
  std::string workload = "seed";
  std::string profile;  // empty: the preset's
  int servers = 0;      // 0: the preset's
  long long num_gpu_blocks = 0;
  std::string policies = "round-robin,gie-v0,gie-default,infergate";
  std::vector<std::string> policy_params;
  std::string seeds;  // comma list; empty: --seed
  long long seed = 0;
  std::string sweep_rates;
  double slo_ttft_ms = 300;
  double slo_percentile = 90;
  std::string knee_of;  // empty: gie-default when swept, else the first policy
  double knee_factor = 5;
  double redirect_after_s = ToSeconds(ClusterSetup{}.redirect_after);
  double scrape_interval_ms = 50;
  double scrape_latency_ms = 1;
  int gateway_replicas = 1;
  bool no_replica_sync = false;
  double sync_delay_ms = 2;
  double sync_loss = 0;
  std::string gauges = "step";
  double client_delay_ms = 0.5;
  double engine_delay_ms = 0.25;
  std::string eos = "none";
  std::string criticality = "Critical";
  bool exact_prompt_tokens = false;
  long long scheduler_seed = 1;
  double queue_ttl_s = 600;
  long long queue_capacity = 100000;
  std::string fairness = "round-robin";
  std::string json_dir;
  std::string trace_dir;
  std::string html;
  std::string percentile_metrics = "ttft,tpot,itl";
  std::string metric_percentiles = "99";
  bool markdown = false;
  bool quiet = false;
  // dataset knobs (unset: the preset's)
  int num_prompts = -1;
  int warmup_prompts = 0;
  std::string request_rate;
  double burstiness = 1.0;
  int max_concurrency = -1;
  bool ignore_eos = false;
  std::string random_length_semantics;
  int random_input_len = -1;
  int random_output_len = -1;
  int random_prefix_len = -1;
  double random_range_ratio = -1;
  long long random_vocab_size = 151643;
  int sp_tenants = -1;
  int sp_prefix_len = -1;
  int sp_question_len = -1;
  int sp_turns = -1;
  int sp_active_sessions = -1;
  std::string sp_answers = "model";
  int sp_output_len = -1;
  double sp_range_ratio = -1;
};

// A workload preset: the dataset and load, and the cluster it runs on.
struct Preset {
  WorkloadSpec workload;
  std::string profile;
  int servers = 3;
  long long num_gpu_blocks = 0;  // 0: the profile's
  std::string model_id;
};

Result<Preset> FindPreset(const std::string& name) {
  Preset p;
  if (name == "seed") {
    // REFERENCE §1: benchmark_serving (vLLM 0.7.2) --dataset-name random
    // --random-prefix-len 1000 --random-input-len 4000 --random-output-len 3000
    // --random-range-ratio 0.2 --num-prompts 300 --max-concurrency 30 (rate inf), against
    // three QwQ-32B TP2xPP2 groups.
    p.workload.dataset = cluster::DatasetKind::kRandom;
    p.workload.random.num_prompts = 300;
    p.workload.random.prefix_len = 1000;
    p.workload.random.input_len = 4000;
    p.workload.random.output_len = 3000;
    p.workload.random.range_ratio = 0.2;
    p.workload.random.semantics = loadgen::RandomLengthSemantics::kV07;
    p.workload.max_concurrency = 30;
    p.profile = "qwq-32b-tp2pp2";
    p.servers = 3;
    p.model_id = "qwq";
    return p;
  }
  if (name == "shared-prefix") {
    // Multi-tenant chat as issue 6 describes it: 150 tenants with 5,500-token system
    // prompts (within its 4-6k), questions of 50-150 tokens, four-turn sessions, Poisson
    // arrivals. Eight Llama-3.1-70B servers, each on 8 x H100 with TP8 (vLLM V1: chunked
    // prefill and prefix caching on), their KV cache cut to 9,000 blocks (144k tokens):
    // the pool's 1.15M tokens hold all tenants' system prompts (825k tokens) once, but not
    // together with the conversations' histories and the running requests, so most but
    // not all tenants stay cached (beyond each tenant's first request, a few percent of
    // requests find their prompt evicted even under prefix-aware routing). A system prompt
    // alone takes ~0.32 s to prefill, over the 300 ms TTFT SLO, so round-robin (~83% cold:
    // each server sees every tenant) never meets it; a warm turn takes ~0.03 s. The
    // previous preset (4 servers, 4,000-token prompts, 10,000 blocks) had a cold prefill
    // of ~0.23 s, under the SLO.
    p.workload.dataset = cluster::DatasetKind::kSharedPrefix;
    p.workload.shared_prefix.num_prompts = 3000;
    p.workload.shared_prefix.tenants = 150;
    p.workload.shared_prefix.prefix_len = 5500;
    p.workload.shared_prefix.question_len = 100;
    p.workload.shared_prefix.turns = 4;
    p.workload.shared_prefix.output_len = 200;
    p.workload.shared_prefix.range_ratio = 0.5;
    p.workload.request_rate = 10;
    p.profile = "llama-3.1-70b-h100-tp8";
    p.servers = 8;
    p.num_gpu_blocks = 9000;
    p.model_id = "meta-llama/Llama-3.1-70B-Instruct";
    return p;
  }
  if (name == "random") {
    // benchmark_serving's random dataset with its defaults, on the seed's cluster.
    p.workload.dataset = cluster::DatasetKind::kRandom;
    p.workload.random.num_prompts = 1000;
    p.workload.random.semantics = loadgen::RandomLengthSemantics::kV07;
    p.workload.random.range_ratio = loadgen::DefaultRangeRatio(p.workload.random.semantics);
    p.profile = "qwq-32b-tp2pp2";
    p.servers = 3;
    p.model_id = "qwq";
    return p;
  }
  return Error{"--workload must be seed, shared-prefix or random (got '" + name + "')"};
}

int UsageError(const std::string& message) {
  std::fprintf(stderr, "infergate simulate: %s\n", message.c_str());
  return kExitUsage;
}

std::vector<std::string> SplitCsv(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    const std::size_t comma = s.find(',', start);
    const std::size_t end = comma == std::string::npos ? s.size() : comma;
    std::string item = s.substr(start, end - start);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

Result<double> ParseNumber(const std::string& s, const char* what) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || std::isnan(v)) {
    return Error{fmt::format("{}: '{}' is not a number", what, s)};
  }
  return v;
}

// "1,2,4" or "LO:HI:STEP" (inclusive, e.g. 0.5:10:0.5).
Result<std::vector<double>> ParseRates(const std::string& s) {
  std::vector<double> rates;
  if (s.find(':') != std::string::npos) {
    std::vector<double> parts;
    std::size_t start = 0;
    for (int k = 0; k < 3; ++k) {
      const std::size_t colon = s.find(':', start);
      const std::string part =
          s.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
      auto v = ParseNumber(part, "--sweep-rates");
      if (!v.ok()) return v.error();
      parts.push_back(*v);
      if (colon == std::string::npos) {
        if (k != 2) return Error{"--sweep-rates: a range is LO:HI:STEP"};
        break;
      }
      start = colon + 1;
      if (k == 2) return Error{"--sweep-rates: a range is LO:HI:STEP"};
    }
    const double lo = parts[0], hi = parts[1], step = parts[2];
    if (!(lo > 0) || !(hi >= lo) || !(step > 0) || (hi - lo) / step > 1000) {
      return Error{"--sweep-rates: need 0 < LO <= HI, STEP > 0, at most 1000 points"};
    }
    for (int k = 0;; ++k) {
      const double r = lo + step * k;
      if (r > hi + step * 1e-9) break;
      rates.push_back(std::round(r * 1e9) / 1e9);
    }
  } else {
    for (const std::string& item : SplitCsv(s)) {
      auto v = ParseNumber(item, "--sweep-rates");
      if (!v.ok()) return v.error();
      if (!(*v > 0) || std::isinf(*v)) return Error{"--sweep-rates: rates must be finite and > 0"};
      rates.push_back(*v);
    }
    std::sort(rates.begin(), rates.end());
  }
  if (rates.empty()) return Error{"--sweep-rates: no rates"};
  return rates;
}

std::string LocalDate() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &tm);
  return buf;
}

std::string RateWord(double rate) {
  if (std::isinf(rate)) return "inf";
  return fmt::format("{:g}", rate);
}

// What one command line resolves to.
struct Experiment {
  ClusterSetup setup;
  WorkloadSpec workload;
  std::string workload_name;
  std::vector<PolicySpec> policies;
  std::vector<std::uint32_t> seeds;
  std::vector<double> sweep_rates;  // empty: one run per policy and seed
  loadgen::MetricOptions metrics;
  bool model_answers = true;  // shared-prefix histories carry the model's own answers
};

Result<Experiment> Resolve(const SimulateFlags& f) {
  Experiment x;
  Result<Preset> preset = FindPreset(f.workload);
  if (!preset.ok()) return preset.error();
  x.workload_name = f.workload;
  x.workload = preset->workload;
  WorkloadSpec& w = x.workload;

  // Dataset knobs.
  if (f.num_prompts != -1) {
    if (f.num_prompts < 1) return Error{"--num-prompts must be >= 1"};
    w.random.num_prompts = f.num_prompts;
    w.shared_prefix.num_prompts = f.num_prompts;
  }
  if (!f.request_rate.empty()) {
    auto r = ParseNumber(f.request_rate, "--request-rate");
    if (!r.ok()) return r.error();
    if (!(*r > 0)) return Error{"--request-rate must be > 0 (inf: all at once)"};
    w.request_rate = *r;
  }
  if (!(f.burstiness > 0) || std::isinf(f.burstiness)) return Error{"--burstiness must be > 0"};
  w.burstiness = f.burstiness;
  if (f.max_concurrency != -1) {
    if (f.max_concurrency < 0) return Error{"--max-concurrency must be >= 0 (0: no limit)"};
    w.max_concurrency = f.max_concurrency;
  }
  w.ignore_eos = f.ignore_eos;
  if (!f.random_length_semantics.empty()) {
    auto s = loadgen::ParseRandomLengthSemantics(f.random_length_semantics);
    if (!s.ok()) return s.error();
    w.random.semantics = *s;
    if (f.random_range_ratio < 0) w.random.range_ratio = loadgen::DefaultRangeRatio(*s);
  }
  if (f.random_input_len != -1) w.random.input_len = f.random_input_len;
  if (f.random_output_len != -1) w.random.output_len = f.random_output_len;
  if (f.random_prefix_len != -1) w.random.prefix_len = f.random_prefix_len;
  if (f.random_range_ratio >= 0) w.random.range_ratio = f.random_range_ratio;
  w.random.vocab_size = f.random_vocab_size;
  if (f.sp_tenants != -1) w.shared_prefix.tenants = f.sp_tenants;
  if (f.sp_prefix_len != -1) w.shared_prefix.prefix_len = f.sp_prefix_len;
  if (f.sp_question_len != -1) w.shared_prefix.question_len = f.sp_question_len;
  if (f.sp_turns != -1) w.shared_prefix.turns = f.sp_turns;
  if (f.sp_active_sessions != -1) w.shared_prefix.active_sessions = f.sp_active_sessions;
  if (f.sp_answers != "model" && f.sp_answers != "dataset") {
    return Error{"--sp-answers must be model or dataset (got '" + f.sp_answers + "')"};
  }
  x.model_answers = f.sp_answers == "model";
  if (f.sp_output_len != -1) w.shared_prefix.output_len = f.sp_output_len;
  if (f.sp_range_ratio >= 0) w.shared_prefix.range_ratio = f.sp_range_ratio;
  if (f.warmup_prompts < 0 || f.warmup_prompts >= w.num_prompts()) {
    return Error{
        fmt::format("--warmup-prompts must be in [0, {}) (the requests of the run; got {})",
                    w.num_prompts(), f.warmup_prompts)};
  }
  w.warmup_prompts = f.warmup_prompts;

  // Seeds.
  if (f.seeds.empty()) {
    if (f.seed < 0 || f.seed > 0xFFFFFFFFLL) return Error{"--seed must be in [0, 2^32 - 1]"};
    x.seeds.push_back(static_cast<std::uint32_t>(f.seed));
  } else {
    for (const std::string& s : SplitCsv(f.seeds)) {
      char* end = nullptr;
      const long long v = std::strtoll(s.c_str(), &end, 10);
      if (*end != '\0' || v < 0 || v > 0xFFFFFFFFLL) {
        return Error{"--seeds: '" + s + "' is not a seed in [0, 2^32 - 1]"};
      }
      x.seeds.push_back(static_cast<std::uint32_t>(v));
    }
    if (x.seeds.empty()) return Error{"--seeds: no seeds"};
  }

  // Cluster.
  const std::string profile_name = f.profile.empty() ? preset->profile : f.profile;
  Result<sim::Profile> profile = sim::LoadProfile(profile_name);
  if (!profile.ok()) return Error{"--profile: " + profile.error().message};
  const long long blocks = f.num_gpu_blocks > 0 ? f.num_gpu_blocks : preset->num_gpu_blocks;
  if (f.num_gpu_blocks < 0) return Error{"--num-gpu-blocks must be >= 0"};
  if (blocks > 0) profile->engine.num_gpu_blocks = blocks;
  if (f.eos == "early") {
    // Each output ends at a uniformly random point before max_tokens.
    profile->eos.model = sim::EosModel::kUniform;
    profile->eos.min_fraction = 0.0;
    profile->eos.max_fraction = 1.0;
  } else if (f.eos != "none") {
    return Error{"--eos must be none or early (got '" + f.eos + "')"};
  }
  const int servers = f.servers > 0 ? f.servers : preset->servers;
  if (f.servers < 0 || servers > 1000) return Error{"--servers must be in [1, 1000]"};
  x.setup.engines.assign(static_cast<std::size_t>(servers), *profile);
  if (auto c = sim::ResolveEngineConfig(*profile); !c.ok()) {
    return Error{"--profile " + profile_name + ": " + c.error().message};
  }
  x.setup.model_id = preset->model_id.empty() ? profile->model.name : preset->model_id;

  if (!(f.scrape_interval_ms > 0)) return Error{"--scrape-interval must be > 0 ms"};
  if (!(f.scrape_latency_ms >= 0) || f.scrape_latency_ms >= f.scrape_interval_ms) {
    return Error{"--scrape-latency must be >= 0 and below --scrape-interval"};
  }
  if (!(f.client_delay_ms >= 0) || !(f.engine_delay_ms >= 0)) {
    return Error{"network delays must be >= 0"};
  }
  x.setup.scrape_interval = FromMillis(f.scrape_interval_ms);
  x.setup.scrape_latency = FromMillis(f.scrape_latency_ms);
  if (f.gateway_replicas < 1 || f.gateway_replicas > 64) {
    return Error{fmt::format("--gateway-replicas must be 1 to 64 (got {})", f.gateway_replicas)};
  }
  if (f.gateway_replicas > 1 && f.scrape_latency_ms >= f.scrape_interval_ms / f.gateway_replicas) {
    return Error{fmt::format(
        "--gateway-replicas {}: the replicas scrape {} ms apart; --scrape-latency must be below",
        f.gateway_replicas, f.scrape_interval_ms / f.gateway_replicas)};
  }
  if (!(f.sync_delay_ms >= 0) || std::isinf(f.sync_delay_ms)) {
    return Error{"--sync-delay must be >= 0 ms"};
  }
  if (!(f.sync_loss >= 0 && f.sync_loss <= 1)) return Error{"--sync-loss must be in [0, 1]"};
  x.setup.gateway_replicas = f.gateway_replicas;
  x.setup.replica_sync.enabled = !f.no_replica_sync;
  x.setup.replica_sync.delay = FromMillis(f.sync_delay_ms);
  x.setup.replica_sync.loss = f.sync_loss;
  if (f.gauges != "step" && f.gauges != "instant") {
    return Error{"--gauges must be step or instant"};
  }
  x.setup.metrics_at_step_end = f.gauges == "step";
  x.setup.delays.client_to_gateway = FromMillis(f.client_delay_ms);
  x.setup.delays.gateway_to_engine = FromMillis(f.engine_delay_ms);
  x.setup.scheduler_seed = static_cast<std::uint64_t>(f.scheduler_seed);
  x.setup.exact_prompt_tokens = f.exact_prompt_tokens;
  x.setup.keep_trace = !f.trace_dir.empty();
  if (f.criticality == "Critical") {
    x.setup.criticality = Criticality::kCritical;
  } else if (f.criticality == "Standard") {
    x.setup.criticality = Criticality::kStandard;
  } else if (f.criticality == "Sheddable") {
    x.setup.criticality = Criticality::kSheddable;
  } else {
    return Error{"--criticality must be Critical, Standard or Sheddable"};
  }
  if (!(f.queue_ttl_s > 0)) return Error{"--queue-ttl must be > 0 s"};
  if (f.queue_capacity < 1) return Error{"--queue-capacity must be >= 1"};
  x.setup.queue.default_ttl = FromSeconds(f.queue_ttl_s);
  x.setup.queue.max_queued = static_cast<std::size_t>(f.queue_capacity);
  if (f.fairness == "round-robin") {
    x.setup.queue.fairness = FairnessPolicy::kRoundRobin;
  } else if (f.fairness == "least-served") {
    x.setup.queue.fairness = FairnessPolicy::kLeastServed;
  } else {
    return Error{"--fairness must be round-robin or least-served"};
  }

  for (const std::string& p : SplitCsv(f.policies)) {
    auto spec = cluster::ParsePolicy(p);
    if (!spec.ok()) return Error{"--policies: " + spec.error().message};
    x.policies.push_back(*spec);
  }
  for (const std::string& item : f.policy_params) {
    // POLICY/TYPE.PARAMETER=VALUE
    const std::size_t slash = item.find('/');
    const std::size_t eq = item.find('=');
    if (slash == std::string::npos || eq == std::string::npos || eq < slash) {
      return Error{"--param: '" + item + "' is not POLICY/TYPE.PARAMETER=VALUE"};
    }
    const std::string policy = item.substr(0, slash);
    bool found = false;
    for (PolicySpec& p : x.policies) {
      if (p.name == policy) {
        p.params[item.substr(slash + 1, eq - slash - 1)] = item.substr(eq + 1);
        found = true;
      }
    }
    if (!found) return Error{"--param: no policy '" + policy + "' in --policies"};
  }
  if (x.policies.empty()) return Error{"--policies: no policies"};
  for (std::size_t i = 0; i < x.policies.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (x.policies[i].name == x.policies[j].name) {
        return Error{"--policies: '" + x.policies[i].name + "' appears twice"};
      }
    }
    if (auto s = cluster::SchedulerOptionsFor(x.policies[i]); !s.ok()) {
      return Error{"--param: " + s.error().message};
    }
  }

  if (!f.sweep_rates.empty()) {
    auto rates = ParseRates(f.sweep_rates);
    if (!rates.ok()) return rates.error();
    x.sweep_rates = *rates;
  }
  if (!(f.slo_ttft_ms > 0)) return Error{"--slo-ttft-ms must be > 0"};
  if (!(f.redirect_after_s >= 0) || std::isinf(f.redirect_after_s)) {
    return Error{fmt::format("--redirect-after must be >= 0 seconds (got {})", f.redirect_after_s)};
  }
  x.setup.redirect_after = FromSeconds(f.redirect_after_s);
  if (!(f.knee_factor > 1) || std::isinf(f.knee_factor)) {
    return Error{fmt::format("--knee-factor must be > 1 (got {})", f.knee_factor)};
  }
  if (!f.knee_of.empty() &&
      std::none_of(x.policies.begin(), x.policies.end(),
                   [&](const PolicySpec& p) { return p.name == f.knee_of; })) {
    return Error{fmt::format("--knee-of: '{}' is not one of --policies", f.knee_of)};
  }
  if (!(f.slo_percentile > 0 && f.slo_percentile <= 100)) {
    return Error{"--slo-percentile must be in (0, 100]"};
  }

  // The dataset's own checks (lengths, ratios, counts) before anything runs.
  {
    WorkloadSpec check = x.workload;
    check.seed = x.seeds.front();
    if (!x.sweep_rates.empty()) check.request_rate = x.sweep_rates.front();
    if (auto w = cluster::SampleWorkload(check); !w.ok()) return w.error();
  }

  auto pm = loadgen::ParsePercentileMetrics(f.percentile_metrics);
  if (!pm.ok()) return pm.error();
  x.metrics.percentile_metrics = *pm;
  auto ps = loadgen::ParsePercentiles(f.metric_percentiles);
  if (!ps.ok()) return ps.error();
  x.metrics.percentiles = *ps;
  return x;
}

std::string FileName(const Experiment& x, const PolicySpec& p, std::uint32_t seed, double rate) {
  std::string name = p.name;
  for (char& c : name) {
    if (c == ':' || c == '/') c = '-';
  }
  std::string out = fmt::format("{}-{}-seed{}", name, x.workload_name, seed);
  if (!x.sweep_rates.empty()) out += "-rate" + RateWord(rate);
  return out + ".json";
}

// Runs every policy on one drawn workload.
Result<std::vector<PolicyRun>> RunAll(const Experiment& x, const WorkloadSpec& w,
                                      const std::string& date) {
  ClusterSetup setup = x.setup;
  setup.engine_seed = w.seed;
  WorkloadSpec spec = w;
  if (x.model_answers) spec.answers_from_model = setup.engine_seed;
  auto workload = cluster::SampleWorkload(spec);
  if (!workload.ok()) return workload.error();
  auto floor = cluster::IdleTtftSeconds(setup, *workload);
  if (!floor.ok()) return floor.error();
  loadgen::RunInfo info;
  info.date = date;
  info.backend = "vllm";
  info.model_id = setup.model_id;
  info.tokenizer_id = setup.model_id;
  std::vector<PolicyRun> runs;
  for (const PolicySpec& p : x.policies) {
    auto run = cluster::RunPolicy(setup, w, *workload, *floor, p, info, x.metrics);
    if (!run.ok()) return Error{p.name + ": " + run.error().message};
    run->result.info.metadata.emplace_back("workload", x.workload_name);
    runs.push_back(std::move(*run));
  }
  return runs;
}

// The TTFT percentile p of a run's completed requests, in ms (whatever percentiles the
// table was asked for).
double TtftPercentileMs(const loadgen::BenchmarkResult& r, double p) {
  std::vector<double> ttfts;
  for (const loadgen::RequestOutcome& o : r.requests) {
    if (o.success) ttfts.push_back(o.ttft * 1e3);
  }
  if (ttfts.empty()) return 0;
  std::sort(ttfts.begin(), ttfts.end());
  return loadgen::PercentileOfSorted(ttfts, p);
}

std::vector<loadgen::NamedResult> Named(std::span<const PolicyRun> runs) {
  std::vector<loadgen::NamedResult> out;
  for (const PolicyRun& r : runs) out.push_back({r.policy.name, r.result});
  return out;
}

Status SaveJson(const Experiment& x, std::span<const PolicyRun> runs, std::uint32_t seed,
                const std::string& dir) {
  for (const PolicyRun& r : runs) {
    auto path =
        loadgen::SaveResult(r.result, dir, FileName(x, r.policy, seed, r.result.info.request_rate));
    if (!path.ok()) return path.error();
    std::fprintf(stderr, "infergate simulate: saved %s\n", path->c_str());
  }
  return Ok();
}

// --trace: each run's per-request CSV, named as its JSON with .csv.
Status SaveTraces(const Experiment& x, std::span<const PolicyRun> runs, std::uint32_t seed,
                  const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Error{fmt::format("--trace: cannot create {}: {}", dir, ec.message())};
  for (const PolicyRun& r : runs) {
    std::string name = FileName(x, r.policy, seed, r.result.info.request_rate);
    name.replace(name.size() - 5, 5, ".csv");
    const std::filesystem::path path = std::filesystem::path(dir) / name;
    std::ofstream out(path, std::ios::binary);
    out << r.trace_csv;
    out.close();
    if (!out) return Error{fmt::format("--trace: cannot write {}", path.string())};
    std::fprintf(stderr, "infergate simulate: saved %s\n", path.c_str());
  }
  return Ok();
}

int RunSingle(const SimulateFlags& f, const Experiment& x) {
  const std::string date = LocalDate();
  std::vector<std::vector<PolicyRun>> per_seed;
  for (std::uint32_t seed : x.seeds) {
    WorkloadSpec w = x.workload;
    w.seed = seed;
    auto runs = RunAll(x, w, date);
    if (!runs.ok()) {
      std::fprintf(stderr, "infergate simulate: %s\n", runs.error().message.c_str());
      return kExitRuntime;
    }
    std::printf(
        "Workload %s, seed %u: %d prompts%s, %zu x %s, scrape every %g ms\n",
        x.workload_name.c_str(), seed, w.num_prompts(),
        w.warmup_prompts > 0
            ? fmt::format(" (the first {} a warm-up, not measured)", w.warmup_prompts).c_str()
            : "",
        x.setup.engines.size(), x.setup.engines.front().name.c_str(),
        ToMillis(x.setup.scrape_interval));
    if (!f.quiet) {
      for (const PolicyRun& r : *runs) {
        std::printf("\nPolicy: %s%s\n", r.policy.name.c_str(),
                    r.policy.late_binding ? " (gateway queue)" : "");
        std::fputs(loadgen::FormatResultTable(r.result).c_str(), stdout);
      }
    }
    std::printf("\nComparison (ratios to %s), seed %u:\n", runs->front().policy.name.c_str(), seed);
    std::fputs(loadgen::FormatComparison(Named(*runs), f.markdown).c_str(), stdout);
    std::printf("\n");
    std::fputs(cluster::FormatRunFacts(*runs).c_str(), stdout);
    std::printf("\n");
    std::fflush(stdout);
    if (!f.json_dir.empty()) {
      if (Status s = SaveJson(x, *runs, seed, f.json_dir); !s.ok()) {
        std::fprintf(stderr, "infergate simulate: %s\n", s.error().message.c_str());
        return kExitRuntime;
      }
    }
    if (!f.trace_dir.empty()) {
      if (Status s = SaveTraces(x, *runs, seed, f.trace_dir); !s.ok()) {
        std::fprintf(stderr, "infergate simulate: %s\n", s.error().message.c_str());
        return kExitRuntime;
      }
    }
    per_seed.push_back(std::move(*runs));
  }

  if (per_seed.size() > 1) {
    // Ratios to the first policy, averaged over seeds (each seed's ratio first).
    std::printf("Mean over %zu seeds of each seed's ratio to %s:\n", per_seed.size(),
                per_seed.front().front().policy.name.c_str());
    std::printf("%-22s %10s %10s %10s %10s %10s\n", "policy", "mean TTFT", "P99 TTFT", "out tok/s",
                "mean TPOT", "TTFT/floor");
    for (std::size_t p = 0; p < x.policies.size(); ++p) {
      double ttft = 0, p99 = 0, out = 0, tpot = 0, floor = 0;
      for (const auto& runs : per_seed) {
        const loadgen::BenchmarkResult& base = runs.front().result;
        const loadgen::BenchmarkResult& r = runs[p].result;
        ttft += r.ttft_ms.mean / base.ttft_ms.mean;
        p99 += TtftPercentileMs(r, 99) / std::max(1e-9, TtftPercentileMs(base, 99));
        out += r.output_throughput / base.output_throughput;
        tpot += r.tpot_ms.mean / std::max(1e-9, base.tpot_ms.mean);
        floor += runs[p].ttft_over_floor;
      }
      const double n = static_cast<double>(per_seed.size());
      std::printf("%-22s %9.3fx %9.3fx %9.3fx %9.3fx %10.3f\n", x.policies[p].name.c_str(),
                  ttft / n, p99 / n, out / n, tpot / n, floor / n);
    }
    std::printf("\n");
  }

  if (!f.html.empty()) {
    loadgen::HtmlReport report;
    report.title =
        fmt::format("infergate simulate: {} workload, seed {}", x.workload_name, x.seeds.front());
    report.runs = Named(per_seed.front());
    if (Status s = loadgen::WriteHtmlReport(report, f.html); !s.ok()) {
      std::fprintf(stderr, "infergate simulate: %s\n", s.error().message.c_str());
      return kExitRuntime;
    }
    std::fprintf(stderr, "infergate simulate: wrote %s\n", f.html.c_str());
  }
  for (const auto& runs : per_seed) {
    for (const PolicyRun& r : runs) {
      if (r.result.completed == 0) return kExitRuntime;
    }
  }
  return kExitOk;
}

// The sweep's summary per policy: its SLO capacity and its saturation rate
// (cluster::SaturationOf), each capacity also as a ratio to the first policy's capacity
// and to its saturation rate (the baseline may never meet the SLO at all, so capacities
// are compared with the rate at which it saturates). A text table, or Markdown with
// --markdown.
std::string FormatCapacities(const SimulateFlags& f, const Experiment& x,
                             std::span<const cluster::SweepPoint> points) {
  const std::string& base_name = x.policies.front().name;
  const double base_capacity = cluster::SloCapacity(points, base_name, f.slo_ttft_ms);
  const cluster::Saturation base_saturation = cluster::SaturationOf(points, base_name);
  auto ratio = [](double a, double b) { return b > 0 ? fmt::format("{:.2f}x", a / b) : "-"; };
  struct Row {
    std::string policy, capacity, saturation, at, vs_capacity, vs_saturation;
  };
  std::vector<Row> rows;
  for (const PolicySpec& p : x.policies) {
    const double c = cluster::SloCapacity(points, p.name, f.slo_ttft_ms);
    const cluster::Saturation s = cluster::SaturationOf(points, p.name);
    rows.push_back({p.name, c > 0 ? RateWord(c) + " req/s" : "none",
                    fmt::format("{}{:.2f} req/s", s.reached ? "" : ">= ", s.rate),
                    fmt::format("{} req/s, {:.0f} tok/s", RateWord(s.offered), s.output_throughput),
                    c > 0 ? ratio(c, base_capacity) : "-",
                    c > 0 ? ratio(c, base_saturation.rate) : "-"});
  }
  const std::string vs_c = fmt::format("capacity / {}'s capacity", base_name);
  const std::string vs_s = fmt::format("capacity / {}'s saturation", base_name);
  std::string out = fmt::format(
      "\nSLO capacity: the highest rate with P{:g} TTFT <= {:g} ms at every rate up to it.\n"
      "Saturation rate: the highest completed-request throughput at any rate of the sweep "
      "(\">=\": no rate was delivered at under {:.0f}% of its offered rate, so the sweep never "
      "saturated the policy); its plateau starts at the lowest rate delivered at >= {:.0f}% of "
      "it.\n",
      f.slo_percentile, f.slo_ttft_ms, 100 * cluster::kSaturatedFraction,
      100 * cluster::kPlateauFraction);
  if (f.markdown) {
    out += fmt::format(
        "\n| policy | SLO capacity | saturation rate | plateau from, output | {} | {} |\n"
        "|---|---|---|---|---|---|\n",
        vs_c, vs_s);
    for (const Row& r : rows) {
      out += fmt::format("| {} | {} | {} | {} | {} | {} |\n", r.policy, r.capacity, r.saturation,
                         r.at, r.vs_capacity, r.vs_saturation);
    }
    return out;
  }
  out += fmt::format("{:<22} {:>13} {:>18} {:>26} {:>12} {:>14}\n", "policy", "SLO capacity",
                     "saturation rate", "plateau from, output", "/ capacity", "/ saturation");
  for (const Row& r : rows) {
    out += fmt::format("{:<22} {:>13} {:>18} {:>26} {:>12} {:>14}\n", r.policy, r.capacity,
                       r.saturation, r.at, r.vs_capacity, r.vs_saturation);
  }
  out += fmt::format(
      "(ratios: each policy's SLO capacity over {0}'s SLO capacity and over {0}'s "
      "saturation rate)\n",
      base_name);
  return out;
}

// The knee of one policy (--knee-of) and every policy's percentile and output there.
std::string FormatKnee(const SimulateFlags& f, const Experiment& x,
                       std::span<const cluster::SweepPoint> points) {
  std::string of = f.knee_of;
  if (of.empty()) {
    of = x.policies.front().name;
    for (const PolicySpec& p : x.policies) {
      if (p.name == "gie-default") of = p.name;
    }
  }
  const cluster::Knee k = cluster::KneeOf(points, of, f.knee_factor);
  std::string out = fmt::format(
      "\nKnee of {}: light-load P{:g} TTFT {:.2f} ms (the median over its five lowest rates); ", of,
      f.slo_percentile, k.light_ms);
  if (k.rate <= 0) {
    return out + fmt::format("no rate of the sweep is over {:g}x that.\n", f.knee_factor);
  }
  out += fmt::format("first rate over {:g}x: {} req/s ({:.2f} ms).\n", f.knee_factor,
                     RateWord(k.rate), k.slo_ttft_ms);
  const cluster::SweepPoint* base = nullptr;
  for (const cluster::SweepPoint& p : points) {
    if (p.policy == of && p.rate == k.rate) base = &p;
  }
  const std::string pct = fmt::format("P{:g} TTFT", f.slo_percentile);
  if (f.markdown) {
    out += fmt::format(
        "\n| policy at {} req/s | {} (ms) | / {}'s | output (tok/s) | / {}'s |\n"
        "|---|---|---|---|---|\n",
        RateWord(k.rate), pct, of, of);
  } else {
    out += fmt::format("{:<22} {:>12} {:>12} {:>12} {:>12}\n", "policy", pct, "/ " + of,
                       "out tok/s", "/ " + of);
  }
  for (const PolicySpec& spec : x.policies) {
    for (const cluster::SweepPoint& p : points) {
      if (p.policy != spec.name || p.rate != k.rate) continue;
      const std::string r_ttft =
          base->slo_ttft_ms > 0 ? fmt::format("{:.2f}x", p.slo_ttft_ms / base->slo_ttft_ms) : "-";
      const std::string r_out =
          base->output_throughput > 0
              ? fmt::format("{:.2f}x", p.output_throughput / base->output_throughput)
              : "-";
      out += f.markdown ? fmt::format("| {} | {:.2f} | {} | {:.0f} | {} |\n", p.policy,
                                      p.slo_ttft_ms, r_ttft, p.output_throughput, r_out)
                        : fmt::format("{:<22} {:>12.2f} {:>12} {:>12.0f} {:>12}\n", p.policy,
                                      p.slo_ttft_ms, r_ttft, p.output_throughput, r_out);
    }
  }
  return out;
}

int RunSweep(const SimulateFlags& f, const Experiment& x) {
  const std::string date = LocalDate();
  std::vector<PolicyRun> all;
  std::printf("Sweep: workload %s%s, %zu x %s, %zu rates x %zu seeds x %zu policies\n",
              x.workload_name.c_str(),
              x.workload.warmup_prompts > 0
                  ? fmt::format(" (first {} requests of each run a warm-up, not measured)",
                                x.workload.warmup_prompts)
                        .c_str()
                  : "",
              x.setup.engines.size(), x.setup.engines.front().name.c_str(), x.sweep_rates.size(),
              x.seeds.size(), x.policies.size());
  std::printf("%8s %-22s %6s %12s %12s %12s %10s %7s\n", "rate", "policy", "seed",
              fmt::format("P{:g} TTFT", f.slo_percentile).c_str(), "mean TTFT", "out tok/s",
              "TTFT/floor", "failed");
  for (double rate : x.sweep_rates) {
    for (std::uint32_t seed : x.seeds) {
      WorkloadSpec w = x.workload;
      w.seed = seed;
      w.request_rate = rate;
      auto runs = RunAll(x, w, date);
      if (!runs.ok()) {
        std::fprintf(stderr, "infergate simulate: %s\n", runs.error().message.c_str());
        return kExitRuntime;
      }
      for (const PolicyRun& r : *runs) {
        const auto points = cluster::AverageSweep(std::span(&r, 1), f.slo_percentile);
        std::printf("%8s %-22s %6u %12.2f %12.2f %12.2f %10.3f %7d\n", RateWord(rate).c_str(),
                    r.policy.name.c_str(), seed, points[0].slo_ttft_ms, r.result.ttft_ms.mean,
                    r.result.output_throughput, r.ttft_over_floor, r.result.failed);
      }
      std::fflush(stdout);
      if (!f.json_dir.empty()) {
        if (Status s = SaveJson(x, *runs, seed, f.json_dir); !s.ok()) {
          std::fprintf(stderr, "infergate simulate: %s\n", s.error().message.c_str());
          return kExitRuntime;
        }
      }
      if (!f.trace_dir.empty()) {
        if (Status s = SaveTraces(x, *runs, seed, f.trace_dir); !s.ok()) {
          std::fprintf(stderr, "infergate simulate: %s\n", s.error().message.c_str());
          return kExitRuntime;
        }
      }
      for (PolicyRun& r : *runs) all.push_back(std::move(r));
    }
  }

  const std::vector<cluster::SweepPoint> points = cluster::AverageSweep(all, f.slo_percentile);
  std::printf("\nMean over seeds (P%g TTFT SLO %g ms):\n", f.slo_percentile, f.slo_ttft_ms);
  std::printf("%8s %-22s %12s %12s %10s %12s %10s %5s\n", "rate", "policy",
              fmt::format("P{:g} TTFT", f.slo_percentile).c_str(), "mean TTFT", "done req/s",
              "out tok/s", "TTFT/floor", "SLO");
  for (const cluster::SweepPoint& p : points) {
    const bool ok = p.slo_ttft_ms <= f.slo_ttft_ms && p.failed == 0;
    std::printf("%8s %-22s %12.2f %12.2f %10.2f %12.2f %10.3f %5s\n", RateWord(p.rate).c_str(),
                p.policy.c_str(), p.slo_ttft_ms, p.mean_ttft_ms, p.request_throughput,
                p.output_throughput, p.ttft_over_floor, ok ? "met" : "-");
  }
  const double base = cluster::SloCapacity(points, x.policies.front().name, f.slo_ttft_ms);
  std::fputs(FormatCapacities(f, x, points).c_str(), stdout);
  std::fputs(FormatKnee(f, x, points).c_str(), stdout);

  if (!f.html.empty()) {
    loadgen::HtmlReport report;
    report.title = fmt::format("infergate simulate: {} workload, rate sweep", x.workload_name);
    loadgen::SweepChart slo{fmt::format("P{:g} TTFT vs request rate (mean over {} seeds)",
                                        f.slo_percentile, x.seeds.size()),
                            "request rate (req/s)",
                            fmt::format("P{:g} TTFT (ms)", f.slo_percentile),
                            {},
                            true};
    loadgen::SweepChart tput{
        "Output throughput vs request rate", "request rate (req/s)", "output tokens/s", {}, false};
    loadgen::SweepChart floor{"Mean TTFT over the idle-engine floor",
                              "request rate (req/s)",
                              "mean TTFT / floor",
                              {},
                              true};
    for (const PolicySpec& p : x.policies) {
      loadgen::SweepSeries a{p.name, {}}, b{p.name, {}}, c{p.name, {}};
      for (const cluster::SweepPoint& pt : points) {
        if (pt.policy != p.name) continue;
        a.points.emplace_back(pt.rate, pt.slo_ttft_ms);
        b.points.emplace_back(pt.rate, pt.output_throughput);
        c.points.emplace_back(pt.rate, pt.ttft_over_floor);
      }
      slo.series.push_back(std::move(a));
      tput.series.push_back(std::move(b));
      floor.series.push_back(std::move(c));
    }
    loadgen::SweepSeries line{fmt::format("SLO {:g} ms", f.slo_ttft_ms), {}};
    line.points = {{x.sweep_rates.front(), f.slo_ttft_ms}, {x.sweep_rates.back(), f.slo_ttft_ms}};
    slo.series.push_back(std::move(line));
    report.sweeps = {std::move(slo), std::move(tput), std::move(floor)};
    // The runs of the first seed at the highest rate where the first policy meets the SLO
    // (or the lowest rate), as a sample of the distributions.
    const double sample_rate = base > 0 ? base : x.sweep_rates.front();
    for (const PolicyRun& r : all) {
      if (r.result.info.request_rate == sample_rate && r.workload_seed == x.seeds.front()) {
        report.runs.push_back(
            {fmt::format("{} @ {} req/s", r.policy.name, RateWord(sample_rate)), r.result});
      }
    }
    if (Status s = loadgen::WriteHtmlReport(report, f.html); !s.ok()) {
      std::fprintf(stderr, "infergate simulate: %s\n", s.error().message.c_str());
      return kExitRuntime;
    }
    std::fprintf(stderr, "infergate simulate: wrote %s\n", f.html.c_str());
  }
  return kExitOk;
}

int RunSimulate(const SimulateFlags& f) {
  auto x = Resolve(f);
  if (!x.ok()) return UsageError(x.error().message);
  return x->sweep_rates.empty() ? RunSingle(f, *x) : RunSweep(f, *x);
}

}  // namespace

void AddSimulateCommand(CLI::App& root, Runner& run) {
  auto* cmd = root.add_subcommand(
      "simulate",
      "Replay a benchmark_serving workload on a virtual-time cluster: simulated vLLM engines "
      "behind the real scheduling core, with stale scrapes, network delays and an optional "
      "gateway queue. Prints the benchmark_serving table per routing policy, a comparison "
      "with ratios to the first policy, and each run's mean TTFT over the idle-engine floor "
      "(each request's TTFT alone on an idle engine). Deterministic for a seed.\n"
      "Presets (--workload): seed = the seed's experiment (random dataset, v0.7 lengths, "
      "prefix 1000, input 4000, output 3000, ratio 0.2, 300 prompts, concurrency 30, rate "
      "inf, 3 x qwq-32b-tp2pp2); shared-prefix = 150 tenants with 5500-token system prompts, "
      "4-turn sessions, 3000 prompts, Poisson arrivals (10 req/s), 8 x llama-3.1-70b-h100-tp8 "
      "with 9,000 KV blocks (vLLM V1, prefix caching on; a cold system prompt takes ~0.32 s "
      "to prefill); random = benchmark_serving's "
      "random defaults on the seed's cluster.\n"
      "Exit codes: 0 ok, 1 a run failed entirely (or runtime error), 2 bad flags.");
  auto f = std::make_shared<SimulateFlags>();
  cmd->add_option("--workload", f->workload, "Preset: seed | shared-prefix | random")
      ->capture_default_str();
  cmd->add_option("--profile", f->profile,
                  "Engine profile name or YAML path (default: the preset's)");
  cmd->add_option("--servers", f->servers, "Number of simulated servers (default: the preset's)");
  cmd->add_option("--num-gpu-blocks", f->num_gpu_blocks,
                  "Override the profile's KV cache size in blocks");
  cmd->add_option("--policies", f->policies,
                  "Comma list of scheduling profiles (round-robin, gie-v0, gie-default, "
                  "gie-ledger, infergate); NAME:queue / NAME:direct force the gateway queue "
                  "on / off (default: on for infergate only). Ratios are to the first.")
      ->capture_default_str();
  cmd->add_option("--param", f->policy_params,
                  "Plugin parameter of one policy: POLICY/TYPE.PARAMETER=VALUE, e.g. "
                  "infergate/predicted-ttft-scorer.decodeWeight=0.02 (repeatable)")
      ->take_all()
      ->expected(1)
      ->allow_extra_args(false);
  cmd->add_option("--seed", f->seed, "Workload seed (numpy stream: dataset, then arrivals)")
      ->capture_default_str();
  cmd->add_option("--seeds", f->seeds, "Several workload seeds, e.g. 0,1,2 (overrides --seed)");
  cmd->add_option("--sweep-rates", f->sweep_rates,
                  "Rate sweep: comma list or LO:HI:STEP in req/s; reports each policy's SLO "
                  "capacity and saturation rate")
      ->capture_default_str();
  cmd->add_option("--slo-ttft-ms", f->slo_ttft_ms, "Sweep SLO on the TTFT percentile (ms)")
      ->capture_default_str();
  cmd->add_option("--slo-percentile", f->slo_percentile, "Sweep SLO percentile")
      ->capture_default_str();
  cmd->add_option("--redirect-after", f->redirect_after_s,
                  "Re-dispatch, as infergate serve --redirect-after: a request of a policy with "
                  "the gateway queue that has no first token this many seconds after its "
                  "dispatch, and waits for KV space (the oldest of ours in its virtual engine), "
                  "is aborted and sent once to an endpoint that can admit it now with no "
                  "prefill queued in its virtual engine (0: never)")
      ->capture_default_str();
  cmd->add_option("--knee-of", f->knee_of,
                  "Sweep: the policy whose knee is reported (the first rate where its TTFT "
                  "percentile exceeds --knee-factor times its light-load value, the median over "
                  "its five lowest rates), with every policy's percentile and output there "
                  "(default: gie-default when swept, else the first policy)");
  cmd->add_option("--knee-factor", f->knee_factor,
                  "Sweep: growth over light load that marks the knee")
      ->capture_default_str();
  cmd->add_option("--gateway-replicas", f->gateway_replicas,
                  "Gateway replicas behind a random L4 balancer, each with its own scheduler "
                  "and queue, scraping on its own phase")
      ->capture_default_str();
  cmd->add_flag("--no-replica-sync", f->no_replica_sync,
                "Replicas share no routing events (measures what sync recovers)");
  cmd->add_option("--sync-delay", f->sync_delay_ms,
                  "Replica sync: milliseconds from an event to its peers applying it")
      ->capture_default_str();
  cmd->add_option("--sync-loss", f->sync_loss,
                  "Replica sync: probability each message is lost on its way to a peer")
      ->capture_default_str();
  cmd->add_option("--scrape-interval", f->scrape_interval_ms,
                  "Milliseconds between /metrics scrapes")
      ->capture_default_str();
  cmd->add_option("--scrape-latency", f->scrape_latency_ms,
                  "Milliseconds from taking a scrape to the scheduler seeing it")
      ->capture_default_str();
  cmd->add_option("--gauges", f->gauges,
                  "What a scrape shows: step = the engine as of its last step end (vLLM "
                  "updates its gauges once per step); instant = the engine at that moment")
      ->capture_default_str();
  cmd->add_option("--client-delay", f->client_delay_ms, "Client <-> gateway one-way delay (ms)")
      ->capture_default_str();
  cmd->add_option("--engine-delay", f->engine_delay_ms, "Gateway <-> engine one-way delay (ms)")
      ->capture_default_str();
  cmd->add_option("--eos", f->eos,
                  "none: outputs run to max_tokens (the seed); early: each ends at a uniformly "
                  "random point before max_tokens")
      ->capture_default_str();
  cmd->add_option("--criticality", f->criticality,
                  "InferenceModel criticality of every request (the seed's was Critical)")
      ->capture_default_str();
  cmd->add_flag("--exact-prompt-tokens", f->exact_prompt_tokens,
                "Give the scheduler exact prompt token counts (default: estimated from "
                "characters and calibrated from usage, as the gateway does)");
  cmd->add_option("--scheduler-seed", f->scheduler_seed, "Seed of the scheduler's tie-breaks")
      ->capture_default_str();
  cmd->add_option("--queue-ttl", f->queue_ttl_s, "Gateway queue TTL in seconds (then 503)")
      ->capture_default_str();
  cmd->add_option("--queue-capacity", f->queue_capacity, "Gateway queue capacity (then 429)")
      ->capture_default_str();
  cmd->add_option("--fairness", f->fairness, "Gateway queue fairness: round-robin | least-served")
      ->capture_default_str();
  cmd->add_option("--json", f->json_dir,
                  "Write each run's result JSON (infergate bench --save-result keys) here");
  cmd->add_option("--trace", f->trace_dir,
                  "Write each run's per-request CSV here (engine, times, cached prompt tokens, "
                  "preemptions)");
  cmd->add_option("--html", f->html, "Write an HTML report (with sweep charts in a sweep)");
  cmd->add_option("--percentile-metrics", f->percentile_metrics,
                  "Metrics with percentiles in the table: comma list of ttft,tpot,itl,e2el")
      ->capture_default_str();
  cmd->add_option("--metric-percentiles", f->metric_percentiles, "Comma list, e.g. 50,90,99")
      ->capture_default_str();
  cmd->add_flag("--markdown", f->markdown,
                "Print the comparison (a sweep: the capacity summary) as a Markdown table");
  cmd->add_flag("--quiet", f->quiet, "Only the comparison, not each policy's table");
  cmd->add_option("--num-prompts", f->num_prompts, "Requests (default: the preset's)");
  cmd->add_option("--warmup-prompts", f->warmup_prompts,
                  "Send and serve the first N requests as usual but leave them out of every "
                  "statistic (a steady-state measurement without the cold start); the "
                  "measurement runs from the first measured send to the last measured completion")
      ->capture_default_str();
  cmd->add_option("--request-rate", f->request_rate, "Requests per second, or inf");
  cmd->add_option("--burstiness", f->burstiness, "Gamma shape of arrival gaps (1 = Poisson)")
      ->capture_default_str();
  cmd->add_option("--max-concurrency", f->max_concurrency, "Client concurrency limit (0: none)");
  cmd->add_flag("--ignore-eos", f->ignore_eos, "Send ignore_eos: outputs run to max_tokens");
  cmd->add_option("--random-length-semantics", f->random_length_semantics,
                  "v0.7 (the seed's): [int(L*r), L]; current: [int(L*(1-r)), int(L*(1+r))]");
  cmd->add_option("--random-input-len", f->random_input_len, "Random dataset: input length");
  cmd->add_option("--random-output-len", f->random_output_len, "Random dataset: output length");
  cmd->add_option("--random-prefix-len", f->random_prefix_len, "Random dataset: shared prefix");
  cmd->add_option("--random-range-ratio", f->random_range_ratio, "Random dataset: range ratio");
  cmd->add_option("--random-vocab-size", f->random_vocab_size,
                  "Vocabulary size token ids are drawn from (151643 = Qwen2's)")
      ->capture_default_str();
  cmd->add_option("--sp-tenants", f->sp_tenants, "Shared-prefix: tenants");
  cmd->add_option("--sp-prefix-len", f->sp_prefix_len, "Shared-prefix: system prompt tokens");
  cmd->add_option("--sp-question-len", f->sp_question_len, "Shared-prefix: question tokens");
  cmd->add_option("--sp-turns", f->sp_turns, "Shared-prefix: turns per session");
  cmd->add_option("--sp-active-sessions", f->sp_active_sessions,
                  "Shared-prefix: sessions open at once (0: all from the start)");
  cmd->add_option("--sp-output-len", f->sp_output_len, "Shared-prefix: max_tokens per turn");
  cmd->add_option("--sp-answers", f->sp_answers,
                  "Shared-prefix: what a later turn's history carries as the earlier answers: "
                  "model = the simulated model's own output (what a chat client sends back; "
                  "cached by the engine that generated it), dataset = words of their own")
      ->capture_default_str();
  cmd->add_option("--sp-range-ratio", f->sp_range_ratio,
                  "Shared-prefix: question/output lengths from [L*(1-r), L*(1+r)]");
  cmd->callback([&run, f] { run = [f] { return RunSimulate(*f); }; });
}

}  // namespace infergate::cli
