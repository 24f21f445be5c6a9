// What the gateway shows about itself, end to end against the real binary and model-server
// stand-ins (tests/support/test_upstream.cc): GIE's metric families with bounded model
// labels and an exposition promtool accepts, the live page's JSON state and the page.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "tests/support/process.h"

namespace infergate::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct Server {
  std::string address;
  int port = 0;
  ChildProcess process;
};

// The value of the sample line starting with `series` (-1 when absent).
double Sample(const std::string& text, const std::string& series) {
  auto p = text.find("\n" + series + " ");
  if (p == std::string::npos) return -1;
  return std::stod(text.substr(p + series.size() + 2));
}

class ObservabilityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir();
    gw_address_ = UniqueLoopbackAddress();
  }

  void StartServers(int n) {
    int port = 0;
    for (int i = 0; i < n; ++i) {
      auto s = std::make_unique<Server>();
      s->address = UniqueLoopbackAddress();
      ASSERT_TRUE(s->process.Start(
          {TEST_UPSTREAM_BIN, "--address", s->address, "--port", std::to_string(port), "--name",
           "GENERATED-TEXT-" + std::to_string(i), "--models", "base,chat-v1"}));
      auto line = s->process.WaitForLine("listening", 10s);
      ASSERT_TRUE(line.has_value());
      s->port = std::stoi(line->substr(line->rfind(':') + 1));
      port = s->port;
      servers_.push_back(std::move(s));
    }
  }

  // Listener "llm": /v1/* to InferencePool "pool"; everything else to Service "plain"
  // (the first server).
  void WriteConfig() {
    std::string y =
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: gw\n"
        "  annotations:\n    infergate.io/bind-address: \"" +
        gw_address_ +
        "\"\nspec:\n  gatewayClassName: x\n  listeners:\n  - name: llm\n    protocol: HTTP\n"
        "    port: 0\n---\n"
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: r\n"
        "spec:\n  parentRefs:\n  - name: gw\n  rules:\n"
        "  - matches:\n    - path:\n        type: PathPrefix\n        value: /v1\n"
        "    backendRefs:\n"
        "    - group: inference.networking.x-k8s.io\n      kind: InferencePool\n"
        "      name: pool\n"
        "  - backendRefs:\n    - name: plain\n      port: 80\n"
        "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: plain\nspec:\n"
        "  selector:\n    role: plain\n  ports:\n  - port: 80\n    targetPort: " +
        std::to_string(servers_[0]->port) +
        "\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: plain-0\n  labels:\n"
        "    role: plain\nstatus:\n  podIP: " +
        servers_[0]->address +
        "\n---\napiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferencePool\n"
        "metadata:\n  name: pool\nspec:\n  selector:\n    app: llm\n  targetPortNumber: " +
        std::to_string(servers_[0]->port) +
        "\n  extensionRef:\n    name: epp\n"
        "---\napiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceModel\n"
        "metadata:\n  name: chat\nspec:\n  modelName: chat\n  criticality: Critical\n"
        "  poolRef:\n    name: pool\n  targetModels:\n  - name: chat-v1\n";
    for (std::size_t i = 0; i < servers_.size(); ++i) {
      y += "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: llm-" + std::to_string(i) +
           "\n  labels:\n    app: llm\nstatus:\n  podIP: " + servers_[i]->address + "\n";
    }
    std::ofstream(dir_ + "/config.yaml") << y;
  }

  void StartGateway(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {INFERGATE_BIN,
                                     "--log-level",
                                     "warn",
                                     "serve",
                                     "-f",
                                     dir_,
                                     "--workers",
                                     "2",
                                     "--admin-address",
                                     gw_address_ + ":0",
                                     "--scrape-interval",
                                     "0.02"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    ASSERT_TRUE(gateway_.Start(argv));
    auto line = gateway_.WaitForLine("listening default/gw/llm", 10s);
    ASSERT_TRUE(line.has_value()) << gateway_.output();
    port_ = std::stoi(line->substr(line->rfind(':') + 1));
    auto admin = gateway_.WaitForLine("admin ", 10s);
    ASSERT_TRUE(admin.has_value());
    admin_port_ = std::stoi(admin->substr(admin->rfind(':') + 1));
    // Every endpoint scraped and its model list read (so "base" is a known label value).
    auto deadline = Clock::now() + 10s;
    while (Clock::now() < deadline) {
      auto r = Complete("base");
      if (r.status == 200 && Metrics().find("model_name=\"base\"") != std::string::npos) break;
      std::this_thread::sleep_for(50ms);
    }
  }

  HttpResponse Complete(const std::string& model, const std::string& prompt = "hello there",
                        const std::map<std::string, std::string>& headers = {}) {
    std::string body =
        R"({"model":")" + model + R"(","prompt":")" + prompt + R"(","max_tokens":3})";
    return HttpRequest(gw_address_, port_, "POST", "/v1/completions", body, headers);
  }
  std::string Metrics() { return HttpRequest(gw_address_, admin_port_, "GET", "/metrics").body; }
  nlohmann::json Live() {
    auto r = HttpRequest(gw_address_, admin_port_, "GET", "/api/live");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.headers["content-type"], "application/json");
    return nlohmann::json::parse(r.body);
  }

  std::string dir_, gw_address_;
  std::vector<std::unique_ptr<Server>> servers_;
  ChildProcess gateway_;
  int port_ = 0, admin_port_ = 0;
};

