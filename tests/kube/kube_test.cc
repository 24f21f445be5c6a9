// Unit tests of the Kubernetes provider's pure parts: credentials, the watch-stream
// decoder, object trimming, EndpointSlice resolution, skipping invalid objects, status.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "config/loader.h"
#include "kube/cluster_access.h"
#include "kube/provider.h"
#include "kube/reflector.h"
#include "kube/status.h"
#include "kube/watch_event.h"

namespace infergate::kube {
namespace {

using json = nlohmann::json;

std::string TempFile(const std::string& name, const std::string& content) {
  std::string dir = ::testing::TempDir();
  std::string path = dir + "/" + name;
  std::ofstream(path) << content;
  return path;
}

TEST(ClusterAccessTest, Base64DecodesWithAndWithoutPadding) {
  EXPECT_EQ(*DecodeBase64("aGVsbG8="), "hello");
  EXPECT_EQ(*DecodeBase64("aGVsbG8"), "hello");
  EXPECT_EQ(*DecodeBase64("aGVs\nbG8="), "hello");
  EXPECT_FALSE(DecodeBase64("a*b").ok());
}

TEST(ClusterAccessTest, KubeconfigCurrentContextTokenAndInlineCa) {
  std::string path = TempFile("kc1", R"(
apiVersion: v1
kind: Config
current-context: b
contexts:
- name: a
  context: {cluster: one, user: u1}
- name: b
  context: {cluster: two, user: u2, namespace: infer}
clusters:
- name: one
  cluster: {server: "https://one.example:6443"}
- name: two
  cluster:
    server: "https://10.0.0.1"
    certificate-authority-data: "LS0tLS1CRUdJTg=="
users:
- name: u1
  user: {token: first}
- name: u2
  user: {token: second}
)");
  auto a = KubeconfigAccess(path);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->scheme, "https");
  EXPECT_EQ(a->host, "10.0.0.1");
  EXPECT_EQ(a->port, "443");
  EXPECT_EQ(a->Token(), "second");
  EXPECT_EQ(a->ca_pem, "-----BEGIN");
  EXPECT_EQ(a->default_namespace, "infer");
  // The description names where the access came from, never the token.
  EXPECT_EQ(a->description.find("second"), std::string::npos);

  auto other = KubeconfigAccess(path, "a");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->host, "one.example");
  EXPECT_EQ(other->port, "6443");
  EXPECT_EQ(other->Token(), "first");
}

TEST(ClusterAccessTest, KubeconfigFilesRelativeToTheKubeconfigAndTokenFileRereadOnRotation) {
  std::string token = TempFile("tok", "one\n");
  TempFile("ca.pem", "CA-PEM");
  std::string path = TempFile("kc2", R"(
current-context: c
contexts: [{name: c, context: {cluster: k, user: u}}]
clusters: [{name: k, cluster: {server: "http://127.0.0.1:8001", certificate-authority: ca.pem, insecure-skip-tls-verify: true}}]
users: [{name: u, user: {tokenFile: tok}}]
)");
  auto a = KubeconfigAccess(path);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->scheme, "http");
  EXPECT_EQ(a->port, "8001");
  EXPECT_EQ(a->ca_pem, "CA-PEM");
  EXPECT_TRUE(a->insecure_skip_tls_verify);
  EXPECT_EQ(a->Token(), "one");
  std::ofstream(token) << "two\n";
  EXPECT_EQ(a->Token(), "two");
}

TEST(ClusterAccessTest, KubeconfigErrorsNameTheMissingEntry) {
  std::string path = TempFile("kc3", R"(
current-context: c
contexts: [{name: c, context: {cluster: nowhere, user: u}}]
clusters: []
users: []
)");
  auto a = KubeconfigAccess(path);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.error().message.find("cluster 'nowhere'"), std::string::npos) << a.error().message;
  auto missing = KubeconfigAccess(path + ".absent");
  ASSERT_FALSE(missing.ok());
  auto cert_only = KubeconfigAccess(TempFile("kc4", R"(
current-context: c
contexts: [{name: c, context: {cluster: k, user: u}}]
clusters: [{name: k, cluster: {server: "https://h"}}]
users: [{name: u, user: {client-certificate-data: "QQ=="}}]
)"));
  ASSERT_FALSE(cert_only.ok());
  EXPECT_NE(cert_only.error().message.find("without its key"), std::string::npos);
}

