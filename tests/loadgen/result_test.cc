#include "loadgen/result.h"

#include <gtest/gtest.h>

namespace infergate::loadgen {
namespace {

RequestOutcome Ok(double send, double ttft, std::vector<double> itl, int out, int prompt) {
  RequestOutcome o;
  o.success = true;
  o.send_time = send;
  o.ttft = ttft;
  o.itl = std::move(itl);
  double latency = ttft;
  for (double g : o.itl) latency += g;
  o.latency = latency;
  o.output_tokens = out;
  o.prompt_len = prompt;
  return o;
}

TEST(BenchComputeResultTest, AppliesBenchmarkServingDefinitions) {
  std::vector<RequestOutcome> outs;
  outs.push_back(Ok(0.0, 0.100, {0.010, 0.020, 0.030}, 4, 100));  // tpot = 0.06/3 = 20 ms
  outs.push_back(Ok(0.5, 0.300, {0.040}, 2, 50));                 // tpot = 40 ms
  outs.push_back(Ok(1.0, 0.200, {}, 1, 10));                      // no tpot (1 token)
  RequestOutcome failed;
  failed.error = "HTTP 500 Internal Server Error";
  failed.prompt_len = 77;
  outs.push_back(failed);
  RequestOutcome failed2;
  failed2.error = "second";
  outs.push_back(failed2);

  MetricOptions m;
  m.percentiles = {50, 99};
  BenchmarkResult r = ComputeResult(RunInfo{}, m, outs, 2.0);
  EXPECT_EQ(r.completed, 3);
  EXPECT_EQ(r.failed, 2);
  EXPECT_EQ(r.first_error, "HTTP 500 Internal Server Error");
  EXPECT_EQ(r.total_input, 160);  // failed requests' prompts are not counted
  EXPECT_EQ(r.total_output, 7);
  EXPECT_EQ(r.output_lens, (std::vector<int>{4, 2, 1, 0, 0}));
  EXPECT_DOUBLE_EQ(r.request_throughput, 1.5);
  EXPECT_DOUBLE_EQ(r.output_throughput, 3.5);
  EXPECT_DOUBLE_EQ(r.total_token_throughput, 83.5);
  EXPECT_NEAR(r.ttft_ms.mean, 200.0, 1e-9);
  EXPECT_NEAR(r.ttft_ms.median, 200.0, 1e-9);
  EXPECT_NEAR(r.tpot_ms.mean, 30.0, 1e-9);  // mean of 20 and 40
  EXPECT_NEAR(r.itl_ms.mean, 25.0, 1e-9);   // pooled {10, 20, 30, 40}
  EXPECT_NEAR(r.itl_ms.At(50), 25.0, 1e-9);
  EXPECT_NEAR(r.itl_ms.At(99), 39.7, 1e-9);  // np.percentile([10,20,30,40], 99)
  EXPECT_NEAR(r.e2el_ms.mean, (160.0 + 340.0 + 200.0) / 3, 1e-9);
  EXPECT_FALSE(r.request_goodput.has_value());
  ASSERT_EQ(r.requests.size(), 5u);
}

TEST(BenchComputeResultTest, GoodputCountsRequestsMeetingEverySlo) {
  std::vector<RequestOutcome> outs;
  outs.push_back(Ok(0, 0.100, {0.010}, 2, 1));  // ttft 100, tpot 10, e2el 110
  outs.push_back(Ok(0, 0.300, {0.010}, 2, 1));  // ttft 300
  outs.push_back(Ok(0, 0.100, {0.090}, 2, 1));  // tpot 90
  outs.push_back(Ok(0, 0.150, {}, 1, 1));       // tpot counts as 0
  MetricOptions m;
  m.goodput_slo_ms = {{"ttft", 200}, {"tpot", 50}};
  BenchmarkResult r = ComputeResult(RunInfo{}, m, outs, 4.0);
  ASSERT_TRUE(r.request_goodput.has_value());
  EXPECT_DOUBLE_EQ(*r.request_goodput, 0.5);  // 2 good requests / 4 s
}

TEST(BenchDropWarmupTest, KeepsTheMeasuredRequestsAndTheirWindow) {
  std::vector<RequestOutcome> outs;
  outs.push_back(Ok(0.0, 5.0, {}, 1, 10));  // warm-up: its late completion is not measured
  outs.push_back(Ok(0.5, 0.1, {}, 1, 11));  // warm-up
  outs.push_back(Ok(1.0, 0.2, {0.1}, 2, 12));
  RequestOutcome failed;
  failed.error = "HTTP 503";
  failed.send_time = 3.5;  // counts at its send
  outs.push_back(failed);
  outs.push_back(Ok(2.0, 0.3, {0.2}, 2, 13));  // completes at 2.5

  double window = 99;
  std::vector<RequestOutcome> m = DropWarmup(outs, 2, &window);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0].prompt_len, 12);
  EXPECT_EQ(m[1].error, "HTTP 503");
  EXPECT_EQ(m[2].prompt_len, 13);
  EXPECT_DOUBLE_EQ(m[0].send_time, 0.0);  // offsets from the first measured send (1.0)
  EXPECT_DOUBLE_EQ(m[2].send_time, 1.0);
  EXPECT_DOUBLE_EQ(window, 2.5);  // 1.0 → the failure's send at 3.5

  // No warm-up, or none left to measure: unchanged, window untouched.
  double untouched = 7;
  EXPECT_EQ(DropWarmup(outs, 0, &untouched).size(), 5u);
  EXPECT_EQ(DropWarmup(outs, 5, &untouched).size(), 5u);
  EXPECT_DOUBLE_EQ(untouched, 7.0);

  const BenchmarkResult r = ComputeResult(RunInfo{}, MetricOptions{}, m, window);
  EXPECT_EQ(r.completed, 2);
  EXPECT_EQ(r.failed, 1);
  EXPECT_NEAR(r.ttft_ms.mean, 250.0, 1e-9);
  EXPECT_DOUBLE_EQ(r.request_throughput, 2 / 2.5);
}

TEST(BenchParseOptionsTest, AcceptsBenchmarkServingForms) {
  auto pm = ParsePercentileMetrics("ttft,tpot,itl,e2el");
  ASSERT_TRUE(pm.ok());
  EXPECT_EQ(pm->size(), 4u);
  EXPECT_FALSE(ParsePercentileMetrics("ttft,latency").ok());
  auto ps = ParsePercentiles("50,90,99.9");
  ASSERT_TRUE(ps.ok());
  EXPECT_EQ(*ps, (std::vector<double>{50, 90, 99.9}));
  EXPECT_FALSE(ParsePercentiles("0").ok());
  EXPECT_FALSE(ParsePercentiles("101").ok());
  EXPECT_FALSE(ParsePercentiles("p99").ok());
  auto g = ParseGoodput({"ttft:500", "e2el:1500.5"});
  ASSERT_TRUE(g.ok());
  EXPECT_EQ((*g)[1].second, 1500.5);
  EXPECT_FALSE(ParseGoodput({"itl:5"}).ok());
  EXPECT_FALSE(ParseGoodput({"ttft=5"}).ok());
  EXPECT_FALSE(ParseGoodput({"ttft:-1"}).ok());
  EXPECT_EQ(PercentileWord(99), "99");
  EXPECT_EQ(PercentileWord(99.9), "99.9");
}

}  // namespace
}  // namespace infergate::loadgen
