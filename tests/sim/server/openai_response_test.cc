#include "sim/server/openai_response.h"

#include <gtest/gtest.h>

namespace infergate::sim {
namespace {

TEST(SimServerResponse, CompletionChunks) {
  ResponseFormat f(ApiKind::kCompletions, "cmpl-1", 1700000000, "m\"x");
  std::string out;
  f.AppendTokenChunk(out, " hi", nullptr, nullptr);
  EXPECT_EQ(out, R"(data: {"id":"cmpl-1","object":"text_completion","created":1700000000,)"
                 R"("model":"m\"x","choices":[{"index":0,"text":" hi","logprobs":null,)"
                 R"("finish_reason":null,"stop_reason":null}],"usage":null})"
                 "\n\n");
  out.clear();
  const Usage u{7, 2};
  f.AppendTokenChunk(out, "", "stop", &u);
  EXPECT_EQ(out, R"(data: {"id":"cmpl-1","object":"text_completion","created":1700000000,)"
                 R"("model":"m\"x","choices":[{"index":0,"text":"","logprobs":null,)"
                 R"("finish_reason":"stop","stop_reason":null}],"usage":{"prompt_tokens":7,)"
                 R"("total_tokens":9,"completion_tokens":2,"prompt_tokens_details":null}})"
                 "\n\n");
  out.clear();
  f.AppendUsageChunk(out, {7, 2});
  EXPECT_EQ(out, R"(data: {"id":"cmpl-1","object":"text_completion","created":1700000000,)"
                 R"("model":"m\"x","choices":[],"usage":{"prompt_tokens":7,"total_tokens":9,)"
                 R"("completion_tokens":2}})"
                 "\n\n");
}

TEST(SimServerResponse, ChatChunks) {
  ResponseFormat f(ApiKind::kChat, "chatcmpl-9", 5, "m");
  const std::string head =
      R"(data: {"id":"chatcmpl-9","object":"chat.completion.chunk","created":5,"model":"m",)";
  std::string out;
  f.AppendRoleChunk(out, nullptr);
  EXPECT_EQ(out, head + R"("choices":[{"index":0,"delta":{"role":"assistant","content":""},)"
                        R"("logprobs":null,"finish_reason":null}]})"
                        "\n\n");
  out.clear();
  f.AppendTokenChunk(out, " a\n", nullptr, nullptr);
  EXPECT_EQ(out, head + R"("choices":[{"index":0,"delta":{"content":" a\n"},"logprobs":null,)"
                        R"("finish_reason":null}]})"
                        "\n\n");
  out.clear();
  const Usage u{3, 4};
  f.AppendTokenChunk(out, " b", "length", &u);
  EXPECT_EQ(out, head + R"("choices":[{"index":0,"delta":{"content":" b"},"logprobs":null,)"
                        R"("finish_reason":"length","stop_reason":null}],"usage":{)"
                        R"("prompt_tokens":3,"total_tokens":7,"completion_tokens":4}})"
                        "\n\n");
  out.clear();
  f.AppendUsageChunk(out, {3, 4});
  EXPECT_EQ(out, head + R"("choices":[],"usage":{"prompt_tokens":3,"total_tokens":7,)"
                        R"("completion_tokens":4}})"
                        "\n\n");
}

TEST(SimServerResponse, NonStreamedResponses) {
  std::string out;
  ResponseFormat(ApiKind::kCompletions, "cmpl-2", 6, "m")
      .AppendResponse(out, " x y", "length", {4, 2});
  EXPECT_EQ(out, R"({"id":"cmpl-2","object":"text_completion","created":6,"model":"m","choices":[)"
                 R"({"index":0,"text":" x y","logprobs":null,"finish_reason":"length",)"
                 R"("stop_reason":null,"prompt_logprobs":null}],"usage":{"prompt_tokens":4,)"
                 R"("total_tokens":6,"completion_tokens":2,"prompt_tokens_details":null}})");
  out.clear();
  ResponseFormat(ApiKind::kChat, "chatcmpl-3", 6, "m").AppendResponse(out, " z", "stop", {4, 2});
  EXPECT_EQ(out, R"({"id":"chatcmpl-3","object":"chat.completion","created":6,"model":"m",)"
                 R"("choices":[{"index":0,"message":{"role":"assistant","reasoning_content":null,)"
                 R"("content":" z","tool_calls":[]},"logprobs":null,"finish_reason":"stop",)"
                 R"("stop_reason":null}],"usage":{"prompt_tokens":4,"total_tokens":6,)"
                 R"("completion_tokens":2,"prompt_tokens_details":null},"prompt_logprobs":null})");
}

TEST(SimServerResponse, Errors) {
  std::string out;
  AppendErrorJson(out, 404, "The model `x` does not exist.");
  EXPECT_EQ(out, R"({"object":"error","message":"The model `x` does not exist.",)"
                 R"("type":"NotFoundError","param":null,"code":404})");
  out.clear();
  AppendErrorJson(out, 400, "bad \"quote\"");
  EXPECT_EQ(out, R"({"object":"error","message":"bad \"quote\"","type":"BadRequestError",)"
                 R"("param":null,"code":400})");
  out.clear();
  AppendStreamErrorEvent(out, 400, "boom");
  EXPECT_EQ(out, R"(data: {"error": {"object": "error", "message": "boom", "type": )"
                 R"("BadRequestError", "param": null, "code": 400}})"
                 "\n\n");
  EXPECT_EQ(ErrorType(500), "InternalServerError");
  EXPECT_EQ(ErrorType(503), "ServiceUnavailableError");
}

TEST(SimServerResponse, ModelList) {
  std::string out;
  AppendModelList(out,
                  {{"base", "/models/base", std::nullopt, 1024, "modelperm-a"},
                   {"ad", "/adapters/ad", "base", std::nullopt, "modelperm-b"}},
                  77);
  const std::string perm_tail =
      R"("object":"model_permission","created":77,"allow_create_engine":false,)"
      R"("allow_sampling":true,"allow_logprobs":true,"allow_search_indices":false,)"
      R"("allow_view":true,"allow_fine_tuning":false,"organization":"*","group":null,)"
      R"("is_blocking":false}]})";
  EXPECT_EQ(out, R"({"object":"list","data":[{"id":"base","object":"model","created":77,)"
                 R"("owned_by":"vllm","root":"/models/base","parent":null,"max_model_len":1024,)"
                 R"("permission":[{"id":"modelperm-a",)" +
                     perm_tail +
                     R"(,{"id":"ad","object":"model","created":77,"owned_by":"vllm",)"
                     R"("root":"/adapters/ad","parent":"base","max_model_len":null,)"
                     R"("permission":[{"id":"modelperm-b",)" +
                     perm_tail + "]}");
}

}  // namespace
}  // namespace infergate::sim
