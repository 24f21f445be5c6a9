#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include "loadgen/compare.h"
#include "loadgen/html_report.h"

namespace infergate::loadgen {
namespace {

BenchmarkResult MakeRun(double ttft_scale, int n, bool with_failure) {
  std::vector<RequestOutcome> outs;
  for (int i = 0; i < n; ++i) {
    RequestOutcome o;
    o.success = !(with_failure && i == 3);
    if (!o.success) {
      o.error = "HTTP 503";
      outs.push_back(o);
      continue;
    }
    o.send_time = i * 0.5;
    o.ttft = ttft_scale * (0.1 + 0.02 * i);
    o.itl.assign(9, 0.05);
    o.latency = o.ttft + 0.45;
    o.output_tokens = 10;
    o.prompt_len = 100;
    outs.push_back(o);
  }
  RunInfo info;
  info.model_id = "qwq";
  return ComputeResult(info, MetricOptions{}, outs, n * 0.5 + 1);
}

TEST(BenchCompareTest, TableHasEveryKeyMetricWithRatiosToTheFirst) {
  std::vector<NamedResult> runs = {{"plain", MakeRun(1.0, 20, false)},
                                   {"gie", MakeRun(0.5, 20, true)}};
  const std::string text = FormatComparison(runs, false);
  for (const char* label : {"Benchmark duration (s)", "Successful requests", "Failed requests",
                            "Output token throughput (tok/s)", "Total Token throughput (tok/s)",
                            "Mean TTFT (ms)", "Median TTFT (ms)", "P99 TTFT (ms)", "Mean TPOT (ms)",
                            "P99 ITL (ms)", "Median E2EL (ms)"}) {
    EXPECT_NE(text.find(label), std::string::npos) << label;
  }
  EXPECT_EQ(text.rfind("Metric", 0), 0u);
  EXPECT_NE(text.find("plain"), std::string::npos);
  EXPECT_NE(text.find("gie"), std::string::npos);
  // Mean TTFT: plain = mean(100 + 20 i ms, i < 20) = 290 ms; gie = half of each over the
  // 19 successful requests (i != 3) = 0.5 · (5800 − 160) / 19 = 148.42 ms, ratio 0.51.
  std::istringstream in(text);
  std::string line;
  bool seen = false;
  while (std::getline(in, line)) {
    if (line.rfind("Mean TTFT (ms)", 0) == 0) {
      seen = true;
      EXPECT_NE(line.find("290.00"), std::string::npos) << line;
      EXPECT_NE(line.find("148.42 (0.51x)"), std::string::npos) << line;
    }
    if (line.rfind("Successful requests", 0) == 0) {
      EXPECT_NE(line.find("19 (0.95x)"), std::string::npos) << line;
    }
  }
  EXPECT_TRUE(seen);
  const std::string md = FormatComparison(runs, true);
  EXPECT_EQ(md.rfind("| Metric | plain | gie |", 0), 0u);
  EXPECT_NE(md.find("|---|---:|---:|"), std::string::npos);
}

TEST(BenchHtmlReportTest, SelfContainedWithCdfsTimelinesAndSweeps) {
  HtmlReport report;
  report.title = "plain vs <gie>";
  report.runs = {{"plain-rr", MakeRun(1.0, 30, false)}, {"gie-routing", MakeRun(0.5, 30, true)}};
  SweepChart sweep;
  sweep.title = "P90 TTFT vs request rate";
  sweep.x_label = "request rate (req/s)";
  sweep.y_label = "P90 TTFT (ms)";
  sweep.series = {{"round-robin", {{1, 100}, {2, 180}, {4, 900}}},
                  {"prefix-aware", {{1, 90}, {2, 120}, {4, 300}}}};
  report.sweeps.push_back(sweep);
  const std::string html = RenderHtmlReport(report);
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("plain vs &lt;gie&gt;"), std::string::npos);
  for (const char* s :
       {"plain-rr", "gie-routing", "Time to first token (CDF)", "Time per output token (CDF)",
        "Request timeline", "<polyline", "class=\"cdf\"", "class=\"wait\"", "class=\"fail\"",
        "round-robin", "prefix-aware", "P90 TTFT vs request rate", "<circle"}) {
    EXPECT_NE(html.find(s), std::string::npos) << s;
  }
  // No external fetches or scripts.
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);

  const auto path = std::filesystem::temp_directory_path() /
                    ("ig_loadgen_html_" + std::to_string(::getpid()) + ".html");
  ASSERT_TRUE(WriteHtmlReport(report, path.string()).ok());
  EXPECT_GT(std::filesystem::file_size(path), 1000u);
  std::filesystem::remove(path);
  EXPECT_FALSE(WriteHtmlReport(report, "/nonexistent-dir/x.html").ok());
}

TEST(BenchHtmlReportTest, RunsWithoutPerRequestDataStillRender) {
  HtmlReport report;
  BenchmarkResult bare;
  bare.duration_s = 10;
  bare.completed = 5;
  bare.has_latencies = false;
  bare.has_send_times = false;
  report.runs = {{"summary-only", bare}};
  const std::string html = RenderHtmlReport(report);
  EXPECT_NE(html.find("summary-only"), std::string::npos);
  EXPECT_NE(html.find("no per-request times"), std::string::npos);
}

}  // namespace
}  // namespace infergate::loadgen
