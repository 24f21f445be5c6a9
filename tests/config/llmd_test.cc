// Today's inference APIs: InferenceObjective and InferenceModelRewrite (llm-d.ai/v1alpha2
// and the older inference.networking.x-k8s.io/v1alpha2), attached to their pools.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config_test_util.h"

namespace infergate::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::LoadErrors;
using testing::LoadOk;
using testing::OneError;
using ::testing::SizeIs;
using testing::Yaml;

// An InferencePool v1 "pool" (7 lines with its separator).
const std::string kPool = Yaml(R"(
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {name: pool}
spec:
  selector: {matchLabels: {app: llm}}
  targetPorts: [{number: 8000}]
---
)");

TEST(ConfigInferenceObjective, BothGroupsAttachToTheirPoolWithTheirPriority) {
  auto snap = LoadOk(kPool + Yaml(R"(
apiVersion: llm-d.ai/v1alpha2
kind: InferenceObjective
metadata: {name: interactive}
spec:
  priority: 10
  poolRef: {group: inference.networking.k8s.io, name: pool}
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceObjective
metadata: {name: batch}
spec:
  priority: -1
  poolRef: {name: pool, group: inference.networking.k8s.io}
---
apiVersion: llm-d.ai/v1alpha2
kind: InferenceObjective
metadata: {name: plain}
spec:
  poolRef: {name: pool}
)"));
  ASSERT_TRUE(snap);
  const PoolInfo& p = snap->pools.at(0)->pool;
  ASSERT_THAT(p.objectives, SizeIs(3));
  EXPECT_EQ(p.objectives[0].name, "batch");  // sorted by name
  EXPECT_EQ(p.objectives[0].priority, -1);
  ASSERT_NE(p.FindObjective("interactive"), nullptr);
  EXPECT_EQ(p.FindObjective("interactive")->priority, 10);
  EXPECT_EQ(p.FindObjective("interactive")->object, "default/interactive");
  EXPECT_EQ(p.FindObjective("plain")->priority, 0);  // unset: 0
  EXPECT_EQ(p.FindObjective("nope"), nullptr);
}

TEST(ConfigInferenceObjective, ProblemsNameTheFileAndField) {
  EXPECT_EQ(OneError(kPool + Yaml(R"(
apiVersion: llm-d.ai/v1alpha2
kind: InferenceObjective
metadata: {name: o}
spec:
  priority: high
  poolRef: {name: pool}
)")),
            "test.yaml:12: document 2: InferenceObjective/o: spec.priority: must be an integer "
            "between -2147483648 and 2147483647, got \"high\"");
  EXPECT_EQ(OneError(kPool + Yaml(R"(
apiVersion: llm-d.ai/v1alpha2
kind: InferenceObjective
metadata: {name: o}
spec:
  poolRef: {name: elsewhere}
)")),
            "test.yaml:12: document 2: InferenceObjective/o: spec.poolRef.name: InferencePool "
            "\"elsewhere\" not found in namespace \"default\"");
  EXPECT_EQ(OneError(kPool + Yaml(R"(
apiVersion: llm-d.ai/v1alpha2
kind: InferenceObjective
metadata: {name: o}
spec: {priority: 1}
)")),
            "test.yaml:11: document 2: InferenceObjective/o: spec.poolRef: is required");
}

TEST(ConfigInferenceModelRewrite, RulesAttachWithTheirTargetsAndFallback) {
  auto snap = LoadOk(kPool + Yaml(R"(
apiVersion: llm-d.ai/v1alpha2
kind: InferenceModelRewrite
metadata: {name: canary}
spec:
  poolRef: {group: inference.networking.k8s.io, name: pool}
  rules:
  - matches:
    - model: {type: Exact, value: qwen}
    - model: {value: qwen-latest}
    targets:
    - {modelRewrite: qwen-v1, weight: 90}
    - {modelRewrite: qwen-v2, weight: 10}
  - targets: [{modelRewrite: base}]
)"));
  ASSERT_TRUE(snap);
  const PoolInfo& p = snap->pools.at(0)->pool;
  ASSERT_THAT(p.rewrites, SizeIs(2));
  const RewriteRoute* r = p.FindRewrite("qwen-latest");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->object, "default/canary");
  EXPECT_EQ(r->rule, 0u);
  EXPECT_THAT(r->models, ElementsAre("qwen", "qwen-latest"));
  ASSERT_THAT(r->targets, SizeIs(2));
  EXPECT_EQ(r->targets[1].name, "qwen-v2");
  EXPECT_EQ(r->targets[1].weight, 10u);
  EXPECT_EQ(r->total_weight, 100u);
  // Any other model: the rule without matches.
  const RewriteRoute* f = p.FindRewrite("llama");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->rule, 1u);
  EXPECT_EQ(f->targets.at(0).name, "base");
  EXPECT_EQ(f->targets.at(0).weight, 1u);
}

TEST(ConfigInferenceModelRewrite, ProblemsNameTheFileAndField) {
  auto errors = LoadErrors(kPool + Yaml(R"(
apiVersion: llm-d.ai/v1alpha2
kind: InferenceModelRewrite
metadata: {name: bad}
spec:
  poolRef: {name: pool}
  rules:
  - matches: [{model: {type: Prefix, value: q}}]
    targets: [{modelRewrite: a, weight: 5}, {modelRewrite: b}]
  - targets: []
  - matches: [{model: {value: ""}}]
    targets: [{modelRewrite: a}, {modelRewrite: a}]
  - targets: [{modelRewrite: c}]
)"));
  EXPECT_THAT(
      errors,
      ElementsAre(
          "test.yaml:14: document 2: InferenceModelRewrite/bad: spec.rules[0].matches[0].model."
          "type: must be one of Exact; got \"Prefix\"",
          "test.yaml:15: document 2: InferenceModelRewrite/bad: spec.rules[0].targets: weights "
          "must be set on all targets or on none (1 of 2 have one)",
          "test.yaml:16: document 2: InferenceModelRewrite/bad: spec.rules[1].targets: must "
          "list at least one target",
          "test.yaml:17: document 2: InferenceModelRewrite/bad: spec.rules[2].matches[0].model."
          "value: must not be empty",
          "test.yaml:18: document 2: InferenceModelRewrite/bad: spec.rules[2].targets[1]."
          "modelRewrite: target \"a\" is listed twice",
          "test.yaml:19: document 2: InferenceModelRewrite/bad: spec.rules[3].matches: a second "
          "rule without matches: only one rule may apply to every other request"));
}

TEST(ConfigInferenceModelRewrite, AModelIsRewrittenByOneRulePerPool) {
  auto rewrite = [](const std::string& name, const std::string& match) {
    return "apiVersion: llm-d.ai/v1alpha2\nkind: InferenceModelRewrite\nmetadata: {name: " + name +
           "}\nspec:\n  poolRef: {name: pool}\n  rules:\n  - " +
           (match.empty() ? "" : "matches: [{model: {value: " + match + "}}]\n    ") +
           "targets: [{modelRewrite: t}]\n---\n";
  };
  EXPECT_THAT(OneError(kPool + rewrite("a", "m") + rewrite("b", "m")),
              HasSubstr("InferenceModelRewrite/b: spec.rules[0].matches: model \"m\" is already "
                        "rewritten in InferencePool \"default/pool\" by default/a rules[0]"));
  EXPECT_THAT(OneError(kPool + rewrite("a", "") + rewrite("b", "")),
              HasSubstr("InferenceModelRewrite/b: spec.rules[0].matches: InferencePool "
                        "\"default/pool\" already has a rule for every other model (default/a "
                        "rules[0])"));
  EXPECT_TRUE(LoadOk(kPool + rewrite("a", "m") + rewrite("b", "n") + rewrite("c", "")));
}

}  // namespace
}  // namespace infergate::config
