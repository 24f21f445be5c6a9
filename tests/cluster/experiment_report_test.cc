// The reports of `infergate simulate` (cluster/experiment_report.h) over hand-made sweep
// points and runs: which rate each table names, the ratios it prints, and where the SLO
// counts as met.
#include "cluster/experiment_report.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

namespace infergate::cluster {
namespace {

// The line of `text` that starts with `prefix` (a table row), split on white space; empty
// when there is none.
std::vector<std::string> Row(const std::string& text, const std::string& prefix) {
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(prefix, 0) != 0) continue;
    std::istringstream words(line);
    std::vector<std::string> out;
    for (std::string w; words >> w;) out.push_back(w);
    return out;
  }
  return {};
}

SweepPoint Point(const std::string& policy, double rate, double slo_ms, double done, double output,
                 int failed = 0) {
  SweepPoint p;
  p.policy = policy;
  p.rate = rate;
  p.slo_ttft_ms = slo_ms;
  p.mean_ttft_ms = slo_ms / 2;
  p.request_throughput = done;
  p.output_throughput = output;
  p.ttft_over_floor = 1;
  p.seeds = 1;
  p.failed = failed;
  return p;
}

std::vector<PolicySpec> Policies(std::vector<std::string> names) {
  std::vector<PolicySpec> out;
  for (std::string& n : names) out.push_back({n, n, false, {}});
  return out;
}

// round-robin meets a 300 ms SLO up to 1 req/s and saturates at 2.5 req/s; infergate meets
// it up to 3 req/s and saturates at 3.5; never-fast never meets it and keeps up throughout.
std::vector<SweepPoint> CapacitySweep() {
  return {Point("round-robin", 1, 100, 1, 100),   Point("round-robin", 2, 400, 2, 200),
          Point("round-robin", 3, 900, 2.5, 250), Point("round-robin", 4, 2000, 2.5, 250),
          Point("infergate", 1, 50, 1, 100),      Point("infergate", 2, 60, 2, 200),
          Point("infergate", 3, 100, 3, 300),     Point("infergate", 4, 500, 3.5, 350),
          Point("never-fast", 1, 400, 1, 100),    Point("never-fast", 2, 400, 2, 200),
          Point("never-fast", 3, 400, 3, 300),    Point("never-fast", 4, 400, 4, 400)};
}

TEST(ExperimentReport, RateWordsAreShortestAndInfStaysInf) {
  EXPECT_EQ(RateWord(10), "10");
  EXPECT_EQ(RateWord(2.5), "2.5");
  EXPECT_EQ(RateWord(std::numeric_limits<double>::infinity()), "inf");
}

TEST(ExperimentReport, CapacitiesNameEachPolicysRatesAndRatiosToTheFirst) {
  const auto points = CapacitySweep();
  const auto policies = Policies({"round-robin", "infergate", "never-fast"});
  SweepReportOptions o;
  o.slo_ttft_ms = 300;
  const std::string text = FormatCapacities(points, policies, o);
  EXPECT_NE(text.find("P90 TTFT <= 300 ms"), std::string::npos) << text;
  // policy, capacity (2 words), saturation (2), plateau (4), / capacity, / saturation
  EXPECT_EQ(Row(text, "round-robin"),
            (std::vector<std::string>{"round-robin", "1", "req/s", "2.50", "req/s", "3", "req/s,",
                                      "250", "tok/s", "1.00x", "0.40x"}));
  EXPECT_EQ(Row(text, "infergate"),
            (std::vector<std::string>{"infergate", "3", "req/s", "3.50", "req/s", "4", "req/s,",
                                      "350", "tok/s", "3.00x", "1.20x"}));
  // Never meets the SLO: no capacity and no ratio; never fell behind: a lower bound.
  EXPECT_EQ(Row(text, "never-fast"),
            (std::vector<std::string>{"never-fast", "none", ">=", "4.00", "req/s", "4", "req/s,",
                                      "400", "tok/s", "-", "-"}));

  o.markdown = true;
  const std::string md = FormatCapacities(points, policies, o);
  EXPECT_NE(md.find("| policy | SLO capacity | saturation rate | plateau from, output | "
                    "capacity / round-robin's capacity | capacity / round-robin's saturation |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| infergate | 3 req/s | 3.50 req/s | 4 req/s, 350 tok/s | 3.00x | 1.20x |"),
            std::string::npos)
      << md;
}

