// Summary statistics with numpy's definitions, so our numbers match benchmark_serving's.
//
// Percentile uses numpy's default "linear" method (virtual index p/100·(n−1) with numpy's
// two-sided lerp); Median averages the two middle values; Std is the population standard
// deviation (numpy's ddof=0). An empty sample gives 0 for every statistic, as
// benchmark_serving's `np.mean(xs or 0)` does.
//
// Thread-safety: pure functions.
#pragma once

#include <span>
#include <utility>
#include <vector>

namespace infergate::loadgen {

double Mean(std::span<const double> xs);
double PopulationStd(std::span<const double> xs);
// Requires `sorted` ascending; p in [0, 100].
double PercentileOfSorted(std::span<const double> sorted, double p);
double MedianOfSorted(std::span<const double> sorted);

// Mean, median, std and the requested percentiles of one metric (values in any order).
struct MetricSummary {
  double mean = 0;
  double median = 0;
  double std = 0;
  // (percentile, value) in the order requested.
  std::vector<std::pair<double, double>> percentiles;

  // The value for percentile p, or 0 if p was not requested.
  double At(double p) const;
};

// Summarises `values` multiplied by `scale` (e.g. 1000 for seconds → ms).
MetricSummary Summarize(std::vector<double> values, std::span<const double> percentiles,
                        double scale);

}  // namespace infergate::loadgen
