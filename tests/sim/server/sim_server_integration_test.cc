// `infergate sim` as a process on loopback: the API's exact shapes, errors, /metrics
// against promtool and the gateway's parser, disconnects, the time scale, replicas, every
// fault flag, exit codes, and the benchmark client against it.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <regex>
#include <thread>

#include "core/tokenizer.h"
#include "datalayer/engine_metrics.h"
#include "loadgen/request.h"
#include "sim/engine/engine.h"
#include "sim/engine/output_model.h"
#include "tests/loadgen/client_checks.h"
#include "tests/support/process.h"

namespace infergate::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

struct Sim {
  ChildProcess process;
  std::vector<std::string> addresses;  // per replica
  std::vector<int> ports;
  const std::string& address() const { return addresses.front(); }
  int port() const { return ports.front(); }
};

// Starts `infergate sim` on a fresh loopback address (port 0) with --model test-model and
// `args`; waits for one "listening" line per replica.
std::unique_ptr<Sim> StartSim(std::vector<std::string> args, int replicas = 1,
                              std::string host = "") {
  auto s = std::make_unique<Sim>();
  if (host.empty()) host = UniqueLoopbackAddress();
  std::vector<std::string> argv = {INFERGATE_BIN, "--log-level", "warn", "sim",     "--host",
                                   host,          "--port",      "0",    "--model", "test-model"};
  argv.insert(argv.end(), args.begin(), args.end());
  EXPECT_TRUE(s->process.Start(argv));
  for (int i = 0; i < replicas; ++i) {
    auto line = s->process.WaitForLine("listening ", 10s);
    EXPECT_TRUE(line.has_value()) << "replica " << i;
    if (!line) break;
    const std::string hp = line->substr(std::string("listening ").size());
    const auto colon = hp.rfind(':');
    s->addresses.push_back(hp.substr(0, colon));
    s->ports.push_back(std::stoi(hp.substr(colon + 1)));
  }
  if (s->addresses.empty()) {
    s->addresses.push_back(host);
    s->ports.push_back(0);
  }
  return s;
}

HttpResponse Post(const Sim& s, const std::string& path, const std::string& body, int replica = 0,
                  std::chrono::milliseconds timeout = 10s) {
  return HttpRequest(s.addresses[replica], s.ports[replica], "POST", path, body, {}, timeout);
}

HttpResponse Get(const Sim& s, const std::string& path, int replica = 0,
                 std::chrono::milliseconds timeout = 10s) {
  return HttpRequest(s.addresses[replica], s.ports[replica], "GET", path, "", {}, timeout);
}

// The payloads of `data: ...` events.
std::vector<std::string> Events(const std::string& body) {
  std::vector<std::string> out;
  std::size_t p = 0;
  for (;;) {
    const auto end = body.find("\n\n", p);
    if (end == std::string::npos) break;
    const std::string ev = body.substr(p, end - p);
    EXPECT_EQ(ev.rfind("data: ", 0), 0u) << ev;
    out.push_back(ev.substr(6));
    p = end + 2;
  }
  EXPECT_EQ(p, body.size()) << "trailing bytes: " << body.substr(p);
  return out;
}

// Output token `index` of the `id`-th request a replica with engine seed `seed` admitted.
std::string Piece(std::uint64_t seed, std::uint64_t id, int index) {
  std::string s;
  sim::AppendOutputText(sim::OutputPieceKey(seed, id, index), false, s);
  return s;
}

// The value of the first sample whose line starts with `series` (name{labels}).
std::optional<double> Sample(const std::string& page, const std::string& series) {
  std::size_t p = 0;
  while ((p = page.find(series, p)) != std::string::npos) {
    if (p == 0 || page[p - 1] == '\n') {
      const auto sp = page.find(' ', p + series.size());
      const auto nl = page.find('\n', p);
      if (sp != std::string::npos && sp < nl) return std::stod(page.substr(sp + 1, nl - sp - 1));
    }
    p += series.size();
  }
  return std::nullopt;
}

Result<EndpointMetrics> Scrape(const Sim& s, int replica = 0) {
  auto r = Get(s, "/metrics", replica);
  if (r.status != 200) return Error{"status " + std::to_string(r.status) + " " + r.error};
  return ExtractEndpointMetrics(r.body);
}

// Polls `pred` until it holds or `timeout` passes (for effects another process applies).
bool WaitUntil(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 5s) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

// promtool's findings on `page`, without its lint against ':' in names (every vLLM metric
// name has one).
std::string PromtoolProblems(const std::string& page) {
  const std::string file = TempDir() + "/metrics.txt";
  std::ofstream(file) << page;
  FILE* p = ::popen(("promtool check metrics < " + file + " 2>&1").c_str(), "r");
  if (p == nullptr) return "cannot run promtool";
  std::string out, line;
  char buf[1024];
  while (std::fgets(buf, sizeof buf, p)) {
    line = buf;
    if (line.find("metric names should not contain ':'") == std::string::npos) out += line;
  }
  ::pclose(p);
  return out;
}

