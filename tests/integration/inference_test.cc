// The gateway's InferencePool path against model-server stand-ins (tests/support/
// test_upstream.cc) whose load signals the tests set: InferenceModel target weights and
// rewriting, InferenceObjective / InferenceModelRewrite, shedding, failure modes, unknown
// models, /v1/models, load-aware picks and RequestMirror.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
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
  void Control(const std::string& query) const {
    auto r = HttpRequest(address, port, "GET", "/control?" + query);
    ASSERT_EQ(r.status, 200);
  }
};

class InferenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir();
    gw_address_ = UniqueLoopbackAddress();
  }

  // `n` model servers on their own addresses, all on one port (a pool has one target port).
  void StartServers(int n, const std::string& models = "base") {
    int port = 0;
    for (int i = 0; i < n; ++i) {
      auto s = std::make_unique<Server>();
      s->address = UniqueLoopbackAddress();
      ASSERT_TRUE(s->process.Start({TEST_UPSTREAM_BIN, "--address", s->address, "--port",
                                    std::to_string(port), "--name", "s" + std::to_string(i),
                                    "--models", models}));
      auto line = s->process.WaitForLine("listening", 10s);
      ASSERT_TRUE(line.has_value());
      s->port = std::stoi(line->substr(line->rfind(':') + 1));
      port = s->port;
      servers_.push_back(std::move(s));
    }
  }

  // Gateway + HTTPRoute to pool "pool" (+ extra rules), the pool, one Pod per server, and
  // extra documents (InferenceModels, ...).
  void WriteConfig(const std::string& extra_docs, const std::string& pool_annotations = "",
                   const std::string& failure_mode = "FailClose",
                   const std::string& extra_rule = "") {
    std::string y =
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: gw\n"
        "  annotations:\n    infergate.io/bind-address: \"" +
        gw_address_ +
        "\"\nspec:\n  gatewayClassName: x\n  listeners:\n  - name: llm\n    protocol: HTTP\n"
        "    port: 0\n---\n"
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: r\n"
        "spec:\n  parentRefs:\n  - name: gw\n  rules:\n  - backendRefs:\n"
        "    - group: inference.networking.x-k8s.io\n      kind: InferencePool\n"
        "      name: pool\n" +
        extra_rule +
        "---\napiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferencePool\n"
        "metadata:\n  name: pool\n" +
        (pool_annotations.empty() ? "" : "  annotations:\n" + pool_annotations) +
        "spec:\n  selector:\n    app: llm\n  targetPortNumber: " +
        std::to_string(servers_[0]->port) +
        "\n  extensionRef:\n    name: epp\n    failureMode: " + failure_mode + "\n";
    for (std::size_t i = 0; i < servers_.size(); ++i) {
      y += "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: llm-" + std::to_string(i) +
           "\n  labels:\n    app: llm\nstatus:\n  podIP: " + servers_[i]->address + "\n";
    }
    std::ofstream(dir_ + "/config.yaml") << y << extra_docs;
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
    // Wait until every endpoint has been scraped at least once.
    auto deadline = Clock::now() + 10s;
    while (Clock::now() < deadline) {
      auto m = HttpRequest(gw_address_, admin_port_, "GET", "/metrics");
      auto p = m.body.find("inference_pool_ready_pods{name=\"pool\"}");
      auto ok =
          m.body.find("infergate_pool_scrapes_total{pool=\"default/pool\",result=\"success\"}");
      if (p != std::string::npos && ok != std::string::npos) break;
      std::this_thread::sleep_for(20ms);
    }
    std::this_thread::sleep_for(100ms);
  }

  HttpResponse Complete(const std::string& model, bool stream = false,
                        const std::map<std::string, std::string>& headers = {}) {
    std::string body = R"({"model":")" + model + R"(","prompt":"hello there","max_tokens":2)" +
                       (stream ? R"(,"stream":true,"stream_options":{"include_usage":true})" : "") +
                       "}";
    return HttpRequest(gw_address_, port_, "POST", "/v1/completions", body, headers);
  }

  std::string Metrics() { return HttpRequest(gw_address_, admin_port_, "GET", "/metrics").body; }

  std::string dir_, gw_address_;
  std::vector<std::unique_ptr<Server>> servers_;
  ChildProcess gateway_;
  int port_ = 0, admin_port_ = 0;
};

