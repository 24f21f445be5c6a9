#include "datalayer/prometheus_text.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

namespace infergate {
namespace {

struct Parsed {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;  // unescaped
  double value;
  bool has_timestamp;
  std::int64_t timestamp_ms;
};

struct ParseAll {
  std::vector<Parsed> samples;
  std::size_t malformed = 0;
  std::string first_error;
};

ParseAll Parse(std::string_view body) {
  ParseAll out;
  PrometheusTextReader r(body);
  PromSample s;
  while (r.Next(&s)) {
    Parsed p{std::string(s.name), {}, s.value, s.has_timestamp, s.timestamp_ms};
    for (const PromLabel& l : s.labels) {
      p.labels.emplace_back(std::string(l.name), l.UnescapedValue());
    }
    out.samples.push_back(std::move(p));
  }
  out.malformed = r.malformed_lines();
  out.first_error = r.first_error();
  return out;
}

TEST(PrometheusTextReader, PlainSampleWithoutLabels) {
  ParseAll p = Parse("up 1\n");
  ASSERT_EQ(p.samples.size(), 1u);
  EXPECT_EQ(p.samples[0].name, "up");
  EXPECT_TRUE(p.samples[0].labels.empty());
  EXPECT_EQ(p.samples[0].value, 1.0);
  EXPECT_FALSE(p.samples[0].has_timestamp);
  EXPECT_EQ(p.malformed, 0u);
}

TEST(PrometheusTextReader, LabelsInAnyOrderAndTrailingComma) {
  ParseAll p = Parse(
      "m{b=\"2\",a=\"1\"} 3\n"
      "m{ a = \"1\" , b=\"2\", } 4\n");
  ASSERT_EQ(p.samples.size(), 2u);
  EXPECT_EQ(p.samples[0].labels[0], (std::pair<std::string, std::string>{"b", "2"}));
  EXPECT_EQ(p.samples[0].labels[1], (std::pair<std::string, std::string>{"a", "1"}));
  EXPECT_EQ(p.samples[1].labels.size(), 2u);
  EXPECT_EQ(p.samples[1].value, 4.0);
}

TEST(PrometheusTextReader, FindLabelWorksRegardlessOfOrder) {
  PrometheusTextReader r("m{z=\"last\",model_name=\"qwq\",a=\"x\"} 1\n");
  PromSample s;
  ASSERT_TRUE(r.Next(&s));
  ASSERT_NE(s.FindLabel("model_name"), nullptr);
  EXPECT_EQ(s.FindLabel("model_name")->value, "qwq");
  EXPECT_EQ(s.FindLabel("missing"), nullptr);
}

TEST(PrometheusTextReader, SumBeforeBucketsIsJustSamples) {
  ParseAll p = Parse(
      "# TYPE h histogram\n"
      "h_sum 10.5\n"
      "h_bucket{le=\"1\"} 2\n"
      "h_bucket{le=\"+Inf\"} 5\n"
      "h_count 5\n");
  ASSERT_EQ(p.samples.size(), 4u);
  EXPECT_EQ(p.samples[0].name, "h_sum");
  EXPECT_EQ(p.samples[2].labels[0].second, "+Inf");
  EXPECT_EQ(p.samples[3].value, 5.0);
}

TEST(PrometheusTextReader, ExponentAndSpecialFloats) {
  ParseAll p = Parse(
      "a 1.5e3\nb 2E-2\nc -3.25e+1\nd +Inf\ne -Inf\nf NaN\ng .5\nh +7\ni inf\nj nan\n"
      "k 1e400\nl -1e400\nm 1e-400\n");
  ASSERT_EQ(p.samples.size(), 13u);
  EXPECT_EQ(p.samples[0].value, 1500.0);
  EXPECT_DOUBLE_EQ(p.samples[1].value, 0.02);
  EXPECT_EQ(p.samples[2].value, -32.5);
  EXPECT_TRUE(std::isinf(p.samples[3].value) && p.samples[3].value > 0);
  EXPECT_TRUE(std::isinf(p.samples[4].value) && p.samples[4].value < 0);
  EXPECT_TRUE(std::isnan(p.samples[5].value));
  EXPECT_EQ(p.samples[6].value, 0.5);
  EXPECT_EQ(p.samples[7].value, 7.0);
  EXPECT_TRUE(std::isinf(p.samples[8].value));
  EXPECT_TRUE(std::isnan(p.samples[9].value));
  // Out-of-range literals saturate the way Go's ParseFloat (and so Prometheus) does.
  EXPECT_TRUE(std::isinf(p.samples[10].value) && p.samples[10].value > 0);
  EXPECT_TRUE(std::isinf(p.samples[11].value) && p.samples[11].value < 0);
  EXPECT_EQ(p.samples[12].value, 0.0);
}

TEST(PrometheusTextReader, ParsePromFloatRejectsNonNumbers) {
  double v = 42;
  EXPECT_FALSE(ParsePromFloat("", &v));
  EXPECT_FALSE(ParsePromFloat("+-1", &v));
  EXPECT_FALSE(ParsePromFloat("++1", &v));
  EXPECT_FALSE(ParsePromFloat("1.2.3", &v));
  EXPECT_FALSE(ParsePromFloat("12abc", &v));
  EXPECT_FALSE(ParsePromFloat("0x10", &v));
  EXPECT_EQ(v, 42);
  EXPECT_TRUE(ParsePromFloat("-0", &v));
  EXPECT_EQ(v, 0.0);
}

TEST(PrometheusTextReader, TypeWithoutHelpAndCommentsAndBlankLines) {
  ParseAll p = Parse(
      "\n"
      "# TYPE g gauge\n"
      "g 1\n"
      "   \n"
      "# just a comment\n"
      "#HELP-ish text without space\n"
      "\t\n"
      "g 2\n"
      "# EOF\n");
  ASSERT_EQ(p.samples.size(), 2u);
  EXPECT_EQ(p.malformed, 0u);
}

TEST(PrometheusTextReader, CreatedSamplesAreOrdinarySamples) {
  ParseAll p = Parse(
      "c_total{m=\"x\"} 5\n"
      "c_created{m=\"x\"} 1.7405010815e+09\n");
  ASSERT_EQ(p.samples.size(), 2u);
  EXPECT_EQ(p.samples[1].name, "c_created");
  EXPECT_DOUBLE_EQ(p.samples[1].value, 1.7405010815e+09);
}

TEST(PrometheusTextReader, EscapedLabelValues) {
  ParseAll p = Parse(R"(m{path="C:\\dir",quote="say \"hi\"",nl="a\nb",other="x\ty"} 1)"
                     "\n");
  ASSERT_EQ(p.samples.size(), 1u);
  const auto& l = p.samples[0].labels;
  EXPECT_EQ(l[0].second, "C:\\dir");
  EXPECT_EQ(l[1].second, "say \"hi\"");
  EXPECT_EQ(l[2].second, "a\nb");
  EXPECT_EQ(l[3].second, "x\\ty");  // unknown escapes are kept as written
}

