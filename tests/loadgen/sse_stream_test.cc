#include "loadgen/sse_stream.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace infergate::loadgen {
namespace {

std::vector<std::string> FeedInPieces(const std::string& stream, std::size_t piece) {
  SseParser p;
  std::vector<std::string> events;
  for (std::size_t i = 0; i < stream.size(); i += piece) {
    p.Feed(std::string_view(stream).substr(i, piece),
           [&](std::string_view data) { events.emplace_back(data); });
  }
  return events;
}

TEST(BenchSseParserTest, EventsSplitAtAnyByteAreReassembled) {
  const std::string lf =
      "data: {\"choices\":[{\"text\":\" a\"}]}\n\n: keep-alive comment\n\n"
      "event: message\ndata: {\"choices\":[]}\n\ndata: [DONE]\n\n";
  std::string crlf_text;
  for (char c : lf) {
    if (c == '\n')
      crlf_text += "\r\n";
    else
      crlf_text += c;
  }
  const std::vector<std::string> want = {"{\"choices\":[{\"text\":\" a\"}]}", "{\"choices\":[]}",
                                         "[DONE]"};
  const std::string crlf = crlf_text;
  for (const std::string* stream : {&lf, &crlf}) {
    for (std::size_t piece = 1; piece <= stream->size(); ++piece) {
      EXPECT_EQ(FeedInPieces(*stream, piece), want) << "piece " << piece;
    }
  }
}

TEST(BenchSseParserTest, MultipleDataLinesJoinWithNewlineAndPartialEventsWait) {
  SseParser p;
  std::vector<std::string> events;
  auto sink = [&](std::string_view d) { events.emplace_back(d); };
  p.Feed("data: one\ndata:two\n", sink);
  EXPECT_TRUE(events.empty());
  p.Feed("\n", sink);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0], "one\ntwo");
  p.Feed("data: tail-without-blank-line\n", sink);
  p.Reset();
  p.Feed("data: x\n\n", sink);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1], "x");
}

TEST(BenchStreamChunkDecoderTest, ClassifiesVllmChunks) {
  StreamChunkDecoder d;
  StreamChunk c;
  d.Decode(
      R"({"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":" hello","logprobs":null,"finish_reason":null,"stop_reason":null}],"usage":null})",
      c);
  EXPECT_EQ(c.kind, StreamChunk::Kind::kChoices);
  EXPECT_EQ(c.text, " hello");
  EXPECT_EQ(c.completion_tokens, -1);

  d.Decode(
      R"({"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]})",
      c);
  EXPECT_EQ(c.kind, StreamChunk::Kind::kChoices);  // the role chunk counts, text empty
  EXPECT_EQ(c.text, "");

  d.Decode(R"({"choices":[{"index":0,"delta":{"content":"\u00e9t\"e"}}]})", c);
  EXPECT_EQ(c.kind, StreamChunk::Kind::kChoices);
  EXPECT_EQ(c.text, "\xc3\xa9t\"e");

  d.Decode(
      R"({"id":"cmpl-1","object":"text_completion","choices":[],"usage":{"prompt_tokens":12,"total_tokens":19,"completion_tokens":7}})",
      c);
  EXPECT_EQ(c.kind, StreamChunk::Kind::kNoChoices);
  EXPECT_EQ(c.completion_tokens, 7);
  EXPECT_EQ(c.prompt_tokens, 12);

  d.Decode("[DONE]", c);
  EXPECT_EQ(c.kind, StreamChunk::Kind::kDone);
}

TEST(BenchStreamChunkDecoderTest, ErrorEventsAndGarbage) {
  StreamChunkDecoder d;
  StreamChunk c;
  d.Decode(
      R"({"error":{"object":"error","message":"engine died","type":"InternalServerError","code":500}})",
      c);
  EXPECT_EQ(c.kind, StreamChunk::Kind::kError);
  EXPECT_EQ(c.error, "engine died");
  d.Decode(R"({"object":"error","message":"context too long","type":"BadRequestError","code":400})",
           c);
  EXPECT_EQ(c.kind, StreamChunk::Kind::kError);
  EXPECT_EQ(c.error, "context too long");
  d.Decode(R"({"error":"plain text"})", c);
  EXPECT_EQ(c.kind, StreamChunk::Kind::kError);
  EXPECT_EQ(c.error, "plain text");
  d.Decode(R"({"choices":[{"text":"x"}],"error":null})", c);
  EXPECT_EQ(c.kind, StreamChunk::Kind::kChoices);
  d.Decode("{\"choices\":[{\"text\":", c);
  EXPECT_EQ(c.kind, StreamChunk::Kind::kInvalid);
  d.Decode("not json at all", c);
  EXPECT_EQ(c.kind, StreamChunk::Kind::kInvalid);
  d.Decode("", c);
  EXPECT_EQ(c.kind, StreamChunk::Kind::kInvalid);
}

}  // namespace
}  // namespace infergate::loadgen
