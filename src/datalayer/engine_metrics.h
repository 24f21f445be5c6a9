// What a model server's /metrics page says about its load, in engine-neutral terms.
//
// Each serving engine names the same signals differently (vLLM `vllm:num_requests_waiting`,
// SGLang `sglang:num_queue_reqs`, ...). ExtractEndpointMetrics reads one scraped page with
// the mapping of one engine and returns an EndpointMetrics value: queue lengths, KV-cache
// use, KV capacity in tokens, LoRA adapters and prefix-cache counters, plus a bit set of
// which of those the page actually carried (a missing signal is not the same as zero).
//
// Mappings (metric names are facts from each engine's exposition):
//
//   vLLM (V0 and V1)
//     waiting      vllm:num_requests_waiting
//     running      vllm:num_requests_running
//     KV use       vllm:kv_cache_usage_perc (V1), else vllm:gpu_cache_usage_perc (V0)
//     KV capacity  vllm:cache_config_info labels block_size × num_gpu_blocks
//     LoRA         vllm:lora_requests_info{running_lora_adapters, waiting_lora_adapters,
//                  max_lora}; the series with the largest value (a timestamp) wins
//     prefix cache vllm:prefix_cache_queries_total, vllm:prefix_cache_hits_total (V1,
//                  tokens), vllm:gpu_prefix_cache_hit_rate (V0; -1 when off), and the
//                  cache_config_info label enable_prefix_caching
//   SGLang
//     waiting      sglang:num_queue_reqs
//     running      sglang:num_running_reqs
//     KV use       sglang:token_usage
//     KV capacity  sglang:cache_config_info labels page_size × num_pages, else
//                  sglang:max_total_num_tokens
//     prefix cache sglang:cache_hit_rate
//   TRT-LLM serve
//     waiting      trtllm_num_requests_waiting
//     running      trtllm_num_requests_running
//     KV use       trtllm_kv_cache_utilization
//     KV capacity  trtllm_kv_cache_tokens_per_block × trtllm_kv_cache_max_blocks
//     prefix cache trtllm_kv_cache_hit_rate
//   llama.cpp server
//     waiting      llamacpp:requests_deferred
//     running      llamacpp:requests_processing
//     KV use       requests_processing / slots, with the slot count from the server's /props
//                  (total_slots) or /slots (ApplyLlamacppSlots); absent without it.
//                  llamacpp:kv_cache_usage_ratio is not read: finished slots keep their
//                  cache, so it stays high on an idle server and is not load.
//
// Several series of one metric (one per `model_name`, or per `engine` in vLLM V1 data
// parallel) are combined: request counts, block counts and counters are summed; usage
// fractions and hit rates are averaged, since each is a fraction of its own pool.
//
// Thread-safety: all functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace infergate {

enum class EngineKind : std::uint8_t {
  kAuto,  // detect from the metric names on the page
  kVllm,
  kSglang,
  kTrtllm,
  kLlamacpp,
};

// The pod label that names the engine (values such as vllm, sglang, trtllm, llamacpp).
inline constexpr std::string_view kEngineTypeLabel = "inference.networking.k8s.io/engine-type";

// Accepts vllm, vllm-v0, vllm-v1, sglang, trtllm, trt-llm, tensorrt-llm, trtllm-serve,
// llamacpp, llama.cpp, llama-cpp (any letter case); an empty string means kAuto.
Result<EngineKind> ParseEngineKind(std::string_view name);
std::string_view EngineKindName(EngineKind kind);

// Bits of EndpointMetrics::present.
enum MetricField : std::uint32_t {
  kFieldWaiting = 1u << 0,
  kFieldRunning = 1u << 1,
  kFieldKvUsage = 1u << 2,
  kFieldKvCapacity = 1u << 3,
  kFieldLora = 1u << 4,
  kFieldPrefixCacheCounters = 1u << 5,
  kFieldPrefixCacheHitRate = 1u << 6,
  kFieldPrefixCachingConfig = 1u << 7,
};

struct EndpointMetrics {
  EngineKind engine = EngineKind::kAuto;
  // True when the page used vLLM V1 names (kv_cache_usage_perc, an `engine` label or the
  // V1 prefix-cache counters).
  bool vllm_v1 = false;

  double waiting_requests = 0;
  double running_requests = 0;
  double kv_usage = 0;  // fraction of the KV cache in use, 0..1

  std::int64_t kv_block_size = 0;       // tokens per block (page); 0 when unknown
  std::int64_t kv_num_blocks = 0;       // blocks in the GPU cache; 0 when unknown
  std::int64_t kv_capacity_tokens = 0;  // block_size × num_blocks; 0 when unknown

  // Whether automatic prefix caching is enabled (meaningful with kFieldPrefixCachingConfig).
  bool prefix_caching_enabled = false;
  double prefix_cache_queries = 0;  // tokens looked up (counter)
  double prefix_cache_hits = 0;     // tokens found (counter)
  double prefix_cache_hit_rate = 0;

  std::vector<std::string> running_lora_adapters;
  std::vector<std::string> waiting_lora_adapters;
  int max_lora = 0;

  // llama.cpp: parallel slots (requests it runs at once); 0 when unknown.
  int slots = 0;

  std::uint32_t present = 0;  // MetricField bits
  // Lines of the page that were not well-formed and were skipped.
  std::size_t malformed_lines = 0;

  bool Has(MetricField f) const { return (present & f) != 0; }
  // True when `adapter` is in running_lora_adapters.
  bool HasRunningAdapter(std::string_view adapter) const;
  bool HasWaitingAdapter(std::string_view adapter) const;
};

// Reads a /metrics body with the mapping of `kind` (kAuto: the engine whose metric-name
// prefix appears first). Returns an error when the engine cannot be determined or the page
// carries none of waiting, running and KV use for it (an HTML error page, an exporter of
// something else); malformed lines alone are not an error.
Result<EndpointMetrics> ExtractEndpointMetrics(std::string_view body,
                                               EngineKind kind = EngineKind::kAuto);

// llama.cpp: with the server's slot count, the KV-use signal becomes the busy-slot fraction
// requests_processing / slots (see the mapping above). No-op for other engines or slots <= 0.
void ApplyLlamacppSlots(EndpointMetrics& metrics, int slots);

// The slot count from a llama.cpp /props body (total_slots) or /slots body (its length).
Result<int> ParseLlamacppSlots(std::string_view body);

}  // namespace infergate
