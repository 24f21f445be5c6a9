// What `infergate bench` sends: the target URL and vLLM's benchmark request bodies.
//
// Bodies follow benchmark_serving: completions {model, prompt, temperature 0, max_tokens,
// stream, stream_options {include_usage}, ignore_eos when set}; chat {model, messages,
// temperature 0, max_completion_tokens, stream, stream_options, ignore_eos when set}.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"
#include "loadgen/dataset.h"

namespace infergate::loadgen {

enum class ApiKind { kCompletions, kChat };

struct HttpTarget {
  std::string host;  // name or address to connect to
  std::uint16_t port = 80;
  std::string path;         // e.g. /v1/completions
  std::string host_header;  // "host" or "host:port"
};

// --base-url http://h[:p][/prefix] (when non-empty) or --host/--port, plus --endpoint.
// Only plain http is supported; returns an error for https or a malformed URL.
Result<HttpTarget> MakeTarget(std::string_view base_url, std::string_view host, int port,
                              std::string_view endpoint);

// The JSON body for one request. `model` is the served model name.
std::string RequestBody(ApiKind api, std::string_view model, const SampleRequest& request,
                        bool ignore_eos);

}  // namespace infergate::loadgen
