// `infergate serve --kubeconfig` against the fake API server, with load running through
// the gateway to `infergate sim` servers while the cluster changes under it: a pod goes
// unready, a pod is deleted while the watch is cut, the server answers 410 and the
// provider relists, a pod is added (scale up) and a pod changes IP. Asserted: no request
// reaches a removed endpoint after 1 s, every request of the load succeeds, status
// conditions are written with the right reasons, and a missing RBAC rule is reported
// without stopping the rest.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "tests/kube/kube_fixture.h"
#include "tests/support/process.h"

namespace infergate::testing {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

// Requests a sim has finished (vllm:request_success_total over every reason).
long Finished(const std::string& address, int port) {
  auto r = HttpRequest(address, port, "GET", "/metrics", "", {}, 5s);
  long total = 0;
  std::size_t pos = 0;
  const std::string name = "vllm:request_success_total{";
  while ((pos = r.body.find(name, pos)) != std::string::npos) {
    auto space = r.body.find("} ", pos);
    if (space == std::string::npos) break;
    total += std::atol(r.body.c_str() + space + 2);
    pos = space;
  }
  return total;
}

template <class F>
bool Eventually(F f, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (f()) return true;
    std::this_thread::sleep_for(25ms);
  }
  return f();
}

TEST(ServeKubernetesTest, EndpointsFollowTheClusterUnderLoadAndStatusIsWritten) {
  FakeApiServer api;
  RegisterWatchedTypes(api);
  api.RequireToken("t0ken-abc");
  api.Forbid("inferencemodels");  // RBAC rule missing for one resource
  ASSERT_TRUE(api.Start());

  std::vector<std::string> addr;
  for (int i = 0; i < 4; ++i) addr.push_back(UniqueLoopbackAddress());
  const int port = FreePort(addr[0]);
  std::vector<std::unique_ptr<ChildProcess>> sims;
  for (int i = 0; i < 4; ++i) {
    auto s = std::make_unique<ChildProcess>();
    ASSERT_TRUE(
        s->Start({INFERGATE_BIN, "sim", "--host", addr[i], "--port", std::to_string(port),
                  "--profile", "tiny", "--model", "base", "--time-scale", "50", "--workers", "1"}));
    ASSERT_TRUE(s->WaitForLine("listening", 10s).has_value());
    sims.push_back(std::move(s));
  }

  const std::string gw_address = UniqueLoopbackAddress();
  api.Apply(GatewayClassObject());
  api.Apply(GatewayObject(gw_address));
  api.Apply(PoolObject(port));
  api.Apply(RouteObject("route", "pool"));
  api.Apply(RouteObject("bad-route", "missing-pool", "/bad"));  // an invalid object
  for (int i = 0; i < 3; ++i) api.Apply(PodObject("pod-" + std::to_string(i), addr[i], true, port));

  ChildProcess gateway;
  std::string kubeconfig = WriteKubeconfig(TempDir(), api.url(), "t0ken-abc");
  ASSERT_TRUE(gateway.Start(
      {INFERGATE_BIN, "serve", "--kubeconfig", kubeconfig, "--workers", "2", "--admin-address",
       gw_address + ":0", "--status-address", "192.0.2.7", "--scrape-interval", "0.05"},
      /*capture_stderr=*/true));
  auto line = gateway.WaitForLine("listening default/gw/web", 15s);
  ASSERT_TRUE(line.has_value()) << gateway.output();
  const int gw_port = std::stoi(line->substr(line->rfind(':') + 1));

  // Load: two clients sending small completions back to back.
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::string first_failure;
  std::mutex failure_mu;
  std::vector<std::thread> clients;
  for (int c = 0; c < 2; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; !stop; ++i) {
        std::string body = R"({"model":"base","prompt":"hello )" + std::to_string(c * 100000 + i) +
                           R"(","max_tokens":2})";
        auto r = HttpRequest(gw_address, gw_port, "POST", "/v1/completions", body, {}, 10s);
        if (r.status == 200) {
          ++ok;
        } else {
          ++failed;
          std::lock_guard lock(failure_mu);
          if (first_failure.empty())
            first_failure = std::to_string(r.status) + " " + r.error + r.body;
        }
      }
    });
  }
  auto stop_load = [&] {
    stop = true;
    for (auto& t : clients) t.join();
    clients.clear();
  };

  // The route whose backend is missing is served: its requests get 500 (not 404).
  auto bad_backend = HttpRequest(gw_address, gw_port, "POST", "/bad/v1/completions",
                                 R"({"model":"base","prompt":"x"})", {}, 5s);
  EXPECT_EQ(bad_backend.status, 500) << bad_backend.body;

  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(Eventually([&] { return Finished(addr[i], port) > 0; }, 10s))
        << "sim " << i << " got no request\n"
        << gateway.output();
  }

  // Until the first scrape of its endpoints a pool has no fresh metrics and its failure
  // mode (FailClose) answers 503: the count starts once every endpoint has served.
  ok = 0;
  failed = 0;
  {
    std::lock_guard lock(failure_mu);
    first_failure.clear();
  }

  // 1. pod-2 goes unready: nothing reaches it 1 s later.
  api.Apply(PodObject("pod-2", addr[2], false, port));
  std::this_thread::sleep_for(1s);
  const long unready_at = Finished(addr[2], port);

  // 2. The watch is cut, and pod-1 is deleted while it is down.
  api.CutWatches();
  api.Delete("v1", "Pod", "default", "pod-1");
  std::this_thread::sleep_for(1s);
  const long deleted_at = Finished(addr[1], port);
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(Finished(addr[2], port), unready_at) << "the unready pod got requests";
  EXPECT_EQ(Finished(addr[1], port), deleted_at) << "the deleted pod got requests";

  // 3. The history is compacted and the watch cut again: the provider gets 410 and
  //    relists; meanwhile the pool scales up (pod-3) and pod-0 moves to pod-2's address.
  const int lists_before = api.count("list pods");
  api.Compact();
  api.CutWatches();
  api.Delete("v1", "Pod", "default", "pod-2");
  api.Apply(PodObject("pod-3", addr[3], true, port));
  // pod-0 moves once pod-3 serves (a rollout keeps a scraped endpoint in the pool).
  ASSERT_TRUE(Eventually([&] { return Finished(addr[3], port) > 0; }, 5s));
  api.Apply(PodObject("pod-0", addr[2], true, port));
  std::this_thread::sleep_for(1s);
  const long moved_at = Finished(addr[0], port);
  const long new_ip_at = Finished(addr[2], port);
  const long scaled_at = Finished(addr[3], port);  // pod-3 keeps getting requests
  std::this_thread::sleep_for(1500ms);
  stop_load();

  EXPECT_EQ(Finished(addr[0], port), moved_at) << "the old address of a moved pod got requests";
  EXPECT_GT(Finished(addr[2], port), new_ip_at) << "the moved pod's new address got nothing";
  EXPECT_GT(Finished(addr[3], port), scaled_at) << "the new pod got nothing";
  EXPECT_EQ(Finished(addr[1], port), deleted_at);
  EXPECT_GE(api.count("gone pods"), 1);
  EXPECT_GT(api.count("list pods"), lists_before);
  EXPECT_EQ(failed.load(), 0) << first_failure;
  EXPECT_GT(ok.load(), 50);

  // Status, as a gateway controller writes it.
  json gw = api.Get("gateway.networking.k8s.io/v1", "Gateway", "default", "gw")["status"];
  EXPECT_EQ(gw["addresses"][0]["value"], "192.0.2.7");
  EXPECT_EQ(Condition(gw["conditions"], "Programmed")["status"], "True");
  EXPECT_EQ(Condition(gw["listeners"][0]["conditions"], "Accepted")["status"], "True");
  json good = api.Get("gateway.networking.k8s.io/v1", "HTTPRoute", "default", "route")["status"];
  EXPECT_EQ(Condition(good["parents"][0]["conditions"], "Accepted")["reason"], "Accepted");
  json bad = api.Get("gateway.networking.k8s.io/v1", "HTTPRoute", "default", "bad-route")["status"];
  json refs = Condition(bad["parents"][0]["conditions"], "ResolvedRefs");
  EXPECT_EQ(refs["status"], "False");
  EXPECT_EQ(refs["reason"], "BackendNotFound");
  json pool =
      api.Get("inference.networking.k8s.io/v1", "InferencePool", "default", "pool")["status"];
  EXPECT_EQ(Condition(pool["parents"][0]["conditions"], "Accepted")["status"], "True");

  gateway.Signal(SIGTERM);
  EXPECT_EQ(gateway.Wait(15s), 0);
  gateway.Drain(500ms);
  const std::string out = gateway.output();
  EXPECT_NE(out.find("cannot list inferencemodels.inference.networking.x-k8s.io in all "
                     "namespaces: 403 Forbidden"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find("t0ken-abc"), std::string::npos) << "the token was logged";
  for (auto& s : sims) s->Stop();
  api.Stop();
}

}  // namespace
}  // namespace infergate::testing