// A streaming request on its own connection, left open; returns the socket.
int OpenStream(const Sim& s, const std::string& body, int replica = 0) {
  int fd = ConnectTcp(s.addresses[replica], s.ports[replica], 5000ms);
  EXPECT_GE(fd, 0);
  const std::string req =
      "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
      "application/json\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  EXPECT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
  return fd;
}

// Reads from `fd` until `needle` has arrived (true) or the peer closes / time runs out.
bool ReadUntil(int fd, const std::string& needle, std::string& got,
               std::chrono::milliseconds timeout = 5s) {
  const auto deadline = Clock::now() + timeout;
  char buf[4096];
  while (got.find(needle) == std::string::npos) {
    if (Clock::now() >= deadline) return false;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return false;
    got.append(buf, static_cast<std::size_t>(n));
  }
  return true;
}

// Reads until the peer closes; false on timeout.
bool ReadToClose(int fd, std::string& got, std::chrono::milliseconds timeout = 5s) {
  const auto deadline = Clock::now() + timeout;
  char buf[4096];
  while (Clock::now() < deadline) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0) return true;
    if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK;
    got.append(buf, static_cast<std::size_t>(n));
  }
  return false;
}

std::string TokenIds(int n) {
  std::string s = "[";
  for (int i = 0; i < n; ++i) s += (i ? "," : "") + std::to_string(100 + i);
  return s + "]";
}

// ---------------------------------------------------------------------------------------

TEST(SimServerApi, CompletionsStreamIsExact) {
  auto s = StartSim({"--profile", "tiny"});
  const auto r = Post(*s, "/v1/completions",
                      R"({"model":"test-model","prompt":"hello world","max_tokens":3,)"
                      R"("stream":true,"stream_options":{"include_usage":true}})");
  ASSERT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(r.headers.at("content-type"), "text/event-stream; charset=utf-8");
  EXPECT_EQ(r.headers.at("transfer-encoding"), "chunked");
  const auto ev = Events(r.body);
  ASSERT_EQ(ev.size(), 5u);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      ev[0], m,
      std::regex(
          R"re(^\{"id":"(cmpl-[0-9a-f]{32})","object":"text_completion","created":(\d+),)re")));
  const std::string head = R"({"id":")" + m[1].str() +
                           R"(","object":"text_completion","created":)" + m[2].str() +
                           R"(,"model":"test-model",)";
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(ev[static_cast<std::size_t>(i)],
              head + R"("choices":[{"index":0,"text":")" + Piece(0, 1, i) +
                  R"(","logprobs":null,"finish_reason":)" + (i == 2 ? "\"length\"" : "null") +
                  R"(,"stop_reason":null}],"usage":null})");
  }
  const int prompt = static_cast<int>(Tokenizer::Count("hello world"));
  EXPECT_EQ(ev[3], head + R"("choices":[],"usage":{"prompt_tokens":)" + std::to_string(prompt) +
                       R"(,"total_tokens":)" + std::to_string(prompt + 3) +
                       R"(,"completion_tokens":3}})");
  EXPECT_EQ(ev[4], "[DONE]");
}

TEST(SimServerApi, ChatStreamIsExact) {
  auto s = StartSim({"--profile", "tiny"});
  const auto r = Post(*s, "/v1/chat/completions",
                      R"({"model":"test-model","messages":[{"role":"user","content":"Hi there"}],)"
                      R"("max_completion_tokens":2,"stream":true,)"
                      R"("stream_options":{"include_usage":true}})");
  ASSERT_EQ(r.status, 200) << r.error;
  const auto ev = Events(r.body);
  ASSERT_EQ(ev.size(), 5u);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      ev[0], m, std::regex(R"re("id":"(chatcmpl-[0-9a-f]{32})".*"created":(\d+),)re")));
  const std::string head = R"({"id":")" + m[1].str() +
                           R"(","object":"chat.completion.chunk","created":)" + m[2].str() +
                           R"(,"model":"test-model",)";
  EXPECT_EQ(ev[0], head + R"("choices":[{"index":0,"delta":{"role":"assistant","content":""},)"
                          R"("logprobs":null,"finish_reason":null}]})");
  EXPECT_EQ(ev[1], head + R"("choices":[{"index":0,"delta":{"content":")" + Piece(0, 1, 0) +
                       R"("},"logprobs":null,"finish_reason":null}]})");
  EXPECT_EQ(ev[2], head + R"("choices":[{"index":0,"delta":{"content":")" + Piece(0, 1, 1) +
                       R"("},"logprobs":null,"finish_reason":"length","stop_reason":null}]})");
  const int prompt = static_cast<int>(
      Tokenizer::Count("<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n"));
  EXPECT_EQ(ev[3], head + R"("choices":[],"usage":{"prompt_tokens":)" + std::to_string(prompt) +
                       R"(,"total_tokens":)" + std::to_string(prompt + 2) +
                       R"(,"completion_tokens":2}})");
  EXPECT_EQ(ev[4], "[DONE]");
}