TEST(ClusterAccessTest, InClusterNeedsTheEnvironment) {
  ::unsetenv("KUBERNETES_SERVICE_HOST");
  auto a = InClusterAccess("/nonexistent");
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.error().message.find("KUBERNETES_SERVICE_HOST"), std::string::npos);
}

TEST(WatchEventTest, SplitterCutsEventsAcrossArbitraryChunkBoundaries) {
  std::string stream =
      R"({"type":"ADDED","object":{"metadata":{"name":"a","resourceVersion":"5"},"s":"}{\"x"}})"
      "\n"
      R"({"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9"}}})"
      "\n";
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    WatchStreamSplitter splitter;
    std::vector<std::string> out;
    ASSERT_TRUE(splitter.Feed(stream.substr(0, cut), &out).ok());
    ASSERT_TRUE(splitter.Feed(stream.substr(cut), &out).ok());
    ASSERT_EQ(out.size(), 2u) << cut;
    auto first = ParseWatchEvent(out[0]);
    ASSERT_TRUE(first.ok()) << first.error().message;
    EXPECT_EQ(first->type, WatchEventType::kAdded);
    EXPECT_EQ(first->resource_version, "5");
    EXPECT_EQ(first->object["s"], "}{\"x");
    auto second = ParseWatchEvent(out[1]);
    ASSERT_TRUE(second.ok());
    EXPECT_EQ(second->type, WatchEventType::kBookmark);
    EXPECT_EQ(second->resource_version, "9");
    EXPECT_FALSE(splitter.partial());
  }
}

TEST(WatchEventTest, ErrorEventCarriesTheStatusCode) {
  auto ev = ParseWatchEvent(
      R"({"type":"ERROR","object":{"kind":"Status","code":410,"message":"too old resource version"}})");
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->type, WatchEventType::kError);
  EXPECT_EQ(ev->error_code, 410);
  EXPECT_EQ(ev->error_message, "too old resource version");
}

TEST(WatchEventTest, BadInputIsAnErrorNotACrash) {
  EXPECT_FALSE(ParseWatchEvent("{").ok());
  EXPECT_FALSE(ParseWatchEvent(R"({"type":"ADDED"})").ok());
  EXPECT_FALSE(ParseWatchEvent(R"({"type":"WHAT","object":{}})").ok());
  EXPECT_FALSE(ParseWatchEvent(R"({"type":"ADDED","object":{"metadata":{}}})").ok());
  WatchStreamSplitter splitter;
  std::vector<std::string> out;
  EXPECT_FALSE(splitter.Feed("garbage", &out).ok());
  EXPECT_FALSE(splitter.Feed("{}", &out).ok());  // stays failed
  WatchStreamSplitter small(16);
  EXPECT_FALSE(small.Feed(R"({"type":"ADDED","object":{}})", &out).ok());
}

TEST(ResourceTypeTest, PathsAndRbacRule) {
  ResourceType pods{"", "v1", "pods", "Pod", true};
  EXPECT_EQ(pods.CollectionPath(""), "/api/v1/pods");
  EXPECT_EQ(pods.CollectionPath("x"), "/api/v1/namespaces/x/pods");
  ResourceType pools{"inference.networking.k8s.io", "v1", "inferencepools", "InferencePool", true};
  EXPECT_EQ(pools.ObjectPath("ns", "p"),
            "/apis/inference.networking.k8s.io/v1/namespaces/ns/inferencepools/p");
  EXPECT_EQ(pools.Id(), "inferencepools.inference.networking.k8s.io");
  EXPECT_EQ(RbacRule(pools, "\"list\""),
            "{apiGroups: [\"inference.networking.k8s.io\"], resources: [\"inferencepools\"], "
            "verbs: [\"list\"]}");
  ResourceType classes{"gateway.networking.k8s.io", "v1", "gatewayclasses", "GatewayClass", false};
  EXPECT_EQ(classes.CollectionPath("x"), "/apis/gateway.networking.k8s.io/v1/gatewayclasses");
}

