// predicted-ttft-scorer: infergate's policy: the endpoint with the lowest predicted cost.
//
// Algorithm. For each candidate the cost model (scheduler/ttft_model.h) predicts the
// request's time to first token from, in tokens: the prefill backlog ahead of it (scraped
// waiting plus the ledger's in-flight prompts), its own uncached prefill (the prefix index
// says how much the endpoint already holds), the KV headroom (capacity vs. tokens held,
// queued and produced meanwhile) and LoRA adapter loading; cost = TTFT plus a small
// decode-load term. Scores are relative to the best candidate:
//   score = (min_cost + s0) / (cost + s0),  s0 = requestOverhead
// so the cheapest scores 1 and an endpoint twice as slow about 0.5; with max-score-picker
// this is "lowest predicted cost wins", and stays meaningful when combined with others.
//
// Source: infergate; the ideas are llm-d's "sticky until the warm endpoint's estimated
// TTFT exceeds a cold one's" and Dynamo's prefill-after-overlap + decode cost, counted in
// tokens and corrected by the ledger between scrapes (REFERENCE §8).
// Alternatives: GIE's request-count scorers (gie-default) ignore prompt size and herd
// between scrapes; SGLang's cache-aware thresholds switch abruptly between affinity and
// balance.
//
// Tunables (parameters, defaults; see scheduler/ttft_model.h for their role):
//   prefillTokensPerSecond   2000     prefill throughput of one endpoint
//   requestOverhead          0.02     seconds per queued request (scheduling, a step)
//   decodeInterference       0.01     prefill slowdown per running sequence
//   decodeStepSeconds        0.045    decode step time, base
//   decodeStepPerSequence    0.0006   decode step time per running sequence
//   kvAdmitFraction          0.95     usable fraction of the KV cache
//   kvOverflowPenalty        3        seconds per overflowing token, relative to prefill
//   prefixCredit             1        fraction of matched prefix tokens that skip prefill
//   loraLoadSeconds          0.1      cost of loading an adapter into a free slot
//   loraWaitSeconds          2        cost when every adapter slot is taken
//   decodeWeight             0.05     weight of expected_output × TPOT in the cost
#include <algorithm>
#include <limits>

#include "scheduler/plugin_registry.h"

namespace infergate {
namespace {

class PredictedTtftScorer final : public ScorerPlugin {
 public:
  explicit PredictedTtftScorer(PluginParams& p) {
    const TtftModelParams d;
    params_.prefill_tokens_per_s =
        p.Double("prefillTokensPerSecond", d.prefill_tokens_per_s, 1, 1e9);
    params_.request_overhead_s = p.Double("requestOverhead", d.request_overhead_s, 0, 60);
    params_.decode_interference = p.Double("decodeInterference", d.decode_interference, 0, 10);
    params_.decode_step_s = p.Double("decodeStepSeconds", d.decode_step_s, 0, 60);
    params_.decode_step_per_seq_s =
        p.Double("decodeStepPerSequence", d.decode_step_per_seq_s, 0, 60);
    params_.kv_admit_fraction = p.Double("kvAdmitFraction", d.kv_admit_fraction, 0.01, 1);
    params_.kv_overflow_penalty = p.Double("kvOverflowPenalty", d.kv_overflow_penalty, 0, 1e6);
    params_.prefix_credit = p.Double("prefixCredit", d.prefix_credit, 0, 1);
    params_.lora_load_s = p.Double("loraLoadSeconds", d.lora_load_s, 0, 3600);
    params_.lora_wait_s = p.Double("loraWaitSeconds", d.lora_wait_s, 0, 3600);
    params_.decode_weight = p.Double("decodeWeight", d.decode_weight, 0, 1e3);
  }

  void Score(const SchedulingContext& ctx, std::span<const EndpointView* const> c,
             std::span<double> scores) override {
    // The scheduler's cost model is this plugin's (Pipeline::ttft_params), so the
    // per-decision memo shared with kv-headroom-filter applies; a second instance with
    // other constants computes its own.
    const bool shared = ctx.ttft != nullptr && *ctx.ttft == params_;
    double best = std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < c.size(); ++i) {
      scores[i] =
          shared ? ctx.Predict(*c[i]).cost_s : PredictTtft(params_, *c[i], ctx.shape).cost_s;
      best = std::min(best, scores[i]);
    }
    const double s0 = std::max(params_.request_overhead_s, 1e-3);
    for (double& s : scores) s = (best + s0) / (s + s0);
  }

  std::uint32_t needs() const override { return kNeedsMetrics | kNeedsPrefixMatch; }
  const TtftModelParams* ttft_params() const override { return &params_; }

 private:
  TtftModelParams params_;
};

}  // namespace

extern const PluginDescriptor kPredictedTtftScorerPlugin{
    "predicted-ttft-scorer", PluginKind::kScorer,
    "lowest predicted cost (TTFT from token backlog, prefix, KV headroom, LoRA) scores 1",
    [](PluginParams& p) -> std::unique_ptr<SchedulingPlugin> {
      return std::make_unique<PredictedTtftScorer>(p);
    }};

}  // namespace infergate
