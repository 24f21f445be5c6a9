#include "cluster/workload.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "seed_workload.h"

namespace infergate::cluster {
namespace {

std::vector<WorkloadRequest> Blank(std::size_t n) { return std::vector<WorkloadRequest>(n); }

struct GapStats {
  double mean = 0;
  double cv = 0;  // coefficient of variation
};

GapStats Gaps(const std::vector<TimeNs>& t) {
  std::vector<double> g;
  for (std::size_t i = 1; i < t.size(); ++i) g.push_back(ToSeconds(t[i] - t[i - 1]));
  const double mean = std::accumulate(g.begin(), g.end(), 0.0) / static_cast<double>(g.size());
  double var = 0;
  for (double x : g) var += (x - mean) * (x - mean);
  var /= static_cast<double>(g.size());
  return {mean, std::sqrt(var) / mean};
}

TEST(ClusterWorkload, InfiniteRateMakesEverythingReadyAtOnce) {
  const auto t = ReadyTimes(ArrivalProcess{}, Blank(50), 1);
  ASSERT_EQ(t.size(), 50u);
  for (TimeNs x : t) EXPECT_EQ(x, 0);
}

TEST(ClusterWorkload, PoissonArrivalsHaveTheRequestedRate) {
  ArrivalProcess p;
  p.rate = 10;
  const auto t = ReadyTimes(p, Blank(20000), 3);
  EXPECT_EQ(t[0], 0);  // the first request goes at once
  const GapStats s = Gaps(t);
  EXPECT_NEAR(s.mean, 0.1, 0.004);
  EXPECT_NEAR(s.cv, 1.0, 0.04);  // exponential gaps
}

TEST(ClusterWorkload, BurstinessShapesTheGaps) {
  ArrivalProcess p;
  p.rate = 4;
  p.burstiness = 0.25;  // gamma shape 0.25: CV 2
  GapStats s = Gaps(ReadyTimes(p, Blank(40000), 5));
  EXPECT_NEAR(s.mean, 0.25, 0.015);
  EXPECT_NEAR(s.cv, 2.0, 0.15);
  p.burstiness = 4;  // CV 0.5
  s = Gaps(ReadyTimes(p, Blank(40000), 5));
  EXPECT_NEAR(s.mean, 0.25, 0.01);
  EXPECT_NEAR(s.cv, 0.5, 0.03);
}

TEST(ClusterWorkload, ExplicitArrivalsAreKeptAndDeterministic) {
  ArrivalProcess p;
  p.rate = 2;
  auto w = Blank(4);
  w[1].arrival = 123;
  const auto a = ReadyTimes(p, w, 9);
  EXPECT_EQ(a[1], 123);
  EXPECT_EQ(a[0], 0);
  EXPECT_EQ(a, ReadyTimes(p, w, 9));
  EXPECT_NE(a, ReadyTimes(p, w, 10));
}

TEST(ClusterWorkload, InvalidProcessesAreRejected) {
  EXPECT_FALSE(ValidateArrivalProcess({0, 1}).ok());
  EXPECT_FALSE(ValidateArrivalProcess({1, 0}).ok());
  EXPECT_FALSE(ValidateArrivalProcess({1, -1}).ok());
  EXPECT_TRUE(ValidateArrivalProcess({1, 1}).ok());
}

// WorkloadRng is the core's xoshiro256** (scheduler/random.h) seeded its own way. These
// are the first draws of the generator cluster/workload.cc had of its own before, for two
// seeds: workloads (and arrival times) draw as they did.
TEST(ClusterWorkload, WorkloadRngDrawsAsItAlwaysHas) {
  WorkloadRng one(1);
  EXPECT_EQ(one.Next(), 14233695028433725123ULL);
  EXPECT_EQ(one.Next(), 151843346328975388ULL);
  EXPECT_EQ(one.Next(), 2778140871569557710ULL);
  EXPECT_EQ(one.Next(), 16164111194036829938ULL);
  WorkloadRng answer(42);
  EXPECT_EQ(answer.Next(), 6667968346354703667ULL);
  EXPECT_EQ(answer.Next(), 16249806489848801414ULL);
}

TEST(ClusterWorkload, RngUniformIntCoversItsBoundsEvenly) {
  WorkloadRng rng(1);
  std::vector<int> counts(5);
  for (int i = 0; i < 50000; ++i) ++counts[static_cast<std::size_t>(rng.UniformInt(0, 4))];
  for (int c : counts) EXPECT_NEAR(c, 10000, 400);
}

TEST(ClusterWorkload, RandomDatasetFollowsVllm072) {
  RandomDatasetOptions o;
  const auto w = MakeRandomDataset(o);
  ASSERT_EQ(w.size(), 300u);
  std::int64_t in = 0, out = 0;
  for (const auto& r : w) {
    const auto n = static_cast<std::int64_t>(r.prompt_tokens.size());
    EXPECT_GE(n, 1000 + 800);
    EXPECT_LE(n, 1000 + 4000);
    EXPECT_GE(*r.max_tokens, 600);
    EXPECT_LE(*r.max_tokens, 3000);
    // The first 1,000 tokens are shared.
    EXPECT_TRUE(std::equal(r.prompt_tokens.begin(), r.prompt_tokens.begin() + 1000,
                           w[0].prompt_tokens.begin()));
    in += n;
    out += *r.max_tokens;
  }
  // Means of 3,400 and 1,800 tokens, within a few standard errors.
  EXPECT_NEAR(static_cast<double>(in) / 300, 3400, 160);
  EXPECT_NEAR(static_cast<double>(out) / 300, 1800, 120);
}

TEST(ClusterWorkload, PercentileInterpolatesLikeNumpy) {
  EXPECT_DOUBLE_EQ(Percentile({1, 2, 3, 4}, 50), 2.5);
  EXPECT_DOUBLE_EQ(Percentile({1, 2, 3, 4}, 99), 3.97);
  EXPECT_DOUBLE_EQ(Percentile({7}, 99), 7);
}

}  // namespace
}  // namespace infergate::cluster
