#include "loadgen/arrivals.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "loadgen/dataset.h"
#include "loadgen/statistics.h"

namespace infergate::loadgen {
namespace {

std::vector<double> Gaps(const std::vector<double>& offsets) {
  std::vector<double> gaps;
  for (std::size_t i = 1; i < offsets.size(); ++i) gaps.push_back(offsets[i] - offsets[i - 1]);
  return gaps;
}

TEST(BenchArrivalsTest, InfiniteRateSendsEverythingAtOnce) {
  NumpyRandomState rng(0);
  auto offs = ArrivalOffsets(5, std::numeric_limits<double>::infinity(), 1.0, rng);
  ASSERT_TRUE(offs.ok());
  EXPECT_EQ(*offs, std::vector<double>(5, 0.0));
}

TEST(BenchArrivalsTest, GapsContinueTheDatasetsNumpyStream) {
  // np.random.seed(0); np.random.randint(0, 151643, 1000); np.random.randint(800, 4001, 300)
  // np.random.randint(600, 3001, 300); np.random.randint(0, 151643, 300)
  // np.random.gamma(1.0, 1/5.0, size=3) -> [0.20464416, 0.23336644, 0.00867641]
  RandomDatasetOptions o;
  o.num_prompts = 300;
  o.prefix_len = 1000;
  o.input_len = 4000;
  o.output_len = 3000;
  o.range_ratio = 0.2;
  NumpyRandomState rng(0);
  ASSERT_TRUE(SampleRandom(o, rng).ok());
  auto offs = ArrivalOffsets(4, 5.0, 1.0, rng);
  ASSERT_TRUE(offs.ok());
  EXPECT_NEAR((*offs)[1], 0.20464416, 1e-8);
  EXPECT_NEAR((*offs)[2] - (*offs)[1], 0.23336644, 1e-8);
  EXPECT_NEAR((*offs)[3] - (*offs)[2], 0.00867641, 1e-8);
}

TEST(BenchArrivalsTest, PoissonGapsMatchNumpy) {
  // np.random.seed(7); np.random.gamma(1.0, 0.25, size=3)
  //   -> [0.01984423, 0.37843967, 0.14424547]
  NumpyRandomState rng(7);
  auto offs = ArrivalOffsets(4, 4.0, 1.0, rng);
  ASSERT_TRUE(offs.ok());
  EXPECT_EQ((*offs)[0], 0.0);
  EXPECT_NEAR((*offs)[1], 0.01984423, 1e-8);
  EXPECT_NEAR((*offs)[2], 0.01984423 + 0.37843967, 1e-8);
  EXPECT_NEAR((*offs)[3], 0.01984423 + 0.37843967 + 0.14424547, 1e-8);
}

TEST(BenchArrivalsTest, MeanGapIsOneOverRateForEveryBurstiness) {
  for (double b : {0.25, 1.0, 4.0}) {
    NumpyRandomState rng(11);
    auto offs = ArrivalOffsets(40001, 10.0, b, rng);
    ASSERT_TRUE(offs.ok());
    const auto gaps = Gaps(*offs);
    const double mean = Mean(gaps);
    EXPECT_NEAR(mean, 0.1, 0.004) << "burstiness " << b;
    // Gamma(k, θ) has CV 1/sqrt(k): burstier traffic for k < 1.
    EXPECT_NEAR(PopulationStd(gaps) / mean, 1.0 / std::sqrt(b), 0.05) << "burstiness " << b;
  }
}

TEST(BenchArrivalsTest, RejectsNonPositiveRateOrBurstiness) {
  NumpyRandomState rng(0);
  EXPECT_FALSE(ArrivalOffsets(3, 0.0, 1.0, rng).ok());
  EXPECT_FALSE(ArrivalOffsets(3, -1.0, 1.0, rng).ok());
  EXPECT_FALSE(ArrivalOffsets(3, 1.0, 0.0, rng).ok());
  EXPECT_FALSE(ArrivalOffsets(3, std::nan(""), 1.0, rng).ok());
}

}  // namespace
}  // namespace infergate::loadgen
