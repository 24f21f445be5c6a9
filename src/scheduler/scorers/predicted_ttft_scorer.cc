// predicted-ttft-scorer: infergate's policy: the endpoint with the lowest predicted cost.
//
// Algorithm. For each candidate the cost model (scheduler/ttft_model.h) predicts the
// request's time to first token, in tokens and seconds: the uncached prefill work queued
// ahead of it (the ledger's in-flight prompts, less what the endpoint's prefix cache
// probably holds), its own uncached prefill (the prefix index says how much the endpoint
// holds), the wait for KV space (the ledger's projection of the cache: what in-flight
// requests hold, grow to and release) and LoRA loading. The cost adds what sending it
// there does to everyone else: the prefill compute it adds (so a tenant stays on its warm
// endpoint rather than making a second cold copy), the prefixes it would evict, the
// projected KV overflow, the KV pressure, and, when the cache is under pressure, the
// number of sequences the endpoint already holds. Prefill timing is learned from the
// TTFTs the gateway observes. With pipeline parallelism (vLLM V0's virtual engines,
// `virtualEngines`), the queue, KV projection and sequence count are those of the virtual
// engine the request would land in, as the ledger replays vLLM's assignment rule.
// Scores are relative to the best candidate:
//   score = (min_cost + s0) / (cost + s0),  s0 = requestOverhead
// so the cheapest scores 1 and an endpoint twice as costly about 0.5; with
// max-score-picker this is "lowest predicted cost wins", and stays meaningful when
// combined with others.
//
// Source: infergate; the ideas are llm-d's "sticky until the warm endpoint's estimated
// TTFT exceeds a cold one's" and Dynamo's prefill-after-overlap + decode cost, counted in
// tokens and corrected by the ledger between scrapes. Tuned in the cluster
// simulator (docs/benchmarks.md, docs/scheduling.md).
// Alternatives: GIE's request-count scorers (gie-default) ignore prompt size and herd
// between scrapes; SGLang's cache-aware thresholds switch abruptly between affinity and
// balance; TTFT alone breaks prefix stickiness under load and spirals into cold prefills.
//
// Tunables (parameters, defaults; see scheduler/ttft_model.h for their role):
//   prefillTokensPerSecond   2000     prefill throughput until learned
//   requestOverhead          0.02     seconds per queued request; the prefill base until learned
//   learnAfter               8        learned prefill samples before they replace the two above
//   decodeInterference       0        prefill slowdown per running sequence
//   decodeStepSeconds        0.045    decode step time, base (TPOT until learned)
//   decodeStepPerSequence    0.0006   decode step time per running sequence
//   kvAdmitFraction          1        usable fraction of the KV cache for admission
//   kvOverflowPenalty        0        prefills per token of projected overflow
//   kvPeakFraction           1        the capacity fraction above which the peak overflows
//   kvPressureSeconds        0.3      seconds for a cache projected 100% full
//   inflightWeight           8        per sequence held, in this request's prefills
//   kvBalanceFrom            0.7      projected fill above which sequences are counted
//   foreignWaitingWeight     1        weight of waiting requests the gateway did not send
//   prefillWorkWeight        8        weight of the prefill compute the request adds
//   evictionWeight           1        weight of the prefill of prefixes it would evict
//   holdQueueFactor          0        late binding: also hold while every endpoint has more
//                                     than this many own prefills queued (0: KV room only)
//   holdAwaiting             auto     late binding: also hold while every endpoint that can
//                                     admit has this many own requests awaiting a first token
//                                     where the request would queue; auto: 2 with the
//                                     virtual-engine mirror (vLLM V0), else 0 (off)
//   virtualEngines           auto     vLLM V0 pipeline-parallel virtual engines the KV outlook
//                                     mirrors: auto (the pool's setting), off, or a count
//   prefillProgress          1        fraction of the time spent on the oldest awaiting prefill
//                                     taken off the queue (the ledger's progress; 0: off)
//   prefixCredit             1        fraction of matched prefix tokens that skip prefill
//   loraLoadSeconds          0.1      cost of loading an adapter into a free slot
//   loraWaitSeconds          2        cost when every adapter slot is taken
//   decodeWeight             0        weight of expected_output × TPOT in the cost
//   hashBlockSize            64       prefix index: characters per block
//   maxPrefixBlocks          1024     prefix index: blocks hashed per prompt (64 KB)
//   outputAging              1        prefix index: LRU blocks aged per block of generated
//                                     tokens at completion (0: prompts only)
#include <algorithm>
#include <limits>

#include "scheduler/plugin_registry.h"