TEST(ExperimentReport, TheKneeIsGieDefaultsUnlessAnotherIsAsked) {
  // gie-default: 100 ms at the five lowest rates, 600 ms (over 5x) at 6 req/s.
  std::vector<SweepPoint> points;
  for (int r = 1; r <= 6; ++r) {
    points.push_back(Point("round-robin", r, r == 6 ? 1200 : 200, r, r == 6 ? 300 : 100 * r));
    points.push_back(Point("gie-default", r, r == 6 ? 600 : 100, r, r == 6 ? 600 : 100 * r));
  }
  const auto policies = Policies({"round-robin", "gie-default"});
  SweepReportOptions o;
  const std::string text = FormatKnee(points, policies, o);
  EXPECT_NE(text.find("Knee of gie-default: light-load P90 TTFT 100.00 ms"), std::string::npos)
      << text;
  EXPECT_NE(text.find("first rate over 5x: 6 req/s (600.00 ms)"), std::string::npos) << text;
  // Ratios to gie-default's at the knee: twice the TTFT, half the output.
  EXPECT_EQ(Row(text, "round-robin"),
            (std::vector<std::string>{"round-robin", "1200.00", "2.00x", "300", "0.50x"}));
  EXPECT_EQ(Row(text, "gie-default"),
            (std::vector<std::string>{"gie-default", "600.00", "1.00x", "600", "1.00x"}));

  o.markdown = true;
  EXPECT_NE(FormatKnee(points, policies, o).find("| round-robin | 1200.00 | 2.00x | 300 | 0.50x |"),
            std::string::npos);

  // round-robin's own light load is 200 ms; 1200 ms is over 5x.
  o.knee_of = "round-robin";
  o.markdown = false;
  EXPECT_NE(FormatKnee(points, policies, o).find("first rate over 5x: 6 req/s (1200.00 ms)"),
            std::string::npos);
  o.knee_factor = 10;
  EXPECT_NE(FormatKnee(points, policies, o).find("no rate of the sweep is over 10x that."),
            std::string::npos);
}

TEST(ExperimentReport, TheSloIsMetOnlyUnderTheTargetAndWithoutFailures) {
  const std::vector<SweepPoint> points = {Point("a", 1, 250, 1, 100),
                                          Point("a", 2, 250, 2, 200, /*failed=*/1),
                                          Point("a", 3, 350, 3, 300)};
  SweepReportOptions o;
  o.slo_ttft_ms = 300;
  o.slo_percentile = 99;
  const std::string text = FormatSweepMeans(points, o);
  EXPECT_NE(text.find("Mean over seeds (P99 TTFT SLO 300 ms):"), std::string::npos) << text;
  EXPECT_EQ(Row(text, "       1").back(), "met");
  EXPECT_EQ(Row(text, "       2").back(), "-");
  EXPECT_EQ(Row(text, "       3").back(), "-");
}

PolicyRun MakeRun(const std::string& policy, double mean_ttft_ms, double output, double floor) {
  PolicyRun r;
  r.policy = {policy, policy, false, {}};
  r.result.ttft_ms.mean = mean_ttft_ms;
  r.result.tpot_ms.mean = 10;
  r.result.output_throughput = output;
  loadgen::RequestOutcome o;
  o.success = true;
  o.ttft = mean_ttft_ms / 1e3;
  r.result.requests = {o, o};
  r.ttft_over_floor = floor;
  return r;
}

