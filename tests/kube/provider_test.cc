// The provider against the fake API server, in process: list + watch, pagination, a cut
// watch, 410 Gone, missing RBAC, invalid objects and the status it writes.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <sstream>
#include <thread>

#include "kube/provider.h"
#include "tests/kube/kube_fixture.h"

namespace infergate::testing {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

class ProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RegisterWatchedTypes(api_);
    api_.RequireToken("s3cret-token");
    ASSERT_TRUE(api_.Start());
    log_ = std::make_shared<std::ostringstream>();
    sink_ = std::make_shared<spdlog::sinks::ostream_sink_mt>(*log_);
    spdlog::default_logger()->sinks().push_back(sink_);
    api_.Apply(GatewayClassObject());
    api_.Apply(GatewayObject("127.0.0.1"));
    api_.Apply(PoolObject(8000));
    api_.Apply(RouteObject("route", "pool"));
    for (int i = 0; i < 5; ++i) {
      api_.Apply(
          PodObject("pod-" + std::to_string(i), "10.0.0." + std::to_string(i + 1), true, 8000));
    }
  }
  void TearDown() override {
    if (provider_) provider_->Stop();
    api_.Stop();
    auto& sinks = spdlog::default_logger()->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
  }

  void StartProvider() {
    auto access =
        kube::KubeconfigAccess(WriteKubeconfig(::testing::TempDir(), api_.url(), "s3cret-token"));
    ASSERT_TRUE(access.ok()) << access.error().message;
    kube::ProviderOptions o;
    o.access = *access;
    o.status_addresses = {"192.0.2.10"};
    o.debounce = 50 * kNanosPerMilli;
    o.initial_sync_timeout = 10 * kNanosPerSecond;
    o.reflector.page_size = 2;
    o.reflector.watch_timeout_seconds = 5;
    o.reflector.backoff_min = 50 * kNanosPerMilli;
    o.reflector.backoff_max = 1 * kNanosPerSecond;
    auto p = kube::KubernetesProvider::Create(o);
    ASSERT_TRUE(p.ok()) << p.error().message;
    provider_ = std::move(*p);
    auto first = provider_->Start();
    ASSERT_TRUE(first.ok()) << first.error().message;
    latest_ = *first;
    provider_->Follow([this](std::shared_ptr<const config::ConfigSnapshot> s) {
      std::lock_guard lock(mu_);
      latest_ = std::move(s);
      cv_.notify_all();
      return Ok();
    });
  }

  // The ready endpoint ids of the pool in the latest snapshot.
  std::vector<std::string> ReadyEndpoints() {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    if (!latest_) return out;
    if (const auto* pool = latest_->FindPool("default", "pool")) {
      for (const auto& e : pool->endpoints) {
        if (e.ready) out.push_back(e.id);
      }
    }
    return out;
  }

  // Waits until the pool's ready endpoints are `want` (or 5 s pass).
  bool WaitForEndpoints(const std::vector<std::string>& want) {
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (ReadyEndpoints() == want) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  template <class F>
  static bool Eventually(F f, std::chrono::milliseconds limit = 5000ms) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (f()) return true;
      std::this_thread::sleep_for(20ms);
    }
    return f();
  }

  FakeApiServer api_;
  std::unique_ptr<kube::KubernetesProvider> provider_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::shared_ptr<const config::ConfigSnapshot> latest_;
  std::shared_ptr<std::ostringstream> log_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
};

const std::vector<std::string> kAllFive = {"10.0.0.1:8000", "10.0.0.2:8000", "10.0.0.3:8000",
                                           "10.0.0.4:8000", "10.0.0.5:8000"};

