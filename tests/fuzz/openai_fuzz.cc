// libFuzzer target for the OpenAI request body parser and the in-place model splice
// (src/gateway/openai_request.h).
//
// Properties, beyond "no crash, no sanitizer report":
// - a parsed body's model token lies inside the body, is a JSON string, and unescapes to
//   the model the parser returned;
// - splice then parse again: the body with the model replaced (by names that need JSON
//   escaping too) parses, names the new model, and every other field reads the same;
// - splicing the original name back gives a body that parses as the first did.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "gateway/openai_request.h"

namespace {

using infergate::gateway::OpenAIRequest;
using infergate::gateway::ParseOpenAIRequest;
using infergate::gateway::SpliceModel;

void CheckSameExceptModel(const OpenAIRequest& a, const OpenAIRequest& b) {
  IG_FUZZ_CHECK(a.stream == b.stream);
  IG_FUZZ_CHECK(a.max_tokens == b.max_tokens);
  IG_FUZZ_CHECK(a.prompt == b.prompt);
  IG_FUZZ_CHECK(a.prompt_tokens == b.prompt_tokens);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string body(reinterpret_cast<const char*>(data), size);
  const auto first = ParseOpenAIRequest(body);
  if (!first.ok()) {
    IG_FUZZ_CHECK(!first.error().message.empty());
    return 0;
  }
  IG_FUZZ_CHECK(first->model_length >= 2);
  IG_FUZZ_CHECK(first->model_offset + first->model_length <= body.size());
  IG_FUZZ_CHECK(body[first->model_offset] == '"');
  IG_FUZZ_CHECK(body[first->model_offset + first->model_length - 1] == '"');
  IG_FUZZ_CHECK(first->prompt_tokens == -1 || first->prompt_tokens > 0);

  // The body as the gateway would send it upstream, for a few target names.
  for (std::string_view target :
       {std::string_view("m"), std::string_view("llama-3.1-8b-instruct/lora:a\"b\\c\n\t\x01"),
        std::string_view("\xc3\xa9t\xc3\xa9"), std::string_view("")}) {
    std::string spliced = body;
    SpliceModel(spliced, *first, target);
    const auto again = ParseOpenAIRequest(spliced);
    IG_FUZZ_CHECK(again.ok());
    IG_FUZZ_CHECK(again->model == target);
    IG_FUZZ_CHECK(again->model_offset == first->model_offset);
    CheckSameExceptModel(*first, *again);

    // And back: the original name restored parses as the client's body did.
    SpliceModel(spliced, *again, first->model);
    const auto restored = ParseOpenAIRequest(spliced);
    IG_FUZZ_CHECK(restored.ok());
    IG_FUZZ_CHECK(restored->model == first->model);
    CheckSameExceptModel(*first, *restored);
  }
  return 0;
}
