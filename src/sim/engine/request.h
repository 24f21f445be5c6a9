// Requests as the simulated engine sees them, and the facts it reports about them.
//
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/tokenizer.h"

namespace infergate::sim {

// Chosen by the caller; unique among the engine's unfinished requests.
using RequestId = std::uint64_t;

enum class FinishReason {
  kStop,    // the EOS model ended the output (vLLM's "stop")
  kLength,  // max_tokens reached ("length")
  kAbort,   // aborted by the caller ("abort")
};
// "stop", "length" or "abort", as vLLM's finish_reason / finished_reason label.
const char* ToString(FinishReason r);

struct EngineRequest {
  RequestId id = 0;
  std::vector<TokenId> prompt;    // must not be empty
  std::optional<int> max_tokens;  // unset: max_model_len - prompt length (vLLM's default)
  int min_tokens = 0;             // EOS is not honoured before this many output tokens
  bool ignore_eos = false;        // run to max_tokens whatever the EOS model says
  std::string lora;               // adapter name; empty: the base model
  int priority = 0;               // lower runs first under the priority policy
};

// Timing facts of one request, in the engine's time (simulated nanoseconds). Fields not
// reached yet are -1 (e.g. first_token of a request aborted while waiting).
struct RequestTiming {
  TimeNs arrival = -1;          // Submit time
  TimeNs first_scheduled = -1;  // first time a step including it was scheduled
  TimeNs first_token = -1;      // end of the step that produced output token 0
  TimeNs finished = -1;         // end of the step that produced the last token (or abort)
  int prompt_tokens = 0;
  int output_tokens = 0;
  int cached_prompt_tokens = 0;  // prefix-cache hit at first admission
  int preemptions = 0;           // times preempted by recompute
  int virtual_engine = 0;
};

}  // namespace infergate::sim
