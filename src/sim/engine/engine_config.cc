#include "sim/engine/engine_config.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace infergate::sim {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

std::string Fixed(double v, int digits = 2) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

}  // namespace

int HeadDim(const ModelSpec& m) { return m.head_dim > 0 ? m.head_dim : m.hidden / m.heads; }

double LayerParams(const ModelSpec& m) {
  const double hidden = m.hidden;
  const double q = static_cast<double>(m.heads) * HeadDim(m);
  const double kv = static_cast<double>(m.kv_heads) * HeadDim(m);
  // q, k, v and o projections; gate, up and down of the MLP.
  return hidden * q + 2 * hidden * kv + q * hidden + 3 * hidden * m.intermediate;
}

double ModelParams(const ModelSpec& m) {
  if (m.params > 0) return m.params;
  const double embed = static_cast<double>(m.vocab) * m.hidden;
  return m.layers * LayerParams(m) + embed * (m.tied_embeddings ? 1 : 2);
}

Result<EngineConfig> ResolveEngineConfig(const Profile& p) {
  if (Status s = ValidateProfile(p); !s.ok()) return s.error();
  const std::string src = p.source.empty() ? "profile '" + p.name + "'" : p.source;
  const EngineSpec& e = p.engine;
  EngineConfig c;
  c.version = e.version;
  c.policy = e.scheduling_policy;
  c.max_model_len = e.max_model_len;
  c.max_num_seqs = e.max_num_seqs;
  c.block_size = e.block_size;
  c.tensor_parallel = p.parallel.tensor;
  c.pipeline_parallel = p.parallel.pipeline;
  c.gpu_memory_utilization = e.gpu_memory_utilization;
  c.enforce_eager = e.enforce_eager;
  c.max_loras = e.max_loras;
  c.lora_load_time = static_cast<TimeNs>(std::llround(e.lora_load_seconds * 1e9));

  if (e.version == EngineVersion::kV1) {
    c.chunked_prefill = true;
    c.prefix_caching = e.enable_prefix_caching.value_or(true);
  } else {
    // vLLM 0.7 turns chunked prefill on by default only for long contexts.
    c.chunked_prefill = e.enable_chunked_prefill.value_or(e.max_model_len > 32768);
    c.prefix_caching = e.enable_prefix_caching.value_or(false);
  }

  if (e.max_num_batched_tokens > 0) {
    c.max_num_batched_tokens = e.max_num_batched_tokens;
  } else if (!c.chunked_prefill) {
    c.max_num_batched_tokens = std::max(e.max_model_len, 2048);
  } else if (e.version == EngineVersion::kV1 && p.hardware.memory_gib >= 70 &&
             p.hardware.gpu.find("A100") == std::string::npos) {
    c.max_num_batched_tokens = 8192;  // V1's default for the API server on large GPUs
  } else {
    c.max_num_batched_tokens = 2048;
  }

  const ModelSpec& m = p.model;
  const int tp = p.parallel.tensor;
  const int pp = p.parallel.pipeline;
  const int kv_bytes = m.kv_dtype_bytes > 0 ? m.kv_dtype_bytes : m.dtype_bytes;
  const int layers_per_stage = (m.layers + pp - 1) / pp;
  const std::int64_t kv_heads_per_gpu = std::max(1, m.kv_heads / tp);
  c.block_bytes_per_gpu = static_cast<std::int64_t>(e.block_size) * layers_per_stage * 2 *
                          kv_heads_per_gpu * HeadDim(m) * kv_bytes;
  c.weights_gib_per_gpu = ModelParams(m) * m.dtype_bytes / (tp * pp) / kGiB;

  if (e.num_gpu_blocks > 0) {
    c.num_gpu_blocks = e.num_gpu_blocks;
  } else {
    const double budget_gib = p.hardware.memory_gib * e.gpu_memory_utilization -
                              c.weights_gib_per_gpu - p.hardware.activation_reserve_gib;
    const auto blocks = static_cast<std::int64_t>(
        std::floor(budget_gib * kGiB / static_cast<double>(c.block_bytes_per_gpu)));
    if (blocks <= 0) {
      return Error{src + ": the model does not fit: " + Fixed(p.hardware.memory_gib) + " GiB x " +
                   Fixed(e.gpu_memory_utilization) + " utilization leaves " + Fixed(budget_gib) +
                   " GiB for the KV cache after " + Fixed(c.weights_gib_per_gpu) +
                   " GiB of weights and " + Fixed(p.hardware.activation_reserve_gib) +
                   " GiB of activations per GPU"};
    }
    c.num_gpu_blocks = blocks;
    c.kv_cache_gib_per_gpu = static_cast<double>(blocks * c.block_bytes_per_gpu) / kGiB;
  }
  c.blocks_per_virtual_engine = c.num_gpu_blocks / pp;
  if (c.blocks_per_virtual_engine <= 0) {
    return Error{src + ": engine.num_gpu_blocks (" + std::to_string(c.num_gpu_blocks) +
                 ") is smaller than parallel.pipeline"};
  }
  c.watermark_blocks =
      static_cast<std::int64_t>(e.watermark * static_cast<double>(c.blocks_per_virtual_engine));
  // vLLM refuses to start when one sequence of max_model_len cannot fit the cache.
  if (static_cast<std::int64_t>(e.max_model_len) > c.num_gpu_blocks * e.block_size) {
    return Error{src + ": the model's max seq len (" + std::to_string(e.max_model_len) +
                 ") is larger than the maximum number of tokens that can be stored in KV "
                 "cache (" +
                 std::to_string(c.num_gpu_blocks * e.block_size) +
                 "); lower engine.max_model_len or give the cache more memory"};
  }
  return c;
}

}  // namespace infergate::sim
