#include "scheduler/kv_outlook.h"

#include <algorithm>
#include <cstring>

namespace infergate {

void KvOutlook::Finalize() {
  std::sort(inflight.begin(), inflight.end(),
            [](const Inflight& a, const Inflight& b) { return a.finish_s < b.finish_s; });
  held = other;
  for (const Inflight& r : inflight) held += r.tokens;
}

namespace {

using V4d = double __attribute__((vector_size(32)));
using V4i = std::int64_t __attribute__((vector_size(32)));

}  // namespace

// target_clones dispatches through an ifunc resolver, which the dynamic linker runs while
// it relocates the executable, before ThreadSanitizer's runtime is up: the instrumented
// resolver crashed every TSan binary at start-up. TSan builds take the default version.
#if defined(__SANITIZE_THREAD__)
#define IG_AVX2_CLONES
#else
#define IG_AVX2_CLONES [[gnu::target_clones("avx2", "default")]]
#endif

// Three divisions per request are most of a projection's cost. The arithmetic is
// element-wise and the same operations as one request at a time (IEEE division rounds the
// same in any vector width), four requests per step, so the results are bit-identical to
// the scalar form while the divider works on vectors (AVX2 where the CPU has it).
IG_AVX2_CLONES void ProjectDecoding(std::size_t n, const TimeNs* finish_at,
                                    const TimeNs* first_token, const double* output, TimeNs now,
                                    double tpot, double* finish_s, double* generated) {
  const V4d zero = {0, 0, 0, 0};
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    V4i f, t;
    V4d out;
    std::memcpy(&f, finish_at + i, sizeof f);
    std::memcpy(&t, first_token + i, sizeof t);
    std::memcpy(&out, output + i, sizeof out);
    // ToSeconds: the integer difference, converted, over 1e9; std::max(0.0, x) is
    // (0 < x ? x : 0) and std::min(a, b) is (b < a ? b : a), NaN and signed zeros alike.
    const V4d until = __builtin_convertvector(f - now, V4d) / 1e9;
    const V4d since = __builtin_convertvector(now - t, V4d) / 1e9;
    const V4d gen = (zero < since ? since : zero) / tpot;
    const V4d fin = zero < until ? until : zero;
    const V4d g = gen < out ? gen : out;
    std::memcpy(finish_s + i, &fin, sizeof fin);
    std::memcpy(generated + i, &g, sizeof g);
  }
  for (; i < n; ++i) {
    finish_s[i] = std::max(0.0, ToSeconds(finish_at[i] - now));
    generated[i] = std::min(output[i], std::max(0.0, ToSeconds(now - first_token[i])) / tpot);
  }
}

}  // namespace infergate
