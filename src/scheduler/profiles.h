// Named scheduling profiles: complete configurations selectable by one word, so the same
// binary can compare its own policy with the baselines it competes with.
//
//   round-robin  every ready endpoint in turn; ignores metrics (the plain gateway)
//   gie-v0       GIE's first scheduler (v0.1-v0.3): a decision tree over queue, KV and
//                LoRA with random choice among the survivors; sheds non-Critical
//                requests when no endpoint has queue <= 5 and KV <= 0.8
//   gie-default  GIE v1's default profile: queue-scorer x2, kv-cache-utilization-scorer
//                x2, prefix-cache-scorer x3, max-score-picker; scraped metrics only
//   gie-ledger   gie-default with queue and KV corrected by the ledger (what GIE would do
//                with our ledger: shows how much of the gain is the ledger alone)
//   infergate    our policy: session affinity, KV-headroom filter, predicted-TTFT cost
//                model (scheduler/ttft_model.h), max-score picker
//
// Each comes as an EndpointPickerConfig (the same structure a YAML config produces) plus
// the admission settings that go with it (shedding, late binding).
//
// Thread-safety: pure functions.
#pragma once

#include <string_view>
#include <vector>

#include "core/status.h"
#include "scheduler/picker_config.h"

namespace infergate {

struct NamedProfile {
  std::string_view name;
  std::string_view summary;
  EndpointPickerConfig config;
  // Shed Sheddable requests (429) when the saturation detector says the pool is full.
  bool shed_when_saturated = true;
  // Size each endpoint's prefix-index LRU from its scraped KV capacity.
  bool prefix_lru_from_kv_capacity = false;
  // Late binding: hold requests in the gateway queue while the scheduler says to
  // (AdmissionController), rather than pick each at once. The infergate policy does; the
  // GIE profiles model GIE as deployed, without a queue.
  bool late_binding = false;
};

// The profile called `name`, or an error listing the known names.
Result<NamedProfile> FindNamedProfile(std::string_view name);
std::vector<std::string_view> NamedProfileNames();

}  // namespace infergate
