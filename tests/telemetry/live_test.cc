// JsonOut (the access log's and live page's writer) and the bounded recent-history
// structures behind the live page.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "telemetry/json_out.h"
#include "telemetry/recent.h"

namespace infergate::telemetry {
namespace {

TEST(JsonOut, WritesNestedStructureThatParses) {
  std::string s;
  JsonOut j(s);
  j.BeginObject().Field("a", 1).Field("b", "x\"y\\z\n").Key("list").BeginArray();
  j.Int(1).Number(2.5).Bool(false).Null().BeginObject().Field("k", true).EndObject();
  j.EndArray().Field("nan", std::nan("")).EndObject();
  auto v = nlohmann::json::parse(s);
  EXPECT_EQ(v["a"], 1);
  EXPECT_EQ(v["b"], "x\"y\\z\n");
  ASSERT_EQ(v["list"].size(), 5u);
  EXPECT_EQ(v["list"][1], 2.5);
  EXPECT_TRUE(v["list"][3].is_null());
  EXPECT_EQ(v["list"][4]["k"], true);
  EXPECT_TRUE(v["nan"].is_null());
}

TEST(JsonOut, EscapesControlBytesAndReplacesInvalidUtf8) {
  std::string s;
  AppendJsonString(s, std::string("a\x01"
                                  "b\xff"
                                  "c\xc3\xa9",
                                  7));
  auto v = nlohmann::json::parse(s);
  EXPECT_EQ(v.get<std::string>(),
            "a\x01"
            "b\xEF\xBF\xBD"
            "c\xc3\xa9");
  s.clear();
  AppendJsonString(s, "\xe2\x82");  // truncated sequence
  EXPECT_EQ(nlohmann::json::parse(s).get<std::string>(), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

// Plain runs are scanned eight bytes at a time: every byte that needs escaping is found
// wherever it falls in (or across) a word, and plain text comes out unchanged.
TEST(JsonOut, EscapesEveryByteWhereverItFallsInAWord) {
  const std::string plain = "0123456789abcdefghijklmnopqrstuvwxyz/:.-_ ~";
  {
    std::string s;
    AppendJsonString(s, plain);
    EXPECT_EQ(s, "\"" + plain + "\"");
  }
  for (const std::string& special :
       {std::string("\""), std::string("\\"), std::string("\n"), std::string(1, '\x1f'),
        std::string("\xc3\xa9"), std::string("\xff"), std::string(1, '\x7f')}) {
    for (std::size_t at = 0; at <= 20; ++at) {
      const std::string in = plain.substr(0, at) + special + plain.substr(at, 20);
      std::string s;
      AppendJsonString(s, in);
      const auto v = nlohmann::json::parse(s, nullptr, false);
      ASSERT_FALSE(v.is_discarded()) << s;
      const std::string expected =
          special == "\xff" ? plain.substr(0, at) + "\xEF\xBF\xBD" + plain.substr(at, 20) : in;
      EXPECT_EQ(v.get<std::string>(), expected) << "at " << at;
    }
  }
}

TEST(RecentRing, KeepsTheLastNInOrder) {
  RecentRing<int> ring(3);
  EXPECT_TRUE(ring.Snapshot().empty());
  for (int i = 1; i <= 5; ++i) ring.Push(i);
  EXPECT_EQ(ring.Snapshot(), (std::vector<int>{3, 4, 5}));
  EXPECT_EQ(ring.pushed(), 5u);
  ring.Push(6);
  EXPECT_EQ(ring.Snapshot(), (std::vector<int>{4, 5, 6}));
}

TEST(SampleWindow, SummarizesOnlyTheWindow) {
  SampleWindow w(60 * kNanosPerSecond, 1000);
  // Old samples, outside the window at t = 100 s.
  for (int i = 0; i < 10; ++i) w.Add(10 * kNanosPerSecond, 99);
  for (int i = 1; i <= 100; ++i) w.Add(90 * kNanosPerSecond, i);
  const WindowSummary s = w.Summarize(100 * kNanosPerSecond);
  EXPECT_EQ(s.count, 100u);
  EXPECT_EQ(s.p50, 50);
  EXPECT_EQ(s.p90, 90);
  EXPECT_EQ(s.p99, 99);
  EXPECT_EQ(s.max, 100);
  EXPECT_EQ(w.Summarize(200 * kNanosPerSecond).count, 0u);
}

TEST(SampleWindow, CapacityBoundsMemoryKeepingTheNewest) {
  SampleWindow w(60 * kNanosPerSecond, 10);
  for (int i = 1; i <= 100; ++i) w.Add(kNanosPerSecond, i);
  const WindowSummary s = w.Summarize(2 * kNanosPerSecond);
  EXPECT_EQ(s.count, 10u);
  EXPECT_EQ(s.max, 100);
  EXPECT_EQ(s.p50, 95);
}

}  // namespace
}  // namespace infergate::telemetry
