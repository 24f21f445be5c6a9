// `infergate epp --kubeconfig --pool-name --pool-namespace` against the fake API server,
// with a client playing Envoy's ext_proc filter over real gRPC and model server
// stand-ins: the pool named by flags is served from the API server, its endpoints follow
// the Pods (a pod that goes unready or is deleted is no longer picked 1 s later), only
// the kinds the pool needs are watched, and no status is written (the gateway in front
// writes it).
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <map>
#include <thread>

#include "tests/extproc/envoy_client.h"
#include "tests/kube/kube_fixture.h"
#include "tests/support/process.h"

namespace infergate::testing {
namespace {

using namespace std::chrono_literals;
using extproc::testing::ConnectEpp;
using extproc::testing::EnvoyStream;
using extproc::testing::Routed;
using json = nlohmann::json;

struct Upstream {
  std::string address;
  int port = 0;
  ChildProcess process;
};

TEST(EppKubernetesTest, ServesThePoolNamedByFlagsAndFollowsPods) {
  FakeApiServer api;
  RegisterWatchedTypes(api);
  api.RequireToken("epp-t0ken");
  ASSERT_TRUE(api.Start());

  std::vector<std::unique_ptr<Upstream>> ups;
  int port = 0;
  for (int i = 0; i < 2; ++i) {
    auto u = std::make_unique<Upstream>();
    u->address = UniqueLoopbackAddress();
    ASSERT_TRUE(u->process.Start({TEST_UPSTREAM_BIN, "--address", u->address, "--port",
                                  std::to_string(port), "--name", "s" + std::to_string(i),
                                  "--models", "base"}));
    auto line = u->process.WaitForLine("listening", 10s);
    ASSERT_TRUE(line.has_value());
    u->port = std::stoi(line->substr(line->rfind(':') + 1));
    port = u->port;
    ups.push_back(std::move(u));
  }
  auto endpoint = [&](int i) { return ups[i]->address + ":" + std::to_string(port); };

  api.Apply(PoolObject(port));
  // Another pool of the same name in another namespace: not the one named by the flags.
  auto other = PoolObject(port);
  other["metadata"]["namespace"] = "other";
  other["spec"]["selector"]["matchLabels"]["app"] = "elsewhere";
  api.Apply(other);
  for (int i = 0; i < 2; ++i) {
    api.Apply(PodObject("pod-" + std::to_string(i), ups[i]->address, true, port));
  }

  const std::string address = UniqueLoopbackAddress();
  ChildProcess epp;
  ASSERT_TRUE(epp.Start({INFERGATE_BIN,
                         "--log-level",
                         "warn",
                         "epp",
                         "--kubeconfig",
                         WriteKubeconfig(TempDir(), api.url(), "epp-t0ken"),
                         "--pool-name",
                         "pool",
                         "--pool-namespace",
                         "default",
                         "--workers",
                         "2",
                         "--grpc-address",
                         address,
                         "--grpc-port",
                         "0",
                         "--grpc-health-port",
                         "0",
                         "--metrics-address",
                         address + ":0",
                         "--scrape-interval",
                         "0.02"},
                        /*capture_stderr=*/true));
  auto ext = epp.WaitForLine("ext_proc ", 15s);
  ASSERT_TRUE(ext.has_value()) << epp.output();
  auto stub = ConnectEpp(ext->substr(ext->find(' ') + 1));

  // One request through the picker, its response relayed back: the chosen endpoint, or
  // "<status>" when it was refused.
  auto route = [&](int n) {
    EnvoyStream stream(*stub, 10s);
    Routed r = stream.RouteRequest(R"({"model":"base","prompt":"hello )" + std::to_string(n) +
                                   R"(","max_tokens":1})");
    if (r.status == 200) {
      stream.RelayResponse(200,
                           R"({"choices":[{"text":"x"}],"usage":{"prompt_tokens":2,)"
                           R"("completion_tokens":1,"total_tokens":3}})",
                           "", 7);
    }
    stream.CloseSend();
    stream.Finish();
    return r.status == 200 ? r.endpoint : std::to_string(r.status) + " " + r.error;
  };
  // The endpoints `n` requests went to, with counts.
  auto spread = [&](int n) {
    std::map<std::string, int> seen;
    for (int i = 0; i < n; ++i) ++seen[route(i)];
    return seen;
  };

  // Both pods serve (round robin), once scraped.
  std::map<std::string, int> seen;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    seen = spread(6);
    if (seen.count(endpoint(0)) && seen.count(endpoint(1))) break;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(seen.count(endpoint(0)) && seen.count(endpoint(1))) << epp.output();

  // pod-1 goes unready: 1 s later it is no longer picked.
  api.Apply(PodObject("pod-1", ups[1]->address, false, port));
  std::this_thread::sleep_for(1s);
  seen = spread(20);
  EXPECT_EQ(seen.count(endpoint(1)), 0u) << "the unready pod was picked";
  EXPECT_EQ(seen[endpoint(0)], 20);

  // pod-1 is ready again and pod-0 is deleted: 1 s later everything goes to pod-1.
  api.Apply(PodObject("pod-1", ups[1]->address, true, port));
  api.Delete("v1", "Pod", "default", "pod-0");
  std::this_thread::sleep_for(1s);
  seen = spread(20);
  EXPECT_EQ(seen.count(endpoint(0)), 0u) << "the deleted pod was picked";
  EXPECT_EQ(seen[endpoint(1)], 20);

  // Only what the pool needs is watched, in its namespace; no status is written.
  EXPECT_GE(api.count("list pods"), 1);
  EXPECT_GE(api.count("list inferencepools"), 1);
  EXPECT_EQ(api.count("list gateways"), 0);
  EXPECT_EQ(api.count("list httproutes"), 0);
  EXPECT_EQ(api.count("list services"), 0);
  EXPECT_TRUE(api.patches().empty());

  ASSERT_TRUE(epp.Signal(SIGTERM));
  EXPECT_EQ(epp.Wait(15s), 0) << epp.output();
  epp.Drain(500ms);
  EXPECT_EQ(epp.output().find("epp-t0ken"), std::string::npos) << "the token was logged";
  for (auto& u : ups) u->process.Stop();
  api.Stop();
}

// Without a pool name the Kubernetes mode refuses to start, naming the flag.
TEST(EppKubernetesTest, NeedsAPoolName) {
  FakeApiServer api;
  RegisterWatchedTypes(api);
  ASSERT_TRUE(api.Start());
  auto out = RunCommand(
      {INFERGATE_BIN, "epp", "--kubeconfig", WriteKubeconfig(TempDir(), api.url(), "x"),
       "--grpc-port", "0", "--grpc-health-port", "0", "--metrics-address", "127.0.0.1:0"},
      TempDir(), std::chrono::seconds(20));
  EXPECT_EQ(out.code, 2);
  EXPECT_NE(out.err.find("--pool-name"), std::string::npos) << out.err;
  api.Stop();
}

}  // namespace
}  // namespace infergate::testing
