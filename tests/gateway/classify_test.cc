// Classify on its own: from the body's model, the objective and fairness headers and the
// pool's InferenceModels / InferenceObjectives / InferenceModelRewrites to the request's
// target model, criticality, priority and flow.
#include "gateway/classify.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

namespace infergate::gateway {
namespace {

config::PoolInfo Pool() {
  config::PoolInfo p;
  config::ModelRoute chat;
  chat.object = "default/chat";
  chat.model_name = "chat";
  chat.criticality = config::Criticality::kCritical;
  chat.targets = {{"chat", 1}, {"chat-lora", 3}};
  p.models.push_back(chat);
  config::ModelRoute batch;
  batch.model_name = "batch";
  batch.criticality = config::Criticality::kSheddable;
  batch.targets = {{"batch", 1}};
  p.models.push_back(batch);
  std::sort(p.models.begin(), p.models.end(),
            [](const auto& a, const auto& b) { return a.model_name < b.model_name; });
  p.objectives = {{"default/bulk", "bulk", -5}, {"default/urgent", "urgent", 10}};
  p.rewrites.push_back({"default/canary", 0, {"qwen"}, {{"qwen-v1", 9}, {"qwen-v2", 1}}, 10});
  p.rewrites.push_back({"default/fallback", 0, {}, {{"base", 1}}, 1});
  p.rewrites.push_back({"default/alias", 0, {"q"}, {{"qwen-v1", 1}}, 1});
  return p;
}

// A chooser that returns the heaviest target (deterministic) and counts its calls.
struct Heaviest {
  int calls = 0;
  ChooseTarget fn() {
    return [this](const void*, std::span<const std::uint32_t> w) {
      ++calls;
      return static_cast<std::size_t>(std::max_element(w.begin(), w.end()) - w.begin());
    };
  }
};

TEST(Classify, AnInferenceModelPicksATargetAndSetsTheCriticality) {
  const auto pool = Pool();
  Heaviest h;
  RequestClass c = Classify({"chat", std::nullopt, std::nullopt}, pool, h.fn());
  EXPECT_EQ(c.target, "chat-lora");
  EXPECT_TRUE(c.lora);
  EXPECT_TRUE(c.known());
  EXPECT_EQ(c.criticality, Criticality::kCritical);
  EXPECT_EQ(c.priority, 1);
  EXPECT_EQ(h.calls, 1);
  c = Classify({"batch", std::nullopt, std::nullopt}, pool, h.fn());
  EXPECT_EQ(c.target, "batch");
  EXPECT_FALSE(c.lora);
  EXPECT_EQ(c.criticality, Criticality::kSheddable);
  EXPECT_EQ(c.priority, -1);
  EXPECT_EQ(h.calls, 1);  // one target: nothing to choose
}

TEST(Classify, RewritesMatchExactlyElseTheFallbackRule) {
  const auto pool = Pool();
  Heaviest h;
  RequestClass c = Classify({"qwen", std::nullopt, std::nullopt}, pool, h.fn());
  EXPECT_EQ(c.target, "qwen-v1");
  ASSERT_NE(c.rewrite, nullptr);
  EXPECT_EQ(c.rewrite->object, "default/canary");
  EXPECT_TRUE(c.rewritten("qwen"));
  EXPECT_FALSE(c.lora);
  // The exact rule wins over the fallback even when listed after it.
  c = Classify({"q", std::nullopt, std::nullopt}, pool, h.fn());
  EXPECT_EQ(c.target, "qwen-v1");
  EXPECT_EQ(c.rewrite->object, "default/alias");
  c = Classify({"anything", std::nullopt, std::nullopt}, pool, h.fn());
  EXPECT_EQ(c.target, "base");
  EXPECT_EQ(c.rewrite->object, "default/fallback");
  // The chooser's answer is used: the light target when it says so.
  c = Classify({"qwen", std::nullopt, std::nullopt}, pool,
               [](const void*, std::span<const std::uint32_t>) { return std::size_t{1}; });
  EXPECT_EQ(c.target, "qwen-v2");
  // An InferenceModel of the same name comes first.
  c = Classify({"chat", std::nullopt, std::nullopt}, pool, h.fn());
  EXPECT_EQ(c.rewrite, nullptr);
  ASSERT_NE(c.model, nullptr);
}

TEST(Classify, WithoutConfigurationTheModelGoesAsIs) {
  config::PoolInfo empty;
  const RequestClass c = Classify({"llama", std::nullopt, std::nullopt}, empty, nullptr);
  EXPECT_EQ(c.target, "llama");
  EXPECT_FALSE(c.known());
  EXPECT_FALSE(c.rewritten("llama"));
  EXPECT_EQ(c.criticality, Criticality::kStandard);
  EXPECT_EQ(c.priority, 0);
}

TEST(Classify, TheObjectiveHeaderNamesAnObjectiveOrGivesAPriorityOrACriticality) {
  const auto pool = Pool();
  RequestClass c = Classify({"chat", "bulk", std::nullopt}, pool, nullptr);
  ASSERT_NE(c.objective, nullptr);
  EXPECT_EQ(c.priority, -5);
  EXPECT_EQ(c.criticality, Criticality::kSheddable);
  c = Classify({"batch", "urgent", std::nullopt}, pool, nullptr);
  EXPECT_EQ(c.priority, 10);
  EXPECT_EQ(c.criticality, Criticality::kCritical);  // above 0: never shed by a profile
  c = Classify({"x", "7", std::nullopt}, pool, nullptr);
  EXPECT_EQ(c.priority, 7);
  EXPECT_EQ(c.criticality, Criticality::kCritical);
  c = Classify({"x", "-2", std::nullopt}, pool, nullptr);
  EXPECT_EQ(c.priority, -2);
  EXPECT_EQ(c.criticality, Criticality::kSheddable);
  c = Classify({"chat", "sheddable", std::nullopt}, pool, nullptr);
  EXPECT_EQ(c.criticality, Criticality::kSheddable);
  EXPECT_EQ(c.priority, -1);
  // Unknown: the model's own settings stay.
  c = Classify({"chat", "nonsense", std::nullopt}, pool, nullptr);
  EXPECT_EQ(c.objective, nullptr);
  EXPECT_EQ(c.criticality, Criticality::kCritical);
  EXPECT_EQ(c.priority, 1);
  c = Classify({"chat", "", std::nullopt}, pool, nullptr);
  EXPECT_EQ(c.priority, 1);
}

TEST(Classify, TheFairnessIdIsTheHeaders) {
  const auto pool = Pool();
  EXPECT_EQ(Classify({"x", std::nullopt, "tenant-a"}, pool, nullptr).fairness_id, "tenant-a");
  EXPECT_EQ(Classify({"x", std::nullopt, std::nullopt}, pool, nullptr).fairness_id, "");
}

}  // namespace
}  // namespace infergate::gateway
