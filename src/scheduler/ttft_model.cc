#include "scheduler/ttft_model.h"

#include <algorithm>
#include <cmath>

namespace infergate {

TtftPrediction PredictTtft(const TtftModelParams& p, const EndpointView& e, const RequestShape& r) {
  TtftPrediction out;
  const LoadEstimate& load = e.load;
  const double running = std::max(0.0, load.running_est);
  const double rate = std::max(1.0, p.prefill_tokens_per_s) /
                      (1.0 + std::max(0.0, p.decode_interference) * running);

  const std::int64_t prompt = std::max<std::int64_t>(r.prompt_tokens, 0);
  if (e.prefix_caching && prompt > 1) {
    const double matched =
        static_cast<double>(e.prefix_blocks) * static_cast<double>(r.block_tokens);
    const double credit = std::clamp(p.prefix_credit, 0.0, 1.0) * matched;
    out.cached_tokens = std::min<std::int64_t>(RoundToInt(credit), prompt - 1);
  }
  const double uncached = static_cast<double>(prompt - out.cached_tokens);
  const double backlog =
      static_cast<double>(std::max<std::int64_t>(load.prefill_backlog_tokens, 0));
  const double queued_requests = e.ledger->awaiting + load.foreign_waiting;

  out.queue_s = backlog / rate + queued_requests * p.request_overhead_s;
  out.prefill_s = uncached / rate + p.request_overhead_s;
  out.tpot_s = p.decode_step_s + p.decode_step_per_seq_s * (running + 1.0);

  if (load.kv_tokens_est >= 0 && e.kv_capacity_tokens > 0) {
    const double growth = out.tpot_s > 0 ? running * (out.queue_s + out.prefill_s) / out.tpot_s : 0;
    const double demand = static_cast<double>(load.kv_tokens_est) + backlog + uncached + growth;
    const double limit = p.kv_admit_fraction * static_cast<double>(e.kv_capacity_tokens);
    const double overflow = std::max(0.0, demand - limit);
    out.kv_demand_tokens = RoundToInt(demand);
    out.kv_fits = overflow <= 0.0;
    out.kv_wait_s = p.kv_overflow_penalty * overflow / std::max(1.0, p.prefill_tokens_per_s);
  }

  if (!r.lora_adapter.empty() && e.metrics->Has(kFieldLora)) {
    const EndpointMetrics& m = *e.metrics;
    if (m.HasRunningAdapter(r.lora_adapter)) {
      out.lora_s = 0;
    } else if (m.HasWaitingAdapter(r.lora_adapter)) {
      out.lora_s = p.lora_load_s;
    } else {
      const auto loaded = m.running_lora_adapters.size() + m.waiting_lora_adapters.size();
      out.lora_s = static_cast<int>(loaded) < m.max_lora ? p.lora_load_s : p.lora_wait_s;
    }
  }

  out.ttft_s = out.queue_s + out.prefill_s + out.kv_wait_s + out.lora_s;
  out.cost_s =
      out.ttft_s + p.decode_weight *
                       static_cast<double>(std::max<std::int64_t>(r.expected_output_tokens, 0)) *
                       out.tpot_s;
  return out;
}

}  // namespace infergate
