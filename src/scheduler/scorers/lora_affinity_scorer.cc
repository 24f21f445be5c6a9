// lora-affinity-scorer: prefers endpoints where the request's LoRA adapter is cheap.
//
// Algorithm. For a request naming an adapter, each candidate scores by the adapter's state
// in vllm:lora_requests_info:
//   running (loaded and serving)   1.0
//   waiting (being loaded)         waitingScore
//   not loaded, a slot is free     freeSlotScore
//   not loaded, every slot taken   0
// Requests without an adapter score 1 everywhere (the scorer is neutral).
//
// Source: GIE v1's lora-affinity-scorer (graded preference for active, then loadable
// adapters); the grades here are infergate's defaults.
// Alternatives: the lora-affinity-filter's probabilistic split (GIE v0); pricing the load
// in seconds (predicted-ttft-scorer).
//
// Tunables (parameters, defaults):
//   waitingScore   0.8
//   freeSlotScore  0.6
#include "scheduler/plugin_registry.h"

namespace infergate {
namespace {

constexpr double kDefaultWaitingScore = 0.8;
constexpr double kDefaultFreeSlotScore = 0.6;

class LoraAffinityScorer final : public ScorerPlugin {
 public:
  explicit LoraAffinityScorer(PluginParams& p)
      : waiting_(p.Double("waitingScore", kDefaultWaitingScore, 0, 1)),
        free_slot_(p.Double("freeSlotScore", kDefaultFreeSlotScore, 0, 1)) {}

  void Score(const SchedulingContext& ctx, std::span<const EndpointView* const> c,
             std::span<double> scores) override {
    const std::string_view adapter = ctx.request->lora_adapter;
    for (std::size_t i = 0; i < c.size(); ++i) {
      const EndpointMetrics& m = *c[i]->metrics;
      if (adapter.empty() || m.HasRunningAdapter(adapter)) {
        scores[i] = 1.0;
      } else if (m.HasWaitingAdapter(adapter)) {
        scores[i] = waiting_;
      } else {
        const auto loaded = m.running_lora_adapters.size() + m.waiting_lora_adapters.size();
        scores[i] = static_cast<int>(loaded) < m.max_lora ? free_slot_ : 0.0;
      }
    }
  }

 private:
  double waiting_;
  double free_slot_;
};

}  // namespace

extern const PluginDescriptor kLoraAffinityScorerPlugin{
    "lora-affinity-scorer", PluginKind::kScorer,
    "1 if the adapter is running, less if loading or a slot is free, 0 if no slot",
    [](PluginParams& p) -> std::unique_ptr<SchedulingPlugin> {
      return std::make_unique<LoraAffinityScorer>(p);
    }};

}  // namespace infergate
