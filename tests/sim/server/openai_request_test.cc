#include "sim/server/openai_request.h"

#include <gtest/gtest.h>

namespace infergate::sim {
namespace {

Result<GenerationRequest> Parse(ApiKind api, std::string body) {
  return ParseGenerationRequest(api, body);
}

std::string ErrorOf(ApiKind api, std::string body) {
  auto r = Parse(api, std::move(body));
  EXPECT_FALSE(r.ok());
  return r.ok() ? "" : r.error().message;
}

TEST(SimServerRequest, CompletionWithStringPrompt) {
  auto r = Parse(ApiKind::kCompletions,
                 R"({"model":"m","prompt":"hello world, again","max_tokens":7,"min_tokens":2,)"
                 R"("ignore_eos":true,"priority":3,"temperature":0,"stream":true,)"
                 R"("stream_options":{"include_usage":true},"unknown":{"x":[1,2]}})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->model, "m");
  EXPECT_EQ(r->prompt, Tokenizer::Encode("hello world, again"));
  EXPECT_EQ(r->max_tokens, 7);
  EXPECT_EQ(r->min_tokens, 2);
  EXPECT_TRUE(r->ignore_eos);
  EXPECT_EQ(r->priority, 3);
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->include_usage);
  EXPECT_FALSE(r->continuous_usage);
}

TEST(SimServerRequest, CompletionPromptForms) {
  auto one = Parse(ApiKind::kCompletions, R"({"prompt":["only one"]})");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->prompt, Tokenizer::Encode("only one"));
  EXPECT_FALSE(one->model.has_value());
  EXPECT_FALSE(one->max_tokens.has_value());

  auto ids = Parse(ApiKind::kCompletions, R"({"prompt":[5,0,152063],"max_tokens":null})");
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(ids->prompt, (std::vector<TokenId>{5, 0, 152063}));
  EXPECT_FALSE(ids->max_tokens.has_value());

  auto nested = Parse(ApiKind::kCompletions, R"({"prompt":[[9,8]]})");
  ASSERT_TRUE(nested.ok());
  EXPECT_EQ(nested->prompt, (std::vector<TokenId>{9, 8}));

  // Empty prompts are the engine's to refuse.
  auto empty = Parse(ApiKind::kCompletions, R"({"prompt":""})");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->prompt.empty());
}

TEST(SimServerRequest, CompletionRefusesBatchesAndBadPrompts) {
  EXPECT_NE(ErrorOf(ApiKind::kCompletions, R"({"prompt":["a","b"]})").find("several prompts"),
            std::string::npos);
  EXPECT_NE(ErrorOf(ApiKind::kCompletions, R"({"prompt":[[1],[2]]})").find("several prompts"),
            std::string::npos);
  EXPECT_EQ(ErrorOf(ApiKind::kCompletions, R"({"prompt":[1,152064]})"),
            "Token id 152064 is out of vocabulary");
  EXPECT_EQ(ErrorOf(ApiKind::kCompletions, R"({"prompt":[1,-1]})"),
            "Token id -1 is out of vocabulary");
  EXPECT_EQ(ErrorOf(ApiKind::kCompletions, R"({"prompt":[1,"a"]})"),
            "'prompt' must be a list of items of one type");
  EXPECT_EQ(ErrorOf(ApiKind::kCompletions, R"({"prompt":7})"),
            "'prompt' must be a string, a list of strings or a list of token ids");
  EXPECT_EQ(ErrorOf(ApiKind::kCompletions, R"({"model":"m"})"), "'prompt' is required");
}

TEST(SimServerRequest, ChatRendersTheTemplate) {
  auto r = Parse(ApiKind::kChat,
                 R"({"model":"m","messages":[{"role":"system","content":"Be brief."},)"
                 R"({"content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{}},)"
                 R"({"type":"text","text":"b"}],"role":"user"}],"max_tokens":5,)"
                 R"("max_completion_tokens":9})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const std::string expected =
      "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\na\nb<|im_end|>\n"
      "<|im_start|>assistant\n";
  EXPECT_EQ(r->prompt, Tokenizer::Encode(expected));
  EXPECT_EQ(r->max_tokens, 9);  // max_completion_tokens wins

  auto no_gen =
      Parse(ApiKind::kChat,
            R"({"messages":[{"role":"user","content":null}],"add_generation_prompt":false})");
  ASSERT_TRUE(no_gen.ok());
  EXPECT_EQ(no_gen->prompt, Tokenizer::Encode("<|im_start|>user\n<|im_end|>\n"));

  std::string rendered;
  AppendChatPrompt({{"user", "hi"}}, true, rendered);
  EXPECT_EQ(rendered, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
}