const char* kCanary =
    "---\napiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceModel\n"
    "metadata:\n  name: chat\nspec:\n  modelName: chat\n  criticality: Critical\n"
    "  poolRef:\n    name: pool\n  targetModels:\n  - name: chat-v1\n    weight: 90\n"
    "  - name: chat-v2\n    weight: 10\n";

TEST_F(InferenceTest, CanarySplitsByWeightAndTheClientSeesItsModelName) {
  StartServers(3, "chat-v1,chat-v2");
  WriteConfig(kCanary);
  StartGateway();
  std::map<std::string, int> completions_before;
  int v2 = 0;
  const int n = 2000;
  for (int i = 0; i < n; ++i) {
    auto r = Complete("chat");
    ASSERT_EQ(r.status, 200) << r.body;
    // The server saw the target; the client sees the name it asked for.
    ASSERT_NE(r.body.find("\"model\":\"chat\""), std::string::npos) << r.body;
    ASSERT_EQ(r.body.find("chat-v"), std::string::npos) << r.body;
  }
  auto m = Metrics();
  auto count = [&](const std::string& target) {
    auto key =
        "inference_model_request_total{model_name=\"chat\",target_model_name=\"" + target + "\"} ";
    auto p = m.find(key);
    return p == std::string::npos ? 0 : std::stoi(m.substr(p + key.size()));
  };
  v2 = count("chat-v2");
  EXPECT_EQ(count("chat-v1") + v2, n);
  // Smooth weighted round-robin is exact: 10% of 2000.
  EXPECT_NEAR(v2, n / 10, n * 0.03);

  // Streaming: every chunk names the requested model.
  auto s = Complete("chat", /*stream=*/true);
  ASSERT_EQ(s.status, 200);
  EXPECT_NE(s.body.find("data: [DONE]"), std::string::npos);
  EXPECT_EQ(s.body.find("chat-v"), std::string::npos) << s.body;
  EXPECT_NE(s.body.find("\"model\":\"chat\""), std::string::npos) << s.body;
}

TEST_F(InferenceTest, ShedsSheddableRequestsWhenEveryEndpointIsFullButNeverCritical) {
  StartServers(3);
  std::string models =
      "---\napiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceModel\n"
      "metadata:\n  name: batch\nspec:\n  modelName: batch\n  criticality: Sheddable\n"
      "  poolRef:\n    name: pool\n  targetModels:\n  - name: base\n"
      "---\napiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceModel\n"
      "metadata:\n  name: vip\nspec:\n  modelName: vip\n  criticality: Critical\n"
      "  poolRef:\n    name: pool\n  targetModels:\n  - name: base\n";
  // GIE v0's decision tree, chosen by the pool's annotation.
  WriteConfig(models, "    infergate.io/scheduling-profile: gie-v0\n");
  // GIE's published case: (queue 6, kv 0.2), (0, 0.85), (10, 0.9): all saturated.
  servers_[0]->Control("waiting=6&kv=0.2");
  servers_[1]->Control("waiting=0&kv=0.85");
  servers_[2]->Control("waiting=10&kv=0.9");
  StartGateway();
  auto shed = Complete("batch");
  EXPECT_EQ(shed.status, 429) << shed.body;
  EXPECT_EQ(shed.headers["retry-after"], "1");
  EXPECT_NE(shed.body.find("\"type\":\"rate_limit_exceeded\""), std::string::npos);
  auto vip = Complete("vip");
  EXPECT_EQ(vip.status, 200) << vip.body;

  // With (4, 0.2) instead of (6, 0.2) that endpoint has room: the request goes there.
  servers_[0]->Control("waiting=4&kv=0.2");
  std::this_thread::sleep_for(200ms);
  auto ok = Complete("batch");
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_NE(ok.body.find("\"text\":\"s0\""), std::string::npos) << ok.body;
  EXPECT_NE(Metrics().find("infergate_pool_rejections_total{pool=\"default/pool\""),
            std::string::npos);
}