TEST(SimServerApi, EosEndsWithStopAndAnEmptyLastChunk) {
  auto s = StartSim({"--profile", "tiny", "--eos", "uniform", "--eos-min-fraction", "0.2",
                     "--eos-max-fraction", "0.5", "--seed", "3"});
  const auto r = Post(*s, "/v1/completions",
                      R"({"prompt":"abc","max_tokens":40,"stream":true,)"
                      R"("stream_options":{"include_usage":true,"continuous_usage_stats":true}})");
  ASSERT_EQ(r.status, 200) << r.error;
  const auto ev = Events(r.body);
  ASSERT_GE(ev.size(), 3u);
  const json last = json::parse(ev[ev.size() - 3]);
  EXPECT_EQ(last["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(last["choices"][0]["text"], "");  // the EOS token renders as nothing
  const json usage = json::parse(ev[ev.size() - 2])["usage"];
  const int tokens = usage["completion_tokens"];
  EXPECT_EQ(static_cast<std::size_t>(tokens), ev.size() - 2);
  EXPECT_GE(tokens, 8);
  EXPECT_LE(tokens, 20);
  // Continuous usage: every token chunk counts its tokens so far.
  for (int i = 0; i < tokens; ++i) {
    const json c = json::parse(ev[static_cast<std::size_t>(i)]);
    EXPECT_EQ(c["usage"]["completion_tokens"], i + 1);
    EXPECT_TRUE(c["usage"].contains("prompt_tokens_details"));
  }
  // The model name defaults to the served name when the body has none.
  EXPECT_EQ(last["model"], "test-model");
}

TEST(SimServerApi, NonStreamedShapes) {
  auto s = StartSim({"--profile", "tiny"});
  auto r = Post(*s, "/v1/completions", R"({"model":"test-model","prompt":[1,2,3],"max_tokens":2})");
  ASSERT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(r.headers.at("content-type"), "application/json");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.body, m,
                                std::regex(R"re("id":"(cmpl-[0-9a-f]{32})".*"created":(\d+),)re")));
  EXPECT_EQ(r.body, R"({"id":")" + m[1].str() + R"(","object":"text_completion","created":)" +
                        m[2].str() + R"(,"model":"test-model","choices":[{"index":0,"text":")" +
                        Piece(0, 1, 0) + Piece(0, 1, 1) +
                        R"(","logprobs":null,"finish_reason":"length","stop_reason":null,)"
                        R"("prompt_logprobs":null}],"usage":{"prompt_tokens":3,"total_tokens":5,)"
                        R"("completion_tokens":2,"prompt_tokens_details":null}})");
  r = Post(*s, "/v1/chat/completions",
           R"({"model":"test-model","messages":[{"role":"user","content":"x"}],"max_tokens":1})");
  ASSERT_EQ(r.status, 200) << r.error;
  const json j = json::parse(r.body);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(j["choices"][0]["message"]["content"], Piece(0, 2, 0));
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["usage"]["completion_tokens"], 1);
  EXPECT_NE(r.body.find(R"("message":{"role":"assistant","reasoning_content":null,"content":)"),
            std::string::npos);
}