TEST_F(ProviderTest, ListsPaginatedThenFollowsTheWatch) {
  StartProvider();
  EXPECT_EQ(ReadyEndpoints(), kAllFive);
  // 5 pods at 2 per page: 3 list requests.
  EXPECT_EQ(api_.count("list pods"), 3);
  ASSERT_TRUE(Eventually([&] { return api_.count("watch pods") >= 1; }));

  api_.Delete("v1", "Pod", "default", "pod-4");
  EXPECT_TRUE(
      WaitForEndpoints({"10.0.0.1:8000", "10.0.0.2:8000", "10.0.0.3:8000", "10.0.0.4:8000"}));
  api_.Apply(PodObject("pod-3", "10.0.0.4", false, 8000));  // unready
  EXPECT_TRUE(WaitForEndpoints({"10.0.0.1:8000", "10.0.0.2:8000", "10.0.0.3:8000"}));
  api_.Apply(PodObject("pod-2", "10.0.0.33", true, 8000));  // a new IP
  EXPECT_TRUE(WaitForEndpoints({"10.0.0.1:8000", "10.0.0.2:8000", "10.0.0.33:8000"}));
  // A terminating pod (deletionTimestamp set, still Ready) gets nothing.
  auto terminating = PodObject("pod-1", "10.0.0.2", true, 8000);
  terminating["metadata"]["deletionTimestamp"] = "2026-12-07T00:00:00Z";
  api_.Apply(terminating);
  EXPECT_TRUE(WaitForEndpoints({"10.0.0.1:8000", "10.0.0.33:8000"}));
  // Nothing was listed again: all of it came through the watch.
  EXPECT_EQ(api_.count("list pods"), 3);
}

TEST_F(ProviderTest, ACutWatchResumesFromTheLastVersionWithoutRelisting) {
  StartProvider();
  ASSERT_TRUE(Eventually([&] { return api_.count("watch pods") >= 1; }));
  int watches = api_.count("watch pods");
  api_.CutWatches();
  api_.Delete("v1", "Pod", "default", "pod-0");  // while the watch is down
  EXPECT_TRUE(
      WaitForEndpoints({"10.0.0.2:8000", "10.0.0.3:8000", "10.0.0.4:8000", "10.0.0.5:8000"}));
  EXPECT_GT(api_.count("watch pods"), watches);
  EXPECT_EQ(api_.count("list pods"), 3);
  EXPECT_EQ(api_.count("gone pods"), 0);
}

TEST_F(ProviderTest, GoneRelistsBothAsErrorEventAndAsHttpStatus) {
  StartProvider();
  ASSERT_TRUE(Eventually([&] { return api_.count("watch pods") >= 1; }));
  for (bool as_http : {false, true}) {
    SCOPED_TRACE(as_http ? "HTTP 410" : "ERROR event 410");
    api_.SetGoneAsHttp(as_http);
    int lists = api_.count("list pods");
    int gone = api_.count("gone pods");
    int watches = api_.count("watch pods");
    api_.CutWatches();
    api_.Compact();  // the version the reflector resumes from is now too old
    api_.Apply(
        PodObject(as_http ? "pod-6" : "pod-5", as_http ? "10.0.0.7" : "10.0.0.6", true, 8000));
    ASSERT_TRUE(Eventually([&] { return api_.count("gone pods") > gone; }));
    ASSERT_TRUE(Eventually([&] { return api_.count("list pods") > lists; }));
    // The relist is over (its pages all read) once a new watch starts from it: the
    // watch that got 410, then this one.
    ASSERT_TRUE(Eventually([&] { return api_.count("watch pods") >= watches + 2; }));
  }
  auto want = kAllFive;
  want.push_back("10.0.0.6:8000");
  want.push_back("10.0.0.7:8000");
  EXPECT_TRUE(WaitForEndpoints(want));
}