TEST_F(InferenceTest, FailCloseAnswers503WithoutMetricsAndFailOpenStillRoutes) {
  StartServers(2);
  WriteConfig("");
  for (auto& s : servers_) s->Control("metrics=error");
  StartGateway();
  auto closed = Complete("base");
  EXPECT_EQ(closed.status, 503) << closed.body;

  WriteConfig("", "", "FailOpen");
  ASSERT_TRUE(gateway_.Signal(SIGHUP));
  auto deadline = Clock::now() + 5s;
  int status = 0;
  while (Clock::now() < deadline && (status = Complete("base").status) != 200) {
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(status, 200);
}

TEST_F(InferenceTest, UnknownModelsAre404AndServedOnesPassThrough) {
  StartServers(2, "base,adapter-a");
  WriteConfig(kCanary);
  StartGateway();
  auto unknown = Complete("no-such-model");
  EXPECT_EQ(unknown.status, 404) << unknown.body;
  EXPECT_NE(unknown.body.find("does not exist"), std::string::npos);
  auto served = Complete("adapter-a");
  EXPECT_EQ(served.status, 200) << served.body;
  EXPECT_NE(served.body.find("\"model\":\"adapter-a\""), std::string::npos);

  auto models = HttpRequest(gw_address_, port_, "GET", "/v1/models");
  EXPECT_EQ(models.status, 200);
  EXPECT_NE(models.body.find("\"id\":\"chat\""), std::string::npos) << models.body;
  // And the models the pool's servers list, each once.
  EXPECT_NE(models.body.find("\"id\":\"adapter-a\""), std::string::npos) << models.body;
  EXPECT_EQ(models.body.find("\"id\":\"base\""), models.body.rfind("\"id\":\"base\""));
  EXPECT_NE(models.body.find("\"id\":\"base\""), std::string::npos) << models.body;

  std::string bad = R"({"model": )";
  auto r = HttpRequest(gw_address_, port_, "POST", "/v1/completions", bad);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("invalid JSON"), std::string::npos) << r.body;
}

