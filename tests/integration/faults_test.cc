// Faults the soak (scripts/soak.sh) found, each reproduced here in bounded time against the
// real binary: `infergate serve` in front of `infergate sim` servers on loopback.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/process.h"

namespace infergate::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct Sim {
  std::string address;
  int port = 0;
  ChildProcess process;
};

class GatewayFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir();
    gw_address_ = UniqueLoopbackAddress();
  }
  void TearDown() override {
    gateway_.Stop();
    for (auto& s : sims_) s->process.Stop();
  }

  // `n` simulated servers of the tiny profile (max_model_len 1,024, a KV cache of 4,096
  // tokens) on their own addresses and one port, `time_scale` times faster than real time.
  void StartSims(int n, double time_scale = 20) {
    const std::string first = UniqueLoopbackAddress();
    const int port = FreePort(first);
    for (int i = 0; i < n; ++i) {
      auto s = std::make_unique<Sim>();
      s->address = i == 0 ? first : UniqueLoopbackAddress();
      s->port = port;
      ASSERT_TRUE(s->process.Start({INFERGATE_BIN, "--log-level", "error", "sim", "--host",
                                    s->address, "--port", std::to_string(port), "--profile", "tiny",
                                    "--model", "m", "--time-scale", std::to_string(time_scale),
                                    "--seed", std::to_string(i)}));
      ASSERT_TRUE(s->process.WaitForLine("listening", 10s).has_value());
      sims_.push_back(std::move(s));
    }
  }

  // A Gateway, an HTTPRoute to InferencePool "pool" (the infergate profile: the gateway
  // queues) and one Pod per simulated server.
  void StartGateway(std::vector<std::string> extra = {}) {
    std::string y =
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: gw\n"
        "  annotations:\n    infergate.io/bind-address: \"" +
        gw_address_ +
        "\"\nspec:\n  listeners:\n  - name: llm\n    protocol: HTTP\n    port: 0\n---\n"
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: r\n"
        "spec:\n  parentRefs:\n  - name: gw\n  rules:\n  - backendRefs:\n"
        "    - group: inference.networking.x-k8s.io\n      kind: InferencePool\n"
        "      name: pool\n---\n"
        "apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferencePool\n"
        "metadata:\n  name: pool\nspec:\n  selector:\n    app: llm\n  targetPortNumber: " +
        std::to_string(sims_[0]->port) + "\n";
    for (std::size_t i = 0; i < sims_.size(); ++i) {
      y += "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: llm-" + std::to_string(i) +
           "\n  labels:\n    app: llm\nstatus:\n  podIP: " + sims_[i]->address + "\n";
    }
    std::ofstream(dir_ + "/config.yaml") << y;
    std::vector<std::string> argv = {
        INFERGATE_BIN,         "--log-level", "warn", "serve",           "-f",
        dir_ + "/config.yaml", "--workers",   "2",    "--admin-address", gw_address_ + ":0",
        "--scrape-interval",   "0.02"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    ASSERT_TRUE(gateway_.Start(argv));
    auto line = gateway_.WaitForLine("listening default/gw/llm", 10s);
    ASSERT_TRUE(line.has_value()) << gateway_.output();
    port_ = std::stoi(line->substr(line->rfind(':') + 1));
    auto admin = gateway_.WaitForLine("admin ", 10s);
    ASSERT_TRUE(admin.has_value());
    admin_port_ = std::stoi(admin->substr(admin->rfind(':') + 1));
    // Until every server has been scraped (its KV capacity is known).
    const std::string scraped =
        "infergate_pool_scrapes_total{pool=\"default/pool\",result=\"success\"} ";
    const auto deadline = Clock::now() + 10s;
    while (Clock::now() < deadline) {
      const std::string m = HttpRequest(gw_address_, admin_port_, "GET", "/metrics").body;
      const auto at = m.find(scraped);
      if (at != std::string::npos &&
          std::stoi(m.substr(at + scraped.size())) >= 2 * static_cast<int>(sims_.size())) {
        return;
      }
      std::this_thread::sleep_for(20ms);
    }
    FAIL() << "the servers were never scraped";
  }

  static std::string Completion(const std::string& prompt, int max_tokens) {
    return R"({"model":"m","prompt":")" + prompt + R"(","max_tokens":)" +
           std::to_string(max_tokens) + "}";
  }

  std::string dir_, gw_address_;
  int port_ = 0, admin_port_ = 0;
  std::vector<std::unique_ptr<Sim>> sims_;
  ChildProcess gateway_;
};

// Soak finding: a prompt longer than every server's KV cache (a 100-400 KB prompt to the
// tiny profile) was held in the gateway's queue until its client gave up, since no server
// would ever have room for it; at the head of the queue it held back every request behind
// it, which the clients saw as requests unanswered for 60 s. It must reach a server at once
// (whose context-length 400 the client gets), and the request behind it must be served.
TEST_F(GatewayFaultsTest, APromptLargerThanEveryKvCacheIsAnsweredAndBlocksNoOne) {
  StartSims(2);
  StartGateway();
  const std::string huge(40'000, 'x');  // ~10,000 tokens; the caches hold 4,096
  HttpResponse large, small;
  std::thread big([&] {
    large = HttpRequest(gw_address_, port_, "POST", "/v1/completions", Completion(huge, 4), {}, 8s);
  });
  std::this_thread::sleep_for(200ms);  // the large request is first in line
  small =
      HttpRequest(gw_address_, port_, "POST", "/v1/completions", Completion("hello", 4), {}, 8s);
  big.join();
  EXPECT_EQ(large.status, 400) << large.error << large.body;
  EXPECT_NE(large.body.find("maximum context length"), std::string::npos) << large.body;
  EXPECT_EQ(small.status, 200) << small.error << small.body;
}

// Soak finding: a client that cuts a stream after the response head was counted as an
// error with the head's status (error_code="200"): its leaving cancelled the upstream
// read, which was taken for an upstream failure. It is counted as 499, and the gateway
// writes nothing more to it.
TEST_F(GatewayFaultsTest, AClientThatCutsAStreamIsCountedAs499) {
  StartSims(1, /*time_scale=*/1);  // real time: the stream lasts seconds
  StartGateway();
  const std::string body = R"({"model":"m","prompt":"hello","max_tokens":200,"stream":true})";
  const std::string req =
      "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
      "application/json\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  const int fd = ConnectTcp(gw_address_, port_, 2s);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
  // Read until the first event has arrived (the head was sent), then leave.
  std::string got;
  char buf[4096];
  const auto deadline = Clock::now() + 10s;
  while (got.find("data: ") == std::string::npos && Clock::now() < deadline) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  ASSERT_NE(got.find("200 OK"), std::string::npos) << got;
  ::close(fd);
  const std::string gone = "error_code=\"499\"";
  std::string m;
  const auto until = Clock::now() + 10s;
  while (Clock::now() < until) {
    m = HttpRequest(gw_address_, admin_port_, "GET", "/metrics").body;
    if (m.find(gone) != std::string::npos) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_NE(m.find(gone), std::string::npos) << m;
  EXPECT_EQ(m.find("error_code=\"200\""), std::string::npos) << m;
  EXPECT_EQ(m.find("error_code=\"502\""), std::string::npos) << m;
}

}  // namespace
}  // namespace infergate::testing
