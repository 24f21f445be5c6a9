#include "sim/server/sim_clock.h"

#include <gtest/gtest.h>

namespace infergate::sim {
namespace {

TEST(SimServerClock, ScaleOneIsTheWallClockFromTheOrigin) {
  SimClock c(1000, 1.0);
  EXPECT_EQ(c.ToSim(500), 0);
  EXPECT_EQ(c.ToSim(1000), 0);
  EXPECT_EQ(c.ToSim(1234), 234);
  EXPECT_EQ(c.ToWall(234), 1234);
}

TEST(SimServerClock, ToWallIsTheEarliestWallTimeReachingTheSimulatedTime) {
  for (double scale : {0.3, 2.0, 7.0, 1000.0, 1.0 / 3.0}) {
    SimClock c(5'000'000'000, scale);
    for (TimeNs sim :
         {TimeNs{0}, TimeNs{1}, TimeNs{999}, TimeNs{20'000'000}, TimeNs{123'456'789'013}}) {
      const TimeNs w = c.ToWall(sim);
      EXPECT_GE(c.ToSim(w), sim) << scale << " " << sim;
      if (w > c.wall_origin()) {
        EXPECT_LT(c.ToSim(w - 1), sim) << scale << " " << sim;
      }
    }
    // 10 wall ms are 10·scale simulated ms.
    EXPECT_NEAR(static_cast<double>(c.ToSim(c.wall_origin() + 10'000'000)), 10'000'000 * scale,
                1.0);
  }
}

}  // namespace
}  // namespace infergate::sim
