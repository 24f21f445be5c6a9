// The shipped example configurations load unchanged and resolve to what they describe.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include "config/loader.h"
#include "config/report.h"
#include "config_test_util.h"

namespace infergate::config {
namespace {

using ::testing::ElementsAre;
using testing::EndpointIds;
using ::testing::HasSubstr;
using ::testing::SizeIs;
using ::testing::UnorderedElementsAre;

const std::string kExamples = std::string(INFERGATE_SOURCE_DIR) + "/examples";

std::shared_ptr<const ConfigSnapshot> LoadPaths(const std::vector<std::string>& paths) {
  LoadOptions options;
  options.log_notices = false;
  auto result = LoadConfig(paths, options);
  if (!result.ok()) {
    ADD_FAILURE() << result.error().message;
    return nullptr;
  }
  return *result;
}

class ConfigSeedExample : public ::testing::Test {
 protected:
  void SetUp() override {
    snap_ = LoadPaths({kExamples + "/seed"});
    ASSERT_TRUE(snap_);
  }
  std::shared_ptr<const ConfigSnapshot> snap_;
};

TEST_F(ConfigSeedExample, ListenersAndTheirLimits) {
  ASSERT_THAT(snap_->gateways, SizeIs(1));
  const ResolvedGateway& gw = snap_->gateways[0];
  EXPECT_EQ(gw.id, "default/inference-gateway");
  EXPECT_EQ(gw.bind_address, "127.0.0.1");
  EXPECT_EQ(gw.request_timeout, 24 * 3600 * kNanosPerSecond);
  EXPECT_EQ(gw.body_limit, 20u << 20);
  ASSERT_THAT(gw.listeners, SizeIs(2));
  EXPECT_EQ(gw.listeners[0].name, "http");
  EXPECT_EQ(gw.listeners[0].port, 8080);
  EXPECT_EQ(gw.listeners[1].name, "llm-gw");
  EXPECT_EQ(gw.listeners[1].port, 8081);
  for (const auto& l : gw.listeners) {
    EXPECT_EQ(l.bind_address, "127.0.0.1");
    EXPECT_EQ(l.request_timeout, 24 * 3600 * kNanosPerSecond);
    EXPECT_EQ(l.body_limit, 20u << 20);
  }
}

TEST_F(ConfigSeedExample, Port8080GoesToTheServiceLeaders) {
  const ResolvedListener& http = snap_->gateways[0].listeners[0];
  ASSERT_THAT(http.rules, SizeIs(1));
  const RouteRule& rule = http.rules[0];
  EXPECT_EQ(rule.Id(), "default/reasoning-backend/rules[0]");
  EXPECT_FALSE(rule.synthesized);
  ASSERT_THAT(rule.matches, SizeIs(1));
  EXPECT_EQ(rule.matches[0].path.type, PathMatchType::kPathPrefix);
  EXPECT_EQ(rule.matches[0].path.value, "/");
  ASSERT_THAT(rule.backends, SizeIs(1));
  EXPECT_EQ(rule.backends[0].weight, 1u);
  const Backend& svc = *rule.backends[0].backend;
  EXPECT_EQ(svc.kind, BackendKind::kService);
  EXPECT_EQ(svc.id, "default/qwq-dist-v1");
  EXPECT_EQ(svc.service_port, 8000);
  EXPECT_THAT(EndpointIds(svc), ElementsAre("127.0.0.2:8000", "127.0.0.3:8000", "127.0.0.4:8000"));
  for (const auto& e : svc.endpoints) {
    EXPECT_TRUE(e.ready);
    EXPECT_EQ(e.labels.at("role"), "leader");
  }
  EXPECT_TRUE(svc.unavailable.empty());
}

TEST_F(ConfigSeedExample, Port8081GoesToThePoolOfTheSameLeaders) {
  const ResolvedListener& llm = snap_->gateways[0].listeners[1];
  ASSERT_THAT(llm.rules, SizeIs(1));
  const RouteRule& rule = llm.rules[0];
  EXPECT_TRUE(rule.synthesized);  // from the attach-to annotation; the seed has no HTTPRoute
  ASSERT_THAT(rule.backends, SizeIs(1));
  const Backend& pool = *rule.backends[0].backend;
  EXPECT_EQ(pool.kind, BackendKind::kInferencePool);
  EXPECT_EQ(pool.id, "default/reasoning-pool");
  EXPECT_THAT(EndpointIds(pool), ElementsAre("127.0.0.2:8000", "127.0.0.3:8000", "127.0.0.4:8000"));
  std::set<std::string> names;
  for (const auto& e : pool.endpoints) {
    EXPECT_TRUE(e.ready);
    names.insert(e.pod_name);
    EXPECT_EQ(e.labels.at("infergate.io/engine-type"), "vllm");
  }
  EXPECT_THAT(names, UnorderedElementsAre("qwq-dist-v1-distributed-serving-0",
                                          "qwq-dist-v1-distributed-serving-1",
                                          "qwq-dist-v1-distributed-serving-2"));
  const PoolInfo& info = pool.pool;
  EXPECT_EQ(info.api_version, "inference.networking.x-k8s.io/v1alpha1");
  EXPECT_EQ(info.failure_mode, FailureMode::kFailClose);
  EXPECT_EQ(info.endpoint_picker.name, "inference-gateway-ext-proc");
  EXPECT_EQ(info.scheduling_profile, "infergate");
  EXPECT_THAT(info.target_ports, ElementsAre(8000));
  ASSERT_THAT(info.models, SizeIs(1));
  const ModelRoute* qwq = info.FindModel("qwq");
  ASSERT_TRUE(qwq);
  EXPECT_EQ(qwq->object, "default/reasoning-model");
  EXPECT_EQ(qwq->criticality, Criticality::kCritical);
  ASSERT_THAT(qwq->targets, SizeIs(1));
  EXPECT_EQ(qwq->targets[0].name, "qwq");
  EXPECT_EQ(qwq->targets[0].weight, 100u);
  ASSERT_THAT(snap_->pools, SizeIs(1));
  EXPECT_EQ(snap_->pools[0].get(), &pool);
}

TEST_F(ConfigSeedExample, WholeManifestsLoadWithOtherKindsSkipped) {
  std::vector<std::string> skipped;
  for (const auto& s : snap_->skipped) skipped.push_back(s.kind + "/" + s.name);
  EXPECT_THAT(skipped, ElementsAre("ConfigMap/qwq-dist-v1-cm",
                                   "LeaderWorkerSet/qwq-dist-v1-distributed-serving"));
  EXPECT_THAT(snap_->skipped[0].source.file, HasSubstr("examples/seed/model-server.yaml"));
  EXPECT_EQ(snap_->skipped[1].source.document, 2);
  EXPECT_THAT(snap_->objects.gateway_classes, ElementsAre("inference-gateway"));
  EXPECT_THAT(snap_->objects.pods, SizeIs(6));  // 3 leaders and 3 workers
  EXPECT_TRUE(snap_->warnings.empty());
}

TEST_F(ConfigSeedExample, CheckOutputDescribesIt) {
  std::string text = DescribeSnapshot(*snap_);
  EXPECT_THAT(text, HasSubstr("Gateway default/inference-gateway  bind 127.0.0.1  request "
                              "timeout 24h  body limit 20 MiB\n"));
  EXPECT_THAT(text,
              HasSubstr("  listener http  127.0.0.1:8080  HTTP\n"
                        "    rule default/reasoning-backend/rules[0]\n"
                        "      match PathPrefix /\n"
                        "      backend Service default/qwq-dist-v1 port 8000  weight 1 (100.0%)\n"
                        "        endpoint 127.0.0.2:8000  pod "
                        "default/qwq-dist-v1-distributed-serving-0  ready\n"));
  EXPECT_THAT(text, HasSubstr("  listener llm-gw  127.0.0.1:8081  HTTP\n"
                              "    rule default/reasoning-pool/rules[0] (from the InferencePool's "
                              "attach-to annotation)\n"));
  EXPECT_THAT(text,
              HasSubstr("InferencePool default/reasoning-pool  "
                        "(inference.networking.x-k8s.io/v1alpha1)\n"
                        "  selector app=distributed-serving, release=qwq-dist-v1, role=leader\n"
                        "  target ports 8000\n"
                        "  endpoint picker Service inference-gateway-ext-proc port 9002\n"
                        "  failure mode FailClose\n"
                        "  scheduling profile infergate\n"
                        "  endpoints 3 (3 ready)\n"));
  EXPECT_THAT(text, HasSubstr("  model qwq  Critical  (InferenceModel default/reasoning-model)\n"
                              "    target qwq  weight 100 (100.0%)\n"));
  EXPECT_THAT(text, HasSubstr("Skipped 2 object(s):\n"));
  EXPECT_THAT(text, HasSubstr("model-server.yaml:8: document 1: skipped v1/ConfigMap "
                              "qwq-dist-v1-cm: kind not used by infergate\n"));

  nlohmann::json json = SnapshotToJson(*snap_);
  EXPECT_EQ(json["valid"], true);
  const auto& listener = json["gateways"][0]["listeners"][1];
  EXPECT_EQ(listener["port"], 8081);
  EXPECT_EQ(listener["request_timeout"]["value"], "24h");
  EXPECT_EQ(listener["request_timeout"]["seconds"], 86400.0);
  EXPECT_EQ(listener["body_limit_bytes"], 20971520);
  EXPECT_EQ(listener["rules"][0]["synthesized"], true);
  EXPECT_EQ(listener["rules"][0]["backends"][0]["id"], "default/reasoning-pool");
  EXPECT_EQ(listener["rules"][0]["backends"][0]["endpoints"].size(), 3u);
  EXPECT_EQ(json["pools"][0]["models"][0]["criticality"], "Critical");
  EXPECT_EQ(json["pools"][0]["models"][0]["targets"][0]["weight"], 100);
  EXPECT_EQ(json["skipped"].size(), 2u);
}

TEST_F(ConfigSeedExample, LoadingLogsOneInfoLinePerSkippedObject) {
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(100);
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink));
  spdlog::set_level(spdlog::level::info);
  auto result = LoadConfig({kExamples + "/seed"});  // default options: notices logged
  spdlog::set_default_logger(previous);
  ASSERT_TRUE(result.ok());
  std::vector<std::string> lines = sink->last_formatted();
  ASSERT_THAT(lines, SizeIs(2));
  EXPECT_THAT(lines[0], HasSubstr("[info] "));
  EXPECT_THAT(lines[0], HasSubstr("skipped v1/ConfigMap qwq-dist-v1-cm"));
  EXPECT_THAT(lines[1], HasSubstr("skipped leaderworkerset.x-k8s.io/v1/LeaderWorkerSet"));
}

