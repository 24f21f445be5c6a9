// `infergate bench` as a user runs it: exit codes, the printed table, the saved JSON and
// `bench compare`. Runs the executable (path from INFERGATE_BIN in the environment, else the
// build's) against the scripted SSE server.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "tests/loadgen/sse_test_server.h"
#include "tests/support/process.h"

namespace infergate::testing {
namespace {

namespace fs = std::filesystem;

using Outcome = CommandOutcome;

std::string Slurp(const fs::path& p) { return ::infergate::testing::ReadFile(p.string()); }

class BenchCliTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = ::infergate::testing::TempDir(); }

  // Runs infergate with `args`; kills it after 60 s.
  Outcome Run(std::vector<std::string> args) {
    const char* env = std::getenv("INFERGATE_BIN");
    args.insert(args.begin(), env != nullptr ? env : INFERGATE_BIN);
    Outcome r = RunCommand(args, dir_.string(), std::chrono::seconds(60));
    EXPECT_FALSE(r.timed_out) << "infergate did not finish in 60 s";
    return r;
  }

  std::vector<std::string> BenchArgs(std::uint16_t port) {
    return {"bench",
            "--backend",
            "vllm",
            "--model",
            "/models/QwQ-32B",
            "--served-model-name",
            "qwq",
            "--trust-remote-code",
            "--dataset-name",
            "random",
            "--random-input-len",
            "40",
            "--random-output-len",
            "6",
            "--random-prefix-len",
            "10",
            "--random-range-ratio",
            "0.5",
            "--num-prompts",
            "12",
            "--max-concurrency",
            "4",
            "--base-url",
            "http://127.0.0.1:" + std::to_string(port),
            "--endpoint",
            "/v1/completions",
            "--disable-tqdm"};
  }

  fs::path dir_;
};

StreamScript Fast() {
  StreamScript s;
  s.chunk_interval_s = 0.001;
  return s;
}

TEST_F(BenchCliTest, RunPrintsTheTableAndSavesTheJson) {
  ScriptedSseServer server([](const ReceivedRequest&) { return Fast(); });
  auto args = BenchArgs(server.port());
  for (std::string a :
       {"--save-result", "--result-dir", "results", "--metadata", "gw=plain", "--header",
        "X-Run=cli", "--header", "X-Other=a=b", "--percentile-metrics", "ttft,tpot,itl,e2el",
        "--metric-percentiles", "50,99", "--goodput", "ttft:5000"}) {
    args.push_back(a);
  }
  const Outcome r = Run(args);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("============ Serving Benchmark Result ============"), std::string::npos);
  EXPECT_NE(r.out.find("Successful requests:                     12"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Request goodput (req/s):"), std::string::npos);
  EXPECT_NE(r.out.find("P50 E2EL (ms):"), std::string::npos);
  EXPECT_EQ(r.out.find("Failed requests"), std::string::npos);
  // 12 requests + benchmark_serving's initial test request; the served name is sent.
  const auto recs = server.Records();
  ASSERT_EQ(recs.size(), 13u);
  EXPECT_EQ(recs[5].model, "qwq");
  EXPECT_EQ(recs[5].headers.at("x-run"), "cli");
  EXPECT_EQ(recs[5].headers.at("x-other"), "a=b");  // --header repeats; split at the first =

  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir_ / "results")) files.push_back(e.path());
  ASSERT_EQ(files.size(), 1u);
  const std::string name = files[0].filename().string();
  EXPECT_EQ(name.rfind("vllm-infqps-concurrency4-QwQ-32B-", 0), 0u) << name;
  const auto j = nlohmann::json::parse(Slurp(files[0]));
  EXPECT_EQ(j["completed"], 12);
  EXPECT_EQ(j["model_id"], "/models/QwQ-32B");
  EXPECT_EQ(j["gw"], "plain");
  EXPECT_EQ(j["max_concurrency"], 4);
  EXPECT_EQ(j["input_lens"].size(), 12u);
  EXPECT_TRUE(j.contains("p50_e2el_ms"));
  std::int64_t out_tokens = 0;
  for (const auto& v : j["output_lens"]) out_tokens += v.get<int>();
  EXPECT_EQ(j["total_output_tokens"], out_tokens);
}

TEST_F(BenchCliTest, AWarmupIsSentButNotMeasured) {
  ScriptedSseServer server([](const ReceivedRequest&) { return Fast(); });
  auto args = BenchArgs(server.port());
  for (std::string a : {"--warmup-prompts", "5", "--save-result", "--result-dir", "results"}) {
    args.push_back(a);
  }
  const Outcome r = Run(args);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("Warm-up: the first 5 requests are served but not measured"),
            std::string::npos);
  EXPECT_NE(r.out.find("Successful requests:                     7"), std::string::npos) << r.out;
  EXPECT_EQ(server.Records().size(), 13u);  // all 12 and the initial test request were sent
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir_ / "results")) files.push_back(e.path());
  ASSERT_EQ(files.size(), 1u);
  const auto j = nlohmann::json::parse(Slurp(files[0]));
  EXPECT_EQ(j["completed"], 7);
  EXPECT_EQ(j["num_prompts"], 7);
  EXPECT_EQ(j["input_lens"].size(), 7u);
}