namespace infergate {
namespace {

// Prefix index settings this scorer asks for. Its blocks are GIE's; it hashes up to 64 KB
// of a prompt (GIE: 16 KB), so long system prompts and conversation histories are matched
// in full and the prefill they save is not underestimated. The per-endpoint LRU follows
// the endpoint's KV capacity (the infergate profile's prefix_lru_from_kv_capacity).
constexpr std::int64_t kDefaultHashBlockSize = 64;
constexpr std::int64_t kDefaultMaxPrefixBlocks = 1024;
// The server caches the tokens it generates as it does the prompt's: one LRU block aged per
// block generated keeps the index's eviction horizon the server's (measured in docs/experiments/
// 2026-12-05-shared-prefix-output-aging-and-wait-for-warm.md: without it the index still
// believed most evicted tenants warm).
constexpr double kDefaultOutputAging = 1.0;

class PredictedTtftScorer final : public ScorerPlugin {
 public:
  explicit PredictedTtftScorer(PluginParams& p) {
    const TtftModelParams d;
    params_.prefill_tokens_per_s =
        p.Double("prefillTokensPerSecond", d.prefill_tokens_per_s, 1, 1e9);
    params_.request_overhead_s = p.Double("requestOverhead", d.request_overhead_s, 0, 60);
    params_.learn_after = static_cast<int>(p.Double("learnAfter", d.learn_after, 0, 1e9));
    params_.decode_interference = p.Double("decodeInterference", d.decode_interference, 0, 10);
    params_.decode_step_s = p.Double("decodeStepSeconds", d.decode_step_s, 0, 60);
    params_.decode_step_per_seq_s =
        p.Double("decodeStepPerSequence", d.decode_step_per_seq_s, 0, 60);
    params_.kv_admit_fraction = p.Double("kvAdmitFraction", d.kv_admit_fraction, 0.01, 1);
    params_.kv_overflow_penalty = p.Double("kvOverflowPenalty", d.kv_overflow_penalty, 0, 1e6);
    params_.kv_peak_fraction = p.Double("kvPeakFraction", d.kv_peak_fraction, 0.01, 10);
    params_.kv_pressure_s = p.Double("kvPressureSeconds", d.kv_pressure_s, 0, 3600);
    params_.inflight_weight = p.Double("inflightWeight", d.inflight_weight, 0, 1e6);
    params_.kv_balance_from = p.Double("kvBalanceFrom", d.kv_balance_from, 0, 0.99);
    params_.foreign_waiting_weight =
        p.Double("foreignWaitingWeight", d.foreign_waiting_weight, 0, 100);
    params_.prefix_credit = p.Double("prefixCredit", d.prefix_credit, 0, 1);
    params_.lora_load_s = p.Double("loraLoadSeconds", d.lora_load_s, 0, 3600);
    params_.lora_wait_s = p.Double("loraWaitSeconds", d.lora_wait_s, 0, 3600);
    params_.decode_weight = p.Double("decodeWeight", d.decode_weight, 0, 1e3);
    params_.prefill_work_weight = p.Double("prefillWorkWeight", d.prefill_work_weight, 0, 1e3);
    params_.eviction_weight = p.Double("evictionWeight", d.eviction_weight, 0, 1e3);
    params_.hold_queue_factor = p.Double("holdQueueFactor", d.hold_queue_factor, 0, 1e6);
    params_.prefill_progress = p.Double("prefillProgress", d.prefill_progress, 0, 1);
    static constexpr PluginParams::Word kHoldAwaitingWords[] = {
        {"auto", TtftModelParams::kHoldAwaitingAuto}};
    params_.hold_awaiting = static_cast<int>(
        p.IntOrWord("holdAwaiting", d.hold_awaiting, 0, 1 << 20, kHoldAwaitingWords));
    static constexpr PluginParams::Word kVirtualEngineWords[] = {{"auto", 0}, {"off", 1}};
    params_.virtual_engines =
        static_cast<int>(p.IntOrWord("virtualEngines", d.virtual_engines, 1,
                                     TokenLedger::kMaxVirtualEngines, kVirtualEngineWords));
    prefix_.block_chars =
        static_cast<std::size_t>(p.Int("hashBlockSize", kDefaultHashBlockSize, 1, 1 << 20));
    prefix_.max_blocks =
        static_cast<std::size_t>(p.Int("maxPrefixBlocks", kDefaultMaxPrefixBlocks, 1, 1 << 16));
    prefix_.output_aging = p.Double("outputAging", kDefaultOutputAging, 0, 100);
  }

  void Score(const SchedulingContext& ctx, std::span<const EndpointView* const> c,
             std::span<double> scores) override {
    // The scheduler's cost model is this plugin's (Pipeline::ttft_params), so the
    // per-decision memo shared with kv-headroom-filter applies; a second instance with
    // other constants computes its own.
    const bool shared = ctx.ttft != nullptr && *ctx.ttft == params_;
    ctx.PrepareKvOutlooks(c);
    double best = std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < c.size(); ++i) {
      scores[i] = shared ? ctx.Predict(*c[i]).cost_s
                         : PredictTtft(params_, *c[i], ctx.shape, &ctx.prefill_timing).cost_s;
      best = std::min(best, scores[i]);
    }
    const double s0 = std::max(params_.request_overhead_s, 1e-3);
    for (double& s : scores) s = (best + s0) / (s + s0);
  }

  std::uint32_t needs() const override {
    return kNeedsMetrics | kNeedsPrefixMatch | kNeedsKvOutlook;
  }
  const TtftModelParams* ttft_params() const override { return &params_; }
  const PrefixIndexOptions* prefix_options() const override { return &prefix_; }

 private:
  TtftModelParams params_;
  PrefixIndexOptions prefix_;
};

}  // namespace

extern const PluginDescriptor kPredictedTtftScorerPlugin{
    "predicted-ttft-scorer", PluginKind::kScorer,
    "lowest predicted cost (TTFT from token backlog, prefix, KV headroom, LoRA) scores 1",
    [](PluginParams& p) -> std::unique_ptr<SchedulingPlugin> {
      return std::make_unique<PredictedTtftScorer>(p);
    }};

}  // namespace infergate
