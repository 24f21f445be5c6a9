// NumpyRandomState: the exact random stream of numpy's legacy `np.random` (RandomState).
//
// benchmark_serving seeds numpy's global RandomState with --seed and draws, in order, the
// random dataset's shared prefix token ids, input lengths, output lengths and offsets,
// then the gamma-distributed arrival gaps. Reproducing numpy's legacy algorithms bit for
// bit (MT19937 seeded by init_genrand, masked rejection sampling for randint, the 53-bit
// double, polar Box-Muller with a cached second value, Marsaglia-Tsang gamma) makes our
// lengths and arrival times identical to benchmark_serving's for the same seed and
// vocabulary size. With seed 0 and Qwen2's vocabulary size (151643) the seed's random
// workload draws exactly its 1,014,085 input tokens.
//
// Thread-safety: not synchronised; one instance per thread.
#pragma once

#include <cstdint>
#include <random>

namespace infergate::loadgen {

class NumpyRandomState {
 public:
  // Same as np.random.seed(seed).
  explicit NumpyRandomState(std::uint32_t seed) : mt_(seed) {}

  // np.random.randint(low, high): an integer in [low, high). Requires low < high and
  // high - low <= 2^32.
  std::int64_t RandInt(std::int64_t low, std::int64_t high);
  // np.random.random_sample(): a double in [0, 1) with 53 random bits.
  double RandomSample();
  // np.random.standard_exponential().
  double StandardExponential();
  // np.random.standard_normal().
  double StandardNormal();
  // np.random.gamma(shape, scale). Requires shape >= 0, scale >= 0.
  double Gamma(double shape, double scale);

 private:
  double StandardGamma(double shape);

  std::mt19937 mt_;
  bool has_gauss_ = false;
  double gauss_ = 0.0;
};

}  // namespace infergate::loadgen