TEST(ExperimentReport, SeedRatiosAreTheMeanOfEachSeedsRatio) {
  // Seed 1: b takes half a's TTFT, seed 2 a quarter: the mean of the ratios is 0.375
  // (the ratio of the means would be 0.333).
  const std::vector<std::vector<PolicyRun>> per_seed = {
      {MakeRun("a", 100, 100, 4), MakeRun("b", 50, 150, 2)},
      {MakeRun("a", 200, 100, 8), MakeRun("b", 50, 50, 4)}};
  const std::string text = FormatSeedRatios(per_seed);
  EXPECT_NE(text.find("Mean over 2 seeds of each seed's ratio to a:"), std::string::npos) << text;
  EXPECT_EQ(Row(text, "a "),
            (std::vector<std::string>{"a", "1.000x", "1.000x", "1.000x", "1.000x", "6.000"}));
  // mean TTFT, P99 TTFT, output, TPOT, TTFT over the floor
  EXPECT_EQ(Row(text, "b "),
            (std::vector<std::string>{"b", "0.375x", "0.375x", "1.000x", "1.000x", "3.000"}));
}

TEST(ExperimentReport, ASweepRowIsOneRunsNumbers) {
  PolicyRun r = MakeRun("infergate", 120, 900, 1.5);
  r.result.info.request_rate = 2.5;
  r.workload_seed = 3;
  r.result.failed = 2;
  SweepReportOptions o;
  EXPECT_EQ(Row(FormatSweepRunHeader(o), "    rate"),
            (std::vector<std::string>{"rate", "policy", "seed", "P90", "TTFT", "mean", "TTFT",
                                      "out", "tok/s", "TTFT/floor", "failed"}));
  EXPECT_EQ(Row(FormatSweepRunRow(r, o), "     2.5"),
            (std::vector<std::string>{"2.5", "infergate", "3", "120.00", "120.00", "900.00",
                                      "1.500", "2"}));
}

TEST(ExperimentReport, TheHtmlSweepSamplesTheFirstSeedAtTheBaselinesCapacity) {
  const auto points = CapacitySweep();  // round-robin's capacity: 1 req/s
  const auto policies = Policies({"round-robin", "infergate", "never-fast"});
  std::vector<PolicyRun> runs;
  for (double rate : {1.0, 2.0}) {
    for (std::uint32_t seed : {7u, 8u}) {
      for (const PolicySpec& p : policies) {
        PolicyRun r = MakeRun(p.name, 100, 100, 1);
        r.result.info.request_rate = rate;
        r.workload_seed = seed;
        runs.push_back(r);
      }
    }
  }
  const std::vector<double> rates = {1, 2, 3, 4};
  const std::vector<std::uint32_t> seeds = {7, 8};
  const loadgen::HtmlReport report =
      SweepHtmlReport("shared-prefix", points, runs, policies, rates, seeds, {});
  EXPECT_EQ(report.title, "infergate simulate: shared-prefix workload, rate sweep");
  ASSERT_EQ(report.sweeps.size(), 3u);
  const loadgen::SweepChart& slo = report.sweeps[0];
  EXPECT_EQ(slo.title, "P90 TTFT vs request rate (mean over 2 seeds)");
  ASSERT_EQ(slo.series.size(), policies.size() + 1);
  EXPECT_EQ(slo.series[1].name, "infergate");
  EXPECT_EQ(slo.series[1].points.size(), 4u);
  EXPECT_EQ(slo.series.back().name, "SLO 300 ms");
  EXPECT_EQ(slo.series.back().points, (std::vector<std::pair<double, double>>{{1, 300}, {4, 300}}));
  ASSERT_EQ(report.runs.size(), policies.size());
  EXPECT_EQ(report.runs[0].name, "round-robin @ 1 req/s");
  EXPECT_EQ(report.runs[2].name, "never-fast @ 1 req/s");
}

}  // namespace
}  // namespace infergate::cluster