TEST(TrimObjectTest, PodKeepsWhatTheDecoderReadsAndTerminatingPodsAreDropped) {
  ResourceType pods{"", "v1", "pods", "Pod", true};
  json pod = json::parse(R"({
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "p", "namespace": "n", "labels": {"app": "x"}, "resourceVersion": "7",
                 "managedFields": [{"manager": "kubelet"}]},
    "spec": {"nodeName": "node", "containers": [{"name": "c", "image": "i",
             "ports": [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]}]},
    "status": {"podIP": "10.1.2.3", "phase": "Running", "hostIP": "1.1.1.1",
               "conditions": [{"type": "Ready", "status": "True", "lastProbeTime": null},
                              {"type": "Initialized", "status": "True"}]}})");
  ASSERT_TRUE(TrimObject(pods, &pod));
  EXPECT_FALSE(pod["metadata"].contains("managedFields"));
  EXPECT_FALSE(pod["metadata"].contains("resourceVersion"));
  EXPECT_FALSE(pod["spec"].contains("nodeName"));
  EXPECT_EQ(pod["spec"]["containers"][0]["ports"][0]["containerPort"], 8000);
  EXPECT_EQ(pod["status"]["conditions"].size(), 1u);
  EXPECT_FALSE(pod["status"].contains("hostIP"));

  json terminating = json::parse(
      R"({"metadata": {"name": "p", "deletionTimestamp": "2026-01-01T00:00:00Z"}, "status": {}})");
  EXPECT_FALSE(TrimObject(pods, &terminating));

  ResourceType routes{"gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute", true};
  json route = json::parse(R"({"metadata": {"name": "r"}, "spec": {}, "status": {"parents": []}})");
  ASSERT_TRUE(TrimObject(routes, &route));
  EXPECT_FALSE(route.contains("status"));
}

// What the provider feeds the loader: one source per object, JSON text.
std::vector<config::ConfigSource> Sources(
    const std::vector<std::pair<std::string, std::string>>& s) {
  std::vector<config::ConfigSource> out;
  for (const auto& [name, text] : s) out.push_back({name, text});
  return out;
}

const std::string kGateway =
    R"({"apiVersion":"gateway.networking.k8s.io/v1","kind":"Gateway","metadata":{"name":"gw","namespace":"default","generation":2},"spec":{"gatewayClassName":"infergate","listeners":[{"name":"web","port":0,"protocol":"HTTP"}]}})";
const std::string kPool =
    R"({"apiVersion":"inference.networking.k8s.io/v1","kind":"InferencePool","metadata":{"name":"pool","namespace":"default"},"spec":{"selector":{"matchLabels":{"app":"vllm"}},"targetPorts":[{"number":8000}],"endpointPickerRef":{"name":"epp","port":{"number":9002}}}})";
const std::string kGoodRoute =
    R"({"apiVersion":"gateway.networking.k8s.io/v1","kind":"HTTPRoute","metadata":{"name":"good","namespace":"default","generation":1},"spec":{"parentRefs":[{"name":"gw"}],"rules":[{"matches":[{"path":{"type":"PathPrefix","value":"/"}}],"backendRefs":[{"group":"inference.networking.k8s.io","kind":"InferencePool","name":"pool"}]}]}})";
const std::string kBadRoute =
    R"({"apiVersion":"gateway.networking.k8s.io/v1","kind":"HTTPRoute","metadata":{"name":"bad","namespace":"default","generation":3},"spec":{"parentRefs":[{"name":"gw"}],"rules":[{"matches":[{"path":{"type":"PathPrefix","value":"/bad"}}],"backendRefs":[{"group":"inference.networking.k8s.io","kind":"InferencePool","name":"nope"}]}]}})";

TEST(SkipInvalidTest, OneInvalidObjectIsLeftOutAndTheRestLoads) {
  auto load = config::LoadConfigSkippingInvalid(Sources({{"kube:gw", kGateway},
                                                         {"kube:pool", kPool},
                                                         {"kube:good", kGoodRoute},
                                                         {"kube:bad", kBadRoute}}),
                                                {.log_notices = false});
  ASSERT_TRUE(load.ok()) << load.error().message;
  ASSERT_EQ(load->rejected.size(), 1u);
  EXPECT_EQ(load->rejected[0].name, "kube:bad");
  ASSERT_FALSE(load->rejected[0].errors.empty());
  EXPECT_NE(load->rejected[0].errors[0].find("InferencePool \"nope\" not found"), std::string::npos)
      << load->rejected[0].errors[0];
  ASSERT_EQ(load->snapshot->gateways.size(), 1u);
  EXPECT_EQ(load->snapshot->gateways[0].listeners[0].rules.size(), 1u);
}

