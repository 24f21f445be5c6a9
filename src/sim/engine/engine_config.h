// EngineConfig: a Profile with every default resolved the way vLLM resolves it.
//
// What vLLM decides at start-up (chunked prefill on or off, the token budget, the number
// of KV blocks from the memory left after weights and activations) is decided here, once,
// so the engine, the HTTP front (vllm:cache_config_info) and documentation all see the
// same numbers.
//
// KV blocks (vLLM's determine_num_available_blocks): every GPU holds
// 1/(tp·pp) of the weights and, for each block, the K and V of its own layers and heads:
//   block_bytes = block_size · ceil(layers/pp) · 2 · max(1, kv_heads/tp) · head_dim · kv_bytes
//   num_gpu_blocks = floor((memory · utilization − weights − activation_reserve) / block_bytes)
// With pipeline parallel each of the pp virtual engines schedules num_gpu_blocks / pp of
// them (vLLM V0 divides the blocks among its per-virtual-engine schedulers).
//
// Thread-safety: plain values; ResolveEngineConfig is thread-safe.
#pragma once

#include <cstdint>

#include "core/clock.h"
#include "core/status.h"
#include "sim/engine/profile.h"

namespace infergate::sim {

struct EngineConfig {
  EngineVersion version = EngineVersion::kV0;
  SchedulingPolicy policy = SchedulingPolicy::kFcfs;
  bool chunked_prefill = false;
  bool prefix_caching = false;
  int max_model_len = 0;
  int max_num_seqs = 0;            // per virtual engine, as in vLLM
  int max_num_batched_tokens = 0;  // per step per virtual engine
  int block_size = 16;
  int tensor_parallel = 1;
  int pipeline_parallel = 1;                   // number of virtual engines and pipeline stages
  std::int64_t num_gpu_blocks = 0;             // whole engine (vllm:cache_config_info)
  std::int64_t blocks_per_virtual_engine = 0;  // num_gpu_blocks / pipeline_parallel
  std::int64_t watermark_blocks = 0;           // per virtual engine; V0 admission only
  int max_loras = 0;
  TimeNs lora_load_time = 0;
  double gpu_memory_utilization = 0.9;
  bool enforce_eager = false;
  // Memory accounting per GPU (informational; zero when num_gpu_blocks was given).
  double weights_gib_per_gpu = 0;
  double kv_cache_gib_per_gpu = 0;
  std::int64_t block_bytes_per_gpu = 0;

  // Tokens of KV cache in the whole engine.
  std::int64_t kv_capacity_tokens() const { return num_gpu_blocks * block_size; }
};

// Total parameter count (the profile's params, or computed from the dimensions:
// per layer q, k, v, o projections and a gated MLP; plus embeddings and LM head).
double ModelParams(const ModelSpec& model);
// Parameters of one transformer layer.
double LayerParams(const ModelSpec& model);
int HeadDim(const ModelSpec& model);

// Requires a valid profile (it is validated again here). Errors: the model does not fit
// in memory, or max_model_len exceeds what the KV cache can hold.
Result<EngineConfig> ResolveEngineConfig(const Profile& profile);

}  // namespace infergate::sim
