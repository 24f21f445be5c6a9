#include "http/openai_error.h"

#include <cstdio>

namespace infergate::http {

std::string_view OpenAIErrorType(int status) {
  switch (status) {
    case 400:
      return "invalid_request_error";
    case 404:
      return "not_found_error";
    case 405:
      return "method_not_allowed";
    case 408:
      return "request_timeout";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_exceeded";
    case 431:
      return "request_header_fields_too_large";
    case 500:
      return "internal_error";
    case 502:
      return "upstream_error";
    case 503:
      return "service_unavailable";
    case 504:
      return "upstream_timeout";
    default:
      return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

std::string OpenAIErrorBody(int status, std::string_view message) {
  std::string out = R"({"error":{"message":")";
  AppendJsonEscaped(out, message);
  out += R"(","type":")";
  out += OpenAIErrorType(status);
  out += R"(","code":)";
  out += std::to_string(status);
  out += "}}";
  return out;
}

std::string OpenAIErrorEvent(int status, std::string_view message) {
  return "data: " + OpenAIErrorBody(status, message) + "\n\ndata: [DONE]\n\n";
}

}  // namespace infergate::http
