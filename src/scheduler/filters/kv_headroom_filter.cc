// kv-headroom-filter: never sends a request where it would overflow the KV cache while
// another endpoint has room.
//
// Algorithm. For each candidate, the cost model (scheduler/ttft_model.h) projects the KV
// cache forward from the ledger (scheduler/kv_outlook.h): what in-flight requests hold now,
// grow to and release. Candidates that cannot admit this prompt's uncached part now (with
// kv_admit_fraction of their capacity) are removed, unless that would remove all of them
// (then nothing changes and the cost model ranks the wait).
// Endpoints of unknown capacity are judged by their estimated KV fraction instead.
//
// Source: infergate. An overflowing vLLM either queues the request until blocks free up
// or preempts running sequences and recomputes them later (the seed experiment's round-robin
// TTFT tail, 300 requests on three QwQ-32B groups, is KV waiting plus ~55 preemptions per
// run); either costs far more than routing to an endpoint with room.
// Late binding: with a gateway queue (FlowController) the caller asks
// Scheduler::ShouldHold before picking; this filter answers "hold" while no candidate
// can admit the request now (and, with holdQueueFactor > 0, while every one that can has
// more than that many of the request's own prefill times queued), so the request is bound
// to whichever endpoint frees room first instead of waiting in one engine's queue.
// Prefill pacing (holdAwaiting): vLLM V0 without chunked prefill puts every waiting prompt
// into one prefill step, so each of them gets its first token only when the whole batch is
// done; holding while every endpoint that can admit already has two of ours awaiting (one
// prefilling, one next) has it prefill one prompt at a time with no gap. On by default
// where the gateway mirrors V0's virtual engines; off elsewhere (chunked prefill serves a
// queue in order, and there pacing only costs batching).
// Waiting for the warm endpoint (waitForWarm, on): while the cheapest endpoint by the cost
// model holds part of the prompt but cannot admit it now, the request is held even if a
// cold endpoint could take it: the cost already weighed the wait for room against a whole
// prefill elsewhere. Measured on the shared-prefix workload past saturation, releasing to
// the first endpoint with room moved up to 220 requests per 5 s to cold endpoints and the
// pool collapsed into cold prefills
// (docs/experiments/2026-12-05-shared-prefix-output-aging-and-wait-for-warm.md).
// Alternatives: GIE's kvCacheThreshold (a fixed 0.8) ignores the request's own size; a
// scorer alone can still pick an overflowing endpoint when its prefix match is large;
// GIE's flow control holds on pool saturation (queue/5, KV/0.8), which is blind to the
// request's size.
//
// Tunables: waitForWarm (true); the cost model's (kvAdmitFraction etc.), set on
// predicted-ttft-scorer or in SchedulerOptions::ttft.
#include "scheduler/plugin_registry.h"

namespace infergate {
namespace {

class KvHeadroomFilter final : public FilterPlugin {
 public:
  explicit KvHeadroomFilter(PluginParams& p) : wait_for_warm_(p.Bool("waitForWarm", true)) {}

  FilterVerdict Filter(const SchedulingContext& ctx, CandidateList& c) override {
    ctx.PrepareKvOutlooks(c);
    fits_.resize(c.size());
    bool any_fits = false, any_not = false;
    for (std::size_t i = 0; i < c.size(); ++i) {
      fits_[i] = Fits(ctx, *c[i]);
      any_fits |= fits_[i] != 0;
      any_not |= fits_[i] == 0;
    }
    if (!any_fits || !any_not) return FilterVerdict::kContinue;
    std::size_t out = 0;
    for (std::size_t i = 0; i < c.size(); ++i) {
      if (fits_[i]) c[out++] = c[i];
    }
    c.resize(out);
    return FilterVerdict::kContinue;
  }

  std::uint32_t needs() const override {
    return kNeedsMetrics | kNeedsPrefixMatch | kNeedsKvOutlook;
  }

  // Late binding: hold the request while no candidate can admit it now.
  bool has_hold_rule() const override { return true; }
  bool WantsHold(const SchedulingContext& ctx,
                 std::span<const EndpointView* const> candidates) override {
    ctx.PrepareKvOutlooks(candidates);
    if (wait_for_warm_ && !ctx.admission_only && WarmCheapestWaits(ctx, candidates)) return true;
    for (const EndpointView* v : candidates) {
      if (!Fits(ctx, *v)) continue;
      if (ctx.admission_only) return false;
      const int most = HoldAwaiting(*ctx.ttft, *v);
      if (most > 0 && Awaiting(*v) >= most) continue;
      if (ctx.ttft->hold_queue_factor <= 0) return false;
      const TtftPrediction& p = ctx.Predict(*v);
      if (p.queue_s <= ctx.ttft->hold_queue_factor * p.prefill_s) return false;
    }
    return true;
  }

 private:
  static bool Fits(const SchedulingContext& ctx, const EndpointView& v) {
    if (v.kv_capacity_tokens > 0 && v.load.kv_tokens_est >= 0) return ctx.Predict(v).kv_fits;
    return v.load.kv_usage_est < ctx.ttft->kv_admit_fraction;
  }
  // Whether the endpoint with the lowest cost holds part of the prompt in its prefix cache
  // but cannot admit the request now. Its cost includes the wait for room there, so it is
  // still the cheapest while that wait costs less than going elsewhere, where the prompt
  // would be prefilled whole. Binding to whichever endpoint frees room first instead moves
  // a tenant to a cold endpoint at every release of a saturated queue, and each move is
  // more prefill work for a pool that has none to spare.
  static bool WarmCheapestWaits(const SchedulingContext& ctx,
                                std::span<const EndpointView* const> candidates) {
    const EndpointView* best = nullptr;
    const TtftPrediction* best_p = nullptr;
    for (const EndpointView* v : candidates) {
      const TtftPrediction& p = ctx.Predict(*v);
      if (best_p == nullptr || p.cost_s < best_p->cost_s) {
        best_p = &p;
        best = v;
      }
    }
    return best != nullptr && best_p->cached_tokens > 0 && !Fits(ctx, *best);
  }
  static bool Mirrored(const EndpointView& v) {
    return v.kv_outlook != nullptr && v.kv_outlook->virtual_engines > 1;
  }
  // The gateway's requests awaiting their first token where this one would queue: the
  // virtual engine it would land in, else the endpoint.
  static double Awaiting(const EndpointView& v) {
    return Mirrored(v) ? v.kv_outlook->awaiting : static_cast<double>(v.ledger->awaiting);
  }
  // How many awaiting requests make an endpoint wait for its queue to shorten (0: never).
  static int HoldAwaiting(const TtftModelParams& p, const EndpointView& v) {
    if (p.hold_awaiting != TtftModelParams::kHoldAwaitingAuto) return p.hold_awaiting;
    return Mirrored(v) ? 2 : 0;
  }

  bool wait_for_warm_;
  std::vector<std::uint8_t> fits_;
};

}  // namespace

extern const PluginDescriptor kKvHeadroomFilterPlugin{
    "kv-headroom-filter", PluginKind::kFilter,
    "removes endpoints whose KV cache the request would overflow, while another has room",
    [](PluginParams& p) -> std::unique_ptr<SchedulingPlugin> {
      return std::make_unique<KvHeadroomFilter>(p);
    }};

}  // namespace infergate
