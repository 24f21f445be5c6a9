// infergate's cost model: how long until a request's first token on each endpoint.
//
// The decision that matters most to users is TTFT, and an endpoint's TTFT for a new
// request is mostly determined by the prefill work ahead of it, its own uncached prefill,
// and whether the KV cache has room to admit it. All three are counted in tokens, not
// requests: one 8k-token prompt is a longer wait than four 200-token ones. The model:
//
//   rate     = prefill_rate / (1 + decode_interference · running_est),
//              prefill_rate = prefill_tokens_per_s
//   cached   = prefix_blocks · block_tokens · prefix_credit   (0 if the engine has prefix
//              caching off; at most prompt − 1 tokens, as vLLM caps a hit)
//   queue    = prefill_backlog_tokens / rate + queued requests · request_overhead_s
//   prefill  = (prompt − cached) / rate + request_overhead_s
//   growth   = running_est · (queue + prefill) / tpot   (tokens running sequences add)
//   demand   = kv_tokens_est + prefill_backlog_tokens + (prompt − cached) + growth
//   kv_wait  = kv_overflow_penalty · max(0, demand − kv_admit_fraction · C) / prefill_rate
//   lora     = 0 if the adapter is loaded, lora_load_s if it is loading or a slot is free,
//              lora_wait_s if every slot is taken
//   ttft     = queue + prefill + kv_wait + lora
//   tpot     = decode_step_s + decode_step_per_seq_s · (running_est + 1)
//   cost     = ttft + decode_weight · expected_output · tpot
//
// The lowest cost wins. Prefix affinity is therefore "sticky until worse": a warm endpoint
// wins by the prefill it saves, and loses as soon as its queue costs more than that. An
// endpoint where the request would not fit in KV (kv_fits = false) pays for the overflow,
// and the kv-headroom filter removes such endpoints outright while another has room.
//
// Sources: llm-d's "sticky until the warm endpoint's estimated TTFT exceeds a cold one's";
// Dynamo's KV-router cost (prefill blocks after overlap credit + decode blocks); the
// timing constants are the seed deployment's fitted engine model (REFERENCE §1: ~1.85k
// prefill tokens/s per group, ~45 ms + 0.6 ms/sequence per decode step). Alternatives
// considered: a request-count queue (GIE) misjudges mixed prompt sizes; a learned
// per-endpoint regression needs observations we do not have at start. The constants
// only set the exchange rate between queueing, prefill saved and KV risk; they are meant
// to be tuned in the cluster simulator.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string_view>

#include "scheduler/endpoint_view.h"

namespace infergate {

struct TtftModelParams {
  double prefill_tokens_per_s = 2000;
  double request_overhead_s = 0.02;
  double decode_interference = 0.01;
  double decode_step_s = 0.045;
  double decode_step_per_seq_s = 0.0006;
  double kv_admit_fraction = 0.95;
  double kv_overflow_penalty = 3.0;
  double prefix_credit = 1.0;
  double lora_load_s = 0.1;
  double lora_wait_s = 2.0;
  double decode_weight = 0.05;

  bool operator==(const TtftModelParams&) const = default;
};

struct RequestShape {
  std::int64_t prompt_tokens = 0;
  std::int64_t expected_output_tokens = 0;
  std::int64_t block_tokens = 16;  // tokens per prefix-index block
  std::string_view lora_adapter;
};

struct TtftPrediction {
  double queue_s = 0;
  double prefill_s = 0;
  double kv_wait_s = 0;
  double lora_s = 0;
  double ttft_s = 0;
  double tpot_s = 0;
  double cost_s = 0;
  std::int64_t cached_tokens = 0;
  std::int64_t kv_demand_tokens = -1;  // -1 when the KV capacity is unknown
  bool kv_fits = true;
};

TtftPrediction PredictTtft(const TtftModelParams& params, const EndpointView& endpoint,
                           const RequestShape& request);

}  // namespace infergate
