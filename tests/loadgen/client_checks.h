// Checks of the benchmark client that hold against any vLLM-shaped server: the scripted
// test server here, and later `infergate sim` (call them with its port).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/tokenizer.h"
#include "loadgen/dataset.h"
#include "loadgen/load_client.h"
#include "loadgen/request.h"
#include "loadgen/result.h"

namespace infergate::testing {

// Sends a small random workload and expects every request to succeed with exactly the
// requested number of output tokens (the server must honour max_tokens with ignore_eos)
// and the prompt token counts the dataset intended.
inline void ExpectExactCounts(std::uint16_t port, loadgen::ApiKind api, int num_prompts,
                              int max_concurrency) {
  using namespace loadgen;
  RandomDatasetOptions o;
  o.num_prompts = num_prompts;
  o.input_len = 40;
  o.output_len = 12;
  o.prefix_len = 5;
  o.range_ratio = 0.5;
  NumpyRandomState rng(3);
  auto dataset = SampleRandom(o, rng);
  ASSERT_TRUE(dataset.ok());
  std::vector<PreparedRequest> prepared;
  std::int64_t want_in = 0, want_out = 0;
  for (const SampleRequest& s : *dataset) {
    prepared.push_back({RequestBody(api, "test-model", s, /*ignore_eos=*/true), s.prompt_len});
    want_in += s.prompt_len;
    want_out += s.expected_output_len;
  }
  const std::vector<double> offsets(prepared.size(), 0.0);
  LoadOptions lo;
  auto target = MakeTarget("", "127.0.0.1", port,
                           api == ApiKind::kChat ? "/v1/chat/completions" : "/v1/completions");
  ASSERT_TRUE(target.ok());
  lo.target = *target;
  lo.max_concurrency = max_concurrency;
  lo.timeout_s = 30;
  auto run = RunLoad(lo, prepared, offsets);
  ASSERT_TRUE(run.ok()) << run.error().message;
  const BenchmarkResult r =
      ComputeResult(RunInfo{}, MetricOptions{}, run->outcomes, run->duration_s);
  EXPECT_EQ(r.completed, num_prompts) << r.first_error;
  EXPECT_EQ(r.failed, 0);
  EXPECT_EQ(r.total_output, want_out);
  if (api == ApiKind::kCompletions) {
    EXPECT_EQ(r.total_input, want_in);
  }
  for (std::size_t i = 0; i < dataset->size(); ++i) {
    EXPECT_EQ(run->outcomes[i].output_tokens, (*dataset)[i].expected_output_len) << i;
    EXPECT_GT(run->outcomes[i].ttft, 0.0);
    EXPECT_GE(run->outcomes[i].latency, run->outcomes[i].ttft);
  }
  EXPECT_GT(r.duration_s, 0.0);
}

}  // namespace infergate::testing
