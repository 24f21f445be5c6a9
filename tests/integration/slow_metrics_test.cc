// Real servers answer /metrics late; the gateway must not fail requests for it.
//
// Simulated llama.cpp servers (`infergate sim --engine-api llamacpp --metrics-in-engine-
// loop`) answer /metrics only between engine steps, so every long batch of prompt chunks
// stalls their page for the whole step (~2 s here, beyond any scrape timeout). Behind a
// FailClose pool no request may fail, and the pool's routing must not lose to round-robin
// over the same servers.
//
// What makes the scenario bite: requests must arrive on their own (Poisson), not as
// others end. With a closed loop (a new request as soon as one ends) a request always
// arrives just as some server finishes a step, which is when that server's pending scrape
// is answered, so that server looks fresh and even a gateway that dropped late endpoints
// fails nothing. With independent arrivals and long steps, a request often lands while all
// three servers are mid-batch and their last scrapes timed out. Prompts of mixed length
// (200 to 3,000 tokens) are where routing matters: with equal prompts round-robin is about
// as good as any policy (earlier versions of this test measured 0.99-1.06x).
//
// History: the gateway from before late endpoints stayed candidates (commit 7556da1, one
// timed-out scrape made an endpoint stale) failed 5 of 14 open-loop requests of ~1,500
// tokens at 4 ms per token with 503 (no-fresh-metrics) in an earlier version of this test.

// Also: the gateway against each engine's real metric names (vLLM, llama.cpp, SGLang
// simulators), llama.cpp's slot count from /props, and the scrape-health metrics.
//
// INFERGATE_GATEWAY_BIN (environment) runs another build's gateway against the same
// simulators, e.g. to show that an older gateway fails the stall scenario:
//   mkdir -p /tmp/oldgw && git archive 7556da1 | tar -x -C /tmp/oldgw
//   cmake -S /tmp/oldgw -B /tmp/oldgw/build -G Ninja
//   cmake --build /tmp/oldgw/build --target infergate
// and with INFERGATE_GATEWAY_BIN=/tmp/oldgw/build/infergate in the environment
//   build/tests/integration/slow_metrics_integration_test --gtest_filter='*Stalling*'
// (Everything else, simulators and the benchmark client, is this build's.)
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "tests/support/process.h"

namespace infergate::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

std::string GatewayBin() {
  const char* env = std::getenv("INFERGATE_GATEWAY_BIN");
  return env && *env ? env : INFERGATE_BIN;
}

class SlowMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir();
    gw_address_ = UniqueLoopbackAddress();
  }

  // `n` simulators on their own addresses and one port, with `args`.
  void StartSims(int n, const std::vector<std::string>& args) {
    for (int i = 0; i < n; ++i) addresses_.push_back(UniqueLoopbackAddress());
    port_sim_ = FreePort(addresses_[0]);
    for (int i = 0; i < n; ++i) {
      auto p = std::make_unique<ChildProcess>();
      std::vector<std::string> argv = {
          INFERGATE_BIN, "--log-level", "warn",   "sim",
          "--host",      addresses_[i], "--port", std::to_string(port_sim_),
          "--model",     "base",        "--seed", std::to_string(i + 1)};
      argv.insert(argv.end(), args.begin(), args.end());
      ASSERT_TRUE(p->Start(argv));
      ASSERT_TRUE(p->WaitForLine("listening", 10s).has_value());
      sims_.push_back(std::move(p));
    }
  }

  // Gateway, an HTTPRoute to the InferencePool (FailClose) and, for requests with header
  // x-route: rr, to a Service over the same servers (round-robin); one Pod per server.
  void StartGateway(const std::string& engine_label = "") {
    std::string y =
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: gw\n"
        "  annotations:\n    infergate.io/bind-address: \"" +
        gw_address_ +
        "\"\nspec:\n  gatewayClassName: x\n  listeners:\n  - name: llm\n    protocol: HTTP\n"
        "    port: 0\n---\n"
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: r\n"
        "spec:\n  parentRefs:\n  - name: gw\n  rules:\n"
        "  - matches:\n    - headers:\n      - name: x-route\n        value: rr\n"
        "    backendRefs:\n    - name: llm\n      port: " +
        std::to_string(port_sim_) +
        "\n  - backendRefs:\n    - group: inference.networking.x-k8s.io\n"
        "      kind: InferencePool\n      name: pool\n"
        "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: llm\nspec:\n  selector:\n"
        "    app: llm\n  ports:\n  - port: " +
        std::to_string(port_sim_) +
        "\n---\napiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferencePool\n"
        "metadata:\n  name: pool\nspec:\n  selector:\n    app: llm\n  targetPortNumber: " +
        std::to_string(port_sim_) +
        "\n  extensionRef:\n    name: epp\n    failureMode: FailClose\n";
    for (std::size_t i = 0; i < addresses_.size(); ++i) {
      y += "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: llm-" + std::to_string(i) +
           "\n  labels:\n    app: llm\n" +
           (engine_label.empty()
                ? ""
                : "    inference.networking.k8s.io/engine-type: " + engine_label + "\n") +
           "status:\n  podIP: " + addresses_[i] + "\n";
    }
    std::ofstream(dir_ + "/config.yaml") << y;
    gateway_ = std::make_unique<ChildProcess>();
    ASSERT_TRUE(gateway_->Start({GatewayBin(), "--log-level", "warn", "serve", "-f", dir_,
                                 "--workers", "2", "--admin-address", gw_address_ + ":0"}));
    auto line = gateway_->WaitForLine("listening default/gw/llm", 10s);
    ASSERT_TRUE(line.has_value()) << gateway_->output();
    port_ = std::stoi(line->substr(line->rfind(':') + 1));
    auto admin = gateway_->WaitForLine("admin ", 10s);
    ASSERT_TRUE(admin.has_value());
    admin_port_ = std::stoi(admin->substr(admin->rfind(':') + 1));
    // Every endpoint scraped at least once.
    auto deadline = Clock::now() + 10s;
    while (Clock::now() < deadline) {
      const std::string m = Metrics();
      if (m.find("infergate_pool_scrapes_total{pool=\"default/pool\",result=\"success\"} ") !=
              std::string::npos &&
          Ready(m) == static_cast<int>(addresses_.size())) {
        break;
      }
      std::this_thread::sleep_for(50ms);
    }
  }

  int Ready(const std::string& m) {
    const std::string key = "inference_pool_ready_pods{name=\"pool\"} ";
    auto at = m.find(key);
    return at == std::string::npos ? 0 : std::atoi(m.c_str() + at + key.size());
  }

  std::string Metrics() { return HttpRequest(gw_address_, admin_port_, "GET", "/metrics").body; }

  // `infergate bench` through the gateway (round_robin: to the Service rule); returns its
  // saved result.
  json Bench(bool round_robin, const std::string& name, int prompts, int concurrency, int input_len,
             double request_rate = 0, double range_ratio = 0.2) {
    ChildProcess bench;
    const std::string file = name + ".json";
    EXPECT_TRUE(bench.Start({INFERGATE_BIN,
                             "--log-level",
                             "warn",
                             "bench",
                             "--base-url",
                             "http://" + gw_address_ + ":" + std::to_string(port_),
                             "--header",
                             round_robin ? "x-route=rr" : "x-route=pool",
                             "--model",
                             "base",
                             "--dataset-name",
                             "random",
                             "--random-input-len",
                             std::to_string(input_len),
                             "--random-output-len",
                             "24",
                             "--random-length-semantics",
                             "current",
                             "--random-range-ratio",
                             std::to_string(range_ratio),
                             "--num-prompts",
                             std::to_string(prompts),
                             "--max-concurrency",
                             std::to_string(concurrency),
                             "--request-rate",
                             request_rate > 0 ? std::to_string(request_rate) : "inf",
                             "--seed",
                             "7",
                             "--ignore-eos",
                             "--skip-test-request",
                             "--disable-tqdm",
                             "--save-result",
                             "--result-dir",
                             dir_,
                             "--result-filename",
                             file}));
    auto code = bench.Wait(150s);
    EXPECT_EQ(code.value_or(-1), 0) << bench.output();
    std::ifstream in(dir_ + "/" + file);
    json j = json::parse(in, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << bench.output();
    return j;
  }

  std::string dir_, gw_address_;
  std::vector<std::string> addresses_;
  int port_sim_ = 0;
  std::vector<std::unique_ptr<ChildProcess>> sims_;
  std::unique_ptr<ChildProcess> gateway_;
  int port_ = 0, admin_port_ = 0;
};

