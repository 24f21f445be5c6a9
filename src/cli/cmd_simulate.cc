// `infergate simulate`: the virtual-time cluster. Simulated vLLM engines, the real
// scheduling core behind a gateway model (stale scrapes, network delays, an optional
// gateway queue) and benchmark_serving's workloads, replayed in simulated time; one result
// table per routing policy, a comparison with ratios to the first policy, result JSON that
// `infergate bench compare` reads, and an HTML report with rate-sweep charts.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/cluster_flags.h"
#include "cli/commands.h"
#include "cli/workload_flags.h"
#include "cluster/experiment.h"
#include "cluster/experiment_report.h"
#include "cluster/workload_presets.h"
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
  std::string policies = "round-robin,gie-v0,gie-default,infergate";
  std::vector<std::string> policy_params;
  std::string seeds;  // comma list; empty: --seed
  std::string sweep_rates;
  double slo_ttft_ms = 300;
  double slo_percentile = 90;
  std::string knee_of;  // empty: gie-default when swept, else the first policy
  double knee_factor = 5;
  ClusterFlags cluster;
  std::string json_dir;
  std::string trace_dir;
  std::string html;
  MetricFlags metrics;
  bool markdown = false;
  bool quiet = false;
  WorkloadFlags workload_flags;  // unset: the preset's
  std::string sp_answers = "model";
};

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

// What one command line resolves to.
struct Experiment {
  ClusterSetup setup;
  WorkloadSpec workload;
  std::string workload_name;
  std::vector<PolicySpec> policies;
  std::vector<std::uint32_t> seeds;
  std::vector<double> sweep_rates;  // empty: one run per policy and seed
  cluster::SweepReportOptions report;
  loadgen::MetricOptions metrics;
  bool model_answers = true;  // shared-prefix histories carry the model's own answers
};