TEST(SimServerApi, Errors) {
  auto s = StartSim({"--profile", "tiny"});
  auto r = Post(*s, "/v1/completions", R"({"model":"nope","prompt":"x"})");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, R"({"object":"error","message":"The model `nope` does not exist.",)"
                    R"("type":"NotFoundError","param":null,"code":404})");

  r = Post(*s, "/v1/completions", R"({"prompt":)" + TokenIds(1000) + R"(,"max_tokens":100})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json::parse(r.body)["message"], sim::ContextLengthError(1024, 1000, 100));
  EXPECT_EQ(json::parse(r.body)["message"],
            "This model's maximum context length is 1024 tokens. However, you requested 1100 "
            "tokens (1000 in the messages, 100 in the completion). Please reduce the length of "
            "the messages or completion.");
  EXPECT_EQ(json::parse(r.body)["type"], "BadRequestError");

  r = Post(*s, "/v1/completions", R"({"prompt": "x", )");
  EXPECT_EQ(r.status, 400);
  json e = json::parse(r.body);
  EXPECT_EQ(e["object"], "error");
  EXPECT_EQ(e["type"], "BadRequestError");
  EXPECT_EQ(e["code"], 400);
  EXPECT_TRUE(e["param"].is_null());
  EXPECT_NE(e["message"].get<std::string>().find("invalid JSON"), std::string::npos);

  r = Post(*s, "/v1/chat/completions", R"({"messages":[{"role":"user","content":"x"}],"n":2})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json::parse(r.body)["message"],
            "'n' must be 1: the simulator produces one sequence per request");

  r = Post(*s, "/v1/completions", R"({"prompt":"x","max_tokens":0})");
  EXPECT_EQ(r.status, 400);

  r = Get(*s, "/v1/completions");
  EXPECT_EQ(r.status, 405);
  // Malformed HTTP gets a 400 and the connection closes; oversized heads a 431.
  EXPECT_EQ(
      RawExchange(s->address(), s->port(), "NOT HTTP AT ALL\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
  EXPECT_EQ(RawExchange(s->address(), s->port(),
                        "GET /health HTTP/1.1\r\nX-Big: " + std::string(70000, 'a') + "\r\n\r\n")
                .rfind("HTTP/1.1 431", 0),
            0u);
  r = Get(*s, "/nothing-here");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, R"({"detail":"Not Found"})");
  // Still serving after all of that.
  EXPECT_EQ(Get(*s, "/health").status, 200);
}

TEST(SimServerApi, ModelsHealthAliasesAndLora) {
  auto s = StartSim({"--profile", "tiny", "--served-model-name", "alias-a", "alias-b",
                     "--lora-modules", "ad1=/adapters/ad1", "ad2"});
  auto h = Get(*s, "/health");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.body, "");
  auto m = Get(*s, "/v1/models");
  ASSERT_EQ(m.status, 200);
  const json j = json::parse(m.body);
  EXPECT_EQ(j["object"], "list");
  ASSERT_EQ(j["data"].size(), 4u);
  EXPECT_EQ(j["data"][0]["id"], "alias-a");
  EXPECT_EQ(j["data"][0]["root"], "test-model");
  EXPECT_EQ(j["data"][0]["max_model_len"], 1024);
  EXPECT_TRUE(j["data"][0]["parent"].is_null());
  EXPECT_EQ(j["data"][1]["id"], "alias-b");
  EXPECT_EQ(j["data"][2]["id"], "ad1");
  EXPECT_EQ(j["data"][2]["root"], "/adapters/ad1");
  EXPECT_EQ(j["data"][2]["parent"], "alias-a");
  EXPECT_EQ(j["data"][3]["id"], "ad2");
  EXPECT_EQ(j["data"][0]["permission"][0]["object"], "model_permission");

  // --model is not a served name once aliases are given.
  EXPECT_EQ(Post(*s, "/v1/completions", R"({"model":"test-model","prompt":"x"})").status, 404);
  // An adapter request runs with that adapter: the engine reports it running.
  const int fd = OpenStream(*s, R"({"model":"ad1","prompt":"x","max_tokens":900,"stream":true})");
  std::string got;
  ASSERT_TRUE(ReadUntil(fd, "\r\n\r\n", got));
  EXPECT_TRUE(WaitUntil([&] {
    auto e = Scrape(*s);
    return e.ok() && e->running_lora_adapters == std::vector<std::string>{"ad1"};
  }));
  auto page = Get(*s, "/metrics").body;
  EXPECT_NE(page.find(R"(vllm:num_requests_running{model_name="alias-a"} 1.0)"), std::string::npos);
  ::close(fd);
  // An alias works, and the response reports the name asked for.
  auto r = Post(*s, "/v1/completions", R"({"model":"alias-b","prompt":"x","max_tokens":1})");
  ASSERT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(json::parse(r.body)["model"], "alias-b");
}

TEST(SimServerMetricsPage, PassesPromtoolAndMatchesTheEngine) {
  // At 1/1000 of real time the first prefill (14 simulated ms) lasts 14 wall seconds, so the
  // engine's state holds still while the test looks at it.
  auto s = StartSim({"--profile", "tiny", "--time-scale", "0.001"});
  const std::string body = R"({"prompt":)" + TokenIds(40) + R"(,"max_tokens":500,"stream":true})";
  std::vector<int> fds;
  std::vector<std::string> heads(3);
  for (int i = 0; i < 3; ++i) {
    fds.push_back(OpenStream(*s, body));
    // The head is written once the engine has admitted the request.
    ASSERT_TRUE(ReadUntil(fds.back(), "\r\n\r\n", heads[static_cast<std::size_t>(i)]));
  }
  // The first request started a prefill step alone (the engine was idle); the others wait
  // for it to end. 40 tokens take 3 blocks of 16.
  auto e = Scrape(*s);
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(e->running_requests, 1);
  EXPECT_EQ(e->waiting_requests, 2);
  EXPECT_DOUBLE_EQ(e->kv_usage, 3.0 / 256);
  EXPECT_EQ(e->kv_capacity_tokens, 4096);
  EXPECT_EQ(e->kv_num_blocks, 256);
  EXPECT_EQ(e->kv_block_size, 16);
  EXPECT_EQ(e->malformed_lines, 0u);
  const std::string page = Get(*s, "/metrics").body;
  EXPECT_EQ(PromtoolProblems(page), "");

  // A client that goes away while queued leaves the queue at once.
  ::close(fds[2]);
  EXPECT_TRUE(WaitUntil([&] {
    auto m = Scrape(*s);
    return m.ok() && m->waiting_requests == 1 && m->running_requests == 1;
  }));
  // The running one frees its blocks at once too, though its step is in flight.
  ::close(fds[0]);
  EXPECT_TRUE(WaitUntil([&] {
    auto m = Scrape(*s);
    return m.ok() && m->running_requests == 0 && m->waiting_requests == 1 && m->kv_usage == 0;
  }));
  ::close(fds[1]);
  EXPECT_TRUE(WaitUntil([&] {
    auto m = Scrape(*s);
    return m.ok() && m->running_requests == 0 && m->waiting_requests == 0;
  }));
}

