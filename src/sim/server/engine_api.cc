#include "sim/server/engine_api.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "sim/server/vllm_metrics.h"

namespace infergate::sim {
namespace {

void Family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void Sample(std::string& out, std::string_view name, std::string_view labels, double v) {
  out += name;
  out += labels;
  out += ' ';
  AppendPromFloat(out, v);
  out += '\n';
}

std::int64_t CapacityTokens(const EngineStats& s) {
  return s.num_gpu_blocks * static_cast<std::int64_t>(s.block_size);
}

std::int64_t UsedTokens(const EngineStats& s) {
  return (s.num_gpu_blocks - s.num_free_blocks) * static_cast<std::int64_t>(s.block_size);
}

int Slots(const EngineConfig& config) { return std::max(1, config.max_num_seqs); }

}  // namespace

bool ParseEngineApi(std::string_view name, EngineApi* out) {
  if (name == "vllm") {
    *out = EngineApi::kVllm;
  } else if (name == "llamacpp" || name == "llama.cpp") {
    *out = EngineApi::kLlamacpp;
  } else if (name == "sglang") {
    *out = EngineApi::kSglang;
  } else {
    return false;
  }
  return true;
}

void AppendLlamacppMetrics(std::string& out, const EngineConfig& config, const EngineStats& stats,
                           LlamacppKvHighWater& high_water) {
  (void)config;
  high_water.tokens = std::max(high_water.tokens, UsedTokens(stats));
  const std::int64_t capacity = CapacityTokens(stats);
  Family(out, "llamacpp:prompt_tokens_total", "counter", "Number of prompt tokens processed.");
  Sample(out, "llamacpp:prompt_tokens_total", "", static_cast<double>(stats.prompt_tokens));
  Family(out, "llamacpp:tokens_predicted_total", "counter",
         "Number of generation tokens processed.");
  Sample(out, "llamacpp:tokens_predicted_total", "", static_cast<double>(stats.generation_tokens));
  Family(out, "llamacpp:n_decode_total", "counter", "Total number of llama_decode() calls");
  Sample(out, "llamacpp:n_decode_total", "", static_cast<double>(stats.num_steps));
  Family(out, "llamacpp:kv_cache_usage_ratio", "gauge",
         "KV-cache usage. 1 means 100 percent usage.");
  Sample(
      out, "llamacpp:kv_cache_usage_ratio", "",
      capacity > 0 ? static_cast<double>(high_water.tokens) / static_cast<double>(capacity) : 0.0);
  Family(out, "llamacpp:kv_cache_tokens", "gauge", "KV-cache tokens.");
  Sample(out, "llamacpp:kv_cache_tokens", "", static_cast<double>(high_water.tokens));
  Family(out, "llamacpp:requests_processing", "gauge", "Number of requests processing.");
  Sample(out, "llamacpp:requests_processing", "", stats.num_running);
  Family(out, "llamacpp:requests_deferred", "gauge", "Number of requests deferred.");
  Sample(out, "llamacpp:requests_deferred", "", stats.num_waiting);
}

void AppendSglangMetrics(std::string& out, std::string_view model_name, const EngineConfig& config,
                         const EngineStats& stats) {
  (void)config;
  const std::string labels = "{model_name=\"" + std::string(model_name) + "\"}";
  const std::int64_t capacity = CapacityTokens(stats);
  Family(out, "sglang:num_running_reqs", "gauge", "The number of running requests.");
  Sample(out, "sglang:num_running_reqs", labels, stats.num_running);
  Family(out, "sglang:num_queue_reqs", "gauge", "The number of requests in the waiting queue.");
  Sample(out, "sglang:num_queue_reqs", labels, stats.num_waiting);
  Family(out, "sglang:num_used_tokens", "gauge", "The number of used tokens.");
  Sample(out, "sglang:num_used_tokens", labels, static_cast<double>(UsedTokens(stats)));
  Family(out, "sglang:token_usage", "gauge", "The token usage.");
  Sample(out, "sglang:token_usage", labels, stats.kv_usage);
  Family(out, "sglang:max_total_num_tokens", "gauge",
         "Maximum total number of tokens in the KV cache pool.");
  Sample(out, "sglang:max_total_num_tokens", labels, static_cast<double>(capacity));
  Family(out, "sglang:cache_hit_rate", "gauge", "The prefix cache hit rate.");
  Sample(out, "sglang:cache_hit_rate", labels,
         stats.prefix_cache_queries > 0 ? static_cast<double>(stats.prefix_cache_hits) /
                                              static_cast<double>(stats.prefix_cache_queries)
                                        : 0.0);
  Family(out, "sglang:prompt_tokens_total", "counter", "Number of prefill tokens processed.");
  Sample(out, "sglang:prompt_tokens_total", labels, static_cast<double>(stats.prompt_tokens));
  Family(out, "sglang:generation_tokens_total", "counter",
         "Number of generation tokens processed.");
  Sample(out, "sglang:generation_tokens_total", labels,
         static_cast<double>(stats.generation_tokens));
}

void AppendEngineModelList(std::string& out, EngineApi api, const std::vector<ModelCard>& cards,
                           std::int64_t created) {
  if (api == EngineApi::kVllm) {
    AppendModelList(out, cards, created);
    return;
  }
  nlohmann::json data = nlohmann::json::array();
  for (const ModelCard& c : cards) {
    nlohmann::json m = {{"id", c.id}, {"object", "model"}, {"created", created}};
    if (api == EngineApi::kLlamacpp) {
      m["owned_by"] = "llamacpp";
      m["meta"] = nlohmann::json::object();
    } else {
      m["owned_by"] = "sglang";
      m["root"] = c.root;
      if (c.max_model_len) m["max_model_len"] = *c.max_model_len;
    }
    data.push_back(std::move(m));
  }
  out += nlohmann::json{{"object", "list"}, {"data", std::move(data)}}.dump();
}

void AppendLlamacppProps(std::string& out, std::string_view model, const EngineConfig& config) {
  const nlohmann::json props = {
      {"default_generation_settings", {{"n_ctx", config.max_model_len}, {"model", model}}},
      {"total_slots", Slots(config)},
      {"model_path", model},
      {"chat_template", ""},
      {"build_info", "infergate-sim"}};
  out += props.dump();
}

void AppendLlamacppSlots(std::string& out, const EngineConfig& config, const EngineStats& stats) {
  nlohmann::json slots = nlohmann::json::array();
  const int n = Slots(config);
  for (int i = 0; i < n; ++i) {
    slots.push_back(
        {{"id", i}, {"n_ctx", config.max_model_len}, {"is_processing", i < stats.num_running}});
  }
  out += slots.dump();
}

}  // namespace infergate::sim
