// Endpoints as the scheduler's plugins see them.
//
// EndpointSpec is what the caller declares about an endpoint (from Pods / Services);
// EndpointView is the per-decision snapshot a plugin reads: scraped values with their age,
// the ledger's counts, and the estimates that combine the two. The estimates are computed
// once per decision by EstimateLoad; every plugin that wants "load now" reads them rather
// than redoing the arithmetic.
//
// Estimates, with W, R, K the scraped waiting, running and KV fraction, C the KV capacity
// in tokens (0 when unknown) and the ledger's counts relative to that scrape
// (scheduler/token_ledger.h):
//   waiting_est     = max(0, W − left_waiting) + new_awaiting
//   running_est     = max(0, R − left_running) + joined_running + new_decoding
//   kv_tokens_est   = max(0, K·C − freed_tokens) + joined_running_tokens + new_decoding_tokens
//                     (KV held now; −1 when C is unknown)
//   kv_usage_est    = (kv_tokens_est + new_awaiting_tokens) / C, or K when C is unknown
//                     (KV held now plus the prompts sent since the scrape)
//   foreign_waiting = max(0, W − left_waiting − (awaiting − new_awaiting)): requests the
//                     scrape saw waiting that this gateway did not send (other gateways,
//                     preempted requests back in the queue)
//   prefill_backlog_tokens = awaiting_tokens + foreign_waiting · mean prompt tokens
//
// Late metrics (MetricsTrust). The ledger is exact about this gateway's own requests at
// any age; what ages is the rest of the scrape: other gateways' requests, and what the
// server did with ours that the ledger cannot see. Each estimate is therefore a blend
//   estimate = trust · (scrape + ledger, as above) + (1 − trust) · (ledger alone)
// with the ledger alone being awaiting (waiting), decoding (running), decoding_tokens
// (KV held) and (decoding_tokens + awaiting_tokens) / C (KV use; trust · K when C is
// unknown), and foreign_waiting scaled by trust. trust is 1 while the metrics are within
// the staleness bound S, then halves every S of further age:
//   trust(age) = 1 for age <= S, 2^(−(age − S) / S) beyond (S = 2 s: 0.5 at 4 s, 0.25 at 6 s)
// so an endpoint whose page is late stays a candidate, judged more and more by what this
// gateway sent it, instead of being dropped. With trust 1 the formulas above are exact.
//
// Thread-safety: plain values; views point into the scheduler and live for one decision.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "datalayer/engine_metrics.h"
#include "scheduler/kv_outlook.h"
#include "scheduler/token_ledger.h"

