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
// Thread-safety: plain values; views point into the scheduler and live for one decision.
#pragma once

#include <algorithm>
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

// Combines a scrape (pass has_metrics=false when there was none) with ledger counts.
// Inline: it runs for every endpoint in every decision.
inline LoadEstimate EstimateLoad(const EndpointMetrics& scraped, bool has_metrics,
                                 const LedgerCounts& c, double mean_prompt_tokens) {
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
  TimeNs metrics_age = kNever;

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