TEST_F(ObservabilityTest, ExportsGieFamiliesWithBoundedLabelsThatPromtoolAccepts) {
  StartServers(2);
  WriteConfig();
  StartGateway();
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(Complete("base",
                       "a prompt long enough to fill more than one prefix block of "
                       "sixty-four characters, twice over, at least")
                  .status,
              200);
    ASSERT_EQ(Complete("chat").status, 200);
  }
  // Names a client invents never become label values.
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(Complete("invented-model-" + std::to_string(i)).status, 404);
  }
  const std::string m = Metrics();
  for (const char* family :
       {"inference_model_request_sizes_bucket", "inference_model_response_sizes_bucket",
        "inference_model_normalized_time_per_output_token_seconds_bucket",
        "inference_extension_plugin_duration_seconds_bucket",
        "inference_extension_scheduler_attempts_total{status=\"success\"}",
        "inference_extension_prefix_indexer_size{name=\"pool\"}",
        "inference_extension_prefix_indexer_hit_ratio_bucket",
        "inference_extension_prefix_indexer_hit_bytes_bucket", "inference_extension_info{",
        "infergate_pool_decisions_total{pool=\"default/pool\",reason=\"scheduled\"}",
        "infergate_pool_endpoint_waiting_requests{",
        "infergate_pool_endpoint_kv_cache_utilization{",
        "infergate_pool_endpoint_ledger_inflight_requests{",
        "infergate_pool_endpoint_predicted_ttft_seconds{",
        "infergate_pool_endpoint_metrics_fresh{"}) {
    EXPECT_NE(m.find(family), std::string::npos) << family;
  }
  EXPECT_NE(m.find("inference_model_request_sizes_count{model_name=\"chat\",target_model_name="
                   "\"chat-v1\"} 20"),
            std::string::npos);
  EXPECT_EQ(m.find("invented-model"), std::string::npos);
  EXPECT_NE(m.find("inference_model_request_error_total{model_name=\"other\",target_model_name="
                   "\"other\",error_code=\"404\"} 5"),
            std::string::npos);
  // The repeated prompt is found in the prefix index: once each of the two endpoints has
  // served it, every lookup matches all its blocks (ratio 1, above the 0.9 bucket).
  const double lookups = Sample(m, "inference_extension_prefix_indexer_hit_ratio_count");
  EXPECT_GE(lookups, 20);
  EXPECT_LE(Sample(m, "inference_extension_prefix_indexer_hit_ratio_bucket{le=\"0.9\"}"),
            2);

  std::ofstream(dir_ + "/metrics.txt") << m;
  auto check = RunCommand({"/bin/sh", "-c", "promtool check metrics < metrics.txt"}, dir_, 30s);
  EXPECT_EQ(check.code, 0) << check.out << check.err;
  EXPECT_EQ(check.out + check.err, "") << "promtool had remarks";
}