Result<Experiment> Resolve(const SimulateFlags& f) {
  Experiment x;
  Result<cluster::WorkloadPreset> preset = cluster::FindWorkloadPreset(f.workload);
  if (!preset.ok()) return preset.error();
  x.workload_name = f.workload;
  auto workload = ApplyWorkloadFlags(f.workload_flags, preset->workload);
  if (!workload.ok()) return workload.error();
  x.workload = *workload;
  if (f.sp_answers != "model" && f.sp_answers != "dataset") {
    return Error{"--sp-answers must be model or dataset (got '" + f.sp_answers + "')"};
  }
  x.model_answers = f.sp_answers == "model";

  // Seeds.
  if (f.seeds.empty()) {
    x.seeds.push_back(x.workload.seed);
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

  auto setup = ResolveClusterFlags(f.cluster, *preset);
  if (!setup.ok()) return setup.error();
  x.setup = *setup;
  x.setup.keep_trace = !f.trace_dir.empty();

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

  auto metrics = ParseMetricFlags(f.metrics);
  if (!metrics.ok()) return metrics.error();
  x.metrics = *metrics;
  x.report = {f.slo_ttft_ms, f.slo_percentile, f.knee_of, f.knee_factor, f.markdown};
  return x;
}

std::string FileName(const Experiment& x, const PolicySpec& p, std::uint32_t seed, double rate) {
  std::string name = p.name;
  for (char& c : name) {
    if (c == ':' || c == '/') c = '-';
  }
  std::string out = fmt::format("{}-{}-seed{}", name, x.workload_name, seed);
  if (!x.sweep_rates.empty()) out += "-rate" + cluster::RateWord(rate);
  return out + ".json";
}

// Runs every policy on one drawn workload.
Result<std::vector<PolicyRun>> RunAll(const Experiment& x, const WorkloadSpec& w,
                                      const std::string& date) {
  return cluster::RunPolicies(x.setup, x.policies, w, x.model_answers, x.workload_name, date,
                              x.metrics);
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

// --json and --trace of one seed's runs.
Status SaveRuns(const SimulateFlags& f, const Experiment& x, std::span<const PolicyRun> runs,
                std::uint32_t seed) {
  if (!f.json_dir.empty()) {
    if (Status s = SaveJson(x, runs, seed, f.json_dir); !s.ok()) return s;
  }
  if (!f.trace_dir.empty()) return SaveTraces(x, runs, seed, f.trace_dir);
  return Ok();
}

int RuntimeError(const std::string& message) {
  std::fprintf(stderr, "infergate simulate: %s\n", message.c_str());
  return kExitRuntime;
}

int RunSingle(const SimulateFlags& f, const Experiment& x) {
  const std::string date = loadgen::LocalDate();
  std::vector<std::vector<PolicyRun>> per_seed;
  for (std::uint32_t seed : x.seeds) {
    WorkloadSpec w = x.workload;
    w.seed = seed;
    auto runs = RunAll(x, w, date);
    if (!runs.ok()) return RuntimeError(runs.error().message);
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
    if (Status s = SaveRuns(f, x, *runs, seed); !s.ok()) return RuntimeError(s.error().message);
    per_seed.push_back(std::move(*runs));
  }

  if (per_seed.size() > 1) {
    std::fputs(cluster::FormatSeedRatios(per_seed).c_str(), stdout);
    std::printf("\n");
  }

  if (!f.html.empty()) {
    loadgen::HtmlReport report;
    report.title =
        fmt::format("infergate simulate: {} workload, seed {}", x.workload_name, x.seeds.front());
    report.runs = Named(per_seed.front());
    if (Status s = loadgen::WriteHtmlReport(report, f.html); !s.ok()) {
      return RuntimeError(s.error().message);
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

int RunSweep(const SimulateFlags& f, const Experiment& x) {
  const std::string date = loadgen::LocalDate();
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
  std::fputs(cluster::FormatSweepRunHeader(x.report).c_str(), stdout);
  for (double rate : x.sweep_rates) {
    for (std::uint32_t seed : x.seeds) {
      WorkloadSpec w = x.workload;
      w.seed = seed;
      w.request_rate = rate;
      auto runs = RunAll(x, w, date);
      if (!runs.ok()) return RuntimeError(runs.error().message);
      for (const PolicyRun& r : *runs) {
        std::fputs(cluster::FormatSweepRunRow(r, x.report).c_str(), stdout);
      }
      std::fflush(stdout);
      if (Status s = SaveRuns(f, x, *runs, seed); !s.ok()) return RuntimeError(s.error().message);
      for (PolicyRun& r : *runs) all.push_back(std::move(r));
    }
  }

  const std::vector<cluster::SweepPoint> points =
      cluster::AverageSweep(all, x.report.slo_percentile);
  std::fputs(cluster::FormatSweepMeans(points, x.report).c_str(), stdout);
  std::fputs(cluster::FormatCapacities(points, x.policies, x.report).c_str(), stdout);
  std::fputs(cluster::FormatKnee(points, x.policies, x.report).c_str(), stdout);

  if (!f.html.empty()) {
    const loadgen::HtmlReport report = cluster::SweepHtmlReport(
        x.workload_name, points, all, x.policies, x.sweep_rates, x.seeds, x.report);
    if (Status s = loadgen::WriteHtmlReport(report, f.html); !s.ok()) {
      return RuntimeError(s.error().message);
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
  cmd->add_option("--seeds", f->seeds, "Several workload seeds, e.g. 0,1,2 (overrides --seed)");
  cmd->add_option("--sweep-rates", f->sweep_rates,
                  "Rate sweep: comma list or LO:HI:STEP in req/s; reports each policy's SLO "
                  "capacity and saturation rate")
      ->capture_default_str();
  cmd->add_option("--slo-ttft-ms", f->slo_ttft_ms, "Sweep SLO on the TTFT percentile (ms)")
      ->capture_default_str();
  cmd->add_option("--slo-percentile", f->slo_percentile, "Sweep SLO percentile")
      ->capture_default_str();
  cmd->add_option("--knee-of", f->knee_of,
                  "Sweep: the policy whose knee is reported (the first rate where its TTFT "
                  "percentile exceeds --knee-factor times its light-load value, the median over "
                  "its five lowest rates), with every policy's percentile and output there "
                  "(default: gie-default when swept, else the first policy)");
  cmd->add_option("--knee-factor", f->knee_factor,
                  "Sweep: growth over light load that marks the knee")
      ->capture_default_str();
  AddClusterFlags(*cmd, f->cluster);
  cmd->add_option("--json", f->json_dir,
                  "Write each run's result JSON (infergate bench --save-result keys) here");
  cmd->add_option("--trace", f->trace_dir,
                  "Write each run's per-request CSV here (engine, times, cached prompt tokens, "
                  "preemptions)");
  cmd->add_option("--html", f->html, "Write an HTML report (with sweep charts in a sweep)");
  AddMetricFlags(*cmd, f->metrics);
  cmd->add_flag("--markdown", f->markdown,
                "Print the comparison (a sweep: the capacity summary) as a Markdown table");
  cmd->add_flag("--quiet", f->quiet, "Only the comparison, not each policy's table");
  AddWorkloadFlags(*cmd, f->workload_flags, nullptr);
  cmd->add_option("--sp-answers", f->sp_answers,
                  "Shared-prefix: what a later turn's history carries as the earlier answers: "
                  "model = the simulated model's own output (what a chat client sends back; "
                  "cached by the engine that generated it), dataset = words of their own")
      ->capture_default_str();
  cmd->callback([&run, f] { run = [f] { return RunSimulate(*f); }; });
}

}  // namespace infergate::cli
