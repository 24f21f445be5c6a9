// The named experiments of `infergate simulate --workload`: a workload (dataset and load)
// and the cluster it runs on (engine profile, server count, KV cache size, model id).
//
//   seed          the seed's benchmark: benchmark_serving's random dataset (v0.7 lengths,
//                 prefix 1000, input 4000, output 3000, ratio 0.2), 300 prompts at
//                 concurrency 30 and rate inf, on 3 x qwq-32b-tp2pp2;
//   shared-prefix 150 tenants with 5,500-token system prompts, 4-turn sessions, 3000
//                 prompts, Poisson arrivals at 10 req/s, on 8 x llama-3.1-70b-h100-tp8 cut
//                 to 9,000 KV blocks;
//   random        benchmark_serving's random defaults on the seed's cluster.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "cluster/experiment.h"
#include "core/status.h"

namespace infergate::cluster {

struct WorkloadPreset {
  WorkloadSpec workload;
  std::string profile;  // engine profile name (sim::LoadProfile)
  int servers = 3;
  long long num_gpu_blocks = 0;  // 0: the profile's
  std::string model_id;          // recorded in results; empty: the profile's model name
};

// The preset called `name` (seed, shared-prefix or random). Errors name the choices.
Result<WorkloadPreset> FindWorkloadPreset(std::string_view name);

}  // namespace infergate::cluster