TEST(SkipInvalidTest, LeavingAnObjectOutLeavesOutWhatDependsOnIt) {
  std::string bad_pool = kPool;
  bad_pool.replace(bad_pool.find("\"number\":8000"), 13, "\"number\":0");
  auto load = config::LoadConfigSkippingInvalid(
      Sources({{"kube:gw", kGateway}, {"kube:pool", bad_pool}, {"kube:good", kGoodRoute}}),
      {.log_notices = false});
  ASSERT_TRUE(load.ok()) << load.error().message;
  std::set<std::string> names;
  for (const auto& r : load->rejected) names.insert(r.name);
  EXPECT_EQ(names, (std::set<std::string>{"kube:pool", "kube:good"}));
  EXPECT_EQ(load->snapshot->pools.size(), 0u);
}

TEST(EndpointSliceTest, ServicesResolveThroughReadyEndpointsOfTheirSlices) {
  const std::string route =
      R"({"apiVersion":"gateway.networking.k8s.io/v1","kind":"HTTPRoute","metadata":{"name":"plain"},"spec":{"parentRefs":[{"name":"gw"}],"rules":[{"backendRefs":[{"name":"svc","port":80}]}]}})";
  const std::string svc =
      R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"svc"},"spec":{"selector":{"app":"x"},"ports":[{"name":"http","port":80,"targetPort":"http"}]}})";
  const std::string slice =
      R"({"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"svc-abc","labels":{"kubernetes.io/service-name":"svc"}},"addressType":"IPv4","ports":[{"name":"http","port":8080,"protocol":"TCP"}],"endpoints":[{"addresses":["10.0.0.1"],"conditions":{"ready":true},"targetRef":{"kind":"Pod","name":"a"}},{"addresses":["10.0.0.2"],"conditions":{"ready":false},"targetRef":{"kind":"Pod","name":"b"}},{"addresses":["10.0.0.3"],"conditions":{"ready":true,"terminating":true},"targetRef":{"kind":"Pod","name":"c"}},{"addresses":["10.0.0.4"],"targetRef":{"kind":"Pod","name":"d"}}]})";
  // A Pod the selector picks but no slice lists: ignored in this mode.
  const std::string pod =
      R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"e","labels":{"app":"x"}},"spec":{"containers":[{"name":"c","ports":[{"name":"http","containerPort":8080}]}]},"status":{"podIP":"10.0.0.5"}})";
  config::LoadOptions lo;
  lo.log_notices = false;
  lo.service_endpoints_from_slices = true;
  auto load = config::LoadConfigSkippingInvalid(
      Sources({{"g", kGateway}, {"r", route}, {"s", svc}, {"e", slice}, {"p", pod}}), lo);
  ASSERT_TRUE(load.ok()) << load.error().message;
  ASSERT_TRUE(load->rejected.empty()) << load->rejected[0].errors[0];
  const auto& backend = *load->snapshot->gateways[0].listeners[0].rules[0].backends[0].backend;
  std::vector<std::string> ids;
  for (const auto& e : backend.endpoints) ids.push_back(e.id);
  EXPECT_EQ(ids, (std::vector<std::string>{"10.0.0.1:8080", "10.0.0.4:8080"}));
  EXPECT_EQ(backend.unavailable.size(), 2u);

  lo.service_endpoints_from_slices = false;
  auto file_mode = config::LoadConfigSkippingInvalid(
      Sources({{"g", kGateway}, {"r", route}, {"s", svc}, {"p", pod}}), lo);
  ASSERT_TRUE(file_mode.ok());
  EXPECT_EQ(
      file_mode->snapshot->gateways[0].listeners[0].rules[0].backends[0].backend->endpoints[0].id,
      "10.0.0.5:8080");
}

const json* FindCondition(const json& conditions, const std::string& type) {
  for (const auto& c : conditions) {
    if (c["type"] == type) return &c;
  }
  return nullptr;
}

