#include "loadgen/numpy_random.h"

#include <cmath>

namespace infergate::loadgen {

std::int64_t NumpyRandomState::RandInt(std::int64_t low, std::int64_t high) {
  // numpy's legacy randint: range rng = high - 1 - low (inclusive), mask = the smallest
  // 2^k - 1 >= rng, draw 32-bit words until (word & mask) <= rng.
  const std::uint64_t rng = static_cast<std::uint64_t>(high - 1 - low);
  if (rng == 0) return low;
  if (rng == 0xFFFFFFFFULL) return low + static_cast<std::int64_t>(mt_());
  std::uint32_t mask = static_cast<std::uint32_t>(rng);
  mask |= mask >> 1;
  mask |= mask >> 2;
  mask |= mask >> 4;
  mask |= mask >> 8;
  mask |= mask >> 16;
  std::uint32_t v;
  do {
    v = static_cast<std::uint32_t>(mt_()) & mask;
  } while (v > rng);
  return low + static_cast<std::int64_t>(v);
}

double NumpyRandomState::RandomSample() {
  const std::uint32_t a = static_cast<std::uint32_t>(mt_()) >> 5;
  const std::uint32_t b = static_cast<std::uint32_t>(mt_()) >> 6;
  return (a * 67108864.0 + b) / 9007199254740992.0;
}

double NumpyRandomState::StandardExponential() { return -std::log(1.0 - RandomSample()); }

double NumpyRandomState::StandardNormal() {
  if (has_gauss_) {
    has_gauss_ = false;
    return gauss_;
  }
  double x1, x2, r2;
  do {
    x1 = 2.0 * RandomSample() - 1.0;
    x2 = 2.0 * RandomSample() - 1.0;
    r2 = x1 * x1 + x2 * x2;
  } while (r2 >= 1.0 || r2 == 0.0);
  const double f = std::sqrt(-2.0 * std::log(r2) / r2);
  gauss_ = f * x1;
  has_gauss_ = true;
  return f * x2;
}

double NumpyRandomState::StandardGamma(double shape) {
  if (shape == 1.0) return StandardExponential();
  if (shape == 0.0) return 0.0;
  if (shape < 1.0) {
    for (;;) {
      const double u = RandomSample();
      const double v = StandardExponential();
      if (u <= 1.0 - shape) {
        const double x = std::pow(u, 1.0 / shape);
        if (x <= v) return x;
      } else {
        const double y = -std::log((1.0 - u) / shape);
        const double x = std::pow(1.0 - shape + shape * y, 1.0 / shape);
        if (x <= v + y) return x;
      }
    }
  }
  const double b = shape - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * b);
  for (;;) {
    double x, v;
    do {
      x = StandardNormal();
      v = 1.0 + c * x;
    } while (v <= 0.0);
    v = v * v * v;
    const double u = RandomSample();
    if (u < 1.0 - 0.0331 * (x * x) * (x * x)) return b * v;
    if (std::log(u) < 0.5 * x * x + b * (1.0 - v + std::log(v))) return b * v;
  }
}

double NumpyRandomState::Gamma(double shape, double scale) { return scale * StandardGamma(shape); }

}  // namespace infergate::loadgen
