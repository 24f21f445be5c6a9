// Error bodies in the shape OpenAI-compatible clients parse:
//   {"error":{"message":"...","type":"...","code":404}}
// and the same as a server-sent event for errors after a stream has begun.
#pragma once

#include <string>
#include <string_view>

#include "core/json_escape.h"

namespace infergate::http {

// The `type` string used for an HTTP status (e.g. 404 -> "not_found_error").
std::string_view OpenAIErrorType(int status);
// The JSON error body; `message` is escaped.
std::string OpenAIErrorBody(int status, std::string_view message);
// `data: {"error":{...}}\n\ndata: [DONE]\n\n`, for a stream that fails after it began.
std::string OpenAIErrorEvent(int status, std::string_view message);
// Appends `s` as the contents of a JSON string (without quotes).
using ::infergate::AppendJsonEscaped;  // core/json_escape.h

}  // namespace infergate::http
