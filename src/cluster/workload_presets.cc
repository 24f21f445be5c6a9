#include "cluster/workload_presets.h"

namespace infergate::cluster {

Result<WorkloadPreset> FindWorkloadPreset(std::string_view name) {
  WorkloadPreset p;
  if (name == "seed") {
    // The seed experiment: benchmark_serving (vLLM 0.7.2) --dataset-name random
    // --random-prefix-len 1000 --random-input-len 4000 --random-output-len 3000
    // --random-range-ratio 0.2 --num-prompts 300 --max-concurrency 30 (rate inf), against
    // three QwQ-32B TP2xPP2 groups.
    p.workload.dataset = DatasetKind::kRandom;
    p.workload.random.num_prompts = 300;
    p.workload.random.prefix_len = 1000;
    p.workload.random.input_len = 4000;
    p.workload.random.output_len = 3000;
    p.workload.random.range_ratio = 0.2;
    p.workload.random.semantics = loadgen::RandomLengthSemantics::kV07;
    p.workload.max_concurrency = 30;
    p.profile = "qwq-32b-tp2pp2";
    p.servers = 3;
    p.model_id = "qwq";
    return p;
  }
  if (name == "shared-prefix") {
    // Multi-tenant chat that needs prefix-aware routing: 150 tenants with 5,500-token system
    // prompts (4-6k asked for), questions of 50-150 tokens, four-turn sessions, Poisson
    // arrivals. Eight Llama-3.1-70B servers, each on 8 x H100 with TP8 (vLLM V1: chunked
    // prefill and prefix caching on), their KV cache cut to 9,000 blocks (144k tokens):
    // the pool's 1.15M tokens hold all tenants' system prompts (825k tokens) once, but not
    // together with the conversations' histories and the running requests, so most but
    // not all tenants stay cached (beyond each tenant's first request, a few percent of
    // requests find their prompt evicted even under prefix-aware routing). A system prompt
    // alone takes ~0.32 s to prefill, over the 300 ms TTFT SLO, so round-robin (~83% cold:
    // each server sees every tenant) never meets it; a warm turn takes ~0.03 s. The
    // previous preset (4 servers, 4,000-token prompts, 10,000 blocks) had a cold prefill
    // of ~0.23 s, under the SLO.
    p.workload.dataset = DatasetKind::kSharedPrefix;
    p.workload.shared_prefix.num_prompts = 3000;
    p.workload.shared_prefix.tenants = 150;
    p.workload.shared_prefix.prefix_len = 5500;
    p.workload.shared_prefix.question_len = 100;
    p.workload.shared_prefix.turns = 4;
    p.workload.shared_prefix.output_len = 200;
    p.workload.shared_prefix.range_ratio = 0.5;
    p.workload.request_rate = 10;
    p.profile = "llama-3.1-70b-h100-tp8";
    p.servers = 8;
    p.num_gpu_blocks = 9000;
    p.model_id = "meta-llama/Llama-3.1-70B-Instruct";
    return p;
  }
  if (name == "random") {
    // benchmark_serving's random dataset with its defaults, on the seed's cluster.
    p.workload.dataset = DatasetKind::kRandom;
    p.workload.random.num_prompts = 1000;
    p.workload.random.semantics = loadgen::RandomLengthSemantics::kV07;
    p.workload.random.range_ratio = loadgen::DefaultRangeRatio(p.workload.random.semantics);
    p.profile = "qwq-32b-tp2pp2";
    p.servers = 3;
    p.model_id = "qwq";
    return p;
  }
  return Error{"--workload must be seed, shared-prefix or random (got '" + std::string(name) +
               "')"};
}

}  // namespace infergate::cluster
