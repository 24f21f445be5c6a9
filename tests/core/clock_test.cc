#include "core/clock.h"

#include <gtest/gtest.h>

namespace infergate {
namespace {

TEST(Clock, ConversionsRoundToTheNearestNanosecond) {
  EXPECT_EQ(FromMillis(22.8), 22'800'000);
  EXPECT_EQ(FromSeconds(0.1), 100'000'000);
  EXPECT_EQ(FromSeconds(-0.1), -100'000'000);
  EXPECT_DOUBLE_EQ(ToSeconds(FromSeconds(1.25)), 1.25);
}

TEST(Clock, ManualClockMovesOnlyWhenTold) {
  ManualClock c(5);
  EXPECT_EQ(c.Now(), 5);
  c.Advance(10);
  EXPECT_EQ(c.Now(), 15);
  c.Set(100);
  EXPECT_EQ(c.Now(), 100);
}

}  // namespace
}  // namespace infergate
