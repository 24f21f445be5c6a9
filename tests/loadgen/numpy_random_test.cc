#include "loadgen/numpy_random.h"

#include <gtest/gtest.h>

namespace infergate::loadgen {
namespace {

// Expected values come from numpy 1.24 (python3-numpy), e.g.
//   np.random.seed(0); np.random.randint(0, 10, size=5)  ->  [5, 0, 3, 3, 7]

TEST(BenchNumpyRandomTest, RandIntMatchesNumpy) {
  NumpyRandomState a(0);
  const int expected_a[] = {5, 0, 3, 3, 7};
  for (int v : expected_a) EXPECT_EQ(a.RandInt(0, 10), v);

  // np.random.seed(42); np.random.randint(800, 4001, size=6)
  NumpyRandomState b(42);
  const int expected_b[] = {3974, 1660, 2094, 1930, 1895, 3892};
  for (int v : expected_b) EXPECT_EQ(b.RandInt(800, 4001), v);
}

TEST(BenchNumpyRandomTest, RandIntWithSingleValueDrawsNothing) {
  NumpyRandomState a(0), b(0);
  EXPECT_EQ(a.RandInt(17, 18), 17);
  EXPECT_EQ(a.RandInt(0, 10), b.RandInt(0, 10));  // the stream did not move
}

TEST(BenchNumpyRandomTest, RandomSampleAndNormalMatchNumpy) {
  // np.random.seed(3); np.random.random_sample(3)
  NumpyRandomState a(3);
  EXPECT_NEAR(a.RandomSample(), 0.5507979, 1e-7);
  EXPECT_NEAR(a.RandomSample(), 0.70814782, 1e-8);
  EXPECT_NEAR(a.RandomSample(), 0.29090474, 1e-8);
  // np.random.seed(3); np.random.standard_normal(3)
  NumpyRandomState b(3);
  EXPECT_NEAR(b.StandardNormal(), 1.78862847, 1e-8);
  EXPECT_NEAR(b.StandardNormal(), 0.43650985, 1e-8);
  EXPECT_NEAR(b.StandardNormal(), 0.09649747, 1e-8);
}

TEST(BenchNumpyRandomTest, GammaMatchesNumpyForEveryShapeBranch) {
  // np.random.seed(7); np.random.gamma(0.5, 2.0, size=4)   (shape < 1)
  NumpyRandomState a(7);
  for (double v : {0.01164591, 0.38440531, 0.14411897, 1.04240011}) {
    EXPECT_NEAR(a.Gamma(0.5, 2.0), v, 1e-8);
  }
  // np.random.seed(7); np.random.gamma(2.5, 0.1, size=4)   (shape > 1)
  NumpyRandomState b(7);
  for (double v : {0.15506461, 0.12005149, 0.21697085, 0.40363463}) {
    EXPECT_NEAR(b.Gamma(2.5, 0.1), v, 1e-8);
  }
  // np.random.seed(7); np.random.gamma(1.0, 0.25, size=3)  (exponential)
  NumpyRandomState c(7);
  for (double v : {0.01984423, 0.37843967, 0.14424547}) EXPECT_NEAR(c.Gamma(1.0, 0.25), v, 1e-8);
}

}  // namespace
}  // namespace infergate::loadgen