TEST(PrometheusTextReader, LabelValuesMayContainSyntaxCharacters) {
  ParseAll p = Parse("m{a=\"} # {\",b=\"=,\"} 2\n");
  ASSERT_EQ(p.samples.size(), 1u);
  EXPECT_EQ(p.samples[0].labels[0].second, "} # {");
  EXPECT_EQ(p.samples[0].labels[1].second, "=,");
}

TEST(PrometheusTextReader, EscapedFlagAndRawView) {
  PrometheusTextReader r("m{a=\"plain\",b=\"esc\\\"aped\"} 1\n");
  PromSample s;
  ASSERT_TRUE(r.Next(&s));
  EXPECT_FALSE(s.labels[0].escaped);
  EXPECT_TRUE(s.labels[1].escaped);
  EXPECT_EQ(s.labels[1].value, "esc\\\"aped");
  EXPECT_EQ(s.labels[1].UnescapedValue(), "esc\"aped");
}

TEST(PrometheusTextReader, TimestampsAfterValues) {
  ParseAll p = Parse("a 1 1712345678901\nb{x=\"y\"} 2 -5\nc 3 +10\n");
  ASSERT_EQ(p.samples.size(), 3u);
  EXPECT_TRUE(p.samples[0].has_timestamp);
  EXPECT_EQ(p.samples[0].timestamp_ms, 1712345678901);
  EXPECT_EQ(p.samples[1].timestamp_ms, -5);
  EXPECT_EQ(p.samples[2].timestamp_ms, 10);
}

