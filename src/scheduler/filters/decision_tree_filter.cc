// decision-tree-filter: GIE's first scheduler (v0.1 to v0.3), a decision tree of filters.
//
// Algorithm. Each step narrows the candidates; a step that would leave none passes its
// input on instead, except where noted.
//   Critical request:
//     keep endpoints with queue < queueingThresholdLoRA; if some remain:
//         LoRA soft affinity → least queue → least KV
//     otherwise (all queues long):
//         least queue → LoRA soft affinity → least KV
//   Any other request (Standard included, as in GIE):
//     keep endpoints with queue <= queueThresholdCritical and KV <= kvCacheThreshold;
//     if none: shed (429); else least queue → LoRA soft affinity → least KV
// "Least" keeps the endpoints within [min, min + (max − min) / N] of the minimum, N the
// number of candidates (filters/lowest_band.h). LoRA soft affinity keeps the endpoints that
// have the adapter loaded with probability loraAffinityThreshold, else those with a free
// adapter slot. The final choice among the survivors is the picker's (random-picker in the
// gie-v0 profile). Uses scraped metrics only, as GIE did.
//
// Source: gateway-api-inference-extension pkg/epp/scheduling (v0.1-v0.3), scheduler.go and
// filter.go; the thresholds are its constants.
// Deviation: a request that names no LoRA adapter skips the LoRA step (GIE would prefer
// endpoints with a free adapter slot for base-model requests, which buys nothing).
// Alternatives: GIE v1 replaced the tree by weighted scorers (gie-default), because a
// tree's hard cut-offs make small metric changes flip decisions.
//
// Tunables (parameters, defaults):
//   kvCacheThreshold        0.8    non-Critical requests avoid endpoints with more KV in use
//   queueThresholdCritical  5      non-Critical requests avoid endpoints with longer queues
//   queueingThresholdLoRA   128    below this queue, Critical requests honour LoRA first
//   loraAffinityThreshold   0.999  chance of preferring endpoints with the adapter loaded
#include "scheduler/filters/lowest_band.h"
#include "scheduler/plugin_registry.h"

namespace infergate {
namespace {

constexpr double kDefaultKvCacheThreshold = 0.8;
constexpr double kDefaultQueueThresholdCritical = 5;
constexpr double kDefaultQueueingThresholdLoRA = 128;
constexpr double kDefaultLoraAffinityThreshold = 0.999;

double Queue(const EndpointView& v) { return v.waiting; }
double Kv(const EndpointView& v) { return v.kv_usage; }

class DecisionTreeFilter final : public FilterPlugin {
 public:
  explicit DecisionTreeFilter(PluginParams& p)
      : kv_threshold_(p.Double("kvCacheThreshold", kDefaultKvCacheThreshold, 0, 1)),
        queue_critical_(p.Double("queueThresholdCritical", kDefaultQueueThresholdCritical, 0, 1e9)),
        queue_lora_(p.Double("queueingThresholdLoRA", kDefaultQueueingThresholdLoRA, 0, 1e9)),
        lora_affinity_(p.Double("loraAffinityThreshold", kDefaultLoraAffinityThreshold, 0, 1)) {}

  FilterVerdict Filter(const SchedulingContext& ctx, CandidateList& c) override {
    const std::string_view adapter = ctx.request->lora_adapter;
    if (ctx.request->IsCritical()) {
      scratch_.assign(c.begin(), c.end());
      std::erase_if(scratch_, [&](const EndpointView* v) { return Queue(*v) >= queue_lora_; });
      if (!scratch_.empty()) {
        c.swap(scratch_);
        KeepLoraSoftAffinity(c, adapter, lora_affinity_, *ctx.rng);
        KeepLowestBand(c, Queue, true);
        KeepLowestBand(c, Kv, false);
      } else {
        QueueLoraKv(ctx, c);
      }
      return FilterVerdict::kContinue;
    }
    std::erase_if(c, [&](const EndpointView* v) {
      return Queue(*v) > queue_critical_ || Kv(*v) > kv_threshold_;
    });
    if (c.empty()) return FilterVerdict::kShed;
    QueueLoraKv(ctx, c);
    return FilterVerdict::kContinue;
  }

 private:
  void QueueLoraKv(const SchedulingContext& ctx, CandidateList& c) {
    KeepLowestBand(c, Queue, true);
    KeepLoraSoftAffinity(c, ctx.request->lora_adapter, lora_affinity_, *ctx.rng);
    KeepLowestBand(c, Kv, false);
  }

  double kv_threshold_;
  double queue_critical_;
  double queue_lora_;
  double lora_affinity_;
  CandidateList scratch_;
};

}  // namespace

extern const PluginDescriptor kDecisionTreeFilterPlugin{
    "decision-tree-filter", PluginKind::kFilter,
    "GIE v0 decision tree over queue, KV cache and LoRA affinity; sheds non-Critical requests",
    [](PluginParams& p) -> std::unique_ptr<SchedulingPlugin> {
      return std::make_unique<DecisionTreeFilter>(p);
    }};

}  // namespace infergate