TEST_F(ProviderTest, MissingRbacIsAClearErrorRetriedWithBackoff) {
  api_.Forbid("inferencemodels");
  StartProvider();
  // The rest works.
  EXPECT_EQ(ReadyEndpoints(), kAllFive);
  std::this_thread::sleep_for(1500ms);
  int attempts = api_.count("forbidden inferencemodels");
  EXPECT_GE(attempts, 2);
  EXPECT_LE(attempts, 12);  // backoff from 50 ms doubling to 1 s, not a hot loop
  std::string log = log_->str();
  EXPECT_NE(log.find("cannot list inferencemodels.inference.networking.x-k8s.io in all "
                     "namespaces: 403 Forbidden"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("resources: [\"inferencemodels\"], verbs: [\"get\", \"list\", \"watch\"]"),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("s3cret-token"), std::string::npos);  // never logged
  api_.Forbid("inferencemodels", false);
  ASSERT_TRUE(Eventually([&] { return api_.count("list inferencemodels") >= 1; }, 3000ms));
}

TEST_F(ProviderTest, WrongTokenIsUnauthorizedAndStartFails) {
  api_.RequireToken("another");
  auto access =
      kube::KubeconfigAccess(WriteKubeconfig(::testing::TempDir(), api_.url(), "s3cret-token"));
  ASSERT_TRUE(access.ok());
  kube::ProviderOptions o;
  o.access = *access;
  o.initial_sync_timeout = 1 * kNanosPerSecond;
  o.reflector.backoff_min = 50 * kNanosPerMilli;
  auto p = kube::KubernetesProvider::Create(o);
  ASSERT_TRUE(p.ok());
  auto first = (*p)->Start();
  EXPECT_FALSE(first.ok());
  (*p)->Stop();
  EXPECT_NE(log_->str().find("401 Unauthorized"), std::string::npos);
}

TEST_F(ProviderTest, InvalidObjectsAreReportedOnStatusAndTheRestServes) {
  api_.Apply(RouteObject("bad-ref", "nope", "/bad"));
  auto invalid = RouteObject("bad-field", "pool", "/x");
  invalid["spec"]["rules"][0]["backendRefs"][0]["weight"] = -5;
  api_.Apply(invalid);
  StartProvider();
  EXPECT_EQ(ReadyEndpoints(), kAllFive);
  {
    std::lock_guard lock(mu_);
    ASSERT_EQ(latest_->gateways.size(), 1u);
    // bad-field is left out; bad-ref keeps its rule, whose backend answers 500.
    const auto& rules = latest_->gateways[0].listeners[0].rules;
    ASSERT_EQ(rules.size(), 2u);
    const config::RouteRule* bad = nullptr;
    for (const auto& r : rules) {
      if (r.route == "default/bad-ref") bad = &r;
    }
    ASSERT_NE(bad, nullptr);
    ASSERT_EQ(bad->backends.size(), 1u);
    EXPECT_EQ(bad->backends[0].backend, nullptr);
    ASSERT_EQ(bad->unresolved_backends.size(), 1u);
    EXPECT_EQ(bad->unresolved_backends[0],
              "InferencePool \"nope\" not found in namespace "
              "\"default\"");
  }
  auto parents = [&](const std::string& route) {
    return api_.Get("gateway.networking.k8s.io/v1", "HTTPRoute", "default",
                    route)["status"]["parents"];
  };
  ASSERT_TRUE(Eventually([&] {
    return parents("bad-ref").is_array() && parents("bad-field").is_array() &&
           parents("route").is_array();
  }));
  json refs = Condition(parents("bad-ref")[0]["conditions"], "ResolvedRefs");
  EXPECT_EQ(refs["status"], "False");
  EXPECT_EQ(refs["reason"], "BackendNotFound");
  EXPECT_NE(refs["message"].get<std::string>().find("InferencePool \"nope\" not found"),
            std::string::npos);
  EXPECT_EQ(refs["observedGeneration"], 1);
  EXPECT_EQ(Condition(parents("bad-ref")[0]["conditions"], "Accepted")["status"], "True");
  json accepted = Condition(parents("bad-field")[0]["conditions"], "Accepted");
  EXPECT_EQ(accepted["status"], "False");
  EXPECT_EQ(accepted["reason"], "UnsupportedValue");
  EXPECT_EQ(Condition(parents("route")[0]["conditions"], "Accepted")["status"], "True");
  EXPECT_EQ(parents("route")[0]["controllerName"], "infergate.io/gateway-controller");

  json gw = api_.Get("gateway.networking.k8s.io/v1", "Gateway", "default", "gw")["status"];
  EXPECT_EQ(gw["addresses"][0]["value"], "192.0.2.10");
  EXPECT_EQ(Condition(gw["conditions"], "Programmed")["status"], "True");
  EXPECT_EQ(gw["listeners"][0]["attachedRoutes"], 2);
  auto pool_status = [&] {
    return api_.Get("inference.networking.k8s.io/v1", "InferencePool", "default", "pool")["status"];
  };
  // Pools are patched after routes.
  ASSERT_TRUE(Eventually([&] { return pool_status()["parents"].is_array(); }));
  json pool = pool_status();
  EXPECT_EQ(pool["parents"][0]["parentRef"]["name"], "gw");
  EXPECT_EQ(Condition(pool["parents"][0]["conditions"], "Accepted")["status"], "True");
  EXPECT_EQ(Condition(pool["parents"][0]["conditions"], "ResolvedRefs")["status"], "True");

  // Fixing the object clears its error; status is written only when it changes.
  std::this_thread::sleep_for(300ms);
  std::size_t patches = api_.patches().size();
  api_.Apply(PoolObject(8000));  // unchanged spec: no new status
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(api_.patches().size(), patches);
  api_.Apply(RouteObject("bad-ref", "pool", "/bad"));
  ASSERT_TRUE(Eventually([&] {
    return Condition(parents("bad-ref")[0]["conditions"], "ResolvedRefs")["status"] == "True";
  }));
  EXPECT_EQ(Condition(parents("bad-ref")[0]["conditions"], "ResolvedRefs")["observedGeneration"],
            2);
}

TEST_F(ProviderTest, PoolSelectorWithMatchExpressionsFollowsPodLabels) {
  auto pool = PoolObject(8000);
  pool["spec"]["selector"] = json::parse(R"({"matchLabels":{"app":"sim"},"matchExpressions":[
      {"key":"tier","operator":"In","values":["gold","silver"]},
      {"key":"draining","operator":"DoesNotExist"}]})");
  api_.Apply(pool);
  auto labelled = [](int i, json labels) {
    auto pod = PodObject("pod-" + std::to_string(i), "10.0.0." + std::to_string(i + 1), true, 8000);
    for (auto& [k, v] : labels.items()) pod["metadata"]["labels"][k] = v;
    return pod;
  };
  api_.Apply(labelled(0, {{"tier", "gold"}}));
  api_.Apply(labelled(1, {{"tier", "silver"}}));
  api_.Apply(labelled(2, {{"tier", "bronze"}}));
  api_.Apply(labelled(3, {{"tier", "gold"}, {"draining", "true"}}));
  StartProvider();  // pod-4 has no tier: not selected
  EXPECT_EQ(ReadyEndpoints(), (std::vector<std::string>{"10.0.0.1:8000", "10.0.0.2:8000"}));
  // Label changes through the watch: pod-2 joins, pod-0 starts draining.
  api_.Apply(labelled(2, {{"tier", "silver"}}));
  api_.Apply(labelled(0, {{"tier", "gold"}, {"draining", "yes"}}));
  EXPECT_TRUE(WaitForEndpoints({"10.0.0.2:8000", "10.0.0.3:8000"}));
  // An invalid operator leaves the pool out, reported by name and field.
  pool["spec"]["selector"]["matchExpressions"][0]["operator"] = "Matches";
  api_.Apply(pool);
  EXPECT_TRUE(WaitForEndpoints({}));
  EXPECT_TRUE(Eventually([&] {
    return log_->str().find(
               "spec.selector.matchExpressions[0].operator: must be one of In, "
               "NotIn, Exists, DoesNotExist; got \"Matches\"") != std::string::npos;
  })) << log_->str();
}

