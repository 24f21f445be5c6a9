#include "sim/server/openai_response.h"

#include "http/openai_error.h"

namespace infergate::sim {
namespace {

using http::AppendJsonEscaped;

void AppendInt(std::string& out, std::int64_t v) { out += std::to_string(v); }

// UsageInfo's fields in definition order; `details` keeps prompt_tokens_details:null.
void AppendUsage(std::string& out, Usage u, bool details) {
  out += R"({"prompt_tokens":)";
  AppendInt(out, u.prompt_tokens);
  out += R"(,"total_tokens":)";
  AppendInt(out, u.prompt_tokens + u.completion_tokens);
  out += R"(,"completion_tokens":)";
  AppendInt(out, u.completion_tokens);
  out += details ? R"(,"prompt_tokens_details":null})" : "}";
}

void AppendFinishReason(std::string& out, const char* reason) {
  if (reason == nullptr) {
    out += "null";
  } else {
    out += '"';
    out += reason;
    out += '"';
  }
}

std::string Head(std::string_view id, std::string_view object, std::int64_t created,
                 std::string_view model) {
  std::string h = R"({"id":")";
  AppendJsonEscaped(h, id);
  h += R"(","object":")";
  h += object;
  h += R"(","created":)";
  AppendInt(h, created);
  h += R"(,"model":")";
  AppendJsonEscaped(h, model);
  h += R"(",)";
  return h;
}

}  // namespace

ResponseFormat::ResponseFormat(ApiKind api, std::string_view id, std::int64_t created,
                               std::string_view model)
    : api_(api),
      head_(Head(id, api == ApiKind::kChat ? "chat.completion.chunk" : "text_completion", created,
                 model)),
      response_head_(Head(id, api == ApiKind::kChat ? "chat.completion" : "text_completion",
                          created, model)) {}

void ResponseFormat::AppendRoleChunk(std::string& out, const Usage* usage) const {
  out += "data: ";
  out += head_;
  out += R"("choices":[{"index":0,"delta":{"role":"assistant","content":""},)"
         R"("logprobs":null,"finish_reason":null}])";
  if (usage) {
    out += R"(,"usage":)";
    AppendUsage(out, *usage, false);
  }
  out += "}\n\n";
}

void ResponseFormat::AppendTokenChunk(std::string& out, std::string_view text,
                                      const char* finish_reason, const Usage* usage) const {
  out += "data: ";
  out += head_;
  if (api_ == ApiKind::kChat) {
    // Unset fields are dropped: stop_reason appears only where vLLM sets it (the last chunk).
    out += R"("choices":[{"index":0,"delta":{"content":")";
    AppendJsonEscaped(out, text);
    out += R"("},"logprobs":null,"finish_reason":)";
    AppendFinishReason(out, finish_reason);
    if (finish_reason) out += R"(,"stop_reason":null)";
    out += "}]";
    if (usage) {
      out += R"(,"usage":)";
      AppendUsage(out, *usage, false);
    }
    out += "}\n\n";
    return;
  }
  out += R"("choices":[{"index":0,"text":")";
  AppendJsonEscaped(out, text);
  out += R"(","logprobs":null,"finish_reason":)";
  AppendFinishReason(out, finish_reason);
  out += R"(,"stop_reason":null}],"usage":)";
  if (usage) {
    AppendUsage(out, *usage, true);
  } else {
    out += "null";
  }
  out += "}\n\n";
}

void ResponseFormat::AppendUsageChunk(std::string& out, Usage usage) const {
  out += "data: ";
  out += head_;
  out += R"("choices":[],"usage":)";
  AppendUsage(out, usage, false);
  out += "}\n\n";
}

void ResponseFormat::AppendResponse(std::string& out, std::string_view text,
                                    const char* finish_reason, Usage usage) const {
  out += response_head_;
  if (api_ == ApiKind::kChat) {
    out += R"("choices":[{"index":0,"message":{"role":"assistant","reasoning_content":null,)"
           R"("content":")";
    AppendJsonEscaped(out, text);
    out += R"(","tool_calls":[]},"logprobs":null,"finish_reason":)";
    AppendFinishReason(out, finish_reason);
    out += R"(,"stop_reason":null}],"usage":)";
    AppendUsage(out, usage, true);
    out += R"(,"prompt_logprobs":null})";
    return;
  }
  out += R"("choices":[{"index":0,"text":")";
  AppendJsonEscaped(out, text);
  out += R"(","logprobs":null,"finish_reason":)";
  AppendFinishReason(out, finish_reason);
  out += R"(,"stop_reason":null,"prompt_logprobs":null}],"usage":)";
  AppendUsage(out, usage, true);
  out += "}";
}

std::string_view ErrorType(int status) {
  switch (status) {
    case 400:
      return "BadRequestError";
    case 404:
      return "NotFoundError";
    case 405:
      return "MethodNotAllowed";
    case 500:
      return "InternalServerError";
    case 503:
      return "ServiceUnavailableError";
    default:
      return status >= 500 ? "InternalServerError" : "BadRequestError";
  }
}

void AppendErrorJson(std::string& out, int status, std::string_view message) {
  out += R"({"object":"error","message":")";
  AppendJsonEscaped(out, message);
  out += R"(","type":")";
  out += ErrorType(status);
  out += R"(","param":null,"code":)";
  AppendInt(out, status);
  out += '}';
}

void AppendStreamErrorEvent(std::string& out, int status, std::string_view message) {
  out += R"(data: {"error": {"object": "error", "message": ")";
  AppendJsonEscaped(out, message);
  out += R"(", "type": ")";
  out += ErrorType(status);
  out += R"(", "param": null, "code": )";
  AppendInt(out, status);
  out += "}}\n\n";
}

void AppendModelList(std::string& out, const std::vector<ModelCard>& cards, std::int64_t created) {
  out += R"({"object":"list","data":[)";
  bool first = true;
  for (const ModelCard& c : cards) {
    if (!first) out += ',';
    first = false;
    out += R"({"id":")";
    AppendJsonEscaped(out, c.id);
    out += R"(","object":"model","created":)";
    AppendInt(out, created);
    out += R"(,"owned_by":"vllm","root":")";
    AppendJsonEscaped(out, c.root);
    out += R"(","parent":)";
    if (c.parent) {
      out += '"';
      AppendJsonEscaped(out, *c.parent);
      out += '"';
    } else {
      out += "null";
    }
    out += R"(,"max_model_len":)";
    if (c.max_model_len) {
      AppendInt(out, *c.max_model_len);
    } else {
      out += "null";
    }
    out += R"(,"permission":[{"id":")";
    AppendJsonEscaped(out, c.permission_id);
    out += R"(","object":"model_permission","created":)";
    AppendInt(out, created);
    out += R"(,"allow_create_engine":false,"allow_sampling":true,"allow_logprobs":true,)"
           R"("allow_search_indices":false,"allow_view":true,"allow_fine_tuning":false,)"
           R"("organization":"*","group":null,"is_blocking":false}]})";
  }
  out += "]}";
}

}  // namespace infergate::sim
