// The reports of `infergate simulate` beyond each run's benchmark_serving table: the mean
// over seeds of each policy's ratios to the first policy, and for a rate sweep its rows,
// the mean over seeds per (rate, policy), each policy's SLO capacity and saturation rate,
// the knee of one policy, and the HTML report's sweep charts.
//
// Text tables are fixed-width for a terminal, or Markdown where the options ask for it.
//
// Thread-safety: pure functions of their arguments.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "cluster/experiment.h"
#include "loadgen/html_report.h"

namespace infergate::cluster {

// A request rate as it is printed and used in file names: "10", "2.5", "inf".
std::string RateWord(double rate);

// The TTFT percentile `p` of a run's completed requests, in ms (whatever percentiles its
// table was asked for); 0 when none completed.
double TtftPercentileMs(const loadgen::BenchmarkResult& result, double p);

// Several seeds of one experiment: `per_seed[s][p]` is policy p's run on seed s, every seed
// with the same policies in the same order. A table of each policy's mean TTFT, P99 TTFT,
// output throughput and mean TPOT as ratios to the first policy (each seed's ratio, then
// the mean over seeds) and its mean TTFT over the idle-engine floor.
std::string FormatSeedRatios(std::span<const std::vector<PolicyRun>> per_seed);

struct SweepReportOptions {
  double slo_ttft_ms = 300;    // the SLO on the TTFT percentile
  double slo_percentile = 90;  // which percentile
  std::string knee_of;         // the policy whose knee is reported; empty: gie-default when swept,
                               // else the first policy
  double knee_factor = 5;
  bool markdown = false;
};

// The sweep's per-run lines as the runs finish: the header, then one row per run (its
// rate, policy, seed, TTFT percentile, mean TTFT, output throughput, TTFT over the floor
// and failed requests).
std::string FormatSweepRunHeader(const SweepReportOptions& options);
std::string FormatSweepRunRow(const PolicyRun& run, const SweepReportOptions& options);

// The mean over seeds at each (rate, policy) (AverageSweep's points), marking where the
// SLO is met.
std::string FormatSweepMeans(std::span<const SweepPoint> points, const SweepReportOptions& options);

// Each policy's SLO capacity and saturation rate (SaturationOf), each capacity also as a
// ratio to the first policy's capacity and to its saturation rate (the baseline may never
// meet the SLO at all, so capacities are compared with the rate at which it saturates).
std::string FormatCapacities(std::span<const SweepPoint> points,
                             std::span<const PolicySpec> policies,
                             const SweepReportOptions& options);

// The knee (KneeOf) of options.knee_of, and every policy's percentile and output there
// with their ratios to that policy's.
std::string FormatKnee(std::span<const SweepPoint> points, std::span<const PolicySpec> policies,
                       const SweepReportOptions& options);

// The HTML report of a sweep: the TTFT percentile, output throughput and TTFT over the
// floor against the rate per policy (with the SLO as a line), and as a sample of the
// distributions the runs of the first seed at the highest rate where the first policy
// meets the SLO (else the lowest rate). `runs` are all runs of the sweep; `rates` its
// grid, ascending.
loadgen::HtmlReport SweepHtmlReport(const std::string& workload_name,
                                    std::span<const SweepPoint> points,
                                    std::span<const PolicyRun> runs,
                                    std::span<const PolicySpec> policies,
                                    std::span<const double> rates,
                                    std::span<const std::uint32_t> seeds,
                                    const SweepReportOptions& options);

}  // namespace infergate::cluster
