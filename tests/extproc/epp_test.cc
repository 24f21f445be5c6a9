// `infergate epp` over real gRPC, with a client playing Envoy's ext_proc filter and model
// server stand-ins (tests/support/test_upstream.cc) whose load the tests set: routing with
// fallbacks and rewriting, the response phases, refusals (400/429/503), the subset hint,
// a fallback that served, streams that end early or break the protocol, bad protobuf,
// many concurrent streams, and gRPC health.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <unistd.h>

#include <csignal>

#include <grpcpp/generic/generic_stub.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <thread>

#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/extproc/envoy_client.h"
#include "tests/support/process.h"

namespace infergate::extproc::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using infergate::testing::ChildProcess;
using infergate::testing::HttpRequest;
using infergate::testing::HttpResponse;

struct Server {
  std::string address;
  int port = 0;
  ChildProcess process;
  void Control(const std::string& query) const {
    auto r = HttpRequest(address, port, "GET", "/control?" + query);
    ASSERT_EQ(r.status, 200);
  }
};

class EppTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = infergate::testing::TempDir();
    address_ = infergate::testing::UniqueLoopbackAddress();
  }

  void StartServers(int n, const std::string& models = "base") {
    int port = 0;
    for (int i = 0; i < n; ++i) {
      auto s = std::make_unique<Server>();
      s->address = infergate::testing::UniqueLoopbackAddress();
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

  // The pool (no Gateway, no route: the EPP needs none), one Pod per server, extra docs.
  void WriteConfig(const std::string& extra_docs, const std::string& annotations = "",
                   const std::string& failure_mode = "FailClose") {
    std::string y =
        "apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferencePool\n"
        "metadata:\n  name: pool\n" +
        (annotations.empty() ? "" : "  annotations:\n" + annotations) +
        "spec:\n  selector:\n    app: llm\n  targetPortNumber: " +
        std::to_string(servers_[0]->port) +
        "\n  extensionRef:\n    name: epp\n    failureMode: " + failure_mode + "\n";
    for (std::size_t i = 0; i < servers_.size(); ++i) {
      y += "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: llm-" + std::to_string(i) +
           "\n  labels:\n    app: llm\nstatus:\n  podIP: " + servers_[i]->address + "\n";
    }
    std::ofstream(dir_ + "/config.yaml") << y << extra_docs;
  }

  void StartEpp(std::vector<std::string> extra = {}, bool wait_scraped = true) {
    std::vector<std::string> argv = {INFERGATE_BIN,
                                     "--log-level",
                                     "warn",
                                     "epp",
                                     "-f",
                                     dir_,
                                     "--workers",
                                     "2",
                                     "--grpc-address",
                                     address_,
                                     "--grpc-port",
                                     "0",
                                     "--grpc-health-port",
                                     "0",
                                     "--metrics-address",
                                     address_ + ":0",
                                     "--scrape-interval",
                                     "0.02"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    ASSERT_TRUE(epp_.Start(argv));
    auto admin = epp_.WaitForLine("admin ", 10s);
    ASSERT_TRUE(admin.has_value()) << epp_.output();
    admin_port_ = std::stoi(admin->substr(admin->rfind(':') + 1));
    auto ext = epp_.WaitForLine("ext_proc ", 10s);
    ASSERT_TRUE(ext.has_value()) << epp_.output();
    target_ = ext->substr(ext->find(' ') + 1);
    auto health = epp_.WaitForLine("health ", 10s);
    ASSERT_TRUE(health.has_value()) << epp_.output();
    health_target_ = health->substr(health->find(' ') + 1);
    stub_ = ConnectEpp(target_);
    if (!wait_scraped) return;
    auto deadline = Clock::now() + 10s;
    while (Clock::now() < deadline) {
      auto m = Metrics();
      if (m.find("infergate_pool_scrapes_total{pool=\"default/pool\",result=\"success\"}") !=
          std::string::npos) {
        break;
      }
      std::this_thread::sleep_for(20ms);
    }
    std::this_thread::sleep_for(100ms);
  }

  std::string Metrics() { return HttpRequest(address_, admin_port_, "GET", "/metrics").body; }
  double Metric(const std::string& key) {
    auto m = Metrics();
    auto p = m.find(key + " ");
    return p == std::string::npos ? 0 : std::stod(m.substr(p + key.size() + 1));
  }
  // Waits until the pool's in-flight count is `n` (the ledger caught up).
  bool WaitInflight(double n) {
    auto deadline = Clock::now() + 5s;
    while (Clock::now() < deadline) {
      if (Metric("infergate_pool_inflight_requests{name=\"pool\"}") == n) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  const Server* ServerAt(const std::string& endpoint) const {
    for (const auto& s : servers_) {
      if (endpoint == s->address + ":" + std::to_string(s->port)) return s.get();
    }
    return nullptr;
  }

  // Envoy's whole part for one request: route it, send it to the chosen server, relay
  // the response back through the picker. Returns the client's response.
  HttpResponse Exchange(const std::string& body,
                        const std::vector<std::pair<std::string, std::string>>& headers = {},
                        const std::vector<std::size_t>& pieces = {}, Routed* routed_out = nullptr) {
    EnvoyStream stream(*stub_);
    Routed routed = stream.RouteRequest(body, headers, pieces);
    if (routed_out) *routed_out = routed;
    HttpResponse out;
    if (!routed.error.empty()) {
      out.error = routed.error;
      return out;
    }
    if (routed.status != 200) {
      out.status = routed.status;
      out.body = routed.body;
      stream.CloseSend();
      stream.Finish();
      return out;
    }
    const Server* s = ServerAt(routed.endpoint);
    if (s == nullptr) {
      out.error = "unknown endpoint " + routed.endpoint;
      return out;
    }
    auto upstream = HttpRequest(s->address, s->port, "POST", "/v1/completions", routed.body,
                                {{"content-type", "application/json"}});
    auto relayed = stream.RelayResponse(upstream.status, upstream.body, "", 7);
    stream.CloseSend();
    auto st = stream.Finish();
    if (!relayed || !st.ok()) {
      out.error = "relay failed: " + st.error_message();
      return out;
    }
    out.status = upstream.status;
    out.body = *relayed;
    return out;
  }

  std::string dir_, address_, target_, health_target_;
  std::vector<std::unique_ptr<Server>> servers_;
  ChildProcess epp_;
  int admin_port_ = 0;
  std::unique_ptr<pb::ExternalProcessor::Stub> stub_;
};

const char* kCanary =
    "---\napiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceModel\n"
    "metadata:\n  name: chat\nspec:\n  modelName: chat\n  criticality: Critical\n"
    "  poolRef:\n    name: pool\n  targetModels:\n  - name: chat-v1\n";

TEST_F(EppTest, RoutesWithRewriteAndFollowsTheResponse) {
  StartServers(3, "chat-v1");
  WriteConfig(kCanary);
  StartEpp();
  const std::string body =
      R"({"model":"chat","prompt":"tell me about the weather in paris","max_tokens":3,)"
      R"("stream":true,"stream_options":{"include_usage":true}})";
  Routed routed;
  // Pieces split inside the model name, a one-byte piece, then the rest.
  auto r = Exchange(body, {{"x-gateway-inference-objective", "Critical"}}, {11, 1, 5}, &routed);
  ASSERT_EQ(r.status, 200) << r.error << r.body;
  EXPECT_TRUE(routed.clear_route_cache);
  // The server got the target model; the body and its length changed together.
  EXPECT_NE(routed.body.find(R"("model":"chat-v1")"), std::string::npos) << routed.body;
  EXPECT_EQ(routed.content_length, std::to_string(routed.body.size()));
  // Primary first, then fallbacks, all pool endpoints.
  EXPECT_EQ(routed.lb_endpoints.rfind(routed.endpoint, 0), 0u) << routed.lb_endpoints;
  EXPECT_GE(std::count(routed.lb_endpoints.begin(), routed.lb_endpoints.end(), ','), 1);
  // The client sees the model name it asked for, in every chunk.
  EXPECT_NE(r.body.find("data: [DONE]"), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("chat-v1"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"("model":"chat")"), std::string::npos) << r.body;
  // The ledger let go of it and learned its usage, as behind serve.
  EXPECT_TRUE(WaitInflight(0));
  auto m = Metrics();
  EXPECT_NE(
      m.find("inference_model_request_total{model_name=\"chat\",target_model_name=\"chat-v1\"} 1"),
      std::string::npos);
  EXPECT_NE(m.find("inference_model_input_tokens_count{model_name=\"chat\",target_model_name="
                   "\"chat-v1\"} 1"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("infergate_pool_picks_total{pool=\"default/pool\",endpoint=\"" +
                   routed.endpoint + "\"} 1"),
            std::string::npos);
}

TEST_F(EppTest, RefusesBadBodiesUnknownModelsAndShedsWithImmediateResponses) {
  StartServers(3);
  std::string models =
      "---\napiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceModel\n"
      "metadata:\n  name: batch\nspec:\n  modelName: batch\n  criticality: Sheddable\n"
      "  poolRef:\n    name: pool\n  targetModels:\n  - name: base\n";
  WriteConfig(models, "    infergate.io/scheduling-profile: gie-v0\n");
  servers_[0]->Control("waiting=6&kv=0.2");
  servers_[1]->Control("waiting=0&kv=0.85");
  servers_[2]->Control("waiting=10&kv=0.9");
  StartEpp();
  Routed routed;
  auto bad = Exchange(R"({"model": "base", "prompt": )", {}, {3}, &routed);
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(routed.immediate_headers["x-llm-d-request-dropped-reason"], "bad_request");
  EXPECT_NE(bad.body.find("invalid_request_error"), std::string::npos) << bad.body;

  auto shed = Exchange(R"({"model":"batch","prompt":"x"})", {}, {}, &routed);
  EXPECT_EQ(shed.status, 429) << shed.body;
  EXPECT_FALSE(routed.immediate_headers["x-llm-d-request-dropped-reason"].empty());
  EXPECT_NE(shed.body.find("rate_limit_exceeded"), std::string::npos);
  // The objective header can shed too (a negative priority is sheddable).
  auto shed2 =
      Exchange(R"({"model":"base","prompt":"x"})", {{"x-gateway-inference-objective", "-1"}});
  EXPECT_EQ(shed2.status, 429) << shed2.body;
  // Critical requests are never shed.
  auto ok = Exchange(R"({"model":"base","prompt":"x","max_tokens":1})",
                     {{"x-gateway-inference-objective", "Critical"}});
  EXPECT_EQ(ok.status, 200) << ok.error;
}

TEST_F(EppTest, NoFreshMetricsUnderFailCloseIs503) {
  StartServers(2);
  WriteConfig("");
  servers_[0]->Control("metrics=error");
  servers_[1]->Control("metrics=error");
  StartEpp({}, /*wait_scraped=*/false);
  std::this_thread::sleep_for(200ms);
  Routed routed;
  auto r = Exchange(R"({"model":"base","prompt":"x"})", {}, {}, &routed);
  EXPECT_EQ(r.status, 503) << r.error;
  EXPECT_FALSE(routed.immediate_headers["x-llm-d-request-dropped-reason"].empty());
}

TEST_F(EppTest, SubsetHintLimitsTheChoice) {
  StartServers(3);
  WriteConfig("");
  StartEpp();
  const std::string only = servers_[2]->address + ":" + std::to_string(servers_[2]->port);
  for (int i = 0; i < 10; ++i) {
    EnvoyStream stream(*stub_);
    auto routed = stream.RouteRequest(R"({"model":"base","prompt":"p)" + std::to_string(i) + "\"}",
                                      {}, {}, {only, "10.255.255.1:1"});
    ASSERT_EQ(routed.status, 200) << routed.error;
    EXPECT_EQ(routed.endpoint, only);
    EXPECT_EQ(routed.lb_endpoints, only);
    stream.Cancel();
  }
  EnvoyStream stream(*stub_);
  auto none = stream.RouteRequest(R"({"model":"base","prompt":"p"})", {}, {}, {"10.255.255.1:1"});
  EXPECT_EQ(none.status, 503);
  EXPECT_TRUE(WaitInflight(0));
}

TEST_F(EppTest, FallbackThatServedMovesTheLedgerEntry) {
  StartServers(2);
  WriteConfig("");
  StartEpp();
  EnvoyStream stream(*stub_);
  auto routed = stream.RouteRequest(R"({"model":"base","prompt":"hello","max_tokens":1})");
  ASSERT_EQ(routed.status, 200);
  const std::string fallback = routed.lb_endpoints.substr(routed.lb_endpoints.find(',') + 1);
  ASSERT_NE(fallback, routed.endpoint);
  const Server* s = ServerAt(fallback);
  ASSERT_NE(s, nullptr);
  auto upstream = HttpRequest(s->address, s->port, "POST", "/v1/completions", routed.body);
  auto relayed = stream.RelayResponse(upstream.status, upstream.body, fallback);
  ASSERT_TRUE(relayed.has_value());
  stream.CloseSend();
  EXPECT_TRUE(stream.Finish().ok());
  EXPECT_TRUE(WaitInflight(0));
  // The completion counts at the endpoint that served it.
  EXPECT_EQ(
      Metric("infergate_pool_picks_total{pool=\"default/pool\",endpoint=\"" + fallback + "\"}"), 1);
  EXPECT_EQ(Metric("infergate_pool_picks_total{pool=\"default/pool\",endpoint=\"" +
                   routed.endpoint + "\"}"),
            0);
}

TEST_F(EppTest, StreamsThatEndEarlyOrBreakTheProtocolGetAnErrorAndReleaseTheirRequest) {
  StartServers(2);
  WriteConfig("");
  StartEpp();
  {  // Headers, part of the body, then the client half-closes.
    EnvoyStream stream(*stub_);
    pb::ProcessingRequest h;
    h.mutable_request_headers();
    ASSERT_TRUE(stream.Send(h));
    pb::ProcessingRequest b;
    b.mutable_request_body()->set_body("{\"model\":");
    ASSERT_TRUE(stream.Send(b));
    stream.CloseSend();
    EXPECT_FALSE(stream.Read().has_value());
    EXPECT_FALSE(stream.Finish().ok());
  }
  {  // Body before headers.
    EnvoyStream stream(*stub_);
    pb::ProcessingRequest b;
    b.mutable_request_body()->set_body("{}");
    b.mutable_request_body()->set_end_of_stream(true);
    stream.Send(b);
    EXPECT_FALSE(stream.Read().has_value());
    auto st = stream.Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(st.error_message().find("out of order"), std::string::npos);
  }
  {  // Routed, then reset mid-response (the client went away).
    EnvoyStream stream(*stub_);
    auto routed = stream.RouteRequest(R"({"model":"base","prompt":"x"})");
    ASSERT_EQ(routed.status, 200);
    EXPECT_TRUE(WaitInflight(1));
    pb::ProcessingRequest h;
    h.mutable_response_headers();
    ASSERT_TRUE(stream.Send(h));
    ASSERT_TRUE(stream.Read().has_value());
    stream.Cancel();
    stream.Finish();
  }
  EXPECT_TRUE(WaitInflight(0));
  {  // Bytes that are not a ProcessingRequest.
    auto channel = grpc::CreateChannel(target_, grpc::InsecureChannelCredentials());
    grpc::GenericStub generic(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 5s);
    grpc::CompletionQueue cq;
    auto call =
        generic.PrepareCall(&ctx, "/envoy.service.ext_proc.v3.ExternalProcessor/Process", &cq);
    call->StartCall(reinterpret_cast<void*>(1));
    void* tag;
    bool ok;
    ASSERT_TRUE(cq.Next(&tag, &ok));
    const char garbage[] = "\xff\xff\xff\xff\x0f\x12\x99junk";
    grpc::Slice slice(garbage, sizeof(garbage) - 1);
    grpc::ByteBuffer buffer(&slice, 1);
    call->Write(buffer, reinterpret_cast<void*>(2));
    ASSERT_TRUE(cq.Next(&tag, &ok));
    call->WritesDone(reinterpret_cast<void*>(3));
    cq.Next(&tag, &ok);
    grpc::Status st;
    call->Finish(&st, reinterpret_cast<void*>(4));
    while (cq.Next(&tag, &ok) && tag != reinterpret_cast<void*>(4)) {
    }
    EXPECT_FALSE(st.ok());
    cq.Shutdown();
    while (cq.Next(&tag, &ok)) {
    }
  }
  // Still serving.
  auto ok = Exchange(R"({"model":"base","prompt":"after","max_tokens":1})");
  EXPECT_EQ(ok.status, 200) << ok.error;
  EXPECT_TRUE(epp_.running());
}

TEST_F(EppTest, ManyConcurrentStreams) {
  StartServers(3);
  WriteConfig("");
  StartEpp();
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        const std::string body = R"({"model":"base","prompt":"thread )" + std::to_string(t) +
                                 " request " + std::to_string(i) + R"(","max_tokens":2})";
        auto r = Exchange(body, {}, {static_cast<std::size_t>(1 + (t + i) % 17)});
        (r.status == 200 && r.error.empty() ? ok : failed)++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 16 * 20);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_TRUE(WaitInflight(0));
}