TEST_F(SlowMetricsTest, StallingLlamacppMetricsFailNoRequestAndRoutingHoldsUpToRoundRobin) {
  // examples/slow-metrics/llamacpp-cpu-batched.yaml: llama.cpp's loop runs batches of up to
  // 2,048 tokens (prompt chunks and the generating slots' tokens) at 1 ms per prompt token,
  // so a batch of prompt chunks runs ~2 s, and the page, answered between batches, is late
  // for every scrape meanwhile. (Not in dir_: the gateway reads every file there as config.)
  const std::string profile = TempDir() + "/llamacpp-cpu-batched.yaml";
  std::ofstream(profile)
      << "name: llamacpp-cpu-batched\n"
         "model: {name: tiny-chat, layers: 4, hidden: 256, heads: 4, kv_heads: 4,\n"
         "        intermediate: 1024, vocab: 152064}\n"
         "engine: {version: v1, max_model_len: 4096, max_num_seqs: 4,\n"
         "         max_num_batched_tokens: 2048, block_size: 16, num_gpu_blocks: 1024,\n"
         "         enable_prefix_caching: false}\n"
         "timing: {mode: linear, prefill_base_ms: 20, prefill_per_token_ms: 1,\n"
         "         decode_base_ms: 20, decode_per_seq_ms: 2}\n";
  StartSims(3, {"--profile", profile, "--engine-api", "llamacpp", "--metrics-in-engine-loop"});
  StartGateway();
  // Requests arriving on their own (Poisson, 1.2/s, about 75% of what the three servers
  // take), prompts of 200 to 3,000 tokens: one often comes while every server is in a long
  // batch and every page is late. Through the FailClose pool, then round-robin over the
  // same servers, the same requests.
  const json routed = Bench(false, "routed", 24, 24, 1600, 1.2, 0.875);
  const json rr = Bench(true, "round_robin", 24, 24, 1600, 1.2, 0.875);
  ASSERT_TRUE(routed.contains("completed") && rr.contains("completed"));
  EXPECT_EQ(routed["completed"], 24) << routed["errors"].dump();
  EXPECT_EQ(rr["completed"], 24) << rr["errors"].dump();
  const std::string m = Metrics();
  // The pages were late (the scenario happened) but no endpoint was ever unreachable.
  EXPECT_NE(m.find("reason=\"timeout\"} "), std::string::npos) << m;
  EXPECT_EQ(m.find("infergate_pool_rejections_total{pool=\"default/pool\""), std::string::npos)
      << m;
  const double routed_ttft = routed["mean_ttft_ms"].get<double>();
  const double rr_ttft = rr["mean_ttft_ms"].get<double>();
  std::printf("mean TTFT routed %.0f ms, round-robin %.0f ms (%.2fx)\n", routed_ttft, rr_ttft,
              routed_ttft / rr_ttft);
  // Routing wins this scenario in virtual time (StallingMetricsRouting, mean TTFT 0.74x
  // over ten seeds) and live (0.93x over three seeds of 60 requests,
  // docs/experiments/2026-12-07-slow-metrics.md); 24 live requests on a shared machine
  // are too few to assert that margin without flaking, so
  // this asserts only that late pages do not make routing worse than round-robin beyond
  // that noise (live, 60 requests per seed: 0.89x-0.98x per seed).
  EXPECT_LT(routed_ttft, 1.1 * rr_ttft);
}

// The scenario of the report that opened this work: ~1,500-token prompts at 4 ms per
// token, so each prompt is one ~6 s step of llama.cpp's loop during which its page does
// not answer, with requests arriving on their own (Poisson, 0.45/s, about what the three
// servers take). The gateway from before late endpoints stayed candidates (commit
// 7556da1: one timed-out scrape made an endpoint stale) answered 503 (no-fresh-metrics) to
// 5 of these 14 requests in each of three runs (run it with INFERGATE_GATEWAY_BIN); none
// may fail.
TEST_F(SlowMetricsTest, StallingPagesDuringLongPrefillsFailNoRequest) {
  const std::string profile = TempDir() + "/llamacpp-cpu-slow.yaml";
  std::ofstream(profile)
      << "name: llamacpp-cpu-slow\n"
         "model: {name: tiny-chat, layers: 4, hidden: 256, heads: 4, kv_heads: 4,\n"
         "        intermediate: 1024, vocab: 152064}\n"
         "engine: {version: v0, max_model_len: 2048, max_num_seqs: 4,\n"
         "         max_num_batched_tokens: 2048, block_size: 16, num_gpu_blocks: 1024}\n"
         "timing: {mode: linear, prefill_base_ms: 50, prefill_per_token_ms: 4,\n"
         "         decode_base_ms: 20, decode_per_seq_ms: 2}\n";
  StartSims(3, {"--profile", profile, "--engine-api", "llamacpp", "--metrics-in-engine-loop"});
  StartGateway();
  const json open = Bench(false, "open_loop", 14, 14, 1500, 0.45);
  ASSERT_TRUE(open.contains("completed")) << open.dump();
  EXPECT_EQ(open["completed"], 14) << open["errors"].dump();
}