TEST(SimServerMetricsPage, V1NamesPassPromtoolAndParse) {
  auto s = StartSim({"--profile", "tiny", "--metrics-version", "v1"});
  ASSERT_EQ(Post(*s, "/v1/completions", R"({"prompt":"hello","max_tokens":3})").status, 200);
  const std::string page = Get(*s, "/metrics").body;
  EXPECT_EQ(PromtoolProblems(page), "");
  EXPECT_NE(page.find(R"(vllm:kv_cache_usage_perc{model_name="test-model",engine="0"} 0.0)"),
            std::string::npos);
  EXPECT_NE(page.find(R"(vllm:generation_tokens_total{model_name="test-model",engine="0"} 3.0)"),
            std::string::npos);
  auto e = ExtractEndpointMetrics(page);
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_TRUE(e->vllm_v1);
  EXPECT_TRUE(e->Has(kFieldPrefixCacheCounters));
  EXPECT_EQ(e->kv_capacity_tokens, 4096);
}

TEST(SimServerStreams, DisconnectMidStreamFreesBlocks) {
  auto s = StartSim({"--profile", "tiny"});
  const int fd = OpenStream(*s, R"({"prompt":"a long one","max_tokens":900,"stream":true})");
  std::string got;
  ASSERT_TRUE(ReadUntil(fd, "data: ", got));
  ASSERT_TRUE(ReadUntil(fd, "\"text\"", got));
  auto e = Scrape(*s);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->running_requests, 1);
  EXPECT_GT(e->kv_usage, 0);
  ::close(fd);
  EXPECT_TRUE(WaitUntil([&] {
    auto m = Scrape(*s);
    return m.ok() && m->running_requests == 0 && m->kv_usage == 0;
  }));
  const std::string page = Get(*s, "/metrics").body;
  // V0 does not count aborted requests as successes.
  EXPECT_EQ(
      Sample(page,
             R"(vllm:request_success_total{model_name="test-model",finished_reason="length"})"),
      0.0);
}

TEST(SimServerStreams, KeepAliveServesSeveralRequestsOnOneConnection) {
  auto s = StartSim({"--profile", "tiny"});
  const int fd = ConnectTcp(s->address(), s->port(), 5000ms);
  ASSERT_GE(fd, 0);
  const std::string body = R"({"prompt":"x","max_tokens":2,"stream":true})";
  const std::string req =
      "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\n\r\n" + body;
  std::string got;
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
    ASSERT_TRUE(ReadUntil(fd, "data: [DONE]\n\n\r\n0\r\n\r\n", got)) << i << got;
    got.clear();
  }
  ::close(fd);
}

TEST(SimServerTime, TimeScaleIsHonoured) {
  // tiny: prefill of 100 tokens 10 + 0.1·100 = 20 ms, each decode step 5 + 1 = 6 ms; 51
  // tokens take 20 + 50·6 = 320 simulated ms, i.e. 80 wall ms at time scale 4.
  auto s = StartSim({"--profile", "tiny", "--time-scale", "4"});
  const auto t0 = Clock::now();
  const auto r = Post(*s, "/v1/completions",
                      R"({"prompt":)" + TokenIds(100) + R"(,"max_tokens":51,"ignore_eos":true})");
  const double wall_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  ASSERT_EQ(r.status, 200) << r.error;
  // Not scaled, it would take 1,280 simulated ms. A busy machine adds wall time (measured:
  // 165 wall ms, 660 simulated, with four simulations running on two cores), so the bound
  // only separates scaled from unscaled.
  EXPECT_GE(wall_ms * 4, 318.0);
  EXPECT_LE(wall_ms * 4, 1000.0);
  const std::string page = Get(*s, "/metrics").body;
  EXPECT_NEAR(*Sample(page, "vllm:e2e_request_latency_seconds_sum"), 0.320, 1e-9);
  EXPECT_NEAR(*Sample(page, "vllm:time_to_first_token_seconds_sum"), 0.020, 1e-9);
  EXPECT_NEAR(*Sample(page, "vllm:time_per_output_token_seconds_sum"), 0.300, 1e-9);
  EXPECT_EQ(*Sample(page, "vllm:time_per_output_token_seconds_count"), 50);
  // The engine's own record of the request, in simulated seconds.
  const json log = json::parse(Get(*s, "/sim/requests").body)["requests"];
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0]["id"], 1);
  EXPECT_EQ(log[0]["reason"], "length");
  EXPECT_EQ(log[0]["prompt_tokens"], 100);
  EXPECT_EQ(log[0]["output_tokens"], 51);
  EXPECT_NEAR(log[0]["first_token"].get<double>() - log[0]["arrival"].get<double>(), 0.020, 1e-9);
  EXPECT_NEAR(log[0]["finished"].get<double>() - log[0]["arrival"].get<double>(), 0.320, 1e-9);
  // Token chunks left the server close to the engine's schedule.
  const json stats = json::parse(Get(*s, "/sim/stats").body);
  EXPECT_EQ(stats["token_lateness_us"]["tokens"], 1);  // one non-streamed response
  EXPECT_LT(stats["token_lateness_us"]["max"].get<double>(), 100000);
  // A reset starts a new measurement.
  ASSERT_EQ(Get(*s, "/sim/stats?reset=1").status, 200);
  EXPECT_EQ(json::parse(Get(*s, "/sim/stats").body)["token_lateness_us"]["tokens"], 0);
}