TEST(StatusTest, ConditionsFollowGatewayApiAndGieReasons) {
  auto load = config::LoadConfigSkippingInvalid(Sources({{"kube:gw", kGateway},
                                                         {"kube:pool", kPool},
                                                         {"kube:good", kGoodRoute},
                                                         {"kube:bad", kBadRoute}}),
                                                {.log_notices = false});
  ASSERT_TRUE(load.ok());
  StatusInputs in;
  in.controller_name = "infergate.io/gateway-controller";
  in.addresses = {"10.9.8.7"};
  in.now = "2026-12-07T00:00:00Z";
  in.snapshot = load->snapshot.get();
  in.rejected = load->rejected;
  in.gateways = {{"kube:gw", json::parse(kGateway)}};
  in.routes = {{"kube:good", json::parse(kGoodRoute)}, {"kube:bad", json::parse(kBadRoute)}};
  in.pools = {{"kube:pool", json::parse(kPool)}};
  auto updates = ComputeStatusUpdates(in);
  std::map<std::string, json> by_name;
  for (const auto& u : updates) by_name[u.kind + "/" + u.name] = u.status;
  ASSERT_EQ(by_name.size(), 4u);

  const json& gw = by_name["Gateway/gw"];
  EXPECT_EQ(gw["addresses"][0], (json{{"type", "IPAddress"}, {"value", "10.9.8.7"}}));
  EXPECT_EQ((*FindCondition(gw["conditions"], "Programmed"))["status"], "True");
  EXPECT_EQ((*FindCondition(gw["conditions"], "Accepted"))["observedGeneration"], 2);
  EXPECT_EQ(gw["listeners"][0]["attachedRoutes"], 1);

  const json& good = by_name["HTTPRoute/good"]["parents"][0];
  EXPECT_EQ(good["controllerName"], "infergate.io/gateway-controller");
  EXPECT_EQ(good["parentRef"]["name"], "gw");
  EXPECT_EQ((*FindCondition(good["conditions"], "Accepted"))["status"], "True");
  EXPECT_EQ((*FindCondition(good["conditions"], "ResolvedRefs"))["reason"], "ResolvedRefs");

  const json& bad = by_name["HTTPRoute/bad"]["parents"][0];
  EXPECT_EQ((*FindCondition(bad["conditions"], "Accepted"))["status"], "True");
  const json* refs = FindCondition(bad["conditions"], "ResolvedRefs");
  EXPECT_EQ((*refs)["status"], "False");
  EXPECT_EQ((*refs)["reason"], "BackendNotFound");
  EXPECT_EQ((*refs)["observedGeneration"], 3);
  EXPECT_EQ((*refs)["lastTransitionTime"], "2026-12-07T00:00:00Z");

  const json& pool = by_name["InferencePool/pool"]["parents"][0];
  EXPECT_EQ(pool["parentRef"]["kind"], "Gateway");
  EXPECT_EQ((*FindCondition(pool["conditions"], "Accepted"))["status"], "True");
  // The endpoint picker Service "epp" is not among the watched Services.
  EXPECT_EQ((*FindCondition(pool["conditions"], "ResolvedRefs"))["reason"], "InvalidExtensionRef");

  // Written back, the same state computes to no update, and old transition times stay.
  for (auto& w : in.gateways) w.object["status"] = by_name["Gateway/gw"];
  in.routes[0].object["status"] = by_name["HTTPRoute/good"];
  in.routes[1].object["status"] = by_name["HTTPRoute/bad"];
  in.pools[0].object["status"] = by_name["InferencePool/pool"];
  in.now = "2026-12-07T01:00:00Z";
  EXPECT_TRUE(ComputeStatusUpdates(in).empty());
}

TEST(StatusTest, OtherControllersEntriesAreKept) {
  json route = json::parse(kGoodRoute);
  route["status"] = json::parse(
      R"({"parents":[{"parentRef":{"name":"other"},"controllerName":"example.com/other","conditions":[]}]})");
  auto load = config::LoadConfigSkippingInvalid(
      Sources({{"kube:gw", kGateway}, {"kube:pool", kPool}, {"kube:good", kGoodRoute}}),
      {.log_notices = false});
  ASSERT_TRUE(load.ok());
  StatusInputs in;
  in.controller_name = "infergate.io/gateway-controller";
  in.now = "t";
  in.snapshot = load->snapshot.get();
  in.gateways = {{"kube:gw", json::parse(kGateway)}};
  in.routes = {{"kube:good", route}};
  auto updates = ComputeStatusUpdates(in);
  for (const auto& u : updates) {
    if (u.kind != "HTTPRoute") continue;
    ASSERT_EQ(u.status["parents"].size(), 2u);
    EXPECT_EQ(u.status["parents"][0]["controllerName"], "example.com/other");
  }
}

}  // namespace
}  // namespace infergate::kube
