// InferencePool label selectors with matchExpressions (In, NotIn, Exists, DoesNotExist),
// evaluated as Kubernetes evaluates a LabelSelector, and their validation.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config_test_util.h"

namespace infergate::config {
namespace {

using ::testing::ElementsAre;
using testing::LoadErrors;
using testing::LoadOk;
using testing::OneError;
using ::testing::SizeIs;
using testing::Yaml;

TEST(LabelSelector, EachOperator) {
  const Labels labels{{"app", "llm"}, {"tier", "gold"}};
  auto req = [](std::string key, SelectorOperator op, std::vector<std::string> values = {}) {
    return LabelRequirement{std::move(key), op, std::move(values)};
  };
  using Op = SelectorOperator;
  EXPECT_TRUE(Satisfies(labels, req("tier", Op::kIn, {"silver", "gold"})));
  EXPECT_FALSE(Satisfies(labels, req("tier", Op::kIn, {"silver"})));
  EXPECT_FALSE(Satisfies(labels, req("zone", Op::kIn, {"a"})));  // absent: not in
  EXPECT_FALSE(Satisfies(labels, req("tier", Op::kNotIn, {"gold"})));
  EXPECT_TRUE(Satisfies(labels, req("tier", Op::kNotIn, {"silver"})));
  EXPECT_TRUE(Satisfies(labels, req("zone", Op::kNotIn, {"a"})));  // absent: not in
  EXPECT_TRUE(Satisfies(labels, req("app", Op::kExists)));
  EXPECT_FALSE(Satisfies(labels, req("zone", Op::kExists)));
  EXPECT_TRUE(Satisfies(labels, req("zone", Op::kDoesNotExist)));
  EXPECT_FALSE(Satisfies(labels, req("app", Op::kDoesNotExist)));
}

TEST(LabelSelector, LabelsAndExpressionsAllMustHold) {
  const Labels labels{{"app", "llm"}, {"tier", "gold"}};
  const std::vector<LabelRequirement> gold{{"tier", SelectorOperator::kIn, {"gold"}}};
  const std::vector<LabelRequirement> canary{{"canary", SelectorOperator::kExists, {}}};
  EXPECT_TRUE(SelectorMatches({{"app", "llm"}}, gold, labels));
  EXPECT_TRUE(SelectorMatches({}, gold, labels));
  EXPECT_FALSE(SelectorMatches({{"app", "other"}}, gold, labels));
  EXPECT_FALSE(SelectorMatches({{"app", "llm"}}, canary, labels));
  EXPECT_FALSE(SelectorMatches({}, {}, labels));  // an empty selector selects nothing here
}

TEST(LabelSelector, KubectlNotation) {
  EXPECT_EQ(ToString({"tier", SelectorOperator::kIn, {"a", "b"}}), "tier in (a,b)");
  EXPECT_EQ(ToString({"tier", SelectorOperator::kNotIn, {"c"}}), "tier notin (c)");
  EXPECT_EQ(ToString({"gpu", SelectorOperator::kExists, {}}), "gpu");
  EXPECT_EQ(ToString({"gpu", SelectorOperator::kDoesNotExist, {}}), "!gpu");
}

// Five Pods of app=llm with different tiers and labels.
const std::string kPods = Yaml(R"(
apiVersion: v1
kind: Pod
metadata: {name: gold, labels: {app: llm, tier: gold}}
status: {podIP: 127.0.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: silver, labels: {app: llm, tier: silver}}
status: {podIP: 127.0.0.3}
---
apiVersion: v1
kind: Pod
metadata: {name: bronze, labels: {app: llm, tier: bronze, canary: "yes"}}
status: {podIP: 127.0.0.4}
---
apiVersion: v1
kind: Pod
metadata: {name: untiered, labels: {app: llm}}
status: {podIP: 127.0.0.5}
---
apiVersion: v1
kind: Pod
metadata: {name: other, labels: {app: other, tier: gold}}
status: {podIP: 127.0.0.6}
---
)");

// The names of the Pods a v1 pool with this selector (flow YAML) picks.
std::vector<std::string> Picked(const std::string& selector) {
  auto snap = LoadOk(kPods + Yaml(R"(
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {name: pool}
spec:
  selector: )") + selector +
                     "\n  targetPorts: [{number: 8000}]\n");
  if (!snap || snap->pools.size() != 1) return {"(no pool)"};
  std::vector<std::string> names;
  for (const auto& e : snap->pools[0]->endpoints) names.push_back(e.pod_name);
  return names;
}

TEST(ConfigPoolSelector, OperatorsPickPods) {
  EXPECT_THAT(Picked("{matchExpressions: [{key: tier, operator: In, values: [gold, silver]}]}"),
              ElementsAre("gold", "other", "silver"));
  EXPECT_THAT(Picked("{matchLabels: {app: llm}, matchExpressions: [{key: tier, operator: NotIn, "
                     "values: [gold, silver]}]}"),
              ElementsAre("bronze", "untiered"));
  EXPECT_THAT(Picked("{matchLabels: {app: llm}, matchExpressions: [{key: canary, operator: "
                     "Exists}]}"),
              ElementsAre("bronze"));
  EXPECT_THAT(Picked("{matchLabels: {app: llm}, matchExpressions: [{key: tier, operator: "
                     "DoesNotExist, values: []}]}"),
              ElementsAre("untiered"));
  // Requirements are ANDed.
  EXPECT_THAT(Picked("{matchExpressions: [{key: app, operator: In, values: [llm]}, {key: tier, "
                     "operator: Exists}, {key: canary, operator: DoesNotExist}]}"),
              ElementsAre("gold", "silver"));
}

TEST(ConfigPoolSelector, ReportedAndKept) {
  auto snap = LoadOk(kPods + Yaml(R"(
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {name: pool}
spec:
  selector:
    matchLabels: {app: llm}
    matchExpressions:
    - {key: tier, operator: NotIn, values: [bronze]}
    - {key: gpu, operator: DoesNotExist}
  targetPorts: [{number: 8000}]
)"));
  ASSERT_TRUE(snap);
  ASSERT_THAT(snap->pools, SizeIs(1));
  const PoolInfo& p = snap->pools[0]->pool;
  ASSERT_THAT(p.match_expressions, SizeIs(2));
  EXPECT_EQ(p.match_expressions[0].op, SelectorOperator::kNotIn);
  EXPECT_THAT(p.match_expressions[0].values, ElementsAre("bronze"));
  EXPECT_EQ(p.match_expressions[1].op, SelectorOperator::kDoesNotExist);
}

const std::string kPoolHead = Yaml(R"(
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {name: pool}
spec:
  targetPorts: [{number: 8000}]
  selector:
)");

TEST(ConfigPoolSelector, InvalidOperatorNamesFileAndField) {
  EXPECT_EQ(
      OneError(kPoolHead + "    matchExpressions: [{key: tier, operator: in, values: [a]}]\n"),
      "test.yaml:7: document 1: InferencePool/pool: spec.selector.matchExpressions[0]."
      "operator: must be one of In, NotIn, Exists, DoesNotExist; got \"in\"");
}

TEST(ConfigPoolSelector, ValuesMustFitTheOperator) {
  EXPECT_THAT(
      LoadErrors(kPoolHead + Yaml(R"(
    matchExpressions:
    - {key: tier, operator: In, values: []}
    - {key: tier, operator: NotIn}
    - {key: tier, operator: Exists, values: [a]}
    - {operator: DoesNotExist}
    - {key: tier}
)")),
      ElementsAre("test.yaml:8: document 1: InferencePool/pool: spec.selector.matchExpressions[0]."
                  "values: must list at least one value for operator In",
                  "test.yaml:9: document 1: InferencePool/pool: spec.selector.matchExpressions[1]."
                  "values: must list at least one value for operator NotIn",
                  "test.yaml:10: document 1: InferencePool/pool: "
                  "spec.selector.matchExpressions[2].values: must be empty for operator Exists",
                  "test.yaml:11: document 1: InferencePool/pool: "
                  "spec.selector.matchExpressions[3].key: is required",
                  "test.yaml:12: document 1: InferencePool/pool: "
                  "spec.selector.matchExpressions[4].operator: is required"));
}

TEST(ConfigPoolSelector, EmptySelectorRefused) {
  EXPECT_EQ(OneError(kPoolHead + "    matchExpressions: []\n"),
            "test.yaml:6: document 1: InferencePool/pool: spec.selector: must name at least one "
            "label or expression");
}

}  // namespace
}  // namespace infergate::config