TEST(ConfigQuickstartExample, OneListenerOnePoolTwoServersTodaysApis) {
  auto snap = LoadPaths({kExamples + "/quickstart/quickstart.yaml"});
  ASSERT_TRUE(snap);
  ASSERT_THAT(snap->gateways, SizeIs(1));
  ASSERT_THAT(snap->gateways[0].listeners, SizeIs(1));
  const ResolvedListener& l = snap->gateways[0].listeners[0];
  EXPECT_EQ(l.bind_address, "127.0.0.1");
  EXPECT_EQ(l.port, 8080);
  ASSERT_THAT(l.rules, SizeIs(1));
  const Backend& pool = *l.rules[0].backends.at(0).backend;
  EXPECT_EQ(pool.id, "default/servers");
  EXPECT_THAT(EndpointIds(pool), ElementsAre("127.0.0.2:8000", "127.0.0.3:8000"));
  // Today's API form: objectives and an alias, no InferenceModel.
  EXPECT_EQ(pool.pool.api_version, "inference.networking.k8s.io/v1");
  ASSERT_TRUE(pool.pool.FindObjective("interactive"));
  EXPECT_EQ(pool.pool.FindObjective("interactive")->priority, 10);
  EXPECT_EQ(pool.pool.FindObjective("batch")->priority, -1);
  ASSERT_TRUE(pool.pool.FindRewrite("qwq-latest"));
  EXPECT_EQ(pool.pool.FindRewrite("qwq-latest")->targets.at(0).name, "qwq");
  EXPECT_EQ(pool.pool.FindRewrite("qwq"), nullptr);  // no fallback rule: qwq goes as is
  EXPECT_TRUE(snap->skipped.empty());
  EXPECT_TRUE(snap->warnings.empty());
}

}  // namespace
}  // namespace infergate::config