TEST_F(ObservabilityTest, LiveStateShowsEndpointsDecisionsAndCandidates) {
  StartServers(2);
  WriteConfig();
  StartGateway();
  auto first = Live();  // marks the page as watched: decisions now carry candidates
  ASSERT_EQ(first["pools"].size(), 1u);
  const auto& pool = first["pools"][0];
  EXPECT_EQ(pool["id"], "default/pool");
  ASSERT_EQ(pool["endpoints"].size(), 2u);
  for (const auto& e : pool["endpoints"]) {
    EXPECT_TRUE(e["ready"].get<bool>());
    EXPECT_TRUE(e.contains("scraped") && e.contains("ledger") && e.contains("estimate"));
  }
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(Complete("chat").status, 200);
    std::this_thread::sleep_for(30ms);
  }
  EXPECT_EQ(Complete("nobody-serves-this").status, 404);
  auto live = Live();
  const auto& decisions = live["decisions"];
  ASSERT_GE(decisions.size(), 10u);
  bool with_candidates = false;
  for (const auto& d : decisions) {
    EXPECT_EQ(d["pool"], "default/pool");
    EXPECT_NE(d["model"], "nobody-serves-this");
    if (d["model"] != "chat") continue;
    EXPECT_EQ(d["target"], "chat-v1");
    EXPECT_EQ(d["status"], 200);
    EXPECT_EQ(d["reason"], "scheduled");
    ASSERT_FALSE(d["endpoints"].empty());
    EXPECT_EQ(d["served_by"], d["endpoints"][0]);
    EXPECT_GE(d["ttft_s"].get<double>(), 0.0);
    if (d.contains("candidates")) {
      with_candidates = true;
      EXPECT_EQ(d["candidates"].size(), 2u);
    }
  }
  EXPECT_TRUE(with_candidates);
  const auto& ttft = live["pools"][0]["ttft_1m"];
  EXPECT_GE(ttft["count"].get<int>(), 10);
  EXPECT_LE(ttft["p50"].get<double>(), ttft["p99"].get<double>());
}

TEST_F(ObservabilityTest, AdminRootServesTheSelfContainedPage) {
  StartServers(1);
  WriteConfig();
  StartGateway();
  auto page = HttpRequest(gw_address_, admin_port_, "GET", "/");
  ASSERT_EQ(page.status, 200);
  EXPECT_EQ(page.headers["content-type"], "text/html; charset=utf-8");
  EXPECT_NE(page.body.find("api/live"), std::string::npos);
  // No external assets: nothing is loaded from another origin.
  EXPECT_EQ(page.body.find("src=\"http"), std::string::npos);
  EXPECT_EQ(page.body.find("href=\"http"), std::string::npos);
  EXPECT_EQ(page.body.find("<link rel=\"stylesheet\""), std::string::npos);
  EXPECT_EQ(page.body.find("<script src"), std::string::npos);
}

std::vector<nlohmann::json> ReadJsonLines(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::istringstream in(ReadFile(path));
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(j.is_discarded()) << line;
    if (!j.is_discarded()) out.push_back(std::move(j));
  }
  return out;
}

