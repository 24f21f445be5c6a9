// The simulator's reading of OpenAI-compatible generation requests, as vLLM 0.7 reads them.
//
// ParseGenerationRequest turns the JSON body of POST /v1/completions or
// /v1/chat/completions into what the engine needs: the prompt's token ids (with the
// simulator's Tokenizer), max_tokens, min_tokens, ignore_eos, priority and the streaming
// options. What it accepts:
//   completions  prompt: a string, a list of one string, a list of token ids, or a list of
//                one list of token ids. A batch of several prompts is refused (400): every
//                request here is one sequence, so one HTTP exchange maps to one engine
//                request and one stream.
//   chat         messages: [{role, content}] where content is a string, null, or a list of
//                parts whose {"type":"text","text":...} items are joined with "\n" (vLLM's
//                rule). The conversation is rendered with a fixed ChatML template (Qwen's):
//                  <|im_start|>{role}\n{content}<|im_end|>\n   for every message, then
//                  <|im_start|>assistant\n                      (add_generation_prompt, default)
//                and tokenized like any text. No default system prompt is inserted.
//   both         model (optional: the server's first served name), max_tokens
//                (chat: max_completion_tokens wins over max_tokens), min_tokens, ignore_eos,
//                priority, stream, stream_options {include_usage, continuous_usage_stats}.
//                Sampling parameters (temperature, top_p, top_k, seed, stop, ...) and unknown
//                fields are accepted and have no effect. n and best_of other than 1, echo,
//                logprobs, prompt_logprobs and suffix are refused (400): the simulator
//                produces one sequence without log-probabilities.
// Errors are the messages of a 400 BadRequestError, naming the field.
//
// Thread-safety: pure functions (the parser state is thread-local).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/tokenizer.h"

namespace infergate::sim {

enum class ApiKind { kCompletions, kChat };

struct GenerationRequest {
  ApiKind api = ApiKind::kCompletions;
  std::optional<std::string> model;  // as sent; unset when the body had none
  std::vector<TokenId> prompt;
  std::optional<int> max_tokens;  // unset: the engine's default (max_model_len − prompt)
  int min_tokens = 0;
  bool ignore_eos = false;
  int priority = 0;
  bool stream = false;
  bool include_usage = false;     // stream_options.include_usage
  bool continuous_usage = false;  // stream_options.continuous_usage_stats (with include_usage)
};

// Parses `body` (a JSON object). The body is padded in place for the SIMD parser (its
// capacity may grow; its contents are unchanged). Returns the request, or an error whose
// message is the 400 response's.
Result<GenerationRequest> ParseGenerationRequest(ApiKind api, std::string& body);

struct ChatMessage {
  std::string_view role;
  std::string_view content;
};

// Appends the ChatML rendering of `messages` described above.
void AppendChatPrompt(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                      std::string& out);

}  // namespace infergate::sim
