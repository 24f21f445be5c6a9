#include "loadgen/report.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include <unistd.h>

namespace infergate::loadgen {
namespace {

// The seed's plain-gateway run (benchmark_serving, vLLM 0.7.2) as a result.
BenchmarkResult SeedPlainGateway() {
  BenchmarkResult r;
  r.info.backend = "vllm";
  r.info.model_id = "/models/QwQ-32B";
  r.info.tokenizer_id = "/models/QwQ-32B";
  r.info.num_prompts = 300;
  r.info.max_concurrency = 30;
  r.info.date = "20250301-120000";
  r.completed = 300;
  r.duration_s = 2362.70;
  r.total_input = 1014085;
  r.total_output = 537817;
  r.request_throughput = 300 / 2362.70;
  r.output_throughput = 537817 / 2362.70;
  r.total_token_throughput = (1014085 + 537817) / 2362.70;
  r.ttft_ms = {10909.18, 2446.06, 0, {{99, 119308.83}}};
  r.tpot_ms = {114.18, 113.00, 0, {{99, 158.03}}};
  r.itl_ms = {113.69, 103.10, 0, {{99, 109.65}}};
  return r;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::string RStrip(std::string s) {
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

TEST(BenchResultTableTest, MatchesTheSeedsTableLineForLine) {
  // Copied from the seed's benchmark_serving output (trailing blanks were lost in the
  // copy; benchmark_serving pads values to 10 columns, checked separately below).
  const std::vector<std::string> seed = {
      "============ Serving Benchmark Result ============",
      "Successful requests:                     300",
      "Benchmark duration (s):                  2362.70",
      "Total input tokens:                      1014085",
      "Total generated tokens:                  537817",
      "Request throughput (req/s):              0.13",
      "Output token throughput (tok/s):         227.63",
      "Total Token throughput (tok/s):          656.83",
      "---------------Time to First Token----------------",
      "Mean TTFT (ms):                          10909.18",
      "Median TTFT (ms):                        2446.06",
      "P99 TTFT (ms):                           119308.83",
      "-----Time per Output Token (excl. 1st token)------",
      "Mean TPOT (ms):                          114.18",
      "Median TPOT (ms):                        113.00",
      "P99 TPOT (ms):                           158.03",
      "---------------Inter-token Latency----------------",
      "Mean ITL (ms):                           113.69",
      "Median ITL (ms):                         103.10",
      "P99 ITL (ms):                            109.65",
      "==================================================",
  };
  const std::vector<std::string> got = Lines(FormatResultTable(SeedPlainGateway()));
  ASSERT_EQ(got.size(), seed.size());
  for (std::size_t i = 0; i < seed.size(); ++i) {
    EXPECT_EQ(RStrip(got[i]), seed[i]) << "line " << i;
    if (seed[i].size() > 41 && seed[i][0] != '=' && seed[i][0] != '-') {
      // "{:<40} {:<10}": label column 40 wide, value padded to at least 10.
      EXPECT_EQ(got[i].size(), std::max<std::size_t>(51, seed[i].size())) << got[i];
    } else {
      EXPECT_EQ(got[i].size(), 50u);
    }
  }
}

TEST(BenchResultTableTest, OptionalRowsAndSections) {
  BenchmarkResult r = SeedPlainGateway();
  r.failed = 2;
  r.request_goodput = 0.05;
  r.metrics.percentile_metrics = {"ttft", "e2el"};
  r.e2el_ms = {1.0, 2.0, 0.5, {{99, 3.0}}};
  const std::vector<std::string> got = Lines(FormatResultTable(r));
  EXPECT_EQ(RStrip(got[2]), "Failed requests:                         2");
  EXPECT_EQ(RStrip(got[7]), "Request goodput (req/s):                 0.05");
  const std::string text = FormatResultTable(r);
  EXPECT_EQ(text.find("Time per Output Token"), std::string::npos);
  EXPECT_NE(text.find("----------------End-to-end Latency----------------"), std::string::npos);
  EXPECT_NE(text.find("P99 E2EL (ms):                           3.00"), std::string::npos);
}

TEST(BenchResultJsonTest, HasBenchmarkServingKeysAndOurs) {
  std::vector<RequestOutcome> outs(2);
  outs[0].success = true;
  outs[0].prompt_len = 10;
  outs[0].output_tokens = 3;
  outs[0].ttft = 0.1;
  outs[0].itl = {0.01, 0.02};
  outs[0].latency = 0.13;
  outs[0].send_time = 0.5;
  outs[0].generated_text = " a b c";
  outs[1].error = "boom";
  RunInfo info;
  info.date = "20250101-000000";
  info.model_id = "m";
  info.num_prompts = 2;
  info.time_scale = 4;
  info.metadata = {{"gateway", "plain"}};
  MetricOptions m;
  m.percentiles = {90, 99};
  m.goodput_slo_ms = {{"ttft", 1000}};
  const BenchmarkResult r = ComputeResult(info, m, outs, 1.0);
  const auto j = nlohmann::json::parse(ResultToJson(r));
  for (const char* key : {"date",
                          "backend",
                          "model_id",
                          "tokenizer_id",
                          "num_prompts",
                          "request_rate",
                          "burstiness",
                          "max_concurrency",
                          "duration",
                          "completed",
                          "total_input_tokens",
                          "total_output_tokens",
                          "request_throughput",
                          "request_goodput",
                          "output_throughput",
                          "total_token_throughput",
                          "input_lens",
                          "output_lens",
                          "ttfts",
                          "itls",
                          "generated_texts",
                          "errors",
                          "mean_ttft_ms",
                          "median_ttft_ms",
                          "std_ttft_ms",
                          "p99_ttft_ms",
                          "p90_ttft_ms",
                          "mean_tpot_ms",
                          "median_tpot_ms",
                          "std_tpot_ms",
                          "p99_tpot_ms",
                          "mean_itl_ms",
                          "median_itl_ms",
                          "std_itl_ms",
                          "p99_itl_ms",
                          "mean_e2el_ms",
                          "median_e2el_ms",
                          "std_e2el_ms",
                          "p99_e2el_ms",
                          "failed",
                          "time_scale",
                          "start_times",
                          "latencies",
                          "gateway"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j["request_rate"], "inf");
  EXPECT_TRUE(j["max_concurrency"].is_null());
  EXPECT_EQ(j["errors"][1], "boom");
  EXPECT_EQ(j["output_lens"], nlohmann::json::array({3, 0}));
  EXPECT_EQ(j["itls"][0].size(), 2u);
  EXPECT_EQ(j["time_scale"], 4.0);
  EXPECT_EQ(j["gateway"], "plain");

  // And back.
  auto back = ResultFromJson(ResultToJson(r));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->completed, 1);
  EXPECT_EQ(back->failed, 1);
  EXPECT_EQ(back->first_error, "boom");
  EXPECT_NEAR(back->ttft_ms.mean, 100.0, 1e-9);
  EXPECT_NEAR(back->ttft_ms.At(90), r.ttft_ms.At(90), 1e-9);
  ASSERT_EQ(back->requests.size(), 2u);
  EXPECT_EQ(back->requests[0].itl.size(), 2u);
  EXPECT_NEAR(back->requests[0].latency, 0.13, 1e-12);
  EXPECT_NEAR(back->requests[0].send_time, 0.5, 1e-12);
  EXPECT_TRUE(back->request_goodput.has_value());
  EXPECT_EQ(back->info.time_scale, 4.0);
}

TEST(BenchResultJsonTest, ReadsBenchmarkServingFilesAndRejectsOthers) {
  // benchmark_serving's own file, saved without per-request details, with its
  // "request_goodput:" spelling.
  const std::string vllm = R"({"date": "20250301-101010", "backend": "vllm",
    "model_id": "/models/QwQ-32B", "num_prompts": 300, "request_rate": "inf",
    "burstiness": 1.0, "max_concurrency": 30, "duration": 2325.1, "completed": 300,
    "total_input_tokens": 1014085, "total_output_tokens": 538158,
    "request_throughput": 0.129, "request_goodput:": null, "output_throughput": 231.46,
    "total_token_throughput": 667.6, "mean_ttft_ms": 7335.87, "median_ttft_ms": 2413.13,
    "std_ttft_ms": 1.0, "p99_ttft_ms": 106624.4, "mean_tpot_ms": 117.26,
    "median_tpot_ms": 114.39, "std_tpot_ms": 1.0, "p99_tpot_ms": 198.15})";
  auto r = ResultFromJson(vllm);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->info.max_concurrency, 30);
  EXPECT_NEAR(r->ttft_ms.At(99), 106624.4, 1e-9);
  EXPECT_EQ(r->metrics.percentile_metrics, (std::vector<std::string>{"ttft", "tpot"}));
  EXPECT_FALSE(r->request_goodput.has_value());
  EXPECT_TRUE(r->requests.empty());
  EXPECT_FALSE(ResultFromJson("[1,2]").ok());
  EXPECT_FALSE(ResultFromJson("{\"a\": 1}").ok());
  EXPECT_FALSE(ResultFromJson("{oops").ok());
  EXPECT_FALSE(LoadResultFile("/nonexistent.json").ok());
}

TEST(BenchResultFileTest, DefaultNameFollowsBenchmarkServing) {
  RunInfo info;
  info.backend = "vllm";
  info.model_id = "/models/QwQ-32B";
  info.date = "20250301-120000";
  EXPECT_EQ(DefaultResultFilename(info), "vllm-infqps-QwQ-32B-20250301-120000.json");
  info.request_rate = 10;
  info.max_concurrency = 30;
  EXPECT_EQ(DefaultResultFilename(info), "vllm-10.0qps-concurrency30-QwQ-32B-20250301-120000.json");
  info.request_rate = 2.5;
  info.max_concurrency.reset();
  EXPECT_EQ(DefaultResultFilename(info), "vllm-2.5qps-QwQ-32B-20250301-120000.json");
}

TEST(BenchResultFileTest, SavesIntoResultDir) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("ig_loadgen_report_test_" + std::to_string(::getpid()));
  BenchmarkResult r = SeedPlainGateway();
  auto path = SaveResult(r, (dir / "sub").string(), "");
  ASSERT_TRUE(path.ok()) << path.error().message;
  EXPECT_EQ(std::filesystem::path(*path).filename().string(),
            "vllm-infqps-concurrency30-QwQ-32B-20250301-120000.json");
  auto back = LoadResultFile(*path);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->total_output, 537817);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace infergate::loadgen