// The gateway reads each engine's own metric names; with one server preloaded, new
// requests avoid it whichever engine's names it speaks.
TEST_F(SlowMetricsTest, EachEnginesRealMetricNamesDriveRouting) {
  for (const std::string api : {"vllm", "llamacpp", "sglang"}) {
    SCOPED_TRACE(api);
    gateway_.reset();
    sims_.clear();
    addresses_.clear();
    StartSims(2, {"--profile", "tiny", "--engine-api", api, "--max-num-seqs", "2"});
    StartGateway(api);
    // Server 0 is kept busy by long requests sent to it directly.
    std::vector<std::thread> load;
    for (int i = 0; i < 4; ++i) {
      load.emplace_back([&, i] {
        HttpRequest(addresses_[0], port_sim_, "POST", "/v1/completions",
                    R"({"model":"base","prompt":"load )" + std::to_string(i) +
                        R"(","max_tokens":400,"ignore_eos":true})",
                    {}, 30s);
      });
    }
    // Until the gateway has seen it busy (a scrape every 50 ms).
    std::this_thread::sleep_for(300ms);
    for (int i = 0; i < 6; ++i) {
      auto r = HttpRequest(
          gw_address_, port_, "POST", "/v1/completions",
          R"({"model":"base","prompt":"hello )" + std::to_string(i) + R"(","max_tokens":2})", {},
          20s);
      EXPECT_EQ(r.status, 200) << r.body;
    }
    const std::string m = Metrics();
    auto picks = [&](int i) {
      const std::string key = "infergate_pool_picks_total{pool=\"default/pool\",endpoint=\"" +
                              addresses_[i] + ":" + std::to_string(port_sim_) + "\"} ";
      auto at = m.find(key);
      return at == std::string::npos ? 0 : std::atoi(m.c_str() + at + key.size());
    };
    EXPECT_EQ(picks(0), 0) << m;
    EXPECT_EQ(picks(1), 6) << m;
    // The busy server's queue, as the pool's metrics report it from that engine's names.
    EXPECT_NE(
        m.find("inference_pool_per_pod_queue_size{name=\"pool\",model_server_pod=\"llm-0\"} 2"),
        std::string::npos)
        << m;
    for (auto& th : load) th.join();
  }
}

TEST_F(SlowMetricsTest, LlamacppSlotsComeFromPropsAndIdleCacheIsNotLoad) {
  StartSims(1, {"--profile", "tiny", "--engine-api", "llamacpp", "--max-num-seqs", "4"});
  auto props = HttpRequest(addresses_[0], port_sim_, "GET", "/props");
  ASSERT_EQ(props.status, 200);
  EXPECT_EQ(json::parse(props.body)["total_slots"], 4);
  auto slots = HttpRequest(addresses_[0], port_sim_, "GET", "/slots");
  ASSERT_EQ(slots.status, 200);
  EXPECT_EQ(json::parse(slots.body).size(), 4u);
  // The cache ratio a page showed during a request stays up on the idle server after it,
  // as llama.cpp's does (finished slots keep their cells).
  std::thread req([&] {
    HttpRequest(addresses_[0], port_sim_, "POST", "/v1/completions",
                R"({"model":"base","prompt":"a b c d e f g h i j k l m n o p q r s t",)"
                R"("max_tokens":300,"ignore_eos":true})",
                {}, 20s);
  });
  std::string busy;
  for (int i = 0; i < 100 && busy.find("llamacpp:requests_processing 1") == std::string::npos;
       ++i) {
    std::this_thread::sleep_for(10ms);
    busy = HttpRequest(addresses_[0], port_sim_, "GET", "/metrics").body;
  }
  req.join();
  EXPECT_EQ(busy.find("llamacpp:kv_cache_usage_ratio 0.0\n"), std::string::npos) << busy;
  auto page = HttpRequest(addresses_[0], port_sim_, "GET", "/metrics").body;
  EXPECT_NE(page.find("llamacpp:requests_processing 0"), std::string::npos) << page;
  EXPECT_EQ(page.find("llamacpp:kv_cache_usage_ratio 0.0\n"), std::string::npos) << page;
  StartGateway("llamacpp");
  const std::string m = Metrics();
  // Idle: the pool's KV average is the busy-slot fraction (0), not the cache ratio.
  EXPECT_NE(m.find("inference_pool_average_kv_cache_utilization{name=\"pool\"} 0\n"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("infergate_pool_endpoint_reachable{name=\"pool\",endpoint=\"" + addresses_[0]),
            std::string::npos)
      << m;
}

}  // namespace
}  // namespace infergate::testing