TEST_F(ObservabilityTest, AccessLogRecordsPoolServiceAndRejectedRequestsButNeverText) {
  StartServers(2);
  WriteConfig();
  const std::string log = dir_ + "/access.log";
  StartGateway({"--access-log", log});
  const std::string secret = "SECRET-PROMPT-WORDS";
  auto pool = Complete("chat", secret + " are in this prompt", {{"x-request-id", "client-id-1"}});
  ASSERT_EQ(pool.status, 200) << pool.body;
  ASSERT_NE(pool.body.find("GENERATED-TEXT"), std::string::npos);
  // The Service route; the gateway generates the id and the upstream sees it.
  auto plain = HttpRequest(gw_address_, port_, "GET", "/echo?token=QUERY-SECRET");
  ASSERT_EQ(plain.status, 200);
  const auto echoed = nlohmann::json::parse(plain.body);
  const std::string generated = echoed["headers"].value("x-request-id", "");
  EXPECT_EQ(generated.size(), 32u) << plain.body;
  EXPECT_EQ(Complete("invented-model", secret).status, 404);
  gateway_.Signal(SIGTERM);
  ASSERT_TRUE(gateway_.Wait(10s).has_value());

  const std::string text = ReadFile(log);
  EXPECT_EQ(text.find(secret), std::string::npos);
  EXPECT_EQ(text.find("GENERATED-TEXT"), std::string::npos);
  EXPECT_EQ(text.find("QUERY-SECRET"), std::string::npos);
  std::map<std::string, nlohmann::json> by_id;
  const nlohmann::json* rejected = nullptr;
  auto lines = ReadJsonLines(log);
  for (const auto& j : lines) {
    by_id[j["request_id"]] = j;
    if (j.value("model", "") == "invented-model") rejected = &by_id[j["request_id"]];
  }
  ASSERT_TRUE(by_id.count("client-id-1")) << text;
  const auto& p = by_id["client-id-1"];
  EXPECT_EQ(p["listener"], "default/gw/llm");
  EXPECT_EQ(p["route"], "default/r/rules[0]");
  EXPECT_EQ(p["backend"], "default/pool");
  EXPECT_EQ(p["method"], "POST");
  EXPECT_EQ(p["path"], "/v1/completions");
  EXPECT_EQ(p["model"], "chat");
  EXPECT_EQ(p["served_model"], "chat-v1");
  EXPECT_EQ(p["pool"], "default/pool");
  EXPECT_EQ(p["status"], 200);
  EXPECT_EQ(p["client"], "127.0.0.1");
  EXPECT_FALSE(p["endpoint"].get<std::string>().empty());
  EXPECT_EQ(p["tried"].back(), p["endpoint"]);
  EXPECT_GT(p["bytes_in"].get<int>(), 0);
  EXPECT_GT(p["bytes_out"].get<int>(), 0);
  EXPECT_GE(p["queue_wait_s"].get<double>(), 0);
  EXPECT_GT(p["ttfb_s"].get<double>(), 0);
  EXPECT_GE(p["duration_s"].get<double>(), p["ttfb_s"].get<double>());
  EXPECT_GT(p["prompt_tokens"].get<int>(), 0);
  EXPECT_GT(p["output_tokens"].get<int>(), 0);
  EXPECT_EQ(p["retries"], 0);
  EXPECT_EQ(p["redispatches"], 0);
  EXPECT_EQ(p["time"].get<std::string>().size(), 24u);  // 2026-12-07T04:10:11.123Z

  ASSERT_TRUE(by_id.count(generated)) << text;
  const auto& s = by_id[generated];
  EXPECT_EQ(s["backend"], "default/plain");
  EXPECT_EQ(s["route"], "default/r/rules[1]");
  EXPECT_EQ(s["path"], "/echo");
  EXPECT_EQ(s["method"], "GET");
  EXPECT_EQ(s["status"], 200);
  EXPECT_EQ(s["endpoint"], servers_[0]->address + ":" + std::to_string(servers_[0]->port));
  EXPECT_FALSE(s.contains("pool"));

  ASSERT_NE(rejected, nullptr) << text;
  EXPECT_EQ((*rejected)["status"], 404);
  EXPECT_FALSE(rejected->contains("endpoint"));
  EXPECT_EQ((*rejected)["bytes_out"], 0);
}

TEST_F(ObservabilityTest, AccessLogSamplesTheConfiguredShare) {
  StartServers(1);
  WriteConfig();
  // Exactly a quarter of 40 requests.
  const std::string log2 = dir_ + "/sampled.log";
  ChildProcess gw;
  ASSERT_TRUE(gw.Start({INFERGATE_BIN, "--log-level", "warn", "serve", "-f", dir_, "--workers", "2",
                        "--no-admin", "--access-log", log2, "--access-log-sample", "0.25"}));
  auto line = gw.WaitForLine("listening default/gw/llm", 10s);
  ASSERT_TRUE(line.has_value());
  const int port = std::stoi(line->substr(line->rfind(':') + 1));
  for (int i = 0; i < 40; ++i) {
    ASSERT_EQ(HttpRequest(gw_address_, port, "GET", "/echo").status, 200);
  }
  gw.Signal(SIGTERM);
  ASSERT_TRUE(gw.Wait(10s).has_value());
  EXPECT_EQ(ReadJsonLines(log2).size(), 10u);
}

}  // namespace
}  // namespace infergate::testing
