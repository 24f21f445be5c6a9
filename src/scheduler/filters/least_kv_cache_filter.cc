// least-kv-cache-filter: keeps the endpoints whose KV-cache use is close to the lowest.
//
// Algorithm. Keeps candidates with KV use in [min, min + (max − min) / N], N the number of
// candidates.
//
// Source: GIE v0's leastKVCacheFilterFunc. With useLedger the KV use is the ledger-corrected
// estimate (prompts sent since the last scrape count at once), else the scraped fraction.
// Alternatives: a fixed threshold (GIE's kvCacheThreshold) cuts too hard when all
// endpoints are busy; the band adapts to the spread.
//
// Tunables (parameters, defaults):
//   useLedger  false  use the ledger-corrected KV estimate
#include "scheduler/filters/lowest_band.h"
#include "scheduler/plugin_registry.h"

namespace infergate {
namespace {

constexpr bool kDefaultUseLedger = false;

class LeastKvCacheFilter final : public FilterPlugin {
 public:
  explicit LeastKvCacheFilter(PluginParams& p)
      : use_ledger_(p.Bool("useLedger", kDefaultUseLedger)) {}

  FilterVerdict Filter(const SchedulingContext&, CandidateList& c) override {
    if (use_ledger_) {
      KeepLowestBand(
          c, [](const EndpointView& v) { return v.load.kv_usage_est; }, false);
    } else {
      KeepLowestBand(
          c, [](const EndpointView& v) { return v.kv_usage; }, false);
    }
    return FilterVerdict::kContinue;
  }

 private:
  bool use_ledger_;
};

}  // namespace

extern const PluginDescriptor kLeastKvCacheFilterPlugin{
    "least-kv-cache-filter", PluginKind::kFilter,
    "keeps endpoints with KV use within (max-min)/N of the lowest",
    [](PluginParams& p) -> std::unique_ptr<SchedulingPlugin> {
      return std::make_unique<LeastKvCacheFilter>(p);
    }};

}  // namespace infergate
