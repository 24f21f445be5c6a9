// The seed benchmark, regenerated for the cluster simulation, and benchmark_serving's
// metrics over a simulated run (test support; src/loadgen owns the real client).
//
// The dataset follows vLLM 0.7.2's benchmark_serving "random" dataset: one shared prefix
// of random token ids, then for request i an input length drawn uniformly from
// [int(input_len·r), input_len] and an output length from [int(output_len·r), output_len]
// (both inclusive), and the input tokens (offset_i + i + j) mod vocab for a random
// offset_i. numpy's generator is not reproduced; the distributions are.
#pragma once

#include <cstdint>
#include <vector>

#include "cluster/cluster_simulation.h"
#include "cluster/workload.h"

namespace infergate::cluster {

struct RandomDatasetOptions {
  int num_prompts = 300;
  int prefix_len = 1000;
  int input_len = 4000;
  int output_len = 3000;
  double range_ratio = 0.2;
  std::uint64_t seed = 0;
};

std::vector<WorkloadRequest> MakeRandomDataset(const RandomDatasetOptions& options);

// benchmark_serving's result table, computed from what the client saw.
struct BenchMetrics {
  int completed = 0;
  double duration_s = 0;
  std::int64_t total_input = 0;
  std::int64_t total_output = 0;
  double output_throughput = 0;  // tok/s
  double mean_ttft_ms = 0, median_ttft_ms = 0, p99_ttft_ms = 0;
  double mean_tpot_ms = 0, median_tpot_ms = 0, p99_tpot_ms = 0;
  double mean_itl_ms = 0, median_itl_ms = 0, p99_itl_ms = 0;
  std::uint64_t preemptions = 0;  // summed over engines
};

BenchMetrics Summarize(const ClusterResult& result);

// numpy.percentile with linear interpolation. Requires a non-empty input.
double Percentile(std::vector<double> values, double p);

}  // namespace infergate::cluster
