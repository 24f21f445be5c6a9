#include <gtest/gtest.h>

#include "gateway/openai_request.h"
#include "gateway/response_rewrite.h"

namespace infergate::gateway {
namespace {

TEST(GatewayOpenAIRequest, ReadsCompletionFieldsAndSplicesTheModelInPlace) {
  std::string body =
      R"({"model" : "qwq" , "prompt":"Hello \"world\"","max_tokens":128,"stream":true,)"
      R"("stream_options":{"include_usage":true}})";
  auto r = ParseOpenAIRequest(body);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->model, "qwq");
  EXPECT_EQ(r->prompt, "Hello \"world\"");
  EXPECT_EQ(r->max_tokens, 128);
  EXPECT_TRUE(r->stream);
  EXPECT_EQ(body.substr(r->model_offset, r->model_length), "\"qwq\"");
  SpliceModel(body, *r, "qwq-canary-v2");
  EXPECT_EQ(body, R"({"model" : "qwq-canary-v2" , "prompt":"Hello \"world\"","max_tokens":128,)"
                  R"("stream":true,"stream_options":{"include_usage":true}})");
}

TEST(GatewayOpenAIRequest, ChatMessagesBecomeRoleLinesAndTokenIdsAreCounted) {
  std::string chat =
      R"({"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":)"
      R"([{"type":"text","text":"Hi"},{"type":"image_url","image_url":{"url":"x"}}]}],)"
      R"("model":"m","max_completion_tokens":7})";
  auto c = ParseOpenAIRequest(chat);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->prompt, "system: Be brief.\nuser: Hi\n");
  EXPECT_EQ(c->max_tokens, 7);
  EXPECT_FALSE(c->stream);

  std::string ids = R"({"model":"m","prompt":[1,2,3,40]})";
  auto t = ParseOpenAIRequest(ids);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->prompt_tokens, 4);
  EXPECT_EQ(t->prompt, "1 2 3 40 ");
}

TEST(GatewayOpenAIRequest, BadBodiesGetClientReadableErrors) {
  std::string a = "{not json";
  EXPECT_NE(ParseOpenAIRequest(a).error().message.find("invalid JSON"), std::string::npos);
  std::string b = R"({"prompt":"x"})";
  EXPECT_EQ(ParseOpenAIRequest(b).error().message, "the request names no 'model'");
  std::string c = R"({"model":3})";
  EXPECT_EQ(ParseOpenAIRequest(c).error().message, "'model' must be a string");
  std::string d = R"([1,2])";
  EXPECT_EQ(ParseOpenAIRequest(d).error().message, "the request body must be a JSON object");
  std::string e = R"({"model":"m","max_tokens":"many"})";
  EXPECT_EQ(ParseOpenAIRequest(e).error().message, "'max_tokens' must be an integer");
  std::string f = R"({"model":"m"} trailing)";
  EXPECT_FALSE(ParseOpenAIRequest(f).ok());
}

TEST(GatewayModelNameRewriter, RewritesAcrossEveryPieceBoundary) {
  const std::string stream =
      "data: {\"id\":\"1\",\"model\":\"qwq-v2\",\"choices\":[]}\n\n"
      "data: {\"id\":\"2\",\"model\": \"qwq-v2\",\"choices\":[]}\n\ndata: [DONE]\n\n";
  const std::string want =
      "data: {\"id\":\"1\",\"model\":\"qwq\",\"choices\":[]}\n\n"
      "data: {\"id\":\"2\",\"model\":\"qwq\",\"choices\":[]}\n\ndata: [DONE]\n\n";
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    ModelNameRewriter r("qwq-v2", "qwq");
    std::string out;
    r.Rewrite(std::string_view(stream).substr(0, cut), false, out);
    r.Rewrite(std::string_view(stream).substr(cut), true, out);
    ASSERT_EQ(out, want) << "cut at " << cut;
  }
  // Bytes that cannot start a match are not held back.
  ModelNameRewriter r("qwq-v2", "qwq");
  std::string out;
  r.Rewrite("data: {\"id\":\"1\"}\n\n", false, out);
  EXPECT_EQ(out, "data: {\"id\":\"1\"}\n\n");
}

TEST(GatewayUsageScanner, FindsTheLastUsageInTheTail) {
  UsageScanner s;
  s.Feed("data: {\"choices\":[{\"text\":\"a\"}],\"usage\":null}\n\n");
  s.Feed(std::string(10000, 'x'));
  s.Feed("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"total_tokens\":15,");
  s.Feed("\"completion_tokens\":3}}\n\ndata: [DONE]\n\n");
  auto u = s.Result();
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->prompt_tokens, 12);
  EXPECT_EQ(u->completion_tokens, 3);
  UsageScanner none;
  none.Feed("data: {\"usage\":null}\n\n");
  EXPECT_FALSE(none.Result().has_value());
}

}  // namespace
}  // namespace infergate::gateway