TEST_F(BenchCliTest, BadFlagsExitWithTwoAndSayWhy) {
  ScriptedSseServer server([](const ReceivedRequest&) { return Fast(); });
  const auto base = BenchArgs(server.port());
  struct Case {
    std::vector<std::string> extra;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--request-rate", "-3"}, "--request-rate"},
      {{"--request-rate", "fast"}, "--request-rate"},
      {{"--burstiness", "0"}, "--burstiness"},
      {{"--percentile-metrics", "ttft,foo"}, "foo"},
      {{"--metric-percentiles", "120"}, "--metric-percentiles"},
      {{"--goodput", "ttft=5"}, "--goodput"},
      {{"--random-length-semantics", "v9"}, "v9"},
      {{"--random-range-ratio", "1.5"}, "--random-range-ratio"},
      {{"--header", "novalue"}, "--header"},
      {{"--time-scale", "0"}, "--time-scale"},
      {{"--backend", "tgi"}, "--backend"},
      {{"--dataset-name", "sonnet"}, "--dataset-name"},
      {{"--endpoint", "v1/completions"}, "--endpoint"},
      {{"--warmup-prompts", "12"}, "--warmup-prompts"},
      {{"--warmup-prompts", "-1"}, "--warmup-prompts"},
      {{"--max-concurrency", "-1"}, "--max-concurrency"},
      {{"--seed", "4294967296"}, "--seed"},
      {{"--num-prompts", "0"}, "--num-prompts"},
      {{"--no-such-flag"}, "no-such-flag"},
  };
  for (const Case& c : cases) {
    auto args = base;
    args.insert(args.end(), c.extra.begin(), c.extra.end());
    const Outcome r = Run(args);
    EXPECT_EQ(r.code, 2) << c.extra[0] << ": " << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
  }
  // A warm-up that leaves nothing to measure, once the dataset turns out short.
  {
    std::string words;
    for (int i = 0; i < 40; ++i) words += "word" + std::to_string(i) + " ";
    const std::string turn = R"({"conversations":[{"from":"human","value":")" + words +
                             R"("},{"from":"gpt","value":")" + words + R"("}]})";
    std::ofstream(dir_ / "two.json") << "[" << turn << "," << turn << "]";
    const Outcome r = Run({"bench", "--model", "m", "--base-url",
                           "http://127.0.0.1:" + std::to_string(server.port()), "--dataset-name",
                           "sharegpt", "--dataset-path", "two.json", "--num-prompts", "10",
                           "--warmup-prompts", "3", "--disable-tqdm"});
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_NE(r.err.find("leaves nothing to measure"), std::string::npos) << r.err;
  }
  const Outcome no_model = Run({"bench", "--dataset-name", "random"});
  EXPECT_EQ(no_model.code, 2);
  EXPECT_NE(no_model.err.find("--model"), std::string::npos);
  const Outcome no_path = Run({"bench", "--model", "m", "--dataset-name", "sharegpt"});
  EXPECT_EQ(no_path.code, 2);
  EXPECT_NE(no_path.err.find("--dataset-path"), std::string::npos);
  EXPECT_TRUE(server.Records().empty());  // nothing was sent
}

TEST_F(BenchCliTest, EveryRequestFailingExitsWithOne) {
  ScriptedSseServer server([](const ReceivedRequest&) {
    StreamScript s;
    s.status = 503;
    return s;
  });
  auto args = BenchArgs(server.port());
  args.push_back("--skip-test-request");
  const Outcome r = Run(args);
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("Successful requests:                     0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Failed requests:                         12"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("HTTP 503"), std::string::npos) << r.err;

  // Without --skip-test-request the initial test request fails first.
  const Outcome t = Run(BenchArgs(server.port()));
  EXPECT_EQ(t.code, 1);
  EXPECT_NE(t.err.find("initial test run failed"), std::string::npos) << t.err;
}

TEST_F(BenchCliTest, SomeFailuresStillExitZeroWithAFailedRow) {
  std::atomic<int> n{0};
  ScriptedSseServer server([&n](const ReceivedRequest&) {
    StreamScript s = Fast();
    if (n++ % 4 == 3) s.status = 500;
    return s;
  });
  auto args = BenchArgs(server.port());
  args.push_back("--skip-test-request");
  const Outcome r = Run(args);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("Successful requests:                     9"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Failed requests:                         3"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("first error: HTTP 500"), std::string::npos) << r.err;
}

TEST_F(BenchCliTest, CompareTwoRunsAndWriteHtml) {
  ScriptedSseServer server([](const ReceivedRequest&) { return Fast(); });
  for (const char* name : {"plain.json", "gie.json"}) {
    auto args = BenchArgs(server.port());
    for (std::string a : {"--save-result", "--result-filename", name}) args.push_back(a);
    ASSERT_EQ(Run(args).code, 0);
  }
  const Outcome r = Run({"bench", "compare", (dir_ / "plain.json").string(),
                         (dir_ / "gie.json").string(), "--html", (dir_ / "report.html").string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("plain"), std::string::npos);
  EXPECT_NE(r.out.find("gie"), std::string::npos);
  EXPECT_NE(r.out.find("Mean TTFT (ms)"), std::string::npos);
  EXPECT_NE(r.out.find("x)"), std::string::npos);  // ratios
  const std::string html = Slurp(dir_ / "report.html");
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("gie"), std::string::npos);
  EXPECT_NE(html.find("class=\"cdf\""), std::string::npos);

  const Outcome missing = Run({"bench", "compare", (dir_ / "nope.json").string()});
  EXPECT_EQ(missing.code, 2);
  std::ofstream(dir_ / "bad.json") << "{\"x\": 1}";
  const Outcome bad = Run({"bench", "compare", (dir_ / "bad.json").string()});
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("not a benchmark result"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace infergate::testing