// Today's API forms (llm-d.ai/v1alpha2): an InferenceObjective chosen by header sets the
// priority (< 0: sheddable), an InferenceModelRewrite aliases a model (its fallback rule
// takes any other name), and a refused request says why in x-llm-d-request-dropped-reason.
TEST_F(InferenceTest, ObjectivesRewritesAndTheDroppedReasonHeader) {
  StartServers(3, "base,base-v2");
  const std::string docs =
      "---\napiVersion: llm-d.ai/v1alpha2\nkind: InferenceObjective\nmetadata:\n  name: batch\n"
      "spec:\n  priority: -1\n  poolRef:\n    name: pool\n"
      "---\napiVersion: llm-d.ai/v1alpha2\nkind: InferenceObjective\nmetadata:\n"
      "  name: interactive\nspec:\n  priority: 10\n  poolRef:\n    name: pool\n"
      "---\napiVersion: llm-d.ai/v1alpha2\nkind: InferenceModelRewrite\nmetadata:\n"
      "  name: alias\nspec:\n  poolRef:\n    name: pool\n  rules:\n  - matches:\n"
      "    - model: {type: Exact, value: latest}\n    targets:\n    - modelRewrite: base-v2\n"
      "  - targets:\n    - modelRewrite: base\n";
  WriteConfig(docs, "    infergate.io/scheduling-profile: gie-default\n");
  StartGateway();
  // The alias: the server gets base-v2, the client sees the name it asked for.
  auto latest = Complete("latest");
  ASSERT_EQ(latest.status, 200) << latest.body;
  EXPECT_NE(latest.body.find("\"model\":\"latest\""), std::string::npos) << latest.body;
  // Any other name falls back to base (no 404: the rule without matches takes it).
  auto other = Complete("whatever");
  EXPECT_EQ(other.status, 200) << other.body;
  const std::string m = Metrics();
  EXPECT_NE(m.find("inference_model_request_total{model_name=\"latest\",target_model_name=\""
                   "base-v2\"} 1"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("inference_model_request_total{model_name=\"whatever\",target_model_name="
                   "\"base\"} 1"),
            std::string::npos);

  // Every endpoint full (GIE's published case): the batch objective is shed, by either
  // header name, and says why; the interactive one is served.
  servers_[0]->Control("waiting=6&kv=0.2");
  servers_[1]->Control("waiting=0&kv=0.85");
  servers_[2]->Control("waiting=10&kv=0.9");
  std::this_thread::sleep_for(200ms);
  for (const char* header : {"x-llm-d-inference-objective", "x-gateway-inference-objective"}) {
    auto shed = Complete("latest", false, {{header, "batch"}});
    EXPECT_EQ(shed.status, 429) << header << ": " << shed.body;
    EXPECT_EQ(shed.headers["x-llm-d-request-dropped-reason"], "saturated") << header;
    EXPECT_EQ(shed.headers["retry-after"], "1");
  }
  auto vip = Complete("latest", false,
                      {{"x-llm-d-inference-objective", "interactive"},
                       {"x-llm-d-inference-fairness-id", "tenant-a"}});
  EXPECT_EQ(vip.status, 200) << vip.body;
  EXPECT_TRUE(vip.headers.find("x-llm-d-request-dropped-reason") == vip.headers.end());
}

TEST_F(InferenceTest, RequestsAvoidTheLoadedEndpoint) {
  StartServers(3);
  WriteConfig("");
  servers_[1]->Control("waiting=30&running=40&kv=0.95");
  StartGateway();
  for (int i = 0; i < 60; ++i) {
    auto r = Complete("base");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body.find("\"text\":\"s1\""), std::string::npos) << "request " << i;
  }
  auto m = Metrics();
  EXPECT_NE(
      m.find("inference_pool_per_pod_queue_size{name=\"pool\",model_server_pod=\"llm-1\"} 30"),
      std::string::npos)
      << m;
}