TEST_F(ProviderTest, GatewaysOfOtherControllersAreIgnored) {
  auto other = GatewayObject("127.0.0.1");
  other["metadata"]["name"] = "theirs";
  other["spec"]["gatewayClassName"] = "someone-else";
  api_.Apply(other);
  StartProvider();
  std::lock_guard lock(mu_);
  ASSERT_EQ(latest_->gateways.size(), 1u);
  EXPECT_EQ(latest_->gateways[0].name, "gw");
}

// A certificateRef to a Secret and a backendRef to an InferencePool in other namespaces:
// refused (RefNotPermitted on the listener and on the route's parent) until
// ReferenceGrants in those namespaces allow them; the grants arrive through the watch
// and the same provider serves both without a restart. Deleting a grant refuses again.
TEST_F(ProviderTest, ReferenceGrantsOpenCrossNamespaceRefsWithoutRestart) {
  api_.AddType("v1", "Secret", "secrets");
  api_.AddType("gateway.networking.k8s.io/v1beta1", "ReferenceGrant", "referencegrants");
  auto gw = GatewayObject("127.0.0.1");
  gw["spec"]["listeners"].push_back(json::parse(R"({"name":"secure","port":0,"protocol":"HTTPS",
      "tls":{"certificateRefs":[{"name":"cert","namespace":"certs"}]}})"));
  api_.Apply(gw);
  api_.Apply(json::parse(R"({"apiVersion":"v1","kind":"Secret",
      "metadata":{"name":"cert","namespace":"certs"},"type":"kubernetes.io/tls",
      "data":{"tls.crt":"Q0VSVA==","tls.key":"S0VZ"}})"));
  auto pool = PoolObject(8000);
  pool["metadata"]["name"] = "pool2";
  pool["metadata"]["namespace"] = "models";
  api_.Apply(pool);
  auto cross = RouteObject("cross", "pool2", "/cross");
  cross["spec"]["rules"][0]["backendRefs"][0]["namespace"] = "models";
  api_.Apply(cross);
  StartProvider();

  auto secure = [&]() -> config::ResolvedListener {
    std::lock_guard lock(mu_);
    for (const auto& l : latest_->gateways.at(0).listeners) {
      if (l.name == "secure") return l;
    }
    return {};
  };
  auto cross_backend = [&]() -> std::string {
    std::lock_guard lock(mu_);
    for (const auto& r : latest_->gateways.at(0).listeners.at(0).rules) {
      if (r.route == "default/cross" && !r.backends.empty()) {
        return r.backends[0].backend ? r.backends[0].backend->id
                                     : "unresolved: " + r.unresolved_reasons.at(0);
      }
    }
    return "no rule";
  };
  auto listener_condition = [&](const std::string& type) {
    json status = api_.Get("gateway.networking.k8s.io/v1", "Gateway", "default", "gw")["status"];
    if (!status["listeners"].is_array()) return json();
    for (const auto& l : status["listeners"]) {
      if (l.value("name", "") == "secure") return Condition(l["conditions"], type);
    }
    return json();
  };
  auto route_refs = [&]() {
    json parents = api_.Get("gateway.networking.k8s.io/v1", "HTTPRoute", "default",
                            "cross")["status"]["parents"];
    return parents.is_array() && !parents.empty()
               ? Condition(parents[0]["conditions"], "ResolvedRefs")
               : json();
  };

  EXPECT_EQ(secure().refs_reason, "RefNotPermitted");
  EXPECT_TRUE(secure().certificates.empty());
  EXPECT_EQ(cross_backend(), "unresolved: RefNotPermitted");
  ASSERT_TRUE(Eventually([&] { return !listener_condition("ResolvedRefs").is_null(); }));
  EXPECT_EQ(listener_condition("ResolvedRefs")["status"], "False");
  EXPECT_EQ(listener_condition("ResolvedRefs")["reason"], "RefNotPermitted");
  EXPECT_EQ(listener_condition("Programmed")["status"], "False");
  ASSERT_TRUE(Eventually([&] { return !route_refs().is_null(); }));
  EXPECT_EQ(route_refs()["status"], "False");
  EXPECT_EQ(route_refs()["reason"], "RefNotPermitted");
  EXPECT_NE(
      route_refs()["message"].get<std::string>().find("no ReferenceGrant in namespace \"models\""),
      std::string::npos)
      << route_refs();

  api_.Apply(json::parse(R"({"apiVersion":"gateway.networking.k8s.io/v1beta1",
      "kind":"ReferenceGrant","metadata":{"name":"gateways","namespace":"certs"},
      "spec":{"from":[{"group":"gateway.networking.k8s.io","kind":"Gateway","namespace":"default"}],
              "to":[{"group":"","kind":"Secret","name":"cert"}]}})"));
  api_.Apply(json::parse(R"({"apiVersion":"gateway.networking.k8s.io/v1beta1",
      "kind":"ReferenceGrant","metadata":{"name":"routes","namespace":"models"},
      "spec":{"from":[{"group":"gateway.networking.k8s.io","kind":"HTTPRoute",
                       "namespace":"default"}],
              "to":[{"group":"inference.networking.k8s.io","kind":"InferencePool"}]}})"));
  EXPECT_TRUE(Eventually([&] { return secure().certificates.size() == 1; }));
  EXPECT_EQ(secure().not_served, "");
  EXPECT_EQ(secure().certificates.at(0).secret, "certs/cert");
  EXPECT_TRUE(Eventually([&] { return cross_backend() == "models/pool2"; })) << cross_backend();
  EXPECT_TRUE(Eventually([&] { return listener_condition("ResolvedRefs")["status"] == "True"; }))
      << listener_condition("ResolvedRefs");
  EXPECT_TRUE(Eventually([&] { return route_refs()["status"] == "True"; })) << route_refs();

  api_.Delete("gateway.networking.k8s.io/v1beta1", "ReferenceGrant", "models", "routes");
  EXPECT_TRUE(Eventually([&] { return cross_backend() == "unresolved: RefNotPermitted"; }))
      << cross_backend();
  EXPECT_TRUE(Eventually([&] { return route_refs()["reason"] == "RefNotPermitted"; }))
      << route_refs();
  EXPECT_TRUE(secure().not_served.empty());
}

}  // namespace
}  // namespace infergate::testing
