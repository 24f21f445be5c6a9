// InferencePool (v1alpha1, v1alpha2, v1), InferenceModel and EndpointPickerConfig.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config_test_util.h"

namespace infergate::config {
namespace {

using ::testing::ElementsAre;
using testing::EndpointIds;
using ::testing::HasSubstr;
using testing::kGateway;
using testing::LoadErrors;
using testing::LoadOk;
using testing::OneError;
using ::testing::SizeIs;
using testing::Yaml;

// Three Pods labelled app=llm: two ready, one not ready; and one without an IP.
const std::string kLlmPods = Yaml(R"(
apiVersion: v1
kind: Pod
metadata: {name: p1, labels: {app: llm, infergate.io/engine-type: vllm}}
status: {podIP: 127.0.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: p2, labels: {app: llm, inference.networking.k8s.io/engine-type: sglang}}
status: {podIP: 127.0.0.3}
---
apiVersion: v1
kind: Pod
metadata: {name: p3, labels: {app: llm}}
status: {podIP: 127.0.0.4, conditions: [{type: Ready, status: "False"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: p4, labels: {app: llm}}
status: {}
---
)");

const std::string kPoolV1alpha2 = Yaml(R"(
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferencePool
metadata: {name: pool}
spec:
  selector: {app: llm}
  targetPortNumber: 8000
  extensionRef: {name: epp, portNumber: 9100, failureMode: FailOpen}
---
)");

TEST(ConfigInferencePool, V1alpha2SelectsPodsAndKeepsReadiness) {
  auto snap = LoadOk(kLlmPods + kPoolV1alpha2);
  ASSERT_TRUE(snap);
  ASSERT_THAT(snap->pools, SizeIs(1));
  const Backend& b = *snap->pools[0];
  EXPECT_EQ(b.kind, BackendKind::kInferencePool);
  EXPECT_EQ(b.id, "default/pool");
  EXPECT_EQ(snap->FindPool("default", "pool"), &b);
  // Pools keep Pods that are not ready (the scheduler sees them), marked as such.
  EXPECT_THAT(EndpointIds(b), ElementsAre("127.0.0.2:8000", "127.0.0.3:8000", "127.0.0.4:8000"));
  EXPECT_TRUE(b.endpoints[0].ready);
  EXPECT_FALSE(b.endpoints[2].ready);
  EXPECT_EQ(b.endpoints[0].pod_name, "p1");
  EXPECT_EQ(b.endpoints[0].labels.at("infergate.io/engine-type"), "vllm");
  EXPECT_EQ(b.endpoints[1].labels.at("inference.networking.k8s.io/engine-type"), "sglang");
  ASSERT_THAT(b.unavailable, SizeIs(1));
  EXPECT_EQ(b.unavailable[0].pod, "default/p4");
  EXPECT_EQ(b.unavailable[0].reason, "no podIP");
  const PoolInfo& p = b.pool;
  EXPECT_EQ(p.api_version, "inference.networking.x-k8s.io/v1alpha2");
  EXPECT_THAT(p.target_ports, ElementsAre(8000));
  EXPECT_EQ(p.failure_mode, FailureMode::kFailOpen);
  EXPECT_TRUE(p.endpoint_picker.present);
  EXPECT_EQ(p.endpoint_picker.name, "epp");
  EXPECT_EQ(p.endpoint_picker.kind, "Service");
  EXPECT_EQ(p.endpoint_picker.port, 9100);
  EXPECT_EQ(p.scheduling_profile, "infergate");
  EXPECT_TRUE(p.models.empty());
}

TEST(ConfigInferencePool, V1TargetPortsGiveOneEndpointPerPort) {
  auto snap = LoadOk(kLlmPods + Yaml(R"(
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata:
  name: dp
  annotations: {infergate.io/scheduling-profile: round-robin, infergate.io/flow-control: "true",
                infergate.io/pipeline-parallel-size: "2"}
spec:
  selector: {matchLabels: {app: llm}}
  targetPorts: [{number: 8000}, {number: 8001}]
  endpointPickerRef: {name: epp, port: {number: 9002}}
)"));
  ASSERT_TRUE(snap);
  const Backend& b = *snap->pools.at(0);
  EXPECT_THAT(EndpointIds(b), ElementsAre("127.0.0.2:8000", "127.0.0.2:8001", "127.0.0.3:8000",
                                          "127.0.0.3:8001", "127.0.0.4:8000", "127.0.0.4:8001"));
  EXPECT_EQ(b.pool.failure_mode, FailureMode::kFailClose);  // the default
  EXPECT_EQ(b.pool.endpoint_picker.port, 9002);
  EXPECT_EQ(b.pool.scheduling_profile, "round-robin");
  EXPECT_EQ(b.pool.annotations.at("infergate.io/scheduling-profile"), "round-robin");
  EXPECT_EQ(b.pool.flow_control, true);
  EXPECT_EQ(b.pool.pipeline_parallel_size, 2);
}

TEST(ConfigInferencePool, V1alpha1ExtensionRefAndDefaults) {
  auto snap = LoadOk(Yaml(R"(
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: InferencePool
metadata: {name: old}
spec:
  selector: {app: llm}
  targetPortNumber: 8000
  extensionRef: {name: ext, targetPortNumber: 9003}
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferencePool
metadata: {name: bare}
spec:
  selector: {app: llm}
  targetPortNumber: 8000
)"));
  ASSERT_TRUE(snap);
  const Backend* old = snap->FindPool("default", "old");
  ASSERT_TRUE(old);
  EXPECT_EQ(old->pool.endpoint_picker.port, 9003);
  EXPECT_EQ(old->pool.failure_mode, FailureMode::kFailClose);
  EXPECT_EQ(old->pool.flow_control, std::nullopt);  // the profile decides
  const Backend* bare = snap->FindPool("default", "bare");
  ASSERT_TRUE(bare);
  EXPECT_FALSE(bare->pool.endpoint_picker.present);
  EXPECT_TRUE(bare->endpoints.empty());
}

TEST(ConfigInferencePool, Problems) {
  auto errors = LoadErrors(Yaml(R"(
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferencePool
metadata:
  name: a
  annotations: {infergate.io/scheduling-profile: "", infergate.io/flow-control: "yes",
                infergate.io/pipeline-parallel-size: "0"}
spec:
  selector: {}
  targetPortNumber: 0
  extensionRef: {name: epp, failureMode: Sometimes}
---
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {name: b}
spec:
  selector: {matchExpressions: [{key: app, operator: In, values: [x]}]}
  targetPorts: [{number: 1}, {number: 2}, {number: 3}, {number: 4}, {number: 5}, {number: 6},
                {number: 7}, {number: 8}, {number: 9}]
---
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {name: c}
spec:
  selector: {matchLabels: {app: x}}
  targetPorts: [{number: 80}, {number: 80}]
)"));
  EXPECT_THAT(
      errors,
      ElementsAre(
          "test.yaml:8: document 1: InferencePool/a: spec.selector: must name at least one label",
          "test.yaml:9: document 1: InferencePool/a: spec.targetPortNumber: must be an integer "
          "between 1 and 65535, got \"0\"",
          "test.yaml:10: document 1: InferencePool/a: spec.extensionRef.failureMode: must be one "
          "of "
          "FailClose, FailOpen; got \"Sometimes\"",
          "test.yaml:5: document 1: InferencePool/a: metadata.annotations[\"infergate.io/"
          "scheduling-profile\"]: must not be empty",
          "test.yaml:5: document 1: InferencePool/a: metadata.annotations[\"infergate.io/"
          "flow-control\"]: must be \"true\" or \"false\", got \"yes\"",
          "test.yaml:6: document 1: InferencePool/a: metadata.annotations[\"infergate.io/"
          "pipeline-parallel-size\"]: must be an integer from 1 to 16, got \"0\"",
          "test.yaml:17: document 2: InferencePool/b: spec.targetPorts: must list 1 to 8 ports, "
          "got 9",
          "test.yaml:25: document 3: InferencePool/c: spec.targetPorts[1].number: port 80 is "
          "listed "
          "twice"));
}

TEST(ConfigInferencePool, AttachToSynthesisesARouteOnTheListener) {
  auto snap = LoadOk(kGateway + kLlmPods + Yaml(R"(
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferencePool
metadata:
  name: pool
  annotations:
    inference.networking.x-k8s.io/attach-to: |
      name: gw
      port: 8081
spec:
  selector: {app: llm}
  targetPortNumber: 8000
)"));
  ASSERT_TRUE(snap);
  const auto& listeners = snap->gateways.at(0).listeners;
  EXPECT_TRUE(listeners[0].rules.empty());
  ASSERT_THAT(listeners[1].rules, SizeIs(1));
  const RouteRule& rule = listeners[1].rules[0];
  EXPECT_TRUE(rule.synthesized);
  EXPECT_EQ(rule.route, "default/pool");
  ASSERT_THAT(rule.matches, SizeIs(1));
  EXPECT_EQ(rule.matches[0].path.type, PathMatchType::kPathPrefix);
  EXPECT_EQ(rule.matches[0].path.value, "/");
  ASSERT_THAT(rule.backends, SizeIs(1));
  EXPECT_EQ(rule.backends[0].backend.get(), snap->pools.at(0).get());
  const auto& attach = snap->objects.pools.at(0).attach_to;
  ASSERT_TRUE(attach);
  EXPECT_EQ(attach->gateway, "gw");
  EXPECT_EQ(attach->namespace_name, "default");
  EXPECT_EQ(attach->port, 8081);
}

TEST(ConfigInferencePool, AttachToMustNameAListener) {
  auto pool = [](const std::string& annotation) {
    return "apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferencePool\n"
           "metadata:\n  name: pool\n  annotations:\n    "
           "inference.networking.x-k8s.io/attach-to: " +
           annotation + "\nspec:\n  selector: {app: llm}\n  targetPortNumber: 8000\n";
  };
  EXPECT_EQ(OneError(kGateway + pool("\"{name: gw, port: 9999}\"")),
            "test.yaml:17: document 2: InferencePool/pool: metadata.annotations[\"inference."
            "networking.x-k8s.io/attach-to\"]: Gateway \"default/gw\" has no listener on port "
            "9999 (listeners: http:8080, llm:8081)");
  EXPECT_EQ(OneError(kGateway + pool("\"{name: gw, port: 8081, sectionName: http}\"")),
            "test.yaml:17: document 2: InferencePool/pool: metadata.annotations[\"inference."
            "networking.x-k8s.io/attach-to\"]: Gateway \"default/gw\" has no listener on port "
            "8081 named \"http\" (listeners: http:8080, llm:8081)");
  EXPECT_EQ(
      OneError(kGateway + pool("\"{name: gone, port: 8081}\"")),
      "test.yaml:17: document 2: InferencePool/pool: metadata.annotations[\"inference."
      "networking.x-k8s.io/attach-to\"]: Gateway \"gone\" not found in namespace \"default\"");
  EXPECT_EQ(OneError(kGateway + pool("\"{name: gw, port: 8081, namespace: other}\"")),
            "test.yaml:17: document 2: InferencePool/pool: metadata.annotations[\"inference."
            "networking.x-k8s.io/attach-to\"]: Gateway \"gw\" not found in namespace \"other\"");
  EXPECT_EQ(OneError(kGateway + pool("\"[a, b]\"")),
            "test.yaml:17: document 2: InferencePool/pool: metadata.annotations[\"inference."
            "networking.x-k8s.io/attach-to\"]: must be a YAML map with name and port (and "
            "optionally namespace and sectionName)");
  EXPECT_THAT(OneError(kGateway + pool("\"{name: gw\"")),
              HasSubstr("attach-to\"]: is not valid YAML: "));
  // Errors inside a block annotation point at the line inside it.
  EXPECT_EQ(OneError(kGateway + pool("|\n      name: gw\n      port: http")),
            "test.yaml:19: document 2: InferencePool/pool: metadata.annotations[\"inference."
            "networking.x-k8s.io/attach-to\"].port: must be an integer between 1 and 65535, got "
            "\"http\"");
}

const std::string kModelPool = Yaml(R"(
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferencePool
metadata: {name: pool}
spec:
  selector: {app: llm}
  targetPortNumber: 8000
---
)");

TEST(ConfigInferenceModel, AttachesToItsPoolWithEffectiveTargets) {
  auto snap = LoadOk(kModelPool + Yaml(R"(
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: {name: weighted}
spec:
  modelName: llama
  criticality: Sheddable
  poolRef: {name: pool}
  targetModels: [{name: llama-v1, weight: 90}, {name: llama-v2, weight: 10}]
---
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: InferenceModel
metadata: {name: equal}
spec:
  modelName: chat
  poolRef: {group: inference.networking.x-k8s.io, kind: InferencePool, name: pool}
  targetModels: [{name: a}, {name: b}]
  priority: -2
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: {name: plain}
spec:
  modelName: base
  criticality: Critical
  poolRef: {name: pool}
)"));
  ASSERT_TRUE(snap);
  const PoolInfo& pool = snap->pools.at(0)->pool;
  ASSERT_THAT(pool.models, SizeIs(3));
  // Sorted by model name.
  EXPECT_EQ(pool.models[0].model_name, "base");
  EXPECT_EQ(pool.models[1].model_name, "chat");
  EXPECT_EQ(pool.models[2].model_name, "llama");

  const ModelRoute* llama = pool.FindModel("llama");
  ASSERT_TRUE(llama);
  EXPECT_EQ(llama->object, "default/weighted");
  EXPECT_EQ(llama->criticality, Criticality::kSheddable);
  ASSERT_THAT(llama->targets, SizeIs(2));
  EXPECT_EQ(llama->targets[0].name, "llama-v1");
  EXPECT_EQ(llama->targets[0].weight, 90u);
  EXPECT_EQ(llama->total_weight, 100u);
  EXPECT_FALSE(llama->priority);

  const ModelRoute* chat = pool.FindModel("chat");
  ASSERT_TRUE(chat);
  EXPECT_EQ(chat->criticality, Criticality::kStandard);  // the default
  EXPECT_EQ(chat->priority, -2);
  EXPECT_EQ(chat->targets[0].weight, 1u);  // no weights: equal
  EXPECT_EQ(chat->targets[1].weight, 1u);

  const ModelRoute* base = pool.FindModel("base");
  ASSERT_TRUE(base);
  ASSERT_THAT(base->targets, SizeIs(1));  // no targets: the model name itself
  EXPECT_EQ(base->targets[0].name, "base");
  EXPECT_EQ(pool.FindModel("missing"), nullptr);
  EXPECT_EQ(pool.FindModel("bas"), nullptr);
}

TEST(ConfigInferenceModel, Problems) {
  std::string many = "[";
  for (int i = 0; i < 11; ++i)
    many += (i ? ", " : "") + std::string("{name: m") + std::to_string(i) + "}";
  many += "]";
  auto errors = LoadErrors(kModelPool + Yaml(R"(
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: {name: a}
spec:
  criticality: High
  poolRef: {name: pool, kind: Service}
  targetModels: [{name: x, weight: 5}, {name: y}, {name: x, weight: 0}]
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: {name: b}
spec:
  modelName: m
  targetModels: )") + many +
                           "\n");
  EXPECT_THAT(
      errors,
      ElementsAre(
          "test.yaml:11: document 2: InferenceModel/a: spec.modelName: is required",
          "test.yaml:12: document 2: InferenceModel/a: spec.criticality: must be one of Critical, "
          "Standard, Sheddable; got \"High\"",
          "test.yaml:14: document 2: InferenceModel/a: spec.targetModels[2].name: target model "
          "\"x\" "
          "is listed twice",
          "test.yaml:14: document 2: InferenceModel/a: spec.targetModels[2].weight: must be an "
          "integer between 1 and 1000000, got \"0\"",
          "test.yaml:14: document 2: InferenceModel/a: spec.targetModels: weights must be set on "
          "all "
          "targetModels or on none (2 of 3 have one)",
          "test.yaml:13: document 2: InferenceModel/a: spec.poolRef.kind: must be InferencePool, "
          "got "
          "\"Service\"",
          "test.yaml:21: document 3: InferenceModel/b: spec.targetModels: must list at most 10 "
          "models, got 11",
          "test.yaml:19: document 3: InferenceModel/b: spec.poolRef: is required"));
}

TEST(ConfigInferenceModel, PoolMustExistAndModelNamesBeUniquePerPool) {
  auto model = [](const std::string& name, const std::string& model_name, const std::string& pool) {
    return "apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceModel\n"
           "metadata: {name: " +
           name + "}\nspec:\n  modelName: " + model_name + "\n  poolRef: {name: " + pool +
           "}\n---\n";
  };
  std::string second_pool = kModelPool;
  second_pool.replace(second_pool.find("{name: pool}"), 12, "{name: pool2}");
  // The same model name in two pools is fine.
  EXPECT_TRUE(
      LoadOk(kModelPool + second_pool + model("a", "m", "pool") + model("b", "m", "pool2")));
  EXPECT_THAT(LoadErrors(kModelPool + model("first", "m", "pool") + model("second", "m", "pool") +
                         model("lost", "x", "nope")),
              ElementsAre("test.yaml:15: document 3: InferenceModel/second: spec.modelName: model "
                          "\"m\" is already served in InferencePool \"default/pool\" by "
                          "InferenceModel/first (test.yaml:8 (document 2))",
                          "test.yaml:27: document 4: InferenceModel/lost: spec.poolRef.name: "
                          "InferencePool \"nope\" not found in namespace \"default\""));
}

TEST(ConfigEndpointPickerConfig, PluginsAndProfiles) {
  auto snap = LoadOk(Yaml(R"(
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: prefix-cache-scorer
  name: prefix
  parameters:
    blockSize: 64
    maxPrefixBlocksToMatch: 256
    lruCapacityPerServer: 31250
    nested: {a: {b: x}, list: [1, two]}
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
    weight: 2
  - pluginRef: prefix
    weight: 3.5
  - pluginRef: max-score-picker
---
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
metadata: {name: custom}
spec:
  plugins: [{type: random-picker}]
  schedulingProfiles: [{name: only, plugins: [{pluginRef: random-picker}]}]
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferencePool
metadata:
  name: pool
  annotations: {infergate.io/scheduling-profile: custom/only}
spec:
  selector: {app: llm}
  targetPortNumber: 8000
)"));
  ASSERT_TRUE(snap);
  const EndpointPickerConfig* config = snap->FindPickerConfig("default");
  ASSERT_TRUE(config);
  ASSERT_THAT(config->plugins, SizeIs(3));
  EXPECT_EQ(config->plugins[0].type, "queue-scorer");
  EXPECT_EQ(config->plugins[0].name, "queue-scorer");  // name defaults to type
  EXPECT_EQ(config->plugins[1].name, "prefix");
  const auto& params = config->plugins[1].parameters;
  EXPECT_EQ(params.at("blockSize"), "64");
  EXPECT_EQ(params.at("lruCapacityPerServer"), "31250");
  EXPECT_EQ(params.at("nested.a.b"), "x");
  EXPECT_EQ(params.at("nested.list.0"), "1");
  EXPECT_EQ(params.at("nested.list.1"), "two");
  ASSERT_THAT(config->profiles, SizeIs(1));
  const SchedulingProfile& profile = config->profiles[0];
  EXPECT_EQ(profile.name, "default");
  ASSERT_THAT(profile.plugins, SizeIs(3));
  EXPECT_EQ(profile.plugins[0].plugin_ref, "queue-scorer");
  EXPECT_DOUBLE_EQ(profile.plugins[0].weight, 2.0);
  EXPECT_DOUBLE_EQ(profile.plugins[1].weight, 3.5);
  EXPECT_DOUBLE_EQ(profile.plugins[2].weight, 1.0);  // the default
  ASSERT_TRUE(snap->FindPickerConfig("custom"));
  EXPECT_EQ(snap->FindPickerConfig("custom")->profiles[0].name, "only");
  EXPECT_EQ(snap->pools.at(0)->pool.scheduling_profile, "custom/only");
}

TEST(ConfigEndpointPickerConfig, Problems) {
  auto errors = LoadErrors(Yaml(R"(
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
metadata: {name: cfg}
plugins:
- {type: a}
- {type: b, name: a}
- {name: typeless}
schedulingProfiles:
- name: p
  plugins: [{pluginRef: ghost}, {pluginRef: a, weight: -1}]
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferencePool
metadata:
  name: pool1
  annotations: {infergate.io/scheduling-profile: cfg/missing}
spec: {selector: {app: x}, targetPortNumber: 1}
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferencePool
metadata:
  name: pool2
  annotations: {infergate.io/scheduling-profile: nocfg/p}
spec: {selector: {app: x}, targetPortNumber: 1}
)"));
  EXPECT_THAT(
      errors,
      ElementsAre(
          "test.yaml:6: document 1: EndpointPickerConfig/cfg: plugins[1].name: plugin name \"a\" "
          "is "
          "used twice",
          "test.yaml:7: document 1: EndpointPickerConfig/cfg: plugins[2].type: is required",
          "test.yaml:10: document 1: EndpointPickerConfig/cfg: schedulingProfiles[0].plugins[0]."
          "pluginRef: names no plugin of this config: \"ghost\"",
          "test.yaml:10: document 1: EndpointPickerConfig/cfg: schedulingProfiles[0].plugins[1]."
          "weight: must be a number between 0 and 1000000000, got \"-1\"",
          "test.yaml:12: document 2: InferencePool/pool1: metadata.annotations[\"infergate.io/"
          "scheduling-profile\"]: EndpointPickerConfig \"cfg\" has no scheduling profile "
          "\"missing\" (profiles: p)",
          "test.yaml:19: document 3: InferencePool/pool2: metadata.annotations[\"infergate.io/"
          "scheduling-profile\"]: EndpointPickerConfig \"nocfg\" not found"));
}

}  // namespace
}  // namespace infergate::config
