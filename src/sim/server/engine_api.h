// The other engines' faces of a simulated server: llama.cpp's and SGLang's /metrics names,
// /v1/models shapes, and llama.cpp's /props and /slots, so the gateway can be tested
// against each engine's real names (`infergate sim --engine-api llamacpp|sglang`).
//
// llama.cpp (server, `--metrics`), unlabelled samples:
//   llamacpp:prompt_tokens_total, llamacpp:tokens_predicted_total, llamacpp:n_decode_total
//   (counters), llamacpp:requests_processing (running), llamacpp:requests_deferred
//   (waiting), llamacpp:kv_cache_tokens, llamacpp:kv_cache_usage_ratio (gauges). Like the
//   real server, whose finished slots keep their cache cells, kv_cache_usage_ratio and
//   kv_cache_tokens never go down while the server runs (the highest use a page showed):
//   they are not load, and the gateway does not read them as such.
//   /props: {"default_generation_settings": {"n_ctx": per-slot context, ...},
//   "total_slots": slots, "model_path": ..., ...}; /slots: one object per slot
//   ({"id", "n_ctx", "is_processing"}); slots = the engine's max_num_seqs.
// SGLang, every sample labelled model_name="<served name>":
//   sglang:num_running_reqs, sglang:num_queue_reqs, sglang:num_used_tokens,
//   sglang:token_usage, sglang:max_total_num_tokens, sglang:cache_hit_rate (gauges),
//   sglang:prompt_tokens_total, sglang:generation_tokens_total (counters).
//
// Thread-safety: pure functions, except LlamacppKvHighWater (one replica's loop).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sim/engine/engine.h"
#include "sim/server/openai_response.h"

namespace infergate::sim {

enum class EngineApi { kVllm, kLlamacpp, kSglang };

// "vllm", "llamacpp" (or "llama.cpp"), "sglang"; false for anything else.
bool ParseEngineApi(std::string_view name, EngineApi* out);

// The highest KV use (tokens) a llama.cpp server has shown: its cache cells stay filled.
struct LlamacppKvHighWater {
  std::int64_t tokens = 0;
};

void AppendLlamacppMetrics(std::string& out, const EngineConfig& config, const EngineStats& stats,
                           LlamacppKvHighWater& high_water);
void AppendSglangMetrics(std::string& out, std::string_view model_name, const EngineConfig& config,
                         const EngineStats& stats);

// GET /v1/models as llama.cpp and SGLang answer it (each card's id; SGLang adds root and
// max_model_len).
void AppendEngineModelList(std::string& out, EngineApi api, const std::vector<ModelCard>& cards,
                           std::int64_t created);
// llama.cpp's GET /props and GET /slots.
void AppendLlamacppProps(std::string& out, std::string_view model, const EngineConfig& config);
void AppendLlamacppSlots(std::string& out, const EngineConfig& config, const EngineStats& stats);

}  // namespace infergate::sim