TEST(PrometheusTextReader, WindowsLineEndings) {
  ParseAll p = Parse("# TYPE a gauge\r\na{x=\"1\"} 1\r\nb 2 100\r\n\r\n");
  ASSERT_EQ(p.samples.size(), 2u);
  EXPECT_EQ(p.samples[0].labels[0].second, "1");
  EXPECT_EQ(p.samples[1].timestamp_ms, 100);
  EXPECT_EQ(p.malformed, 0u);
}

TEST(PrometheusTextReader, NoTrailingNewline) {
  ParseAll p = Parse("a 1\nb 2");
  ASSERT_EQ(p.samples.size(), 2u);
  EXPECT_EQ(p.samples[1].value, 2.0);
}

TEST(PrometheusTextReader, OpenMetricsExemplarIsIgnored) {
  ParseAll p = Parse("h_bucket{le=\"0.5\"} 3 # {trace_id=\"abc\"} 0.4 1712\n");
  ASSERT_EQ(p.samples.size(), 1u);
  EXPECT_EQ(p.samples[0].value, 3.0);
  EXPECT_FALSE(p.samples[0].has_timestamp);
}

TEST(PrometheusTextReader, QuotedUtf8Names) {
  ParseAll p = Parse("{\"my.metric\", \"label.name\"=\"v\"} 7\n{\"only.name\"} 8\n");
  ASSERT_EQ(p.samples.size(), 2u);
  EXPECT_EQ(p.samples[0].name, "my.metric");
  EXPECT_EQ(p.samples[0].labels[0].first, "label.name");
  EXPECT_EQ(p.samples[1].name, "only.name");
}

TEST(PrometheusTextReader, MalformedLinesAreSkippedAndCounted) {
  ParseAll p = Parse(
      "good 1\n"
      "no_value\n"
      "bad{a=\"1\" 2\n"
      "bad{a=1} 2\n"
      "bad{a=\"unterminated} 2\n"
      "9starts_with_digit 1\n"
      "bad value\n"
      "bad 1 notatimestamp\n"
      "bad 1 2 3\n"
      "bad{=\"x\"} 1\n"
      "{} 1\n"
      "good 2\n");
  ASSERT_EQ(p.samples.size(), 2u);
  EXPECT_EQ(p.samples[1].value, 2.0);
  EXPECT_EQ(p.malformed, 10u);
  EXPECT_EQ(p.first_error, "line 2: missing value");
}

TEST(PrometheusTextReader, GarbageNeverCrashes) {
  std::mt19937_64 rng(20240611);
  const std::string alphabet = "ab{}=\",\\ \t\n\r#+-.eE0123456789:_InfNa";
  for (int round = 0; round < 2000; ++round) {
    std::string body;
    const std::size_t len = rng() % 200;
    for (std::size_t i = 0; i < len; ++i) {
      body.push_back(rng() % 4 == 0 ? static_cast<char>(rng() % 256)
                                    : alphabet[rng() % alphabet.size()]);
    }
    PrometheusTextReader r(body);
    PromSample s;
    std::size_t samples = 0;
    while (r.Next(&s)) {
      ++samples;
      // Every view points inside the body.
      ASSERT_GE(s.name.data(), body.data());
      ASSERT_LE(s.name.data() + s.name.size(), body.data() + body.size());
      for (const PromLabel& l : s.labels) {
        ASSERT_GE(l.value.data(), body.data());
        ASSERT_LE(l.value.data() + l.value.size(), body.data() + body.size());
      }
    }
    EXPECT_LE(samples + r.malformed_lines(), r.lines());
  }
}

TEST(PrometheusTextReader, PathologicalInputStaysLinear) {
  // A megabyte of unterminated label sets and one huge line: both must be skipped quickly
  // (each byte is examined a bounded number of times).
  std::string nested(1 << 20, '{');
  std::string labels = "m{";
  for (int i = 0; i < 100000; ++i) labels += "a=\"b\",";
  labels += " 1\n";
  std::string many_lines;
  for (int i = 0; i < 100000; ++i) many_lines += "x{y=\"z\"} 1\n";
  ParseAll a = Parse(nested);
  EXPECT_EQ(a.samples.size(), 0u);
  EXPECT_EQ(a.malformed, 1u);
  ParseAll b = Parse(labels);
  EXPECT_EQ(b.samples.size(), 0u);
  ParseAll c = Parse(many_lines);
  EXPECT_EQ(c.samples.size(), 100000u);
}

}  // namespace
}  // namespace infergate
