// Candidate-narrowing rules shared by several filters: "the least loaded" and LoRA
// affinity, in the forms GIE's early scheduler defined them.
//
// Thread-safety: pure functions.
#pragma once

#include <algorithm>
#include <cmath>

#include "scheduler/plugin.h"

namespace infergate {

// Keeps the candidates whose key lies in [min, min + (max − min) / n] (n = candidate
// count): "similar to the least" rather than strictly the least, which leaves the next
// filter a choice. With `integral` the band width is rounded down, as GIE's queue filter
// does with integer queue lengths. No-op on an empty list.
template <class KeyFn>
void KeepLowestBand(CandidateList& c, KeyFn key, bool integral) {
  if (c.empty()) return;
  double lo = key(*c.front()), hi = lo;
  for (const EndpointView* v : c) {
    lo = std::min(lo, key(*v));
    hi = std::max(hi, key(*v));
  }
  double width = (hi - lo) / static_cast<double>(c.size());
  if (integral) width = std::floor(width);
  const double limit = lo + width;
  std::erase_if(c, [&](const EndpointView* v) { return key(*v) > limit; });
}

// LoRA state of one endpoint for one adapter (empty adapter: kNotApplicable).
enum class AdapterState { kNotApplicable, kLoaded, kFreeSlot, kNoSlot };

// "Loaded" is running or waiting (being loaded) in vllm:lora_requests_info; a slot is
// free when fewer than max_lora adapters are loaded or loading.
inline AdapterState AdapterStateOf(const EndpointView& v, std::string_view adapter) {
  if (adapter.empty()) return AdapterState::kNotApplicable;
  const EndpointMetrics& m = *v.metrics;
  if (m.HasRunningAdapter(adapter) || m.HasWaitingAdapter(adapter)) return AdapterState::kLoaded;
  const auto loaded = m.running_lora_adapters.size() + m.waiting_lora_adapters.size();
  return static_cast<int>(loaded) < m.max_lora ? AdapterState::kFreeSlot : AdapterState::kNoSlot;
}

// GIE's soft LoRA affinity: among endpoints that have the adapter loaded and those with a
// free slot, keep the first group with probability `affinity_probability` (the second
// otherwise); keep whichever group is non-empty when only one is; leave the list alone
// when both are empty or the request names no adapter.
inline void KeepLoraSoftAffinity(CandidateList& c, std::string_view adapter,
                                 double affinity_probability, Rng& rng) {
  if (adapter.empty()) return;
  bool any_loaded = false, any_free = false;
  for (const EndpointView* v : c) {
    AdapterState s = AdapterStateOf(*v, adapter);
    any_loaded |= s == AdapterState::kLoaded;
    any_free |= s == AdapterState::kFreeSlot;
  }
  if (!any_loaded && !any_free) return;
  AdapterState keep = AdapterState::kLoaded;
  if (!any_loaded || (any_free && rng.NextDouble() >= affinity_probability)) {
    keep = AdapterState::kFreeSlot;
  }
  std::erase_if(c, [&](const EndpointView* v) { return AdapterStateOf(*v, adapter) != keep; });
}

}  // namespace infergate
