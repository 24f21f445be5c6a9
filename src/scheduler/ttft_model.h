// infergate's cost model: how long until a request's first token on each endpoint, and
// what sending it there costs everyone else.
//
// The decision that matters most to users is TTFT, and an endpoint's TTFT for a new
// request is mostly determined by the prefill work ahead of it, its own uncached prefill,
// and whether the KV cache has room to admit it. All three are counted in tokens, not
// requests: one 8k-token prompt is a longer wait than four 200-token ones. The model:
//
//   prefill time of n tokens  = base + n · per_token, stretched by (1 + decode_interference
//                               · running_est); base and per_token are the ledger's fit
//                               of observed TTFTs (TokenLedger::prefill_fit) once it has
//                               learn_after samples, else request_overhead_s and
//                               1 / prefill_tokens_per_s
//   cached   = prefix_blocks · block_tokens · prefix_credit   (0 if the engine has prefix
//              caching off; at most prompt − 1 tokens, as vLLM caps a hit)
//   queue    = per_token · the uncached tokens awaiting their first token here (ours,
//              plus foreign_waiting_weight · the waiting requests we did not send, at the
//              mean prompt) + request_overhead_s per queued request, less the prefill
//              already done: prefill_progress · the time since the oldest awaiting prompt's
//              prefill could start (its dispatch, or the endpoint's last first token if
//              later), at most that prompt's own prefill. Responses say this when no scrape
//              can: a llama.cpp page is late exactly while it prefills (without virtual
//              engines; with them the queue is one virtual engine's and this is left out)
//   prefill  = prefill time of (prompt − cached)
//   with the KV outlook (scheduler/kv_outlook.h: the cache projected forward from the
//   ledger's in-flight requests, their max_tokens and the TPOT):
//     kv_wait  = seconds until (1 − kv_admit_fraction)·C + (prompt − cached) tokens are free
//     peak     = the projected demand's maximum while this request runs
//     preempt  = kv_overflow_penalty · prefill time of max(0, peak − kv_peak_fraction · C)
//     pressure = kv_pressure_s · peak / C                 (the most headroom wins a tie)
//     balance  = inflight_weight · (running_est + waiting_est) · prefill time of
//                (prompt − cached) · gate,  gate = clamp((peak/C − kv_balance_from) / 0.1, 0, 1):
//                under KV pressure every sequence an endpoint
//                holds raises its risk of preemption (and vLLM's pipeline-parallel virtual
//                engines each hold a fixed share of blocks, filled by request count), so
//                the number of sequences is balanced, in units of this request's own
//                prefill there, so the weight means the same on any hardware and a warm
//                endpoint's count weighs less than a cold one's (count balance must not
//                break prefix affinity under overload: measured, it spiralled into cold
//                prefills at 33 req/s on the shared-prefix workload)
//   with virtual engines (vLLM V0 with pipeline parallelism P: P schedulers, each with
//   1/P of the blocks, new requests to the one with the fewest unfinished): the outlook
//   is that of the virtual engine the ledger's replay says the request lands in, so
//   kv_wait, peak, pressure and the gate are its; `queue` counts its awaiting prompts and
//   1/P of the foreign waiting ones, and `balance` its sequences (ours in it, plus 1/P of
//   the rest). Measured on the seed's workload:
//   docs/experiments/2026-11-25-seed-workload-policy.md
//   without it (capacity or ledger unknown), a one-shot estimate:
//     growth   = running_est · (queue + prefill) / tpot   (tokens running sequences add)
//     demand   = kv_tokens_est + backlog + (prompt − cached) + growth
//     kv_wait  = kv_overflow_penalty · prefill time of max(0, demand − kv_admit_fraction·C)
//   lora     = 0 if the adapter is loaded, lora_load_s if it is loading or a slot is free,
//              lora_wait_s if every slot is taken
//   ttft     = queue + prefill + kv_wait + lora
//   tpot     = decode_step_s + decode_step_per_seq_s · (running_est + 1)
//   work     = prefill_work_weight · per_token · (prompt − cached)   the compute this request
//              adds to the endpoint, which every later request there waits behind: what
//              keeps a tenant on its warm endpoint when a cold one would give this one
//              request the same TTFT (a second cold copy of a prefix costs a full prefill and
//              evicts other prefixes; under load that spirals into cold prefills)
//   evict    = eviction_weight · per_token · (prompt − cached) · prefix_occupancy   new
//              blocks in a full cache push out other prefixes, which their next requests
//              then prefill again; a cold request goes where the cache has room (tenants
//              spread evenly over the endpoints' caches)
//   cost     = ttft + preempt + pressure + balance + work + evict
//              + decode_weight · expected_output · tpot
//
// The lowest cost wins. Prefix affinity is therefore "sticky until worse": a warm endpoint
// wins by the prefill it saves, and loses as soon as its queue costs more than that, where
// the queue counts only the prompts' uncached parts (a busy warm endpoint with warm
// requests queued is not as busy as its request count says). An endpoint where the
// request cannot be admitted now (kv_fits = false) pays the wait, and the kv-headroom
// filter removes such endpoints outright while another has room (and holds the request in
// the gateway queue while none has, with late binding).
//
// Sources: llm-d's "sticky until the warm endpoint's estimated TTFT exceeds a cold one's";
// Dynamo's KV-router cost (prefill blocks after overlap credit + decode blocks); the
// defaults were tuned in the cluster simulator (docs/benchmarks.md) on the seed's workload
// and a multi-tenant shared-prefix one. Alternatives considered: a request-count queue
// (GIE) misjudges mixed prompt sizes; the engines' scraped KV use instead of the ledger's
// projection (it forgets preempted requests, which will take their blocks back, and cannot
// see growth); a learned per-endpoint regression of TTFT needs observations per endpoint.
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
  int learn_after = 8;  // ledger prefill-fit samples before it replaces the two above
  double decode_interference = 0.0;
  double decode_step_s = 0.045;
  double decode_step_per_seq_s = 0.0006;
  double kv_admit_fraction = 1.0;
  double kv_overflow_penalty = 0.0;
  double kv_peak_fraction = 1.0;
  double kv_pressure_s = 0.3;
  double inflight_weight = 8.0;
  double kv_balance_from = 0.7;
  double foreign_waiting_weight = 1.0;
  double prefix_credit = 1.0;
  double lora_load_s = 0.1;
  double lora_wait_s = 2.0;
  double decode_weight = 0.0;
  double prefill_work_weight = 8.0;
  double eviction_weight = 1.0;
  double hold_queue_factor = 0.0;  // late binding: see kv-headroom-filter
  // Fraction of the time the endpoint has spent on its oldest awaiting prefill
  // (EndpointView::prefill_elapsed_s) taken off the queue, at most that prefill's own time.
  double prefill_progress = 1.0;
  // Late binding (kv-headroom-filter): also hold while every endpoint that can admit the
  // request has this many of the gateway's requests awaiting their first token where it
  // would queue. kHoldAwaitingAuto: 2 where the virtual-engine mirror is on (vLLM V0, which
  // prefills every waiting prompt in one step), else off (0).
  static constexpr int kHoldAwaitingAuto = -1;
  int hold_awaiting = kHoldAwaitingAuto;
  // Virtual engines per endpoint the KV outlook mirrors (see kv_outlook.h): 0 takes the
  // pool's (SchedulerOptions::pipeline_virtual_engines), 1 turns the mirror off.
  int virtual_engines = 0;

  bool operator==(const TtftModelParams&) const = default;
};

