#include "cluster/experiment_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "loadgen/statistics.h"

namespace infergate::cluster {

std::string RateWord(double rate) {
  if (std::isinf(rate)) return "inf";
  return fmt::format("{:g}", rate);
}

double TtftPercentileMs(const loadgen::BenchmarkResult& r, double p) {
  std::vector<double> ttfts;
  for (const loadgen::RequestOutcome& o : r.requests) {
    if (o.success) ttfts.push_back(o.ttft * 1e3);
  }
  if (ttfts.empty()) return 0;
  std::sort(ttfts.begin(), ttfts.end());
  return loadgen::PercentileOfSorted(ttfts, p);
}

std::string FormatSeedRatios(std::span<const std::vector<PolicyRun>> per_seed) {
  if (per_seed.empty() || per_seed.front().empty()) return "";
  const std::vector<PolicyRun>& first = per_seed.front();
  std::string out = fmt::format("Mean over {} seeds of each seed's ratio to {}:\n", per_seed.size(),
                                first.front().policy.name);
  out += fmt::format("{:<22} {:>10} {:>10} {:>10} {:>10} {:>10}\n", "policy", "mean TTFT",
                     "P99 TTFT", "out tok/s", "mean TPOT", "TTFT/floor");
  for (std::size_t p = 0; p < first.size(); ++p) {
    double ttft = 0, p99 = 0, output = 0, tpot = 0, floor = 0;
    for (const std::vector<PolicyRun>& runs : per_seed) {
      const loadgen::BenchmarkResult& base = runs.front().result;
      const loadgen::BenchmarkResult& r = runs[p].result;
      ttft += r.ttft_ms.mean / base.ttft_ms.mean;
      p99 += TtftPercentileMs(r, 99) / std::max(1e-9, TtftPercentileMs(base, 99));
      output += r.output_throughput / base.output_throughput;
      tpot += r.tpot_ms.mean / std::max(1e-9, base.tpot_ms.mean);
      floor += runs[p].ttft_over_floor;
    }
    const double n = static_cast<double>(per_seed.size());
    out += fmt::format("{:<22} {:>9.3f}x {:>9.3f}x {:>9.3f}x {:>9.3f}x {:>10.3f}\n",
                       first[p].policy.name, ttft / n, p99 / n, output / n, tpot / n, floor / n);
  }
  return out;
}

std::string FormatSweepRunHeader(const SweepReportOptions& o) {
  return fmt::format("{:>8} {:<22} {:>6} {:>12} {:>12} {:>12} {:>10} {:>7}\n", "rate", "policy",
                     "seed", fmt::format("P{:g} TTFT", o.slo_percentile), "mean TTFT", "out tok/s",
                     "TTFT/floor", "failed");
}

std::string FormatSweepRunRow(const PolicyRun& r, const SweepReportOptions& o) {
  const std::vector<SweepPoint> points = AverageSweep(std::span(&r, 1), o.slo_percentile);
  return fmt::format("{:>8} {:<22} {:>6} {:>12.2f} {:>12.2f} {:>12.2f} {:>10.3f} {:>7}\n",
                     RateWord(r.result.info.request_rate), r.policy.name, r.workload_seed,
                     points[0].slo_ttft_ms, r.result.ttft_ms.mean, r.result.output_throughput,
                     r.ttft_over_floor, r.result.failed);
}

std::string FormatSweepMeans(std::span<const SweepPoint> points, const SweepReportOptions& o) {
  std::string out =
      fmt::format("\nMean over seeds (P{:g} TTFT SLO {:g} ms):\n", o.slo_percentile, o.slo_ttft_ms);
  out += fmt::format("{:>8} {:<22} {:>12} {:>12} {:>10} {:>12} {:>10} {:>5}\n", "rate", "policy",
                     fmt::format("P{:g} TTFT", o.slo_percentile), "mean TTFT", "done req/s",
                     "out tok/s", "TTFT/floor", "SLO");
  for (const SweepPoint& p : points) {
    const bool met = p.slo_ttft_ms <= o.slo_ttft_ms && p.failed == 0;
    out +=
        fmt::format("{:>8} {:<22} {:>12.2f} {:>12.2f} {:>10.2f} {:>12.2f} {:>10.3f} {:>5}\n",
                    RateWord(p.rate), p.policy, p.slo_ttft_ms, p.mean_ttft_ms, p.request_throughput,
                    p.output_throughput, p.ttft_over_floor, met ? "met" : "-");
  }
  return out;
}

std::string FormatCapacities(std::span<const SweepPoint> points,
                             std::span<const PolicySpec> policies, const SweepReportOptions& o) {
  const std::string& base_name = policies.front().name;
  const double base_capacity = SloCapacity(points, base_name, o.slo_ttft_ms);
  const Saturation base_saturation = SaturationOf(points, base_name);
  auto ratio = [](double a, double b) { return b > 0 ? fmt::format("{:.2f}x", a / b) : "-"; };
  struct Row {
    std::string policy, capacity, saturation, at, vs_capacity, vs_saturation;
  };
  std::vector<Row> rows;
  for (const PolicySpec& p : policies) {
    const double c = SloCapacity(points, p.name, o.slo_ttft_ms);
    const Saturation s = SaturationOf(points, p.name);
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
      o.slo_percentile, o.slo_ttft_ms, 100 * kSaturatedFraction, 100 * kPlateauFraction);
  if (o.markdown) {
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

std::string FormatKnee(std::span<const SweepPoint> points, std::span<const PolicySpec> policies,
                       const SweepReportOptions& o) {
  std::string of = o.knee_of;
  if (of.empty()) {
    of = policies.front().name;
    for (const PolicySpec& p : policies) {
      if (p.name == "gie-default") of = p.name;
    }
  }
  const Knee k = KneeOf(points, of, o.knee_factor);
  std::string out = fmt::format(
      "\nKnee of {}: light-load P{:g} TTFT {:.2f} ms (the median over its five lowest rates); ", of,
      o.slo_percentile, k.light_ms);
  if (k.rate <= 0) {
    return out + fmt::format("no rate of the sweep is over {:g}x that.\n", o.knee_factor);
  }
  out += fmt::format("first rate over {:g}x: {} req/s ({:.2f} ms).\n", o.knee_factor,
                     RateWord(k.rate), k.slo_ttft_ms);
  const SweepPoint* base = nullptr;
  for (const SweepPoint& p : points) {
    if (p.policy == of && p.rate == k.rate) base = &p;
  }
  const std::string pct = fmt::format("P{:g} TTFT", o.slo_percentile);
  if (o.markdown) {
    out += fmt::format(
        "\n| policy at {} req/s | {} (ms) | / {}'s | output (tok/s) | / {}'s |\n"
        "|---|---|---|---|---|\n",
        RateWord(k.rate), pct, of, of);
  } else {
    out += fmt::format("{:<22} {:>12} {:>12} {:>12} {:>12}\n", "policy", pct, "/ " + of,
                       "out tok/s", "/ " + of);
  }
  for (const PolicySpec& spec : policies) {
    for (const SweepPoint& p : points) {
      if (p.policy != spec.name || p.rate != k.rate) continue;
      const std::string r_ttft =
          base->slo_ttft_ms > 0 ? fmt::format("{:.2f}x", p.slo_ttft_ms / base->slo_ttft_ms) : "-";
      const std::string r_out =
          base->output_throughput > 0
              ? fmt::format("{:.2f}x", p.output_throughput / base->output_throughput)
              : "-";
      out += o.markdown ? fmt::format("| {} | {:.2f} | {} | {:.0f} | {} |\n", p.policy,
                                      p.slo_ttft_ms, r_ttft, p.output_throughput, r_out)
                        : fmt::format("{:<22} {:>12.2f} {:>12} {:>12.0f} {:>12}\n", p.policy,
                                      p.slo_ttft_ms, r_ttft, p.output_throughput, r_out);
    }
  }
  return out;
}

loadgen::HtmlReport SweepHtmlReport(const std::string& workload_name,
                                    std::span<const SweepPoint> points,
                                    std::span<const PolicyRun> runs,
                                    std::span<const PolicySpec> policies,
                                    std::span<const double> rates,
                                    std::span<const std::uint32_t> seeds,
                                    const SweepReportOptions& o) {
  loadgen::HtmlReport report;
  report.title = fmt::format("infergate simulate: {} workload, rate sweep", workload_name);
  loadgen::SweepChart slo{fmt::format("P{:g} TTFT vs request rate (mean over {} seeds)",
                                      o.slo_percentile, seeds.size()),
                          "request rate (req/s)",
                          fmt::format("P{:g} TTFT (ms)", o.slo_percentile),
                          {},
                          true};
  loadgen::SweepChart tput{
      "Output throughput vs request rate", "request rate (req/s)", "output tokens/s", {}, false};
  loadgen::SweepChart floor{"Mean TTFT over the idle-engine floor",
                            "request rate (req/s)",
                            "mean TTFT / floor",
                            {},
                            true};
  for (const PolicySpec& p : policies) {
    loadgen::SweepSeries a{p.name, {}}, b{p.name, {}}, c{p.name, {}};
    for (const SweepPoint& pt : points) {
      if (pt.policy != p.name) continue;
      a.points.emplace_back(pt.rate, pt.slo_ttft_ms);
      b.points.emplace_back(pt.rate, pt.output_throughput);
      c.points.emplace_back(pt.rate, pt.ttft_over_floor);
    }
    slo.series.push_back(std::move(a));
    tput.series.push_back(std::move(b));
    floor.series.push_back(std::move(c));
  }
  loadgen::SweepSeries line{fmt::format("SLO {:g} ms", o.slo_ttft_ms), {}};
  line.points = {{rates.front(), o.slo_ttft_ms}, {rates.back(), o.slo_ttft_ms}};
  slo.series.push_back(std::move(line));
  report.sweeps = {std::move(slo), std::move(tput), std::move(floor)};
  const double capacity = SloCapacity(points, policies.front().name, o.slo_ttft_ms);
  const double sample_rate = capacity > 0 ? capacity : rates.front();
  for (const PolicyRun& r : runs) {
    if (r.result.info.request_rate == sample_rate && r.workload_seed == seeds.front()) {
      report.runs.push_back(
          {fmt::format("{} @ {} req/s", r.policy.name, RateWord(sample_rate)), r.result});
    }
  }
  return report;
}

}  // namespace infergate::cluster
