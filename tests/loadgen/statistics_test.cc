#include "loadgen/statistics.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace infergate::loadgen {
namespace {

std::vector<double> Sorted(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST(BenchStatisticsTest, PercentilesMatchNumpyLinearInterpolation) {
  // np.percentile([1, 2, 3, 4, 10], 99) -> 9.76
  EXPECT_NEAR(PercentileOfSorted(Sorted({1, 2, 3, 4, 10}), 99), 9.76, 1e-12);
  // np.percentile([1.5, 2.5, 100.0, 7.0], [50, 90, 99]) -> [4.75, 72.1, 97.21]
  const auto b = Sorted({1.5, 2.5, 100.0, 7.0});
  EXPECT_NEAR(PercentileOfSorted(b, 50), 4.75, 1e-12);
  EXPECT_NEAR(PercentileOfSorted(b, 90), 72.1, 1e-12);
  EXPECT_NEAR(PercentileOfSorted(b, 99), 97.21, 1e-12);
  // np.percentile([0.12, 0.5, 0.33, 2.0, 1.1, 0.07, 0.9], [25, 50, 90, 99, 99.9])
  //   -> [0.225, 0.5, 1.46, 1.946, 1.9946]
  const auto c = Sorted({0.12, 0.5, 0.33, 2.0, 1.1, 0.07, 0.9});
  EXPECT_NEAR(PercentileOfSorted(c, 25), 0.225, 1e-12);
  EXPECT_NEAR(PercentileOfSorted(c, 50), 0.5, 1e-12);
  EXPECT_NEAR(PercentileOfSorted(c, 90), 1.46, 1e-12);
  EXPECT_NEAR(PercentileOfSorted(c, 99), 1.946, 1e-12);
  EXPECT_NEAR(PercentileOfSorted(c, 99.9), 1.9946, 1e-12);
  // np.percentile([10, 20, 30, 40], [1, 33.3, 50, 75, 99]) -> [10.3, 19.99, 25, 32.5, 39.7]
  const std::vector<double> d = {10, 20, 30, 40};
  EXPECT_NEAR(PercentileOfSorted(d, 1), 10.3, 1e-12);
  EXPECT_NEAR(PercentileOfSorted(d, 33.3), 19.99, 1e-12);
  EXPECT_NEAR(PercentileOfSorted(d, 50), 25.0, 1e-12);
  EXPECT_NEAR(PercentileOfSorted(d, 75), 32.5, 1e-12);
  EXPECT_NEAR(PercentileOfSorted(d, 99), 39.7, 1e-12);
  EXPECT_EQ(PercentileOfSorted(d, 100), 40.0);
}

TEST(BenchStatisticsTest, MeanMedianStdMatchNumpy) {
  // x = [0.12, 0.5, 0.33, 2.0, 1.1, 0.07, 0.9]
  // np.mean(x) -> 0.7171428571428573, np.median(x) -> 0.5, np.std(x) -> 0.6322457543373076
  const std::vector<double> x = {0.12, 0.5, 0.33, 2.0, 1.1, 0.07, 0.9};
  EXPECT_NEAR(Mean(x), 0.7171428571428573, 1e-15);
  EXPECT_NEAR(PopulationStd(x), 0.6322457543373076, 1e-15);
  EXPECT_EQ(MedianOfSorted(Sorted(x)), 0.5);
  // np.median([10, 20, 30, 40]) -> 25.0
  EXPECT_EQ(MedianOfSorted(std::vector<double>{10, 20, 30, 40}), 25.0);
}

TEST(BenchStatisticsTest, EmptySampleGivesZeros) {
  const std::vector<double> p = {50, 99};
  const MetricSummary s = Summarize({}, p, 1000);
  EXPECT_EQ(s.mean, 0);
  EXPECT_EQ(s.median, 0);
  EXPECT_EQ(s.std, 0);
  ASSERT_EQ(s.percentiles.size(), 2u);
  EXPECT_EQ(s.percentiles[1].second, 0);
}

TEST(BenchStatisticsTest, SummarizeScalesAndKeepsRequestedOrder) {
  const std::vector<double> p = {99, 50};
  const MetricSummary s = Summarize({0.004, 0.001, 0.003, 0.002}, p, 1000);
  EXPECT_NEAR(s.mean, 2.5, 1e-12);
  EXPECT_NEAR(s.median, 2.5, 1e-12);
  EXPECT_EQ(s.percentiles[0].first, 99);
  EXPECT_NEAR(s.percentiles[0].second, 3.97, 1e-12);  // np.percentile([1,2,3,4], 99)
  EXPECT_NEAR(s.At(50), 2.5, 1e-12);
  EXPECT_EQ(s.At(90), 0);
}

}  // namespace
}  // namespace infergate::loadgen
