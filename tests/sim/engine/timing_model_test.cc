#include "sim/engine/timing_model.h"

#include <gtest/gtest.h>

namespace infergate::sim {
namespace {

Profile Load(const char* name) {
  auto p = LoadProfile(name);
  EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.error().message);
  return *p;
}

TEST(SimTimingModel, LinearModeIsExact) {
  auto t = TimingModel::Create(Load("tiny"));
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->num_stages(), 1);
  EXPECT_EQ(t->StageTime(BatchShape::Prefill(100), 0), 20'000'000);
  EXPECT_EQ(t->StageTime(BatchShape::Prefill(100, 96), 0), 10'400'000);
  EXPECT_EQ(t->StageTime(BatchShape::Decode(3, 500), 0), 8'000'000);
  BatchShape mixed = BatchShape::Prefill(50);
  mixed.Add(1, 10, /*decode=*/true, /*samples=*/true);
  EXPECT_EQ(t->StageTime(mixed, 0), 10'000'000 + 5'000'000 + 1'000'000);
}

TEST(SimTimingModel, LinearContextCoefficient) {
  Profile p = Load("tiny");
  p.timing.linear.decode_per_context_token_us = 2;
  auto t = TimingModel::Create(p);
  ASSERT_TRUE(t.ok());
  // 2 sequences attending to 100 tokens each: 5 + 2 + 0.4 ms.
  EXPECT_EQ(t->StageTime(BatchShape::Decode(2, 100), 0), 7'400'000);
}

// The seed profile reproduces the step costs that an independent discrete-event model of the
// seed experiment fitted to its round-robin row, per pipeline stage: prefill ≈ 10 ms +
// 0.27 ms/token; decode ≈ 45 ms + 0.6 ms/sequence, which the profile raises by ~4 ms so that
// a token every two micro-batches matches the seed's median inter-token latency (103.1 ms).
TEST(SimTimingModel, SeedProfileMatchesTheReferenceStepCosts) {
  auto t = TimingModel::Create(Load("qwq-32b-tp2pp2"));
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(t->num_stages(), 2);
  for (int n : {1800, 3400, 5000}) {
    const double ref_ms = 10 + 0.27 * n;
    for (int s = 0; s < 2; ++s) {
      EXPECT_NEAR(ToMillis(t->StageTime(BatchShape::Prefill(n), s)), ref_ms, 0.05 * ref_ms) << n;
    }
  }
  for (int k : {1, 5, 10}) {
    const double ref_ms = 45 + 0.6 * k;
    for (int s = 0; s < 2; ++s) {
      EXPECT_NEAR(ToMillis(t->StageTime(BatchShape::Decode(k, 4500), s)), ref_ms, 0.1 * ref_ms)
          << k;
    }
  }
  // Both virtual engines decoding 5 sequences: the slower stage serves two micro-batches
  // per token.
  EXPECT_NEAR(2 * ToMillis(t->StageTime(BatchShape::Decode(5, 4500), 1)), 103.1, 3.0);
  // A 3,400-token prompt alone on an idle group: ~1.85 s through both stages.
  EXPECT_NEAR(ToSeconds(t->StepLatency(BatchShape::Prefill(3400))), 1.85, 0.05);
}

TEST(SimTimingModel, RooflineBehavesPhysically) {
  Profile p = Load("llama-3.1-8b-h100");
  auto t = TimingModel::Create(p);
  ASSERT_TRUE(t.ok());
  auto ms = [&](const BatchShape& b) { return ToMillis(t->StageTime(b, 0)); };
  // Decode is memory-bound: weights (16 GB) over ~2.7 TB/s effective, plus overhead.
  const double one = ms(BatchShape::Decode(1, 1000));
  EXPECT_GT(one, 6.0);
  EXPECT_LT(one, 9.0);
  // More context means more KV reads; more sequences cost little until compute-bound.
  EXPECT_GT(ms(BatchShape::Decode(32, 8000)), ms(BatchShape::Decode(32, 1000)));
  EXPECT_LT(ms(BatchShape::Decode(8, 1000)), 1.2 * one);
  // Prefill is compute-bound and grows with tokens; cached tokens are not recomputed.
  EXPECT_GT(ms(BatchShape::Prefill(4000)), 3.5 * ms(BatchShape::Prefill(1000)));
  EXPECT_LT(ms(BatchShape::Prefill(4000, 3000)), ms(BatchShape::Prefill(4000)) / 2);
  // Eager mode adds launch overhead to decode steps.
  Profile eager = p;
  eager.engine.enforce_eager = true;
  auto te = TimingModel::Create(eager);
  ASSERT_TRUE(te.ok());
  EXPECT_GT(te->StageTime(BatchShape::Decode(1, 1000), 0),
            t->StageTime(BatchShape::Decode(1, 1000), 0));
}

TEST(SimTimingModel, TensorParallelSplitsWorkAndAddsAllReduce) {
  Profile p = Load("llama-3.1-70b-h100-tp8");
  auto tp8 = TimingModel::Create(p);
  p.parallel.tensor = 4;
  auto tp4 = TimingModel::Create(p);
  ASSERT_TRUE(tp8.ok() && tp4.ok());
  const BatchShape prefill = BatchShape::Prefill(4000);
  const double t8 = ToMillis(tp8->StageTime(prefill, 0));
  const double t4 = ToMillis(tp4->StageTime(prefill, 0));
  // Half the GPUs: twice the matmul work each, but cheaper all-reduces (2·(tp−1)/tp of the
  // bytes), so less than twice the time.
  EXPECT_GT(t4, 1.3 * t8);
  EXPECT_LT(t4, 2.0 * t8);
}

}  // namespace
}  // namespace infergate::sim