TEST_F(InferenceTest, ADeadMirrorNeverSlowsOrFailsThePrimary) {
  StartServers(1);
  std::string dead_ip = UniqueLoopbackAddress();
  // The mirror's Service points at an address where a server holds requests forever.
  Server holder;
  holder.address = dead_ip;
  ASSERT_TRUE(holder.process.Start({TEST_UPSTREAM_BIN, "--address", dead_ip, "--port", "0"}));
  auto line = holder.process.WaitForLine("listening", 10s);
  ASSERT_TRUE(line.has_value());
  holder.port = std::stoi(line->substr(line->rfind(':') + 1));
  std::string mirror_rule =
      "    filters:\n    - type: RequestMirror\n      requestMirror:\n        backendRef:\n"
      "          name: mirror\n          port: 80\n";
  std::string docs =
      "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: mirror\nspec:\n  selector:\n"
      "    app: mirror\n  ports:\n  - port: 80\n    targetPort: " +
      std::to_string(holder.port) +
      "\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: mirror-0\n  labels:\n"
      "    app: mirror\nstatus:\n  podIP: " +
      dead_ip + "\n";
  WriteConfig(docs, "", "FailClose", mirror_rule);
  StartGateway({"--max-mirrors-in-flight", "4"});
  // A live mirror gets a copy of every request. Each copy is awaited before the next
  // request: on a loaded machine more than --max-mirrors-in-flight copies could otherwise
  // be in flight at once, and those beyond it are dropped by design.
  for (int i = 1; i <= 10; ++i) {
    ASSERT_EQ(Complete("base").status, 200);
    const std::string want = "\"completions\":" + std::to_string(i);
    auto deadline = Clock::now() + 5s;
    std::string stats;
    while (Clock::now() < deadline) {
      stats = HttpRequest(dead_ip, holder.port, "GET", "/stats").body;
      if (stats.find(want + ",") != std::string::npos ||
          stats.find(want + "}") != std::string::npos)
        break;
      std::this_thread::sleep_for(5ms);
    }
    ASSERT_TRUE(stats.find(want + ",") != std::string::npos ||
                stats.find(want + "}") != std::string::npos)
        << stats;
  }

  // A mirror that stops answering (the process is stopped: connections are accepted by
  // the kernel, nothing is read back) costs the primary nothing.
  holder.process.Signal(SIGSTOP);
  auto start = Clock::now();
  for (int i = 0; i < 100; ++i) {
    auto r = Complete("base");
    ASSERT_EQ(r.status, 200) << r.body;
  }
  EXPECT_LT(Clock::now() - start, 10s);
  auto m = Metrics();
  // Beyond the in-flight bound, copies are dropped and counted.
  EXPECT_NE(
      m.find("infergate_mirror_requests_total{backend=\"default/mirror\",result=\"dropped\"}"),
      std::string::npos)
      << m;
  holder.process.Signal(SIGCONT);
}

// ---------------------------------------------------------------- the gateway queue