struct RequestShape {
  std::int64_t prompt_tokens = 0;
  std::int64_t expected_output_tokens = 0;
  std::int64_t block_tokens = 16;  // tokens per prefix-index block
  std::string_view lora_adapter;
};

// Prefill timing learned from observations (TokenLedger::PrefillFit).
struct PrefillTiming {
  double base_s = 0;
  double per_token_s = 0;
  int samples = 0;
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
  bool kv_fits = true;  // admissible now (without the outlook: no projected overflow)
  double preempt_s = 0;
  double pressure_s = 0;
  double balance_s = 0;
  double work_s = 0;
  double evict_s = 0;
  std::int64_t kv_overflow_tokens = 0;
};

// The prefill timing in effect: `learned` (may be null) once it has params.learn_after
// samples or more, else request_overhead_s and 1 / prefill_tokens_per_s. A prefill of n
// uncached tokens takes base_s + n * per_token_s.
struct PrefillRate {
  double base_s = 0;
  double per_token_s = 0;
};
PrefillRate EffectivePrefillRate(const TtftModelParams& params, const PrefillTiming* learned);

// `learned` (may be null) replaces the configured prefill timing as EffectivePrefillRate
// says.
TtftPrediction PredictTtft(const TtftModelParams& params, const EndpointView& endpoint,
                           const RequestShape& request, const PrefillTiming* learned = nullptr);

}  // namespace infergate
