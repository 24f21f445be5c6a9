#include "loadgen/arrivals.h"

#include <fmt/format.h>

#include <cmath>

namespace infergate::loadgen {

Result<std::vector<double>> ArrivalOffsets(int n, double rate, double burstiness,
                                           NumpyRandomState& rng) {
  if (!(rate > 0)) return Error{fmt::format("--request-rate must be > 0 (got {})", rate)};
  if (!(burstiness > 0) || std::isinf(burstiness)) {
    return Error{fmt::format("--burstiness must be a positive number (got {})", burstiness)};
  }
  std::vector<double> out(static_cast<std::size_t>(std::max(n, 0)), 0.0);
  if (std::isinf(rate)) return out;
  const double theta = 1.0 / (rate * burstiness);
  double t = 0;
  for (auto& v : out) {
    v = t;
    t += rng.Gamma(burstiness, theta);
  }
  return out;
}

}  // namespace infergate::loadgen