TEST(SimServerReplicas, ConsecutiveAddressesAndIndependentEngines) {
  const std::string host = UniqueLoopbackAddress();
  auto s = StartSim({"--profile", "tiny", "--replicas", "3", "--workers", "2"}, 3, host);
  ASSERT_EQ(s->addresses.size(), 3u);
  const auto base = host.substr(0, host.rfind('.') + 1);
  const int last = std::stoi(host.substr(host.rfind('.') + 1));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(s->addresses[static_cast<std::size_t>(i)], base + std::to_string(last + i));
    EXPECT_GT(s->ports[static_cast<std::size_t>(i)], 0);
    EXPECT_EQ(Get(*s, "/health", i).status, 200);
  }
  ASSERT_EQ(Post(*s, "/v1/completions", R"({"prompt":"hello","max_tokens":4})", 1).status, 200);
  for (int i = 0; i < 3; ++i) {
    const auto page = Get(*s, "/metrics", i).body;
    EXPECT_EQ(*Sample(page, "vllm:generation_tokens_total"), i == 1 ? 4.0 : 0.0) << i;
  }
  // Each replica's engine has its own seed (seed + index): its first request's text.
  auto r = Post(*s, "/v1/completions", R"({"prompt":"hello","max_tokens":1})", 2);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(json::parse(r.body)["choices"][0]["text"], Piece(2, 1, 0));
}

TEST(SimServerFaults, FailRateAnswers500Deterministically) {
  auto all = StartSim({"--profile", "tiny", "--fail-rate", "1"});
  auto r = Post(*all, "/v1/completions", R"({"prompt":"x","max_tokens":1})");
  EXPECT_EQ(r.status, 500);
  const json e = json::parse(r.body);
  EXPECT_EQ(e["object"], "error");
  EXPECT_EQ(e["type"], "InternalServerError");
  EXPECT_EQ(e["code"], 500);
  EXPECT_EQ(Get(*all, "/health").status, 200);

  auto pattern = [](const std::string& seed) {
    auto s = StartSim({"--profile", "tiny", "--fail-rate", "0.5", "--seed", seed});
    std::string p;
    for (int i = 0; i < 40; ++i) {
      const auto r = Post(*s, "/v1/completions", R"({"prompt":"x","max_tokens":1})");
      p += r.status == 500 ? 'F' : (r.status == 200 ? '.' : '?');
    }
    return p;
  };
  const std::string a = pattern("7"), b = pattern("7"), c = pattern("8");
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_EQ(a.find('?'), std::string::npos);
  const auto failed = std::count(a.begin(), a.end(), 'F');
  EXPECT_GE(failed, 8);
  EXPECT_LE(failed, 32);
}

TEST(SimServerFaults, DieAfterExitsMidStream) {
  auto s = StartSim({"--profile", "tiny", "--die-after", "2"});
  ASSERT_EQ(Post(*s, "/v1/completions", R"({"prompt":"x","max_tokens":2,"stream":true})").status,
            200);
  const int fd = OpenStream(*s, R"({"prompt":"x","max_tokens":500,"stream":true})");
  std::string got;
  EXPECT_TRUE(ReadToClose(fd, got));
  ::close(fd);
  EXPECT_NE(got.find("data: {"), std::string::npos);
  EXPECT_EQ(got.find("[DONE]"), std::string::npos);
  EXPECT_EQ(s->process.Wait(5s), 1);
}

