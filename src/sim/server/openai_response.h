// The JSON the simulator writes, byte for byte in vLLM 0.7's shapes.
//
// vLLM serialises its pydantic models in field-definition order, compactly, and chooses
// per call site which unset or null fields to keep; the shapes below follow those choices
// (vllm/entrypoints/openai/protocol.py, serving_completion.py, serving_chat.py of 0.7.x):
//
//   completions chunk   {"id":"cmpl-…","object":"text_completion","created":T,"model":M,
//                        "choices":[{"index":0,"text":…,"logprobs":null,
//                        "finish_reason":null|"length"|"stop","stop_reason":null}],
//                        "usage":null}                       (every field kept, so usage:null
//                                                             is present on every chunk)
//   chat chunks         {"id":"chatcmpl-…","object":"chat.completion.chunk","created":T,
//                        "model":M,"choices":[{"index":0,"delta":{"role":"assistant",
//                        "content":""},"logprobs":null,"finish_reason":null}]}   first, then
//                        "delta":{"content":…} chunks; the last one adds "stop_reason":null
//                        after its finish_reason (unset fields dropped: no usage key)
//   usage chunk         same head, "choices":[],"usage":{"prompt_tokens":P,"total_tokens":T,
//                        "completion_tokens":C}
//   responses           text_completion / chat.completion objects with the message
//                        {"role":"assistant","reasoning_content":null,"content":…,
//                        "tool_calls":[]}, usage with "prompt_tokens_details":null
//   errors              {"object":"error","message":…,"type":"BadRequestError","param":null,
//                        "code":400}; after a stream began, as Python's json.dumps writes it:
//                        data: {"error": {"object": "error", "message": …, …}}
//
// Thread-safety: ResponseFormat is immutable after construction; functions are pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sim/server/openai_request.h"

namespace infergate::sim {

struct Usage {
  int prompt_tokens = 0;
  int completion_tokens = 0;
};

inline constexpr std::string_view kDoneEvent = "data: [DONE]\n\n";

// The per-request constant parts of every object written for one generation request.
class ResponseFormat {
 public:
  // `id` is the response id ("cmpl-…" or "chatcmpl-…"), `created` Unix seconds, `model`
  // the model name the response reports.
  ResponseFormat(ApiKind api, std::string_view id, std::int64_t created, std::string_view model);

  ApiKind api() const { return api_; }

  // Streamed events, each `data: {…}\n\n`. `finish_reason` is null (nullptr) except on the
  // last token's chunk. `usage` (may be null) is the continuous usage of
  // stream_options.continuous_usage_stats.
  void AppendRoleChunk(std::string& out, const Usage* usage) const;  // chat only
  void AppendTokenChunk(std::string& out, std::string_view text, const char* finish_reason,
                        const Usage* usage) const;
  void AppendUsageChunk(std::string& out, Usage usage) const;

  // The body of a non-streamed response.
  void AppendResponse(std::string& out, std::string_view text, const char* finish_reason,
                      Usage usage) const;

 private:
  ApiKind api_;
  std::string head_;           // {"id":…,"object":…,"created":…,"model":…,  (chunk object)
  std::string response_head_;  // the same for a non-streamed response object
};

// vLLM's error type for an HTTP status: 400 BadRequestError, 404 NotFoundError, 405
// MethodNotAllowed, 500 InternalServerError, 503 ServiceUnavailableError.
std::string_view ErrorType(int status);
// {"object":"error","message":…,"type":…,"param":null,"code":status}
void AppendErrorJson(std::string& out, int status, std::string_view message);
// data: {"error": {"object": "error", …}}\n\n (Python json.dumps separators).
void AppendStreamErrorEvent(std::string& out, int status, std::string_view message);

struct ModelCard {
  std::string id;
  std::string root;
  std::optional<std::string> parent;  // LoRA adapters: the base model
  std::optional<int> max_model_len;   // base models only, as vLLM reports it
  std::string permission_id;          // "modelperm-…"
};

// GET /v1/models: {"object":"list","data":[{"id":…,"object":"model","created":…,
// "owned_by":"vllm","root":…,"parent":…,"max_model_len":…,"permission":[{…}]}]}.
void AppendModelList(std::string& out, const std::vector<ModelCard>& cards, std::int64_t created);

}  // namespace infergate::sim
