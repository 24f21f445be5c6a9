// max-score-picker: chooses the candidate with the highest total score.
//
// Algorithm. Repeatedly takes the highest remaining total; among equal totals each is
// equally likely (reservoir sampling with the scheduler's seeded Rng). The first taken is
// the choice, the next ones the fallbacks. O(N · count).
//
// Source: GIE v1 max-score-picker (random tie-break). Ties matter: with identical metrics
// (an idle pool) a fixed tie-break would send everything to the first endpoint.
// Alternatives: weighted-random-picker spreads load probabilistically (softer, but picks
// visibly worse endpoints sometimes); a softmax with temperature (Dynamo) likewise.
//
// Tunables: none.
#include "scheduler/plugin_registry.h"

namespace infergate {
namespace {

class MaxScorePicker final : public PickerPlugin {
 public:
  explicit MaxScorePicker(PluginParams&) {}

  void Pick(const SchedulingContext& ctx, std::span<const EndpointView* const> c,
            std::span<const double> totals, std::size_t count,
            std::vector<std::uint32_t>& order) override {
    taken_.assign(c.size(), 0);
    for (std::size_t k = 0; k < count && k < c.size(); ++k) {
      std::size_t best = c.size();
      std::uint64_t ties = 0;
      for (std::size_t i = 0; i < c.size(); ++i) {
        if (taken_[i]) continue;
        if (best == c.size() || totals[i] > totals[best]) {
          best = i;
          ties = 1;
        } else if (totals[i] == totals[best] && ctx.rng->Uniform(++ties) == 0) {
          best = i;
        }
      }
      taken_[best] = 1;
      order.push_back(static_cast<std::uint32_t>(best));
    }
  }

  std::uint32_t needs() const override { return 0; }

 private:
  std::vector<std::uint8_t> taken_;
};

}  // namespace

extern const PluginDescriptor kMaxScorePickerPlugin{
    "max-score-picker", PluginKind::kPicker, "highest total score, random among ties",
    [](PluginParams& p) -> std::unique_ptr<SchedulingPlugin> {
      return std::make_unique<MaxScorePicker>(p);
    }};

}  // namespace infergate
