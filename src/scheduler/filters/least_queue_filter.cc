// least-queue-filter: keeps the endpoints whose queue is close to the shortest.
//
// Algorithm. Keeps candidates with queue in [min, min + (max − min) / N], N the number of
// candidates: not only the strict minimum, so later stages still have a choice.
//
// Source: GIE v0's leastQueuingFilterFunc. With useLedger the queue is the ledger-corrected
// estimate (requests sent since the last scrape count at once), else the scraped
// vllm:num_requests_waiting.
// Alternatives: keeping the top-k shortest (GIE left this as a TODO); a pure minimum
// over-concentrates on one endpoint between scrapes.
//
// Tunables (parameters, defaults):
//   useLedger  false  use the ledger-corrected queue estimate
#include "scheduler/filters/lowest_band.h"
#include "scheduler/plugin_registry.h"

namespace infergate {
namespace {

constexpr bool kDefaultUseLedger = false;

class LeastQueueFilter final : public FilterPlugin {
 public:
  explicit LeastQueueFilter(PluginParams& p)
      : use_ledger_(p.Bool("useLedger", kDefaultUseLedger)) {}

  FilterVerdict Filter(const SchedulingContext&, CandidateList& c) override {
    if (use_ledger_) {
      KeepLowestBand(
          c, [](const EndpointView& v) { return v.load.waiting_est; }, true);
    } else {
      KeepLowestBand(
          c, [](const EndpointView& v) { return v.waiting; }, true);
    }
    return FilterVerdict::kContinue;
  }

 private:
  bool use_ledger_;
};

}  // namespace

extern const PluginDescriptor kLeastQueueFilterPlugin{
    "least-queue-filter", PluginKind::kFilter,
    "keeps endpoints with queue within (max-min)/N of the shortest",
    [](PluginParams& p) -> std::unique_ptr<SchedulingPlugin> {
      return std::make_unique<LeastQueueFilter>(p);
    }};

}  // namespace infergate
