#include "routing/weighted_chooser.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

namespace infergate::routing {
namespace {

using ::testing::ElementsAre;

// Reference smooth weighted round-robin, written plainly, to compare against.
std::vector<int> ReferenceSequence(const std::vector<std::uint32_t>& weights, std::size_t n) {
  std::int64_t total = 0;
  for (auto w : weights) total += w;
  std::vector<std::int64_t> current(weights.size(), 0);
  std::vector<int> out;
  for (std::size_t k = 0; k < n; ++k) {
    int best = -1;
    for (std::size_t i = 0; i < weights.size(); ++i) {
      if (weights[i] == 0) continue;
      current[i] += weights[i];
      if (best < 0 || current[i] > current[best]) best = static_cast<int>(i);
    }
    current[best] -= total;
    out.push_back(best);
  }
  return out;
}

std::vector<int> Picks(const WeightedChooser& c, std::size_t n) {
  std::vector<int> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back(c.Next());
  return out;
}

std::vector<int> Counts(const std::vector<int>& picks, std::size_t items) {
  std::vector<int> counts(items, 0);
  for (int p : picks) counts.at(static_cast<std::size_t>(p))++;
  return counts;
}

TEST(RoutingWeightedChooser, SmoothInterleaving) {
  EXPECT_THAT(Picks(WeightedChooser({5, 1, 1}), 7), ElementsAre(0, 0, 1, 0, 2, 0, 0));
  EXPECT_THAT(Picks(WeightedChooser({1, 1}), 4), ElementsAre(0, 1, 0, 1));
  EXPECT_THAT(Picks(WeightedChooser({2, 1}), 6), ElementsAre(0, 1, 0, 0, 1, 0));
}

TEST(RoutingWeightedChooser, ZeroWeightsAreNeverChosen) {
  EXPECT_THAT(Picks(WeightedChooser({0, 3, 0, 1}), 8), ElementsAre(1, 1, 3, 1, 1, 1, 3, 1));
  EXPECT_THAT(Picks(WeightedChooser({0, 7, 0}), 3), ElementsAre(1, 1, 1));
  EXPECT_EQ(WeightedChooser({0, 0}).Next(), -1);
  EXPECT_EQ(WeightedChooser({}).Next(), -1);
  EXPECT_EQ(WeightedChooser({0, 0}).period(), 0u);
}

TEST(RoutingWeightedChooser, ExactProportionsOverWholePeriods) {
  WeightedChooser c({3, 7});
  EXPECT_EQ(c.period(), 10u);
  EXPECT_THAT(Counts(Picks(c, 1000), 2), ElementsAre(300, 700));
  // Percent-style weights reduce by their gcd: period 10, not 100.
  WeightedChooser pct({90, 10});
  EXPECT_EQ(pct.period(), 10u);
  EXPECT_THAT(Counts(Picks(pct, 50), 2), ElementsAre(45, 5));
  WeightedChooser three({1, 2, 3});
  EXPECT_THAT(Counts(Picks(three, 600), 3), ElementsAre(100, 200, 300));
}

TEST(RoutingWeightedChooser, TableMatchesTheAlgorithm) {
  std::vector<std::uint32_t> weights = {2, 3, 5, 0, 7};
  EXPECT_EQ(Picks(WeightedChooser(weights), 51), ReferenceSequence(weights, 51));
}

TEST(RoutingWeightedChooser, LongPeriodsRunTheAlgorithmDirectly) {
  // Coprime weights whose period exceeds the table: the locked path, same sequence.
  std::vector<std::uint32_t> weights = {WeightedChooser::kMaxTableSize, 3};
  WeightedChooser c(weights);
  ASSERT_GT(c.period(), WeightedChooser::kMaxTableSize);
  auto picks = Picks(c, 2 * c.period());
  EXPECT_EQ(picks, ReferenceSequence(weights, picks.size()));
  EXPECT_THAT(Counts(picks, 2), ElementsAre(2 * 4096, 6));

  WeightedChooser big({1'000'000, 999'999});
  auto many = Picks(big, big.period());
  EXPECT_THAT(Counts(many, 2), ElementsAre(1'000'000, 999'999));
}

TEST(RoutingWeightedChooser, ConcurrentPicksKeepExactProportions) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 25'000;
  for (std::vector<std::uint32_t> weights :
       {std::vector<std::uint32_t>{1, 2, 3, 4}, std::vector<std::uint32_t>{4099, 1}}) {
    WeightedChooser c(weights);
    std::vector<std::vector<int>> counts(kThreads, std::vector<int>(weights.size(), 0));
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) counts[t][static_cast<std::size_t>(c.Next())]++;
      });
    }
    for (auto& t : threads) t.join();
    std::vector<int> total(weights.size(), 0);
    for (const auto& per : counts) {
      for (std::size_t i = 0; i < per.size(); ++i) total[i] += per[i];
    }
    const std::uint64_t picks = kThreads * kPerThread;
    // Every full period holds each item exactly weight times; the remainder is the start of
    // the sequence, the same whatever the interleaving.
    auto reference = Counts(ReferenceSequence(weights, picks), weights.size());
    EXPECT_EQ(total, reference);
  }
}

TEST(RoutingWeightedChooser, MovedChooserContinues) {
  WeightedChooser a({1, 1});
  EXPECT_EQ(a.Next(), 0);
  WeightedChooser b(std::move(a));
  EXPECT_EQ(b.Next(), 1);
  EXPECT_EQ(b.Next(), 0);
}

}  // namespace
}  // namespace infergate::routing