namespace infergate {

struct EndpointSpec {
  std::string id;  // "ip:port", the address requests go to
  std::map<std::string, std::string> labels;
  bool ready = true;
};

struct LoadEstimate {
  double waiting_est = 0;
  double running_est = 0;
  double kv_usage_est = 0;
  std::int64_t kv_tokens_est = -1;
  double foreign_waiting = 0;
  std::int64_t prefill_backlog_tokens = 0;
};

// Rounds to the nearest integer, halves away from zero, saturating at ±2^62 (NaN gives
// 0): llround without the library call and without undefined behaviour.
inline std::int64_t RoundToInt(double x) {
  constexpr double kLimit = 4.611686018427387904e18;  // 2^62
  if (!(x > -kLimit)) return x != x ? 0 : -static_cast<std::int64_t>(kLimit);
  if (!(x < kLimit)) return static_cast<std::int64_t>(kLimit);
  return static_cast<std::int64_t>(x < 0 ? x - 0.5 : x + 0.5);
}

// How far to trust a scrape of age `age` (see the file comment): 1 up to `staleness`, then
// halving every `staleness`; 0 without metrics (age kNever).
inline double MetricsTrust(TimeNs age, TimeNs staleness) {
  if (age == kNever || staleness <= 0) return 0.0;
  if (age <= staleness) return 1.0;
  const double halvings = static_cast<double>(age - staleness) / static_cast<double>(staleness);
  return halvings > 60 ? 0.0 : std::exp2(-halvings);
}

// Combines a scrape (pass has_metrics=false when there was none) with ledger counts,
// trusting the scrape by `trust` in [0, 1] (MetricsTrust; without metrics it is ignored).
// Inline: it runs for every endpoint in every decision.
inline LoadEstimate EstimateLoad(const EndpointMetrics& scraped, bool has_metrics,
                                 const LedgerCounts& c, double mean_prompt_tokens,
                                 double trust = 1.0) {
  const double w = has_metrics ? scraped.waiting_requests : 0.0;
  const double r = has_metrics ? scraped.running_requests : 0.0;
  const double k = has_metrics ? scraped.kv_usage : 0.0;
  const std::int64_t cap = has_metrics ? scraped.kv_capacity_tokens : 0;

  LoadEstimate e;
  e.waiting_est = std::max(0.0, w - c.left_waiting) + c.new_awaiting;
  e.running_est = std::max(0.0, r - c.left_running) + c.joined_running + c.new_decoding;
  if (cap > 0) {
    const double held =
        std::max(0.0, k * static_cast<double>(cap) - static_cast<double>(c.freed_tokens)) +
        static_cast<double>(c.joined_running_tokens + c.new_decoding_tokens);
    e.kv_tokens_est = RoundToInt(held);
    e.kv_usage_est = (held + static_cast<double>(c.new_awaiting_tokens)) / static_cast<double>(cap);
  } else {
    e.kv_tokens_est = -1;
    e.kv_usage_est = k;
  }
  const double ours_waiting_at_scrape = c.left_waiting + (c.awaiting - c.new_awaiting);
  e.foreign_waiting = std::max(0.0, w - ours_waiting_at_scrape);
  if (has_metrics && trust < 1.0) {
    const double t = std::max(0.0, trust);
    e.waiting_est = t * e.waiting_est + (1 - t) * c.awaiting;
    e.running_est = t * e.running_est + (1 - t) * c.decoding;
    e.foreign_waiting *= t;
    if (cap > 0) {
      const double held = t * static_cast<double>(e.kv_tokens_est) +
                          (1 - t) * static_cast<double>(c.decoding_tokens);
      e.kv_tokens_est = RoundToInt(held);
      e.kv_usage_est = t * e.kv_usage_est +
                       (1 - t) * static_cast<double>(c.decoding_tokens + c.awaiting_tokens) /
                           static_cast<double>(cap);
    } else {
      e.kv_usage_est = t * k;
    }
  }
  e.prefill_backlog_tokens =
      c.awaiting_tokens + RoundToInt(e.foreign_waiting * std::max(0.0, mean_prompt_tokens));
  return e;
}

struct EndpointView {
  std::uint32_t slot = 0;
  std::string_view id;
  const EndpointMetrics* metrics = nullptr;  // never null; defaults when no scrape yet
  const LedgerCounts* ledger = nullptr;      // never null
  bool has_metrics = false;
  bool scrape_ok = false;  // the latest scrape succeeded
  bool fresh = false;      // scrape_ok and age within the pool's staleness bound
  // Contacted and not refused since (datalayer/scrape_state.h): a late page leaves it true.
  bool reachable = false;
  TimeNs metrics_age = kNever;
  double trust = 0;  // MetricsTrust(metrics_age, the pool's staleness bound)
  // Seconds the endpoint has been prefilling the oldest request the gateway awaits a first
  // token from (now − ledger->prefill_since; 0 while none awaits).
  double prefill_elapsed_s = 0;

  // Scraped values (0 without metrics).
  double waiting = 0;
  double running = 0;
  double kv_usage = 0;
  std::int64_t kv_capacity_tokens = 0;

  LoadEstimate load;

  // Leading prompt blocks this endpoint holds for the current request (prefix index).
  std::uint32_t prefix_blocks = 0;
  // How full the prefix index's LRU for this endpoint is (entries / capacity, 0..1): a
  // proxy for how much of its cache a new prefix would evict. Set with the prefix match.
  double prefix_occupancy = 0;
  // Whether the engine reuses cached prefixes (true unless it says prefix caching is off).
  bool prefix_caching = true;
  // The KV cache projected forward from the ledger (scheduler/kv_outlook.h); set when the
  // profile needs it (kNeedsKvOutlook) and the KV capacity is known, else nullptr.
  const KvOutlook* kv_outlook = nullptr;
};

}  // namespace infergate
