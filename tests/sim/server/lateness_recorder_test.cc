#include "sim/server/lateness_recorder.h"

#include <gtest/gtest.h>

namespace infergate::sim {
namespace {

TEST(SimServerLateness, ExactBelowAMillisecond) {
  LatenessRecorder r;
  for (int us = 1; us <= 100; ++us) r.Record(us * 1000 + 999);  // 1..100 µs (+0.999)
  r.Record(-5);                                                 // counts as 0
  EXPECT_EQ(r.count(), 101u);
  EXPECT_EQ(r.Percentile(50), 50);
  EXPECT_EQ(r.Percentile(99), 99);
  EXPECT_EQ(r.Percentile(100), 100);
  const TokenLateness s = r.Summary();
  EXPECT_EQ(s.tokens, 101u);
  EXPECT_DOUBLE_EQ(s.max_us, 100.999);
}

TEST(SimServerLateness, WithinTwoPercentAboveAMillisecond) {
  for (double ms : {1.5, 7.0, 33.3, 1234.0, 5e6}) {
    LatenessRecorder r;
    r.Record(FromMillis(ms));
    const double p = r.Percentile(50);
    EXPECT_LE(p, ms * 1000) << ms;
    EXPECT_GE(p, ms * 1000 * 0.984) << ms;
  }
}

TEST(SimServerLateness, MergeAddsCounts) {
  LatenessRecorder a, b;
  for (int i = 0; i < 90; ++i) a.Record(10'000);   // 10 µs
  for (int i = 0; i < 10; ++i) b.Record(500'000);  // 500 µs
  a.Merge(b);
  EXPECT_EQ(a.count(), 100u);
  EXPECT_EQ(a.Percentile(90), 10);
  EXPECT_EQ(a.Percentile(91), 500);
  EXPECT_DOUBLE_EQ(a.Summary().max_us, 500);
  EXPECT_EQ(LatenessRecorder().Summary().p99_us, 0);
}

}  // namespace
}  // namespace infergate::sim
