#include "loadgen/statistics.h"

#include <algorithm>
#include <cmath>

namespace infergate::loadgen {

double Mean(std::span<const double> xs) {
  if (xs.empty()) return 0;
  double s = 0;
  for (double x : xs) s += x;
  return s / static_cast<double>(xs.size());
}

double PopulationStd(std::span<const double> xs) {
  if (xs.empty()) return 0;
  const double m = Mean(xs);
  double s = 0;
  for (double x : xs) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(xs.size()));
}

double PercentileOfSorted(std::span<const double> sorted, double p) {
  if (sorted.empty()) return 0;
  const double virtual_index = (p / 100.0) * static_cast<double>(sorted.size() - 1);
  const double below = std::floor(virtual_index);
  const std::size_t lo = static_cast<std::size_t>(below);
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  const double t = virtual_index - below;
  const double a = sorted[lo];
  const double b = sorted[hi];
  const double diff = b - a;
  // numpy's _lerp: interpolate from the nearer end for accuracy.
  return t >= 0.5 ? b - diff * (1.0 - t) : a + diff * t;
}

double MedianOfSorted(std::span<const double> sorted) {
  const std::size_t n = sorted.size();
  if (n == 0) return 0;
  if (n % 2 == 1) return sorted[n / 2];
  return (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0;
}

double MetricSummary::At(double p) const {
  for (const auto& [q, v] : percentiles) {
    if (q == p) return v;
  }
  return 0;
}

MetricSummary Summarize(std::vector<double> values, std::span<const double> percentiles,
                        double scale) {
  // Statistics on the raw values, then scaled, in benchmark_serving's order of operations.
  std::sort(values.begin(), values.end());
  MetricSummary s;
  s.mean = Mean(values) * scale;
  s.std = PopulationStd(values) * scale;
  s.median = MedianOfSorted(values) * scale;
  for (double p : percentiles) {
    s.percentiles.emplace_back(p, PercentileOfSorted(values, p) * scale);
  }
  return s;
}

}  // namespace infergate::loadgen
