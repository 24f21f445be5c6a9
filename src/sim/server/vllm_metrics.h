// The /metrics page of a simulated vLLM server, in vLLM's names, labels and buckets.
//
// vLLM V0 (0.7.x, the seed's server; the default) and V1 name some series differently
// (V1's KV use is vllm:kv_cache_usage_perc, V0's vllm:gpu_cache_usage_perc). The page carries,
// every sample labelled model_name="<first served name>" (V1 adds engine="0"):
//   both  vllm:cache_config_info{block_size,num_gpu_blocks,enable_prefix_caching,...} 1
//         vllm:num_requests_running, vllm:num_requests_waiting                   gauges
//         vllm:lora_requests_info{running_lora_adapters,max_lora,waiting_lora_adapters}
//             = Unix time the combination was last current (vLLM keeps one series per
//             combination it has seen; the newest wins — at most kLoraInfoHistory here)
//         vllm:num_preemptions_total, vllm:prompt_tokens_total,
//         vllm:generation_tokens_total, vllm:request_success_total{finished_reason}
//         histograms vllm:time_to_first_token_seconds, vllm:time_per_output_token_seconds
//             (every gap between two output tokens of a request, as V0 observes it),
//             vllm:e2e_request_latency_seconds, vllm:request_queue_time_seconds,
//             vllm:request_inference_time_seconds, vllm:request_prefill_time_seconds,
//             vllm:request_decode_time_seconds, vllm:request_prompt_tokens,
//             vllm:request_generation_tokens
//   V0    vllm:num_requests_swapped (0), vllm:gpu_cache_usage_perc,
//         vllm:cpu_cache_usage_perc (0), vllm:gpu_prefix_cache_hit_rate and
//         vllm:cpu_prefix_cache_hit_rate (-1 with prefix caching off, as V0's naive
//         allocator reports; else hits/queries in tokens, and 0 for the unused CPU cache);
//         finished_reason stop and length (aborted requests are not counted, nor observed)
//   V1    vllm:kv_cache_usage_perc, vllm:prefix_cache_queries_total and
//         vllm:prefix_cache_hits_total (tokens); finished_reason also abort (aborted
//         requests are observed too)
// Times are the engine's, i.e. simulated seconds. Buckets are vLLM's: V0 0.7's
// (TTFT to 10 s, TPOT to 2.5 s, request latencies to 60 s), V1 the extended ones (to
// 2560 s, 80 s and 7680 s). Numbers are written the way Python's prometheus_client
// writes them ("1.0", "+Inf", "1.7e+09"), HELP and TYPE precede every family, and the
// page passes `promtool check metrics` except for promtool's lint against the ':' that
// every vLLM metric name contains.
//
// Thread-safety: not thread-safe; one replica's loop owns its RequestMetrics.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sim/engine/engine.h"

namespace infergate::sim {

enum class MetricsVersion { kV0, kV1 };

// A cumulative histogram with fixed upper bounds (+Inf implicit), for one thread.
class LocalHistogram {
 public:
  explicit LocalHistogram(std::vector<double> bounds);
  void Observe(double v);
  const std::vector<double>& bounds() const { return bounds_; }
  // Non-cumulative count of bucket i; i == bounds().size() is the +Inf bucket.
  std::uint64_t bucket(std::size_t i) const { return counts_[i]; }
  std::uint64_t count() const { return count_; }
  double sum() const { return sum_; }

 private:
  std::vector<double> bounds_;
  std::vector<std::uint64_t> counts_;
  std::uint64_t count_ = 0;
  double sum_ = 0;
};

// vLLM's build_1_2_5_buckets(max): 1, 2, 5, 10, 20, 50, ... up to max.
std::vector<double> Buckets125(double max_value);

// The request-level series of one engine, filled from its events.
class RequestMetrics {
 public:
  RequestMetrics(MetricsVersion version, int max_model_len);

  MetricsVersion version() const { return version_; }
  // Output token 0 arrived `ttft` simulated seconds after the request did.
  void ObserveFirstToken(double ttft);
  // A later output token arrived `gap` seconds after the previous one.
  void ObserveInterToken(double gap);
  // The request ended (see the header comment for which are observed).
  void ObserveFinished(const FinishedEvent& finished);

  const LocalHistogram& ttft() const { return ttft_; }
  const LocalHistogram& tpot() const { return tpot_; }
  const LocalHistogram& e2e() const { return e2e_; }
  const LocalHistogram& queue() const { return queue_; }
  const LocalHistogram& inference() const { return inference_; }
  const LocalHistogram& prefill() const { return prefill_; }
  const LocalHistogram& decode() const { return decode_; }
  const LocalHistogram& prompt_tokens() const { return prompt_tokens_; }
  const LocalHistogram& generation_tokens() const { return generation_tokens_; }

 private:
  MetricsVersion version_;
  LocalHistogram ttft_, tpot_, e2e_, queue_, inference_, prefill_, decode_;
  LocalHistogram prompt_tokens_, generation_tokens_;
};

// Remembers the LoRA combinations the page has shown and when each was last current.
class LoraInfoHistory {
 public:
  static constexpr std::size_t kLoraInfoHistory = 16;
  struct Entry {
    std::string running, waiting;  // comma-joined adapter names
    double time = 0;               // Unix seconds
  };
  // Marks the current combination as seen at `unix_time`; the oldest entries beyond
  // kLoraInfoHistory are dropped.
  void Update(const EngineStats& stats, double unix_time);
  const std::vector<Entry>& entries() const { return entries_; }

 private:
  std::vector<Entry> entries_;
};

struct MetricsPageInfo {
  MetricsVersion version = MetricsVersion::kV0;
  std::string model_name;  // label value of every sample
  // The profile's fixed engine.num_gpu_blocks (vLLM's --num-gpu-blocks-override); 0: none.
  std::int64_t num_gpu_blocks_override = 0;
};

// Appends the whole page for an engine's configuration, its current stats, its request
// histograms and the LoRA history (call LoraInfoHistory::Update first).
void AppendVllmMetrics(std::string& out, const MetricsPageInfo& info, const EngineConfig& config,
                       const EngineStats& stats, const RequestMetrics& requests,
                       const LoraInfoHistory& lora);

// A value as prometheus_client's floatToGoString writes it ("1.0", "0.001", "+Inf", "NaN",
// "1.738e+09").
void AppendPromFloat(std::string& out, double v);

}  // namespace infergate::sim
