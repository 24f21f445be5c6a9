// lora-affinity-filter: prefers endpoints that already serve the request's LoRA adapter.
//
// Algorithm. For a request naming an adapter, splits the candidates into those with the
// adapter loaded (running or being loaded, per vllm:lora_requests_info) and those with a
// free adapter slot (fewer than max_lora loaded). Keeps the first group with probability
// affinityProbability, else the second; keeps whichever group is non-empty when only one
// is; changes nothing when both are empty or the request names no adapter.
//
// Source: GIE v0's loRASoftAffinityFilter. The small chance of choosing an endpoint with a
// free slot spreads a popular adapter over more servers instead of pinning it to one.
// Alternatives: hard affinity (only loaded endpoints) pins hot adapters; the cost-model
// profile (infergate) prices adapter loading in seconds instead (scheduler/ttft_model.h).
//
// Tunables (parameters, defaults):
//   affinityProbability  0.999  chance of keeping the endpoints with the adapter loaded
#include "scheduler/filters/lowest_band.h"
#include "scheduler/plugin_registry.h"

namespace infergate {
namespace {

constexpr double kDefaultAffinityProbability = 0.999;

class LoraAffinityFilter final : public FilterPlugin {
 public:
  explicit LoraAffinityFilter(PluginParams& p)
      : probability_(p.Double("affinityProbability", kDefaultAffinityProbability, 0, 1)) {}

  FilterVerdict Filter(const SchedulingContext& ctx, CandidateList& c) override {
    KeepLoraSoftAffinity(c, ctx.request->lora_adapter, probability_, *ctx.rng);
    return FilterVerdict::kContinue;
  }

 private:
  double probability_;
};

}  // namespace

extern const PluginDescriptor kLoraAffinityFilterPlugin{
    "lora-affinity-filter", PluginKind::kFilter,
    "prefers endpoints with the request's LoRA adapter loaded, then ones with a free slot",
    [](PluginParams& p) -> std::unique_ptr<SchedulingPlugin> {
      return std::make_unique<LoraAffinityFilter>(p);
    }};

}  // namespace infergate