TEST(SimServerFaults, MetricsDelay) {
  auto s = StartSim({"--profile", "tiny", "--metrics-delay-ms", "300"});
  const auto t0 = Clock::now();
  auto r = Get(*s, "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_GE(Clock::now() - t0, 300ms);
  const auto t1 = Clock::now();
  EXPECT_EQ(Get(*s, "/health").status, 200);
  EXPECT_LT(Clock::now() - t1, 300ms);
}

TEST(SimServerFaults, MetricsModes) {
  auto err = StartSim({"--profile", "tiny", "--metrics-mode", "error"});
  EXPECT_EQ(Get(*err, "/metrics").status, 500);

  auto garbage = StartSim({"--profile", "tiny", "--metrics-mode", "garbage"});
  auto g = Get(*garbage, "/metrics");
  EXPECT_EQ(g.status, 200);
  EXPECT_FALSE(ExtractEndpointMetrics(g.body).ok());
  EXPECT_NE(PromtoolProblems(g.body).find("parsing error"), std::string::npos);

  auto hang = StartSim({"--profile", "tiny", "--metrics-mode", "hang"});
  auto h = Get(*hang, "/metrics", 0, 300ms);
  EXPECT_EQ(h.status, 0);
  EXPECT_FALSE(h.error.empty());
  EXPECT_EQ(Get(*hang, "/health").status, 200);
  EXPECT_EQ(Post(*hang, "/v1/completions", R"({"prompt":"x","max_tokens":1})").status, 200);
}

TEST(SimServerFaults, RefuseConnections) {
  auto s = StartSim({"--profile", "tiny", "--refuse-connections"});
  auto r = Get(*s, "/health", 0, 2s);
  EXPECT_EQ(r.status, 0);
  EXPECT_FALSE(r.error.empty());
}

TEST(SimServerProcess, ShutdownEndsStreamsWithAnErrorEvent) {
  auto s = StartSim({"--profile", "tiny"});
  const int fd = OpenStream(*s, R"({"prompt":"x","max_tokens":900,"stream":true})");
  std::string got;
  ASSERT_TRUE(ReadUntil(fd, "\"text\"", got));
  ASSERT_TRUE(s->process.Signal(SIGTERM));
  EXPECT_TRUE(ReadToClose(fd, got));
  ::close(fd);
  EXPECT_NE(got.find("data: {\"error\": {\"object\": \"error\", \"message\": \"The server is "
                     "shutting down.\", \"type\": \"ServiceUnavailableError\", \"param\": null, "
                     "\"code\": 503}}\n\ndata: [DONE]\n\n\r\n0\r\n\r\n"),
            std::string::npos)
      << got.substr(got.size() > 400 ? got.size() - 400 : 0);
  EXPECT_EQ(s->process.Wait(5s), 0);
}

TEST(SimServerProcess, ExitCodes) {
  auto run = [](std::vector<std::string> args) {
    ChildProcess p;
    std::vector<std::string> argv = {INFERGATE_BIN, "sim"};
    argv.insert(argv.end(), args.begin(), args.end());
    EXPECT_TRUE(p.Start(argv, /*capture_stderr=*/true));
    auto code = p.Wait(10s);
    p.Drain(100ms);
    return std::make_pair(code.value_or(-1), p.output());
  };
  auto [c1, o1] = run({"--profile", "no-such-profile", "--port", "0"});
  EXPECT_EQ(c1, 2);
  EXPECT_NE(o1.find("no-such-profile"), std::string::npos);
  auto [c2, o2] = run({"--profile", "tiny", "--bogus-flag"});
  EXPECT_EQ(c2, 2);
  auto [c3, o3] = run({"--profile", "tiny", "--max-model-len", "100000", "--port", "0"});
  EXPECT_EQ(c3, 2);
  EXPECT_NE(o3.find("max_model_len"), std::string::npos) << o3;
  auto [c4, o4] = run({"--profile", "tiny", "--metrics-mode", "sideways", "--port", "0"});
  EXPECT_EQ(c4, 2);
  EXPECT_NE(o4.find("--metrics-mode"), std::string::npos);
  // 192.0.2.1 (TEST-NET-1) is not an address of this host: bind fails at run time.
  auto [c5, o5] = run({"--profile", "tiny", "--host", "192.0.2.1", "--port", "0"});
  EXPECT_EQ(c5, 1);
  EXPECT_NE(o5.find("cannot listen"), std::string::npos) << o5;

  auto s = StartSim({"--profile", "tiny"});
  ASSERT_TRUE(s->process.Signal(SIGINT));
  EXPECT_EQ(s->process.Wait(5s), 0);
}

// Without --profile, `infergate sim --model M` runs the built-in profile of model M (as
// `vllm serve M` needs nothing more), else the documented default llama-3.1-8b-h100.
TEST(SimServerProcess, ModelWithoutProfileStartsWithADefaultProfile) {
  auto max_model_len = [](const std::string& model) -> std::int64_t {
    const std::string host = UniqueLoopbackAddress();
    ChildProcess p;
    EXPECT_TRUE(p.Start({INFERGATE_BIN, "--log-level", "warn", "sim", "--model", model, "--host",
                         host, "--port", "0"}));
    auto line = p.WaitForLine("listening ", 10s);
    if (!line) {
      ADD_FAILURE() << "sim --model " << model << " did not start";
      return -1;
    }
    const std::string hp = line->substr(std::string("listening ").size());
    const int port = std::stoi(hp.substr(hp.rfind(':') + 1));
    auto r = HttpRequest(host, port, "GET", "/v1/models", "", {}, 5s);
    p.Signal(SIGTERM);
    p.Wait(5s);
    auto j = json::parse(r.body, nullptr, false);
    if (j.is_discarded() || !j.contains("data") || j["data"].empty()) return -1;
    EXPECT_EQ(j["data"][0]["id"], model);
    return j["data"][0]["max_model_len"].get<std::int64_t>();
  };
  EXPECT_EQ(max_model_len("qwq"), 16384);           // profiles/qwq-32b-tp2pp2.yaml
  EXPECT_EQ(max_model_len("Qwen/QwQ"), 16384);      // organisation and case ignored
  EXPECT_EQ(max_model_len("my-finetune"), 131072);  // llama-3.1-8b-h100
  EXPECT_EQ(max_model_len("meta-llama/Llama-3.1-8B-Instruct"), 131072);
}

// The benchmark client's own checks (tests/loadgen/client_checks.h) against the simulator.
TEST(SimServerBench, ClientCountsExactly) {
  auto s = StartSim({"--profile", "tiny", "--time-scale", "10"}, 1, "127.0.0.1");
  ExpectExactCounts(static_cast<std::uint16_t>(s->port()), loadgen::ApiKind::kCompletions, 24, 6);
  ExpectExactCounts(static_cast<std::uint16_t>(s->port()), loadgen::ApiKind::kChat, 24, 6);
  // Hundreds of streams decoding together: each step's chunks go out in several slices.
  auto wide = StartSim({"--profile", "tiny", "--time-scale", "10", "--max-num-seqs", "512",
                        "--num-gpu-blocks-override", "2048"},
                       1, "127.0.0.1");
  ExpectExactCounts(static_cast<std::uint16_t>(wide->port()), loadgen::ApiKind::kCompletions, 300,
                    300);
  const auto page = Get(*wide, "/metrics").body;
  EXPECT_EQ(*Sample(page, "vllm:num_requests_running"), 0);
  EXPECT_EQ(*Sample(page, "vllm:gpu_cache_usage_perc"), 0);
}

// `infergate bench` measures what the engine's timing model says: with one request at a
// time on tiny, TTFT = 10 + 0.1·100 = 20 ms and every later token 5 + 1 = 6 ms. The clock
// runs at half speed (--time-scale 0.5) so that a wall-clock delay on a busy machine (a
// late wake-up, a descheduled thread) counts half in the simulated times measured: at
// x2 it counted double, and a CI machine under a parallel build once pushed the mean TTFT
// over its bound.
TEST(SimServerBench, BenchMeasuresTheKnownTimings) {
  auto s = StartSim({"--profile", "tiny", "--time-scale", "0.5"});
  const std::string dir = TempDir();
  ChildProcess bench;
  ASSERT_TRUE(bench.Start({INFERGATE_BIN,
                           "bench",
                           "--backend",
                           "vllm",
                           "--host",
                           s->address(),
                           "--port",
                           std::to_string(s->port()),
                           "--model",
                           "test-model",
                           "--dataset-name",
                           "random",
                           "--random-input-len",
                           "100",
                           "--random-output-len",
                           "21",
                           "--num-prompts",
                           "8",
                           "--max-concurrency",
                           "1",
                           "--ignore-eos",
                           "--time-scale",
                           "0.5",
                           "--save-result",
                           "--result-dir",
                           dir,
                           "--result-filename",
                           "r.json",
                           "--disable-tqdm",
                           "--skip-test-request"}));
  ASSERT_EQ(bench.Wait(60s), 0) << bench.output();
  std::ifstream in(dir + "/r.json");
  const json r = json::parse(in);
  EXPECT_EQ(r["completed"], 8);
  EXPECT_EQ(r["total_input_tokens"], 800);
  EXPECT_EQ(r["total_output_tokens"], 168);
  const double ttft = r["mean_ttft_ms"], tpot = r["mean_tpot_ms"], itl = r["mean_itl_ms"];
  // The client can only measure more than the engine's time (it sends first); a loaded
  // machine adds a few wall milliseconds (x0.5 here).
  EXPECT_GE(ttft, 19.9);
  EXPECT_LE(ttft, 26.0);
  EXPECT_GE(tpot, 5.8);
  EXPECT_LE(tpot, 6.4);
  EXPECT_GE(itl, 5.8);
  EXPECT_LE(itl, 6.4);
  EXPECT_GE(r["median_itl_ms"].get<double>(), 5.9);
  EXPECT_LE(r["median_itl_ms"].get<double>(), 6.1);
  EXPECT_GE(r["median_ttft_ms"].get<double>(), 19.9);
  EXPECT_LE(r["median_ttft_ms"].get<double>(), 22.0);
}

}  // namespace
}  // namespace infergate::testing
