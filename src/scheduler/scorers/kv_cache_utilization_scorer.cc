// kv-cache-utilization-scorer: prefers endpoints with more free KV cache.
//
// Algorithm. score = 1 − kv, kv the fraction of the KV cache in use (clamped to [0, 1]).
//
// Source: GIE v1 kv-cache-utilization-scorer (weight 2 in its default profile), reading
// vllm:gpu_cache_usage_perc / vllm:kv_cache_usage_perc. With useLedger the fraction
// includes the prompts dispatched since the last scrape (scheduler/endpoint_view.h).
// Alternatives: free tokens instead of a fraction favours large servers in mixed pools;
// the kv-headroom-filter checks whether this request fits at all.
//
// Tunables (parameters, defaults):
//   useLedger  false  score the ledger-corrected KV estimate
#include <algorithm>

#include "scheduler/plugin_registry.h"

namespace infergate {
namespace {

constexpr bool kDefaultUseLedger = false;

class KvCacheUtilizationScorer final : public ScorerPlugin {
 public:
  explicit KvCacheUtilizationScorer(PluginParams& p)
      : use_ledger_(p.Bool("useLedger", kDefaultUseLedger)) {}

  void Score(const SchedulingContext&, std::span<const EndpointView* const> c,
             std::span<double> scores) override {
    for (std::size_t i = 0; i < c.size(); ++i) {
      const double kv = use_ledger_ ? c[i]->load.kv_usage_est : c[i]->kv_usage;
      scores[i] = 1.0 - std::clamp(kv, 0.0, 1.0);
    }
  }

 private:
  bool use_ledger_;
};

}  // namespace

extern const PluginDescriptor kKvCacheUtilizationScorerPlugin{
    "kv-cache-utilization-scorer", PluginKind::kScorer, "1 - KV cache fraction in use",
    [](PluginParams& p) -> std::unique_ptr<SchedulingPlugin> {
      return std::make_unique<KvCacheUtilizationScorer>(p);
    }};

}  // namespace infergate
