// The presets of `infergate simulate --workload` (cluster/workload_presets.h): each is the
// experiment it is documented as, its engine profile loads, and its workload draws.
#include "cluster/workload_presets.h"

#include <gtest/gtest.h>

#include <cmath>

#include "sim/engine/profile.h"

namespace infergate::cluster {
namespace {

TEST(WorkloadPresets, TheSeedPresetIsTheSeedsBenchmark) {
  // The seed experiment: --dataset-name random --random-prefix-len 1000 --random-input-len 4000
  // --random-output-len 3000 --random-range-ratio 0.2 --num-prompts 300 --max-concurrency
  // 30, rate inf, on three QwQ-32B TP2xPP2 groups.
  auto p = FindWorkloadPreset("seed");
  ASSERT_TRUE(p.ok()) << p.error().message;
  const WorkloadSpec& w = p->workload;
  EXPECT_EQ(w.dataset, DatasetKind::kRandom);
  EXPECT_EQ(w.num_prompts(), 300);
  EXPECT_EQ(w.random.prefix_len, 1000);
  EXPECT_EQ(w.random.input_len, 4000);
  EXPECT_EQ(w.random.output_len, 3000);
  EXPECT_EQ(w.random.range_ratio, 0.2);
  EXPECT_EQ(w.random.semantics, loadgen::RandomLengthSemantics::kV07);
  EXPECT_EQ(w.max_concurrency, 30);
  EXPECT_TRUE(std::isinf(w.request_rate));
  EXPECT_EQ(p->profile, "qwq-32b-tp2pp2");
  EXPECT_EQ(p->servers, 3);
  EXPECT_EQ(p->num_gpu_blocks, 0);  // the profile's own
  EXPECT_EQ(p->model_id, "qwq");
}

TEST(WorkloadPresets, SharedPrefixIsManyTenantsOnEightServersWithACutCache) {
  auto p = FindWorkloadPreset("shared-prefix");
  ASSERT_TRUE(p.ok()) << p.error().message;
  const WorkloadSpec& w = p->workload;
  EXPECT_EQ(w.dataset, DatasetKind::kSharedPrefix);
  EXPECT_EQ(w.num_prompts(), 3000);
  EXPECT_EQ(w.shared_prefix.tenants, 150);
  EXPECT_EQ(w.shared_prefix.prefix_len, 5500);
  EXPECT_EQ(w.shared_prefix.turns, 4);
  EXPECT_EQ(w.request_rate, 10);
  EXPECT_EQ(w.burstiness, 1.0);  // Poisson
  EXPECT_EQ(p->profile, "llama-3.1-70b-h100-tp8");
  EXPECT_EQ(p->servers, 8);
  EXPECT_EQ(p->num_gpu_blocks, 9000);
}

TEST(WorkloadPresets, RandomIsBenchmarkServingsDefaultsOnTheSeedsCluster) {
  auto p = FindWorkloadPreset("random");
  ASSERT_TRUE(p.ok()) << p.error().message;
  const loadgen::RandomDatasetOptions defaults;
  EXPECT_EQ(p->workload.num_prompts(), 1000);
  EXPECT_EQ(p->workload.random.input_len, defaults.input_len);
  EXPECT_EQ(p->workload.random.output_len, defaults.output_len);
  EXPECT_EQ(p->workload.random.range_ratio,
            loadgen::DefaultRangeRatio(loadgen::RandomLengthSemantics::kV07));
  EXPECT_EQ(p->profile, "qwq-32b-tp2pp2");
  EXPECT_EQ(p->servers, 3);
}

TEST(WorkloadPresets, EveryPresetsProfileLoadsAndItsWorkloadDraws) {
  for (const char* name : {"seed", "shared-prefix", "random"}) {
    SCOPED_TRACE(name);
    auto p = FindWorkloadPreset(name);
    ASSERT_TRUE(p.ok());
    auto profile = sim::LoadProfile(p->profile);
    EXPECT_TRUE(profile.ok()) << profile.error().message;
    WorkloadSpec small = p->workload;
    small.random.num_prompts = 20;
    small.shared_prefix.num_prompts = 20;
    auto drawn = SampleWorkload(small);
    ASSERT_TRUE(drawn.ok()) << drawn.error().message;
    EXPECT_EQ(drawn->size(), 20u);
  }
}

TEST(WorkloadPresets, AnUnknownNameListsTheChoices) {
  auto p = FindWorkloadPreset("sonnet");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("seed, shared-prefix or random"), std::string::npos);
  EXPECT_NE(p.error().message.find("'sonnet'"), std::string::npos);
}

}  // namespace
}  // namespace infergate::cluster
