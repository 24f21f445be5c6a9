// round-robin-picker: each ready endpoint in turn.
//
// Algorithm. Candidates arrive in endpoint-slot order. The choice is the first candidate
// whose slot comes after the previous choice's (wrapping to the lowest), and the
// fallbacks are the ones after it. Keyed by slot rather than by position, so an endpoint
// joining or leaving does not make others lose or repeat their turn.
//
// Source: the plain gateway baseline (the seed's Service backend, kube-proxy style).
// Uses no metrics: a profile with only this picker routes even when nothing was scraped.
// Alternatives: random-picker (same mean, more variance).
//
// Tunables: none.
#include "scheduler/plugin_registry.h"

namespace infergate {
namespace {

class RoundRobinPicker final : public PickerPlugin {
 public:
  explicit RoundRobinPicker(PluginParams&) {}

  void Pick(const SchedulingContext&, std::span<const EndpointView* const> c,
            std::span<const double>, std::size_t count,
            std::vector<std::uint32_t>& order) override {
    std::size_t start = 0;
    if (has_last_) {
      while (start < c.size() && c[start]->slot <= last_slot_) ++start;
      if (start == c.size()) start = 0;
    }
    last_slot_ = c[start]->slot;
    has_last_ = true;
    for (std::size_t k = 0; k < count && k < c.size(); ++k) {
      order.push_back(static_cast<std::uint32_t>((start + k) % c.size()));
    }
  }

  std::uint32_t needs() const override { return 0; }

 private:
  bool has_last_ = false;
  std::uint32_t last_slot_ = 0;
};

}  // namespace

extern const PluginDescriptor kRoundRobinPickerPlugin{
    "round-robin-picker", PluginKind::kPicker, "each ready endpoint in turn; needs no metrics",
    [](PluginParams& p) -> std::unique_ptr<SchedulingPlugin> {
      return std::make_unique<RoundRobinPicker>(p);
    }};

}  // namespace infergate
