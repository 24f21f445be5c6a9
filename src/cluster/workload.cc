#include "cluster/workload.h"

#include <array>
#include <cmath>

#include "sim/engine/output_model.h"

namespace infergate::cluster {
namespace {

Rng ChainSeeded(std::uint64_t seed) {
  std::array<std::uint64_t, 4> state;
  for (auto& s : state) {
    seed = sim::Mix64(seed);
    s = seed;
  }
  return Rng::FromState(state);
}

}  // namespace

WorkloadRng::WorkloadRng(std::uint64_t seed) : rng_(ChainSeeded(seed)) {}

std::int64_t WorkloadRng::UniformInt(std::int64_t lo, std::int64_t hi) {
  const std::uint64_t span = static_cast<std::uint64_t>(hi - lo) + 1;
  if (span == 0) return static_cast<std::int64_t>(Next());  // the whole 64-bit range
  // Rejection sampling keeps the draw exactly uniform.
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % span;
  std::uint64_t x;
  do {
    x = Next();
  } while (x >= limit);
  return lo + static_cast<std::int64_t>(x % span);
}

double WorkloadRng::Normal() {
  // Marsaglia's polar method (one of the pair is dropped to keep the state simple).
  double u, v, s;
  do {
    u = 2 * Uniform() - 1;
    v = 2 * Uniform() - 1;
    s = u * u + v * v;
  } while (s >= 1 || s == 0);
  return u * std::sqrt(-2 * std::log(s) / s);
}

double WorkloadRng::Gamma(double shape, double scale) {
  // Marsaglia and Tsang (2000); shapes below 1 are boosted by U^(1/shape).
  if (shape < 1) {
    const double u = Uniform();
    return Gamma(shape + 1, scale) * std::pow(u > 0 ? u : 0x1.0p-53, 1 / shape);
  }
  const double d = shape - 1.0 / 3;
  const double c = 1 / std::sqrt(9 * d);
  while (true) {
    double x, v;
    do {
      x = Normal();
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const double u = Uniform();
    if (u < 1 - 0.0331 * x * x * x * x) return d * v * scale;
    if (std::log(u) < 0.5 * x * x + d * (1 - v + std::log(v))) return d * v * scale;
  }
}

Status ValidateArrivalProcess(const ArrivalProcess& p) {
  if (!(p.rate > 0)) return Error{"request rate must be > 0 (inf for all at once)"};
  if (!(p.burstiness > 0) || std::isinf(p.burstiness)) {
    return Error{"burstiness must be a finite number > 0"};
  }
  return Ok();
}

std::vector<TimeNs> ReadyTimes(const ArrivalProcess& process,
                               std::span<const WorkloadRequest> workload, std::uint64_t seed) {
  std::vector<TimeNs> out;
  out.reserve(workload.size());
  WorkloadRng rng(seed ^ 0x617272697661ULL);
  double t = 0;
  bool first = true;
  for (const WorkloadRequest& r : workload) {
    if (r.arrival) {
      out.push_back(*r.arrival);
      continue;
    }
    if (!first && !std::isinf(process.rate)) {
      const double theta = 1.0 / (process.rate * process.burstiness);
      t += rng.Gamma(process.burstiness, theta);
    }
    first = false;
    out.push_back(static_cast<TimeNs>(std::llround(t * 1e9)));
  }
  return out;
}

}  // namespace infergate::cluster
