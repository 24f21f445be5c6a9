#include "scheduler/kv_outlook.h"

#include <algorithm>

namespace infergate {
namespace {

constexpr double kNeverSeconds = 3600;

}  // namespace

void KvOutlook::Finalize() {
  std::sort(inflight.begin(), inflight.end(),
            [](const Inflight& a, const Inflight& b) { return a.finish_s < b.finish_s; });
}

double KvOutlook::HeldNow() const {
  double h = other;
  for (const Inflight& r : inflight) h += r.tokens;
  return h;
}

double KvOutlook::SecondsUntilFree(double need) const {
  if (capacity - HeldNow() >= need) return 0;
  // H(t) only drops when a request finishes; just after the k-th finish (sorted), the
  // requests k+1.. remain and have grown by t/τ each.
  const double rate = tpot_s > 0 ? 1.0 / tpot_s : 0.0;
  double remaining_tokens = HeldNow() - other;
  std::size_t alive = inflight.size();
  for (const Inflight& r : inflight) {
    remaining_tokens -= r.tokens;
    --alive;
    const double held = other + remaining_tokens + static_cast<double>(alive) * r.finish_s * rate;
    if (capacity - held >= need) return r.finish_s;
  }
  return kNeverSeconds;
}

double KvOutlook::PeakDemand(double prompt, double output) const {
  const double rate = tpot_s > 0 ? 1.0 / tpot_s : 0.0;
  const double end = output * tpot_s;
  // D(t) rises linearly between finishes and drops at each; its maximum is just before a
  // finish (or at the new request's own end).
  double alive_tokens = HeldNow() - other;
  double alive = static_cast<double>(inflight.size());
  double peak = other + alive_tokens + prompt;
  for (const Inflight& r : inflight) {
    const double t = std::min(r.finish_s, end);
    peak = std::max(peak, other + alive_tokens + alive * t * rate + prompt + t * rate);
    if (r.finish_s >= end) return peak;
    alive_tokens -= r.tokens;
    alive -= 1;
  }
  return std::max(peak, other + alive_tokens + alive * end * rate + prompt + end * rate);
}

}  // namespace infergate
