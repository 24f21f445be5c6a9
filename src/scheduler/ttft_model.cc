#include "scheduler/ttft_model.h"

#include <algorithm>
#include <cmath>

namespace infergate {

PrefillRate EffectivePrefillRate(const TtftModelParams& p, const PrefillTiming* learned) {
  if (learned != nullptr && learned->samples >= p.learn_after && learned->per_token_s > 0) {
    return PrefillRate{learned->base_s, learned->per_token_s};
  }
  return PrefillRate{p.request_overhead_s, 1.0 / std::max(1.0, p.prefill_tokens_per_s)};
}

TtftPrediction PredictTtft(const TtftModelParams& p, const EndpointView& e, const RequestShape& r,
                           const PrefillTiming* learned) {
  // Every field of the result is computed into a local and the result built once at the
  // end: zeroing it first and filling it in costs as much as the arithmetic (this runs for
  // every candidate of every decision).
  const LoadEstimate& load = e.load;
  const double running = std::max(0.0, load.running_est);
  const double stretch = 1.0 + std::max(0.0, p.decode_interference) * running;
  const PrefillRate rate = EffectivePrefillRate(p, learned);
  const double base = rate.base_s;
  const double per_token = rate.per_token_s * stretch;
  const auto prefill_time = [&](double tokens) { return tokens * per_token + base; };

  const std::int64_t prompt = std::max<std::int64_t>(r.prompt_tokens, 0);
  std::int64_t cached_tokens = 0;
  if (e.prefix_caching && prompt > 1) {
    const double matched =
        static_cast<double>(e.prefix_blocks) * static_cast<double>(r.block_tokens);
    const double credit = std::clamp(p.prefix_credit, 0.0, 1.0) * matched;
    cached_tokens = std::min<std::int64_t>(RoundToInt(credit), prompt - 1);
  }
  const double uncached = static_cast<double>(prompt - cached_tokens);

  // Our awaiting prompts count their uncached parts; waiting requests we did not send
  // (other gateways', or our own preempted ones back in the queue) count with
  // foreign_waiting_weight at the mean prompt. With virtual engines the request queues in
  // the one it lands in, behind that one's prompts and an even share of the foreign ones:
  // each has its own scheduler, and their steps overlap in the pipeline.
  const KvOutlook* ve =
      e.kv_outlook != nullptr && e.kv_outlook->virtual_engines > 1 ? e.kv_outlook : nullptr;
  const double share = ve != nullptr ? 1.0 / ve->virtual_engines : 1.0;
  const double ours =
      ve != nullptr
          ? ve->awaiting_tokens
          : static_cast<double>(std::max<std::int64_t>(e.ledger->awaiting_uncached_tokens, 0));
  const double foreign =
      std::max(0.0, static_cast<double>(std::max<std::int64_t>(load.prefill_backlog_tokens, 0)) -
                        static_cast<double>(std::max<std::int64_t>(e.ledger->awaiting_tokens, 0)));
  const double fw = std::max(0.0, p.foreign_waiting_weight) * share;
  const double backlog = ours + fw * foreign;
  const double queued_requests =
      (ve != nullptr ? ve->awaiting : e.ledger->awaiting) + fw * load.foreign_waiting;
  // Each queued request adds its tokens and a scheduling overhead; the learned base (which
  // also holds the wait for the engine's current step and the network) is paid once.
  // The endpoint has been working on the oldest of our awaiting prompts since its dispatch
  // or the previous first token there: that part of its prefill is done (at most all of
  // it; with virtual engines the queue is one virtual engine's and the credit is left out).
  const double head_s =
      static_cast<double>(std::max<std::int64_t>(e.ledger->prefill_head_tokens, 0)) * per_token;
  const double progress_s =
      ve == nullptr && e.ledger->awaiting > 0
          ? std::min(head_s, std::clamp(p.prefill_progress, 0.0, 1.0) * e.prefill_elapsed_s)
          : 0.0;
  const double queue_s = backlog * per_token - progress_s + queued_requests * p.request_overhead_s;
  const double prefill_s = prefill_time(uncached);
  const double tpot_s = p.decode_step_s + p.decode_step_per_seq_s * (running + 1.0);

  double kv_wait_s = 0;
  double preempt_s = 0;
  double pressure_s = 0;
  double balance_s = 0;
  std::int64_t kv_demand_tokens = -1;
  std::int64_t kv_overflow_tokens = 0;
  bool kv_fits = true;
  if (e.kv_outlook != nullptr && e.kv_outlook->capacity > 0) {
    const KvOutlook& o = *e.kv_outlook;
    const double margin = (1.0 - std::clamp(p.kv_admit_fraction, 0.0, 1.0)) * o.capacity;
    kv_wait_s = o.SecondsUntilFree(uncached + margin);
    const double peak = o.PeakDemand(
        uncached, static_cast<double>(std::max<std::int64_t>(r.expected_output_tokens, 0)));
    const double overflow = std::max(0.0, peak - p.kv_peak_fraction * o.capacity);
    kv_demand_tokens = RoundToInt(peak);
    kv_overflow_tokens = RoundToInt(overflow);
    kv_fits = kv_wait_s <= 0.0;
    preempt_s = p.kv_overflow_penalty * overflow * per_token;
    const double fill = peak / o.capacity;
    pressure_s = p.kv_pressure_s * fill;
    // A short ramp rather than a step, so the gate does not flip on scrape noise; above it
    // every endpoint counts its sequences the same.
    const double gate = std::clamp((fill - p.kv_balance_from) / 0.1, 0.0, 1.0);
    const double sequences =
        ve != nullptr ? ve->sequences : running + std::max(0.0, load.waiting_est);
    balance_s = p.inflight_weight * sequences * prefill_time(uncached) * gate;
  } else if (load.kv_tokens_est >= 0 && e.kv_capacity_tokens > 0) {
    const double growth = tpot_s > 0 ? running * (queue_s + prefill_s) / tpot_s : 0;
    const double demand = static_cast<double>(load.kv_tokens_est) + backlog + uncached + growth;
    const double limit = p.kv_admit_fraction * static_cast<double>(e.kv_capacity_tokens);
    const double overflow = std::max(0.0, demand - limit);
    kv_demand_tokens = RoundToInt(demand);
    kv_overflow_tokens = RoundToInt(overflow);
    kv_fits = overflow <= 0.0;
    kv_wait_s = p.kv_overflow_penalty * overflow * per_token;
  }

  double lora_s = 0;
  if (!r.lora_adapter.empty() && e.metrics->Has(kFieldLora)) {
    const EndpointMetrics& m = *e.metrics;
    if (m.HasRunningAdapter(r.lora_adapter)) {
      lora_s = 0;
    } else if (m.HasWaitingAdapter(r.lora_adapter)) {
      lora_s = p.lora_load_s;
    } else {
      const auto loaded = m.running_lora_adapters.size() + m.waiting_lora_adapters.size();
      lora_s = static_cast<int>(loaded) < m.max_lora ? p.lora_load_s : p.lora_wait_s;
    }
  }

  const double ttft_s = queue_s + prefill_s + kv_wait_s + lora_s;
  const double work_s = std::max(0.0, p.prefill_work_weight) * uncached * per_token;
  double evict_s = 0;
  if (e.prefix_caching) {
    evict_s = std::max(0.0, p.eviction_weight) * uncached * per_token *
              std::clamp(e.prefix_occupancy, 0.0, 1.0);
  }
  const double cost_s =
      ttft_s + preempt_s + pressure_s + balance_s + work_s + evict_s +
      p.decode_weight * static_cast<double>(std::max<std::int64_t>(r.expected_output_tokens, 0)) *
          tpot_s;
  return TtftPrediction{.queue_s = queue_s,
                        .prefill_s = prefill_s,
                        .kv_wait_s = kv_wait_s,
                        .lora_s = lora_s,
                        .ttft_s = ttft_s,
                        .tpot_s = tpot_s,
                        .cost_s = cost_s,
                        .cached_tokens = cached_tokens,
                        .kv_demand_tokens = kv_demand_tokens,
                        .kv_fits = kv_fits,
                        .preempt_s = preempt_s,
                        .pressure_s = pressure_s,
                        .balance_s = balance_s,
                        .work_s = work_s,
                        .evict_s = evict_s,
                        .kv_overflow_tokens = kv_overflow_tokens};
}

}  // namespace infergate