TEST(SimServerRequest, ChatErrors) {
  EXPECT_EQ(ErrorOf(ApiKind::kChat, R"({"model":"m"})"), "'messages' is required");
  EXPECT_EQ(ErrorOf(ApiKind::kChat, R"({"messages":{}})"), "'messages' must be a list of messages");
  EXPECT_EQ(ErrorOf(ApiKind::kChat, R"({"messages":[{"content":"x"}]})"),
            "every message needs a 'role'");
  EXPECT_EQ(ErrorOf(ApiKind::kChat, R"({"messages":[{"role":"user","content":5}]})"),
            "'messages[].content' must be a string, null or a list of content parts");
  // A chat body's "prompt" is not a chat field: ignored, and messages still required.
  EXPECT_EQ(ErrorOf(ApiKind::kChat, R"({"prompt":"x"})"), "'messages' is required");
}

TEST(SimServerRequest, BadJsonAndTypes) {
  EXPECT_NE(ErrorOf(ApiKind::kCompletions, R"({"prompt":"x",)").find("invalid JSON body"),
            std::string::npos);
  EXPECT_NE(ErrorOf(ApiKind::kCompletions, "").find("invalid JSON body"), std::string::npos);
  EXPECT_EQ(ErrorOf(ApiKind::kCompletions, R"(["prompt"])"),
            "the request body must be a JSON object");
  EXPECT_EQ(ErrorOf(ApiKind::kCompletions, R"({"prompt":"x"} {"more":1})"),
            "invalid JSON body: content after the JSON object");
  EXPECT_EQ(ErrorOf(ApiKind::kCompletions, R"({"prompt":"x","max_tokens":"5"})"),
            "'max_tokens' must be an integer");
  EXPECT_EQ(ErrorOf(ApiKind::kCompletions, R"({"prompt":"x","max_tokens":2.5})"),
            "'max_tokens' must be an integer");
  EXPECT_EQ(ErrorOf(ApiKind::kCompletions, R"({"prompt":"x","max_tokens":99999999999})"),
            "'max_tokens' is out of range: 99999999999");
  EXPECT_EQ(ErrorOf(ApiKind::kCompletions, R"({"prompt":"x","stream":"yes"})"),
            "'stream' must be a boolean");
  EXPECT_EQ(ErrorOf(ApiKind::kCompletions, R"({"prompt":"x","model":3})"),
            "'model' must be a string");
}

TEST(SimServerRequest, UnsupportedOptions) {
  EXPECT_EQ(ErrorOf(ApiKind::kCompletions, R"({"prompt":"x","n":2})"),
            "'n' must be 1: the simulator produces one sequence per request");
  EXPECT_EQ(ErrorOf(ApiKind::kChat, R"({"messages":[],"best_of":3})"),
            "'best_of' must be 1: the simulator produces one sequence per request");
  EXPECT_EQ(ErrorOf(ApiKind::kCompletions, R"({"prompt":"x","logprobs":2})"),
            "'logprobs' is not supported by the simulator");
  EXPECT_EQ(ErrorOf(ApiKind::kCompletions, R"({"prompt":"x","echo":true})"),
            "'echo' is not supported by the simulator");
  EXPECT_EQ(ErrorOf(ApiKind::kCompletions, R"({"prompt":"x","suffix":"s"})"),
            "suffix is not currently supported");
  // The defaults spelled out are fine.
  auto ok =
      Parse(ApiKind::kChat, R"({"messages":[],"n":1,"logprobs":false,"echo":false,"best_of":null,)"
                            R"("prompt_logprobs":null})");
  EXPECT_TRUE(ok.ok()) << ok.error().message;
}

TEST(SimServerRequest, StreamOptions) {
  auto r = Parse(ApiKind::kCompletions,
                 R"({"prompt":"x","stream":true,"stream_options":{"include_usage":true,)"
                 R"("continuous_usage_stats":true}})");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->continuous_usage);
  // Continuous usage only with include_usage.
  auto c =
      Parse(ApiKind::kCompletions,
            R"({"prompt":"x","stream":true,"stream_options":{"continuous_usage_stats":true}})");
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->continuous_usage);
  EXPECT_EQ(
      ErrorOf(ApiKind::kCompletions, R"({"prompt":"x","stream_options":{"include_usage":true}})"),
      "Stream options can only be defined when `stream=True`.");
  auto null_options = Parse(ApiKind::kCompletions, R"({"prompt":"x","stream_options":null})");
  EXPECT_TRUE(null_options.ok());
}

}  // namespace
}  // namespace infergate::sim
