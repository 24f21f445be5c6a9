// Request arrival times as benchmark_serving generates them.
//
// Gaps between consecutive requests are gamma-distributed with shape = burstiness and
// scale = 1 / (rate · burstiness), so the mean gap is 1/rate for every burstiness and the
// process is Poisson at burstiness 1; smaller burstiness is burstier (coefficient of
// variation 1/sqrt(burstiness)). An infinite rate sends everything at time 0. The first
// request goes at 0 and a gap is drawn after every request, in benchmark_serving's order,
// from the same numpy stream that drew the dataset.
//
// Thread-safety: pure function of its arguments and the random state.
#pragma once

#include <vector>

#include "core/status.h"
#include "loadgen/numpy_random.h"

namespace infergate::loadgen {

// Send offsets in seconds from the start, non-decreasing, one per request. Requires n >= 0;
// returns an error if rate <= 0 or burstiness <= 0 (or either is NaN).
Result<std::vector<double>> ArrivalOffsets(int n, double rate, double burstiness,
                                           NumpyRandomState& rng);

}  // namespace infergate::loadgen
