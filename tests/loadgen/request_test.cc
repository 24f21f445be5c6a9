#include "loadgen/request.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace infergate::loadgen {
namespace {

TEST(BenchMakeTargetTest, BaseUrlOrHostAndPort) {
  auto a = MakeTarget("", "127.0.0.1", 8080, "/v1/completions");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 8080);
  EXPECT_EQ(a->path, "/v1/completions");
  EXPECT_EQ(a->host_header, "127.0.0.1:8080");

  auto b = MakeTarget("http://gw.local:8081/api/", "ignored", 1, "/v1/chat/completions");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "gw.local");
  EXPECT_EQ(b->port, 8081);
  EXPECT_EQ(b->path, "/api/v1/chat/completions");
  EXPECT_EQ(b->host_header, "gw.local:8081");

  auto c = MakeTarget("http://[::1]:9000", "", 0, "/v1/completions");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->host, "::1");
  EXPECT_EQ(c->port, 9000);

  auto d = MakeTarget("http://example", "", 0, "/x");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->port, 80);

  EXPECT_FALSE(MakeTarget("https://h:1", "", 0, "/v1/completions").ok());
  EXPECT_FALSE(MakeTarget("ftp://h", "", 0, "/v1/completions").ok());
  EXPECT_FALSE(MakeTarget("http://h:99999", "", 0, "/v1/completions").ok());
  EXPECT_FALSE(MakeTarget("", "h", 0, "/v1/completions").ok());
  EXPECT_FALSE(MakeTarget("", "h", 80, "v1/completions").ok());
}

TEST(BenchRequestBodyTest, CompletionsAndChatBodiesAreVllms) {
  SampleRequest s;
  s.prompt = " hello world";
  s.expected_output_len = 42;
  const auto c = nlohmann::json::parse(RequestBody(ApiKind::kCompletions, "qwq", s, false));
  EXPECT_EQ(c["model"], "qwq");
  EXPECT_EQ(c["prompt"], " hello world");
  EXPECT_EQ(c["max_tokens"], 42);
  EXPECT_EQ(c["stream"], true);
  EXPECT_EQ(c["stream_options"]["include_usage"], true);
  EXPECT_EQ(c["temperature"], 0.0);
  EXPECT_FALSE(c.contains("ignore_eos"));

  const auto chat = nlohmann::json::parse(RequestBody(ApiKind::kChat, "qwq", s, true));
  EXPECT_EQ(chat["max_completion_tokens"], 42);
  EXPECT_EQ(chat["ignore_eos"], true);
  ASSERT_EQ(chat["messages"].size(), 1u);
  EXPECT_EQ(chat["messages"][0]["role"], "user");
  EXPECT_EQ(chat["messages"][0]["content"], " hello world");

  s.messages = {{"system", " sys"}, {"user", " q1"}, {"assistant", " a1"}, {"user", " q2"}};
  const auto multi = nlohmann::json::parse(RequestBody(ApiKind::kChat, "m", s, false));
  ASSERT_EQ(multi["messages"].size(), 4u);
  EXPECT_EQ(multi["messages"][2]["role"], "assistant");
  EXPECT_EQ(multi["messages"][3]["content"], " q2");
}

}  // namespace
}  // namespace infergate::loadgen