// End to end with `infergate sim` servers (the seed's profile), the test forwarding each
// request to the endpoint the picker chose, as Envoy would. One server is busy with a
// backlog sent to it directly: requests through the picker avoid it, the same workload
// and assertion as serve's SimulatedServersNewRequestsAvoidThePreloadedOne
// (tests/integration/inference_test.cc), so the two modes' routing compares directly.
TEST_F(EppTest, SimulatedServersNewRequestsAvoidThePreloadedOne) {
  std::vector<std::string> addresses;
  for (int i = 0; i < 3; ++i) addresses.push_back(infergate::testing::UniqueLoopbackAddress());
  const int port = infergate::testing::FreePort(addresses[0]);
  for (int i = 0; i < 3; ++i) {
    auto s = std::make_unique<Server>();
    s->address = addresses[i];
    s->port = port;
    ASSERT_TRUE(s->process.Start({INFERGATE_SIM_BIN, "sim", "--host", addresses[i], "--port",
                                  std::to_string(port), "--profile", "qwq-32b-tp2pp2", "--model",
                                  "base", "--time-scale", "10"}));
    ASSERT_TRUE(s->process.WaitForLine("listening", 10s).has_value());
    servers_.push_back(std::move(s));
  }
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
    const int fd = infergate::testing::ConnectTcp(addresses[1], port, 2s);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
    backlog.push_back(fd);
  }
  WriteConfig("");
  StartEpp();
  for (int i = 0; i < 24; ++i) {
    std::string short_body =
        R"({"model":"base","prompt":"what is the capital of france )" + std::to_string(i) +
        R"(","max_tokens":4,"stream":true,"stream_options":{"include_usage":true}})";
    auto r = Exchange(short_body, {}, {9, 100});
    ASSERT_EQ(r.status, 200) << r.error << r.body;
    ASSERT_NE(r.body.find("[DONE]"), std::string::npos) << r.body;
  }
  EXPECT_TRUE(WaitInflight(0));
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
  // The usage each server reported reached the ledger's counters.
  EXPECT_NE(
      m.find(
          "inference_model_output_tokens_count{model_name=\"base\",target_model_name=\"base\"} 24"),
      std::string::npos)
      << m;
  for (int fd : backlog) ::close(fd);
}

