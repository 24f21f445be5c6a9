// Regression checks of the routing-policy results in docs/benchmarks.md, on the virtual-
// time cluster with the real scheduling core. The full experiments (more seeds, the whole
// rate sweep) are in that document with their commands; these are the cheap versions
// (each TEST runs in its own process, so runs that several checks need share one TEST).
#include <gtest/gtest.h>

#include <cstdio>

#include "cluster/experiment.h"

namespace infergate::cluster {
namespace {

// The seed's plain-gateway (round-robin) row and its GIE row's ratios (docs/benchmarks.md,
// "The seed experiment").
constexpr double kSeedMeanTtftMs = 10909.18;
constexpr double kSeedMedianTtftMs = 2446.06;
constexpr double kSeedMeanTpotMs = 114.18;
constexpr double kSeedOutputThroughput = 227.63;
constexpr double kSeedGieMeanRatio = 0.67;

struct Ratios {
  double mean_ttft = 0, p99_ttft = 0, throughput = 0;
};

WorkloadSpec Seed(std::uint32_t seed) {
  WorkloadSpec w;
  w.random.num_prompts = 300;
  w.random.prefix_len = 1000;
  w.random.input_len = 4000;
  w.random.output_len = 3000;
  w.random.range_ratio = 0.2;
  w.max_concurrency = 30;
  w.seed = seed;
  return w;
}

ClusterSetup SeedCluster(bool eos_early = false) {
  ClusterSetup s;
  auto p = sim::LoadProfile("qwq-32b-tp2pp2");
  EXPECT_TRUE(p.ok());
  if (eos_early) {
    p->eos.model = sim::EosModel::kUniform;
    p->eos.min_fraction = 0;
    p->eos.max_fraction = 1;
  }
  s.engines = {*p, *p, *p};
  s.model_id = "qwq";
  return s;
}

// Runs `policies` on one workload; returns each run (the first is the baseline).
std::vector<PolicyRun> RunAll(const ClusterSetup& setup, const WorkloadSpec& spec,
                              const std::vector<std::string>& policies) {
  auto w = SampleWorkload(spec);
  EXPECT_TRUE(w.ok());
  ClusterSetup s = setup;
  s.engine_seed = spec.seed;
  auto floor = IdleTtftSeconds(s, *w);
  EXPECT_TRUE(floor.ok());
  std::vector<PolicyRun> out;
  for (const std::string& name : policies) {
    auto p = ParsePolicy(name);
    EXPECT_TRUE(p.ok());
    auto run = RunPolicy(s, spec, *w, *floor, *p, {}, {});
    EXPECT_TRUE(run.ok()) << (run.ok() ? "" : run.error().message);
    out.push_back(std::move(*run));
  }
  return out;
}

// Each policy's ratios to the first, averaged over `seeds` workload seeds.
std::vector<Ratios> MeanRatios(const ClusterSetup& setup, const std::vector<std::string>& policies,
                               const std::vector<std::uint32_t>& seeds,
                               WorkloadSpec (*make)(std::uint32_t) = Seed) {
  std::vector<Ratios> r(policies.size());
  for (std::uint32_t seed : seeds) {
    const std::vector<PolicyRun> runs = RunAll(setup, make(seed), policies);
    const loadgen::BenchmarkResult& base = runs[0].result;
    for (std::size_t i = 0; i < runs.size(); ++i) {
      const loadgen::BenchmarkResult& x = runs[i].result;
      const double n = static_cast<double>(seeds.size());
      r[i].mean_ttft += x.ttft_ms.mean / base.ttft_ms.mean / n;
      r[i].p99_ttft += x.ttft_ms.At(99) / base.ttft_ms.At(99) / n;
      r[i].throughput += x.output_throughput / base.output_throughput / n;
    }
  }
  for (std::size_t i = 0; i < policies.size(); ++i) {
    std::printf("%-12s mean TTFT %.3fx  P99 TTFT %.3fx  output %.3fx\n", policies[i].c_str(),
                r[i].mean_ttft, r[i].p99_ttft, r[i].throughput);
  }
  return r;
}

// One test, so the twelve runs (four policies, three workload seeds) are simulated once.
TEST(SeedWorkload, FidelityOfTheBaselinesAndTheInfergateTargets) {
  const std::vector<std::string> policies = {"round-robin", "gie-v0", "gie-default", "infergate"};
  const int n = 3;
  std::vector<Ratios> r(policies.size());
  double mean = 0, median = 0, tpot = 0, out = 0;
  for (std::uint32_t seed = 0; seed < n; ++seed) {
    const std::vector<PolicyRun> runs = RunAll(SeedCluster(), Seed(seed), policies);
    const loadgen::BenchmarkResult& rr = runs[0].result;
    ASSERT_EQ(rr.completed, 300);
    if (seed == 0) {
      EXPECT_EQ(rr.total_input, 1014085);  // the seed's exact input tokens
    }
    mean += rr.ttft_ms.mean / n;
    median += rr.ttft_ms.median / n;
    tpot += rr.tpot_ms.mean / n;
    out += rr.output_throughput / n;
    for (std::size_t i = 0; i < runs.size(); ++i) {
      const loadgen::BenchmarkResult& x = runs[i].result;
      r[i].mean_ttft += x.ttft_ms.mean / rr.ttft_ms.mean / n;
      r[i].p99_ttft += x.ttft_ms.At(99) / rr.ttft_ms.At(99) / n;
      r[i].throughput += x.output_throughput / rr.output_throughput / n;
    }
  }
  for (std::size_t i = 0; i < policies.size(); ++i) {
    std::printf("%-12s mean TTFT %.3fx  P99 TTFT %.3fx  output %.3fx\n", policies[i].c_str(),
                r[i].mean_ttft, r[i].p99_ttft, r[i].throughput);
  }

  // Round-robin through the real core lands on the seed's plain-gateway row (±25%).
  EXPECT_NEAR(mean, kSeedMeanTtftMs, 0.25 * kSeedMeanTtftMs);
  EXPECT_NEAR(median, kSeedMedianTtftMs, 0.25 * kSeedMedianTtftMs);
  EXPECT_NEAR(tpot, kSeedMeanTpotMs, 0.25 * kSeedMeanTpotMs);
  EXPECT_NEAR(out, kSeedOutputThroughput, 0.25 * kSeedOutputThroughput);

  // gie-v0, unfitted, near the seed's GIE row. docs/benchmarks.md: over 100 runs the
  // mean-TTFT ratio is 0.63 (sd 0.13); three seeds are a cheap, noisy check of the same.
  EXPECT_NEAR(r[1].mean_ttft, kSeedGieMeanRatio, 0.12);
  EXPECT_GT(r[1].p99_ttft, 0.4);
  EXPECT_LT(r[1].p99_ttft, 1.1);

  // infergate, as shipped (virtual-engine mirror, prefill pacing, re-dispatch after 7 s):
  // the seed workload's targets in docs/benchmarks.md on these seeds (it measures 0.299x /
  // 0.122x / 1.043x here; docs/benchmarks.md has ten seeds and more), and better than both GIE
  // schedulers.
  const Ratios& ig = r[3];
  EXPECT_LE(ig.mean_ttft, 0.30);
  EXPECT_LE(ig.p99_ttft, 0.15);
  EXPECT_GE(ig.throughput, 1.03);
  EXPECT_LT(ig.mean_ttft, r[1].mean_ttft);
  EXPECT_LT(ig.mean_ttft, r[2].mean_ttft);
  EXPECT_LT(ig.p99_ttft, r[1].p99_ttft);
  EXPECT_LT(ig.p99_ttft, r[2].p99_ttft);
}

TEST(InfergatePolicy, OutputsEndingEarlyKeepTheGain) {
  // max_tokens is all the policy knows; here outputs end uniformly before it.
  const auto r = MeanRatios(SeedCluster(true), {"round-robin", "infergate"}, {0, 1});
  EXPECT_LT(r[1].mean_ttft, 0.8);
  EXPECT_GE(r[1].throughput, 0.99);
}

WorkloadSpec LightSeed(std::uint32_t seed) {
  WorkloadSpec w = Seed(seed);
  w.random.num_prompts = 20;
  w.max_concurrency = 0;
  w.request_rate = 0.01;  // one request every 100 s: they rarely overlap
  return w;
}

TEST(InfergatePolicy, NoPolicyRegressesOnALightLoad) {
  const auto r = MeanRatios(SeedCluster(), {"round-robin", "gie-v0", "gie-default", "infergate"},
                            {0}, LightSeed);
  for (std::size_t i = 1; i < r.size(); ++i) {
    EXPECT_LT(r[i].mean_ttft, 1.05) << i;
    EXPECT_GT(r[i].throughput, 0.95) << i;
  }
}

WorkloadSpec SharedPrefix(std::uint32_t seed, double rate) {
  WorkloadSpec w;
  w.dataset = DatasetKind::kSharedPrefix;
  w.shared_prefix.num_prompts = 1200;
  w.shared_prefix.tenants = 150;
  w.shared_prefix.prefix_len = 4000;
  w.shared_prefix.question_len = 100;
  w.shared_prefix.turns = 4;
  w.shared_prefix.output_len = 200;
  w.shared_prefix.range_ratio = 0.5;
  w.request_rate = rate;
  w.seed = seed;
  w.answers_from_model = seed;  // as `infergate simulate`: RunAll's engine seed
  return w;
}

TEST(InfergatePolicy, SharedPrefixUnderLoadKeepsTenantsWarm) {
  ClusterSetup s;
  auto p = sim::LoadProfile("llama-3.1-70b-h100-tp8");
  ASSERT_TRUE(p.ok());
  p->engine.num_gpu_blocks = 10000;
  s.engines = {*p, *p, *p, *p};
  const auto runs = RunAll(s, SharedPrefix(0, 24), {"round-robin", "gie-default", "infergate"});
  const PolicyRun &rr = runs[0], &gie = runs[1], &ig = runs[2];
  std::printf("P90 TTFT: rr %.0f gie %.0f infergate %.0f ms; cold %d %d %d\n", rr.p90_ttft_ms,
              gie.p90_ttft_ms, ig.p90_ttft_ms, rr.cold_requests, gie.cold_requests,
              ig.cold_requests);
  EXPECT_LT(ig.p90_ttft_ms, gie.p90_ttft_ms);
  EXPECT_LT(10 * ig.p90_ttft_ms, rr.p90_ttft_ms);
  EXPECT_LT(ig.cold_requests, rr.cold_requests / 2);
  EXPECT_GE(ig.result.output_throughput, 0.98 * gie.result.output_throughput);
}

}  // namespace
}  // namespace infergate::cluster
