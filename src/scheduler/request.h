// What the scheduler needs to know about one inference request.
//
// The gateway fills a RequestInfo from the parsed body and headers (it never copies the
// prompt: the views point into the request body and must stay valid for the duration of
// the call that receives the RequestInfo). Everything here is a plain value.
//
// Criticality and priority: InferenceModel (v1alpha2) gives a criticality, its successor
// InferenceObjective an integer priority (default 0, higher first, < 0 sheddable). The
// gateway fills both consistently (PriorityOf / CriticalityOf help). gie-v0's decision
// tree branches on `criticality`; shedding treats a request as sheddable when either
// says so; flow control orders bands by `priority`.
//
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace infergate {

enum class Criticality : std::uint8_t { kCritical, kStandard, kSheddable };

// Priority bands for InferenceModel criticalities: Critical 1, Standard 0, Sheddable -1.
constexpr int PriorityOf(Criticality c) {
  return c == Criticality::kCritical ? 1 : c == Criticality::kSheddable ? -1 : 0;
}
// InferenceObjective semantics: < 0 is sheddable, everything else standard.
constexpr Criticality CriticalityOf(int priority) {
  return priority < 0 ? Criticality::kSheddable : Criticality::kStandard;
}

// The characters-per-token ratio behind EstimatePromptTokens. Four characters per token
// is the usual figure for English text with BPE tokenizers (and the simulator's
// tokenizer); the ledger corrects it from the usage servers report (see TokenLedger).
inline constexpr int kCharsPerToken = 4;

// ceil(chars / 4): a tokenizer-free estimate that is cheap enough for the hot path.
constexpr std::int64_t EstimatePromptTokens(std::size_t chars) {
  return static_cast<std::int64_t>((chars + kCharsPerToken - 1) / kCharsPerToken);
}

struct RequestInfo {
  // The model the request resolves to (after InferenceModel target selection); for a LoRA
  // adapter this is the adapter's name. Seeds the prefix hash chain.
  std::string_view target_model;
  // The prompt text: the completions prompt, or the chat messages' contents concatenated.
  std::string_view prompt;
  // Prompt tokens if known; < 0 means "estimate from prompt.size()" (EstimatePromptTokens).
  std::int64_t prompt_tokens = -1;
  std::optional<std::int64_t> max_tokens;
  Criticality criticality = Criticality::kStandard;
  int priority = 0;
  // Non-empty when target_model is a LoRA adapter (then usually equal to it).
  std::string_view lora_adapter;
  // Optional session key (a header); requests of one session stick to one endpoint.
  std::string_view session_key;
  // x-gateway-inference-fairness-id; used by flow control.
  std::string_view fairness_id;
  // Prefix block hashes computed by the caller (ComputeBlockHashes with the scheduler's
  // PrefixIndexOptions), e.g. outside the pool lock. nullptr: the scheduler hashes.
  const std::vector<std::uint64_t>* block_hashes = nullptr;
  // When set, only these endpoint ids ("ip:port") may be picked (the subset hint Envoy
  // passes an endpoint picker); none of them ready means no endpoint.
  const std::vector<std::string>* allowed_endpoints = nullptr;

  bool IsCritical() const { return criticality == Criticality::kCritical; }
  bool IsSheddable() const { return criticality == Criticality::kSheddable || priority < 0; }
  std::int64_t PromptTokens() const {
    return prompt_tokens >= 0 ? prompt_tokens : EstimatePromptTokens(prompt.size());
  }
};

// Token counts a server reported for a finished request (OpenAI `usage`).
struct Usage {
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
};

}  // namespace infergate
