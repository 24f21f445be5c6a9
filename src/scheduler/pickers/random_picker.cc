// random-picker: chooses uniformly at random among the candidates, ignoring scores.
//
// Algorithm. A partial Fisher-Yates shuffle of the candidate indices with the scheduler's
// seeded Rng; the first is the choice, the next ones the fallbacks.
//
// Source: GIE v0's final step (rand.Intn over the pods its decision tree kept) and GIE v1's
// random-picker. Alternatives: max-score-picker when the scores carry information.
//
// Tunables: none.
#include <numeric>

#include "scheduler/plugin_registry.h"

namespace infergate {
namespace {

class RandomPicker final : public PickerPlugin {
 public:
  explicit RandomPicker(PluginParams&) {}

  void Pick(const SchedulingContext& ctx, std::span<const EndpointView* const> c,
            std::span<const double>, std::size_t count,
            std::vector<std::uint32_t>& order) override {
    index_.resize(c.size());
    std::iota(index_.begin(), index_.end(), 0u);
    for (std::size_t k = 0; k < count && k < c.size(); ++k) {
      std::size_t j = k + ctx.rng->Uniform(c.size() - k);
      std::swap(index_[k], index_[j]);
      order.push_back(index_[k]);
    }
  }

  std::uint32_t needs() const override { return 0; }

 private:
  std::vector<std::uint32_t> index_;
};

}  // namespace

extern const PluginDescriptor kRandomPickerPlugin{
    "random-picker", PluginKind::kPicker, "uniformly random candidate",
    [](PluginParams& p) -> std::unique_ptr<SchedulingPlugin> {
      return std::make_unique<RandomPicker>(p);
    }};

}  // namespace infergate
