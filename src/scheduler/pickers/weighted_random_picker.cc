// weighted-random-picker: chooses at random with probability proportional to the score.
//
// Algorithm. Efraimidis-Spirakis sampling without replacement: each candidate draws
// key = ln(u) / total (u uniform in (0, 1]); the largest keys win, in order. The first is
// the choice, the next the fallbacks. Candidates with total 0 come last (uniformly among
// themselves); when every total is 0 the choice is uniform.
//
// Source: GIE v1's weighted-random-picker; the sampling method is from Efraimidis and
// Spirakis, "Weighted random sampling with a reservoir" (2006).
// Alternatives: max-score-picker (deterministic but for ties); softmax with a temperature.
//
// Tunables: none.
#include <cmath>
#include <limits>

#include "scheduler/plugin_registry.h"

namespace infergate {
namespace {

class WeightedRandomPicker final : public PickerPlugin {
 public:
  explicit WeightedRandomPicker(PluginParams&) {}

  void Pick(const SchedulingContext& ctx, std::span<const EndpointView* const> c,
            std::span<const double> totals, std::size_t count,
            std::vector<std::uint32_t>& order) override {
    keys_.resize(c.size());
    constexpr double kLowest = -std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < c.size(); ++i) {
      const double u = 1.0 - ctx.rng->NextDouble();  // (0, 1]
      // Zero weights get keys below every positive weight's, ordered randomly.
      keys_[i] = totals[i] > 0 ? std::log(u) / totals[i] : -1e300 + u;
    }
    for (std::size_t k = 0; k < count && k < c.size(); ++k) {
      std::size_t best = 0;
      for (std::size_t i = 1; i < c.size(); ++i) {
        if (keys_[i] > keys_[best]) best = i;
      }
      order.push_back(static_cast<std::uint32_t>(best));
      keys_[best] = kLowest;
    }
  }

  std::uint32_t needs() const override { return 0; }

 private:
  std::vector<double> keys_;
};

}  // namespace

extern const PluginDescriptor kWeightedRandomPickerPlugin{
    "weighted-random-picker", PluginKind::kPicker, "random, with probability proportional to score",
    [](PluginParams& p) -> std::unique_ptr<SchedulingPlugin> {
      return std::make_unique<WeightedRandomPicker>(p);
    }};

}  // namespace infergate