// A request that no endpoint can take (every KV cache full) waits in the gateway's queue,
// visible in the metrics, and is bound to the first endpoint that frees room. Sheddable
// requests are not queued: they are shed.
TEST_F(InferenceTest, QueuedRequestsAreBoundWhenAnEndpointFreesRoom) {
  StartServers(2);
  std::string models =
      "---\napiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceModel\n"
      "metadata:\n  name: batch\nspec:\n  modelName: batch\n  criticality: Sheddable\n"
      "  poolRef:\n    name: pool\n  targetModels:\n  - name: base\n";
  WriteConfig(models);  // the default profile, infergate, queues
  for (auto& s : servers_) s->Control("kv=1&running=20&waiting=4");
  StartGateway();

  std::atomic<bool> done{false};
  HttpResponse queued;
  std::thread client([&] {
    queued = Complete("base");
    done = true;
  });
  std::string m;
  auto deadline = Clock::now() + 5s;
  while (Clock::now() < deadline) {
    m = Metrics();
    if (m.find("infergate_pool_queued_requests{name=\"pool\",priority=\"0\"} 1") !=
        std::string::npos)
      break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_NE(m.find("infergate_pool_queued_requests{name=\"pool\",priority=\"0\"} 1"),
            std::string::npos)
      << m;
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(done.load()) << "answered while every endpoint was full: " << queued.body;

  auto shed = Complete("batch");
  EXPECT_EQ(shed.status, 429) << shed.body;

  servers_[1]->Control("kv=0.1&running=1&waiting=0");
  client.join();
  EXPECT_EQ(queued.status, 200) << queued.body;
  EXPECT_NE(queued.body.find("\"text\":\"s1\""), std::string::npos) << queued.body;
  m = Metrics();
  EXPECT_NE(m.find("infergate_pool_queued_requests{name=\"pool\",priority=\"0\"} 0"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("infergate_pool_queue_wait_seconds_count{pool=\"default/pool\"} 1"),
            std::string::npos)
      << m;
  // With every pool family present, the page still passes promtool.
  const std::string file = dir_ + "/metrics.txt";
  std::ofstream(file) << m;
  FILE* p = ::popen(("promtool check metrics < " + file + " 2>&1").c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  EXPECT_EQ(::pclose(p), 0) << out;
  EXPECT_EQ(out, "");
}

// A request waits at most its route's timeout, then gets a 503; a client that leaves
// while queued takes its request out of the queue (nothing is sent for it later).
TEST_F(InferenceTest, QueuedRequestsExpireWithTheRouteTimeoutAndLeaveWithTheirClient) {
  StartServers(1);
  WriteConfig("", "", "FailClose", "    timeouts:\n      request: 1s\n");
  servers_[0]->Control("kv=1&running=20&waiting=4");
  StartGateway();

  const auto start = Clock::now();
  auto expired = Complete("base");
  const auto waited = Clock::now() - start;
  EXPECT_EQ(expired.status, 503) << expired.body;
  EXPECT_NE(expired.body.find("past its timeout"), std::string::npos) << expired.body;
  EXPECT_GE(waited, 900ms);
  EXPECT_LT(waited, 3s);

  // A client that gives up after 300 ms.
  const int fd = ConnectTcp(gw_address_, port_, 2s);
  ASSERT_GE(fd, 0);
  const std::string body = R"({"model":"base","prompt":"bye","max_tokens":2})";
  const std::string req =
      "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
      "application/json\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  ASSERT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
  std::this_thread::sleep_for(300ms);
  ::close(fd);
  std::string m;
  auto deadline = Clock::now() + 5s;
  while (Clock::now() < deadline) {
    m = Metrics();
    if (m.find("code=\"499\"") != std::string::npos) break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_NE(m.find("infergate_pool_queued_requests{name=\"pool\",priority=\"0\"} 0"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("code=\"499\""), std::string::npos) << m;
  // Room again: the departed request is not sent; a new one is.
  servers_[0]->Control("kv=0.1&running=0&waiting=0");
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(Complete("base").status, 200);
  auto stats = HttpRequest(servers_[0]->address, servers_[0]->port, "GET", "/stats").body;
  EXPECT_NE(stats.find("\"completions\":1"), std::string::npos) << stats;
}

// ---------------------------------------------------------------- simulated servers

// Re-dispatch: a streaming request that stays silent at its endpoint (here: the server
// sends its head, then nothing) past --redirect-after is aborted there and sent to an
// endpoint that has room. The client sees only the second server's answer.
TEST_F(InferenceTest, ASilentStreamMovesOnceToAnEndpointWithRoom) {
  StartServers(2);
  WriteConfig("");  // the default profile, infergate, queues
  servers_[0]->Control("stall=1");
  servers_[1]->Control("waiting=8&running=20&kv=0.9");  // the first pick avoids it
  StartGateway({"--redirect-after", "0.3"});

  HttpResponse r;
  const auto start = Clock::now();
  std::thread client([&] { r = Complete("base", /*stream=*/true); });
  // Once the request has reached (and stalled at) the first server, the second has room.
  for (auto until = Clock::now() + 5s; Clock::now() < until;) {
    const std::string st =
        HttpRequest(servers_[0]->address, servers_[0]->port, "GET", "/stats").body;
    if (st.find("\"completions\":1") != std::string::npos) break;
    std::this_thread::sleep_for(10ms);
  }
  servers_[1]->Control("waiting=0&running=0&kv=0");
  client.join();
  const auto took = Clock::now() - start;
  ASSERT_EQ(r.status, 200) << r.body << r.error;
  EXPECT_NE(r.body.find("\"text\":\"s1\""), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("s0"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("data: [DONE]"), std::string::npos) << r.body;
  EXPECT_LT(took, 5s);
  // The abandoned attempt's connection was closed: the server saw its client leave.
  auto deadline = Clock::now() + 2s;
  std::string stats0;
  while (Clock::now() < deadline) {
    stats0 = HttpRequest(servers_[0]->address, servers_[0]->port, "GET", "/stats").body;
    if (stats0.find("\"disconnects\":1") != std::string::npos) break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_NE(stats0.find("\"disconnects\":1"), std::string::npos) << stats0;
  const std::string m = Metrics();
  const std::string s0 = servers_[0]->address + ":" + std::to_string(servers_[0]->port);
  const std::string s1 = servers_[1]->address + ":" + std::to_string(servers_[1]->port);
  EXPECT_NE(m.find("infergate_pool_redirects_total{pool=\"default/pool\",from=\"" + s0 +
                   "\",to=\"" + s1 + "\"} 1"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("infergate_pool_picks_total{pool=\"default/pool\",endpoint=\"" + s1 + "\"} 1"),
            std::string::npos)
      << m;
  // The ledger let go of both attempts.
  EXPECT_NE(m.find("inference_model_running_requests{model_name=\"base\"} 0"), std::string::npos)
      << m;
}

// A slow first token stays where it is when no other endpoint has room, and a request
// whose first token the gateway cannot see (not streaming) is never moved.
TEST_F(InferenceTest, SlowRequestsStayWhenNoEndpointHasRoomOrTheyDoNotStream) {
  StartServers(2);
  WriteConfig("");
  servers_[0]->Control("first_delay_ms=700");
  servers_[1]->Control("waiting=8&running=20&kv=0.9");
  StartGateway({"--redirect-after", "0.2"});
  auto streamed = Complete("base", /*stream=*/true);
  ASSERT_EQ(streamed.status, 200) << streamed.body;
  EXPECT_NE(streamed.body.find("\"text\":\"s0\""), std::string::npos) << streamed.body;

  servers_[1]->Control("waiting=0&running=0&kv=0");
  std::this_thread::sleep_for(100ms);
  // Both idle: the pick may go either way; a request on s0 is slow but never moved.
  for (int i = 0; i < 4; ++i) {
    auto r = Complete("base");
    ASSERT_EQ(r.status, 200) << r.body;
  }
  const std::string m = Metrics();
  EXPECT_EQ(m.find("infergate_pool_redirects_total{"), std::string::npos) << m;
}

// Three `infergate sim` servers with the seed's profile; one is busy with a backlog sent
// to it directly (as another client would). Requests through the gateway avoid it.
TEST_F(InferenceTest, SimulatedServersNewRequestsAvoidThePreloadedOne) {
  std::vector<std::string> addresses;
  for (int i = 0; i < 3; ++i) addresses.push_back(UniqueLoopbackAddress());
  const int port = FreePort(addresses[0]);
  for (int i = 0; i < 3; ++i) {
    auto s = std::make_unique<Server>();
    s->address = addresses[i];
    s->port = port;
    ASSERT_TRUE(s->process.Start({INFERGATE_BIN, "sim", "--host", addresses[i], "--port",
                                  std::to_string(port), "--profile", "qwq-32b-tp2pp2", "--model",
                                  "base", "--time-scale", "10"}));
    ASSERT_TRUE(s->process.WaitForLine("listening", 10s).has_value());
    servers_.push_back(std::move(s));
  }
  // The backlog: 30 long requests held open on server 1 (about 4,000 prompt tokens and
  // 2,000 output tokens each: more than its KV cache holds at once).
  std::string prompt;
  for (int i = 0; i < 4000; ++i) prompt += "tok ";
  const std::string body =
      R"({"model":"base","prompt":")" + prompt + R"(","max_tokens":2000,"ignore_eos":true})";
  const std::string req =
      "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
      "application/json\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  std::vector<int> backlog;
  for (int i = 0; i < 30; ++i) {
    const int fd = ConnectTcp(addresses[1], port, 2s);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
    backlog.push_back(fd);
  }
  WriteConfig("");
  StartGateway();
  for (int i = 0; i < 24; ++i) {
    std::string short_body = R"({"model":"base","prompt":"what is the capital of france )" +
                             std::to_string(i) + R"(","max_tokens":4})";
    auto r = HttpRequest(gw_address_, port_, "POST", "/v1/completions", short_body, {}, 20s);
    ASSERT_EQ(r.status, 200) << r.body;
  }
  const std::string m = Metrics();
  auto picks = [&](int i) {
    const std::string key = "infergate_pool_picks_total{pool=\"default/pool\",endpoint=\"" +
                            addresses[i] + ":" + std::to_string(port) + "\"} ";
    auto at = m.find(key);
    return at == std::string::npos ? 0 : std::atoi(m.c_str() + at + key.size());
  };
  EXPECT_EQ(picks(1), 0) << m;
  EXPECT_EQ(picks(0) + picks(2), 24) << m;
  EXPECT_GT(picks(0), 0);
  EXPECT_GT(picks(2), 0);
  for (int fd : backlog) ::close(fd);
}

// Today's API forms against simulated vLLM servers: an alias by InferenceModelRewrite, a
// priority by InferenceObjective, and /v1/models listing the alias and what the servers
// serve.
TEST_F(InferenceTest, SimulatedServersAnswerAnAliasAndListTheirModels) {
  std::vector<std::string> addresses;
  for (int i = 0; i < 2; ++i) addresses.push_back(UniqueLoopbackAddress());
  const int port = FreePort(addresses[0]);
  for (int i = 0; i < 2; ++i) {
    auto s = std::make_unique<Server>();
    s->address = addresses[i];
    s->port = port;
    ASSERT_TRUE(s->process.Start({INFERGATE_BIN, "sim", "--host", addresses[i], "--port",
                                  std::to_string(port), "--profile", "qwq-32b-tp2pp2", "--model",
                                  "base", "--time-scale", "10"}));
    ASSERT_TRUE(s->process.WaitForLine("listening", 10s).has_value());
    servers_.push_back(std::move(s));
  }
  WriteConfig(
      "---\napiVersion: llm-d.ai/v1alpha2\nkind: InferenceModelRewrite\nmetadata:\n"
      "  name: alias\nspec:\n  poolRef:\n    group: inference.networking.k8s.io\n"
      "    name: pool\n  rules:\n  - matches:\n    - model:\n        type: Exact\n"
      "        value: base-latest\n    targets:\n    - modelRewrite: base\n"
      "---\napiVersion: llm-d.ai/v1alpha2\nkind: InferenceObjective\nmetadata:\n"
      "  name: interactive\nspec:\n  priority: 10\n  poolRef:\n    name: pool\n");
  StartGateway();
  const std::string body = R"({"model":"base-latest","prompt":"hello there","max_tokens":4})";
  auto r = HttpRequest(gw_address_, port_, "POST", "/v1/completions", body,
                       {{"x-llm-d-inference-objective", "interactive"}}, 20s);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("\"model\":\"base-latest\""), std::string::npos) << r.body;
  EXPECT_NE(Metrics().find("inference_model_request_total{model_name=\"base-latest\","
                           "target_model_name=\"base\"} 1"),
            std::string::npos);
  // Both the alias and the servers' own model, after the servers' model lists were read.
  std::string listed;
  const auto deadline = Clock::now() + 10s;
  while (Clock::now() < deadline) {
    listed = HttpRequest(gw_address_, port_, "GET", "/v1/models").body;
    if (listed.find("\"id\":\"base\"") != std::string::npos) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_NE(listed.find("\"id\":\"base-latest\""), std::string::npos) << listed;
  EXPECT_NE(listed.find("\"id\":\"base\""), std::string::npos) << listed;
  // Not configured and not served: 404.
  auto unknown = HttpRequest(gw_address_, port_, "POST", "/v1/completions",
                             R"({"model":"other","prompt":"x","max_tokens":1})");
  EXPECT_EQ(unknown.status, 404) << unknown.body;
}

}  // namespace
}  // namespace infergate::testing