TEST_F(EppTest, HealthServicesGieDeploymentsProbe) {
  StartServers(1);
  WriteConfig("");
  StartEpp();
  auto stub = ::grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(health_target_, grpc::InsecureChannelCredentials()));
  for (const char* service :
       {"", "liveness", "readiness", "envoy.service.ext_proc.v3.ExternalProcessor"}) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 5s);
    ::grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    ::grpc::health::v1::HealthCheckResponse res;
    auto st = stub->Check(&ctx, req, &res);
    ASSERT_TRUE(st.ok()) << service << ": " << st.error_message();
    EXPECT_EQ(res.status(), ::grpc::health::v1::HealthCheckResponse::SERVING) << service;
  }
  grpc::ClientContext ctx;
  ::grpc::health::v1::HealthCheckRequest req;
  req.set_service("nope");
  ::grpc::health::v1::HealthCheckResponse res;
  EXPECT_EQ(stub->Check(&ctx, req, &res).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(EppTest, SeveralPoolsNeedAFlag) {
  StartServers(1);
  WriteConfig(
      "---\napiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferencePool\n"
      "metadata:\n  name: other\nspec:\n  selector:\n    app: none\n  targetPortNumber: 80\n"
      "  extensionRef:\n    name: epp2\n");
  auto out = infergate::testing::RunCommand(
      {INFERGATE_BIN, "epp", "-f", dir_, "--grpc-port", "0", "--grpc-health-port", "0",
       "--metrics-address", address_ + ":0"},
      dir_, std::chrono::seconds(20));
  EXPECT_EQ(out.code, 2);
  EXPECT_NE(out.err.find("--pool"), std::string::npos) << out.err;
  EXPECT_NE(out.err.find("default/other"), std::string::npos) << out.err;
  StartEpp({"--pool-name", "pool", "--pool-namespace", "default"});
  auto ok = Exchange(R"({"model":"base","prompt":"x","max_tokens":1})");
  EXPECT_EQ(ok.status, 200) << ok.error;
}

// Streams held in the pool's queue when SIGTERM arrives are answered, not cut: during the
// shutdown grace readiness fails and a held request is still picked when an endpoint
// frees; at the drain the ones left are decided at once (picked, or an ImmediateResponse
// with x-llm-d-request-dropped-reason), and the process exits 0.
TEST_F(EppTest, HeldStreamsAreAnsweredOnSigterm) {
  StartServers(2);
  WriteConfig("");  // the default profile, infergate, queues
  for (auto& s : servers_) s->Control("kv=1&running=20&waiting=4");
  StartEpp({"--shutdown-grace", "2.5", "--drain-timeout", "10"});

  constexpr int kHeld = 3;
  std::vector<Routed> routed(kHeld);
  std::vector<std::unique_ptr<EnvoyStream>> streams;
  std::vector<std::thread> clients;
  std::atomic<int> answered{0};
  for (int i = 0; i < kHeld; ++i) streams.push_back(std::make_unique<EnvoyStream>(*stub_));
  auto hold = [&](int i, int queued_after) {
    clients.emplace_back([&, i] {
      routed[i] = streams[i]->RouteRequest(R"({"model":"base","prompt":"held )" +
                                           std::to_string(i) + R"(","max_tokens":1})");
      ++answered;
    });
    const std::string queued = "infergate_pool_queued_requests{name=\"pool\",priority=\"0\"} " +
                               std::to_string(queued_after);
    auto deadline = Clock::now() + 5s;
    while (Clock::now() < deadline && Metrics().find(queued) == std::string::npos) {
      std::this_thread::sleep_for(20ms);
    }
    return Metrics().find(queued) != std::string::npos;
  };
  auto health = ::grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(health_target_, grpc::InsecureChannelCredentials()));
  auto readiness = [&] {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 2s);
    ::grpc::health::v1::HealthCheckRequest req;
    req.set_service("readiness");
    ::grpc::health::v1::HealthCheckResponse res;
    auto st = health->Check(&ctx, req, &res);
    return st.ok() ? res.status() : ::grpc::health::v1::HealthCheckResponse::UNKNOWN;
  };
  using ::grpc::health::v1::HealthCheckResponse;

  ASSERT_TRUE(hold(0, 1)) << Metrics();
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(answered.load(), 0);
  ASSERT_TRUE(epp_.Signal(SIGTERM));
  const auto signalled = Clock::now();
  // The grace: readiness fails, the stream stays open and held.
  auto deadline = Clock::now() + 1s;
  while (Clock::now() < deadline && readiness() != HealthCheckResponse::NOT_SERVING) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(readiness(), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(answered.load(), 0);
  // An endpoint frees room: the held request is picked for it.
  servers_[1]->Control("kv=0.1&running=0&waiting=0");
  deadline = Clock::now() + 1s;
  while (Clock::now() < deadline && answered.load() == 0) std::this_thread::sleep_for(10ms);
  servers_[1]->Control("kv=1&running=20&waiting=4");
  ASSERT_EQ(answered.load(), 1) << "the held request was not picked when an endpoint freed";
  EXPECT_EQ(routed[0].status, 200) << routed[0].error;
  EXPECT_EQ(routed[0].endpoint, servers_[1]->address + ":" + std::to_string(servers_[1]->port));
  std::this_thread::sleep_for(200ms);  // scraped full again

  // Two more are held during the grace, then the drain decides them at once.
  ASSERT_TRUE(hold(1, 1)) << Metrics();
  ASSERT_TRUE(hold(2, 2)) << Metrics();
  ASSERT_LT(Clock::now() - signalled, 2300ms) << "the grace ended before the requests were held";
  EXPECT_EQ(answered.load(), 1);
  deadline = Clock::now() + 5s;
  while (Clock::now() < deadline && answered.load() < kHeld) std::this_thread::sleep_for(10ms);
  ASSERT_EQ(answered.load(), kHeld) << epp_.output();
  EXPECT_LT(Clock::now() - signalled, 5s);
  for (int i = 1; i < kHeld; ++i) {
    SCOPED_TRACE(i);
    EXPECT_TRUE(routed[i].error.empty()) << routed[i].error;
    if (routed[i].status == 200) {
      EXPECT_NE(ServerAt(routed[i].endpoint), nullptr) << routed[i].endpoint;
    } else {
      EXPECT_EQ(routed[i].status, 503) << routed[i].body;
      EXPECT_FALSE(routed[i].immediate_headers["x-llm-d-request-dropped-reason"].empty());
    }
  }
  // Routed streams stay open through the drain: their responses are followed to the end.
  for (int i = 0; i < kHeld; ++i) {
    SCOPED_TRACE(i);
    if (routed[i].status == 200) {
      auto relayed = streams[i]->RelayResponse(
          200,
          R"({"choices":[{"text":"x"}],"usage":{"prompt_tokens":3,"completion_tokens":1,)"
          R"("total_tokens":4}})",
          "", 7);
      EXPECT_TRUE(relayed.has_value());
    }
    streams[i]->CloseSend();
    EXPECT_TRUE(streams[i]->Finish().ok());
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(epp_.Wait(10s), 0) << epp_.output();
}

}  // namespace
}  // namespace infergate::extproc::testing
