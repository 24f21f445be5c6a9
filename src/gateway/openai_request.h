// Reading what routing needs from an OpenAI-style request body, once, without
// re-serialising it.
//
// ParseOpenAIRequest reads the body with simdjson's on-demand parser directly over the
// request buffer (which is grown to carry simdjson's padding, so nothing is copied) and
// returns the model, the prompt text used for prefix affinity, the token limit and the
// byte span of the "model" value so that SpliceModel can rewrite it in place.
//
// Prompt text: the completions `prompt` (a string, or strings joined with newlines; for
// token ids, the raw JSON of the list, with the count as prompt_tokens), or for chat the
// messages as "role: content" lines (content strings, or the text parts of content
// arrays).
//
// Thread-safety: functions are thread-safe (each thread uses its own parser).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace infergate::gateway {

struct OpenAIRequest {
  std::string model;             // as the client sent it (unescaped)
  std::size_t model_offset = 0;  // the "model" value's JSON string token in the body,
  std::size_t model_length = 0;  // quotes included
  bool stream = false;
  std::optional<std::int64_t> max_tokens;  // max_tokens or max_completion_tokens
  std::string prompt;
  std::int64_t prompt_tokens = -1;  // known when the prompt was given as token ids
};

// Parses `body` (a JSON object). Requires nothing of the body's capacity: the function
// reserves simdjson's padding itself (which may reallocate the string). Errors are
// written for the client: invalid JSON, no "model", a field of the wrong type.
Result<OpenAIRequest> ParseOpenAIRequest(std::string& body);

// Replaces the model token recorded in `request` with `model` as a JSON string.
void SpliceModel(std::string& body, const OpenAIRequest& request, std::string_view model);

}  // namespace infergate::gateway
