#include "sim/engine/output_model.h"

#include <gtest/gtest.h>

#include <set>

namespace infergate::sim {
namespace {

TEST(SimOutputModel, PieceKeysDependOnSeedRequestAndPosition) {
  EXPECT_EQ(OutputPieceKey(1, 2, 3), OutputPieceKey(1, 2, 3));
  std::set<std::uint64_t> keys;
  for (std::uint64_t seed : {0u, 1u}) {
    for (RequestId id : {0u, 1u, 2u}) {
      for (int i = 0; i < 3; ++i) keys.insert(OutputPieceKey(seed, id, i));
    }
  }
  EXPECT_EQ(keys.size(), 18u);
}

TEST(SimOutputModel, TokenIdsMatchTheTokenizer) {
  const std::uint64_t key = OutputPieceKey(3, 4, 5);
  EXPECT_EQ(OutputTokenId(key, false), Tokenizer::IdOf(Tokenizer::Word(key)));
  EXPECT_EQ(OutputTokenId(key, true), Tokenizer::IdOf(kEosPiece));
  std::string text;
  AppendOutputText(key, true, text);
  EXPECT_TRUE(text.empty());
  AppendOutputText(key, false, text);
  EXPECT_EQ(text, Tokenizer::Word(key));
}

TEST(SimOutputModel, NoneRunsToMaxTokens) {
  const EosSpec none;
  const OutputPlan plan = PlanOutput(none, 1, 2, 300, 0, false);
  EXPECT_EQ(plan.length, 300);
  EXPECT_EQ(plan.reason, FinishReason::kLength);
}

TEST(SimOutputModel, UniformLengthsStayInTheirRangeAndDependOnlyOnSeedAndId) {
  EosSpec eos;
  eos.model = EosModel::kUniform;
  eos.min_fraction = 0.5;
  eos.max_fraction = 1.0;
  int shortest = 1000, longest = 0;
  for (RequestId id = 0; id < 2000; ++id) {
    const OutputPlan p = PlanOutput(eos, 9, id, 1000, 0, false);
    EXPECT_EQ(p.reason, FinishReason::kStop);
    shortest = std::min(shortest, p.length);
    longest = std::max(longest, p.length);
    EXPECT_EQ(p.length, PlanOutput(eos, 9, id, 1000, 0, false).length);
  }
  EXPECT_GE(shortest, 500);
  EXPECT_LT(shortest, 510);
  EXPECT_LE(longest, 1000);
  EXPECT_GT(longest, 990);
}

TEST(SimOutputModel, GeometricHasTheRequestedMean) {
  EosSpec eos;
  eos.model = EosModel::kGeometric;
  eos.mean_tokens = 50;
  double sum = 0;
  const int n = 20000;
  for (RequestId id = 0; id < n; ++id) {
    const OutputPlan p = PlanOutput(eos, 1, id, 1'000'000, 0, false);
    ASSERT_GE(p.length, 1);
    sum += p.length;
  }
  EXPECT_NEAR(sum / n, 50.0, 1.5);
}

TEST(SimOutputModel, MinTokensAndIgnoreEos) {
  EosSpec eos;
  eos.model = EosModel::kUniform;
  eos.min_fraction = 0.1;
  eos.max_fraction = 0.1;
  EXPECT_EQ(PlanOutput(eos, 1, 1, 100, 0, false).length, 10);
  EXPECT_EQ(PlanOutput(eos, 1, 1, 100, 30, false).length, 30);
  EXPECT_EQ(PlanOutput(eos, 1, 1, 100, 30, false).reason, FinishReason::kStop);
  EXPECT_EQ(PlanOutput(eos, 1, 1, 100, 0, true).length, 100);
  EXPECT_EQ(PlanOutput(eos, 1, 1, 100, 0, true).reason, FinishReason::kLength);
  EXPECT_STREQ(ToString(FinishReason::kStop), "stop");
  EXPECT_STREQ(ToString(FinishReason::kLength), "length");
  EXPECT_STREQ(ToString(FinishReason::kAbort), "abort");
}

}  // namespace
}  // namespace infergate::sim
