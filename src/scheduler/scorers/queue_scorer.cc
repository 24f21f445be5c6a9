// queue-scorer: prefers endpoints with shorter waiting queues.
//
// Algorithm. With q each candidate's queue and minQ, maxQ over the candidates:
//   score = (maxQ − q) / (maxQ − minQ), and 1 for every candidate when maxQ = minQ.
// Relative, so it only ranks; the weight sets how much ranking by queue matters.
//
// Source: GIE v1 queue-scorer (weight 2 in its default profile), reading
// vllm:num_requests_waiting. With useLedger the queue is the ledger-corrected estimate
// (scheduler/endpoint_view.h): without it every request between two scrapes sees the same
// queues, which is how a burst herds onto one endpoint.
// Alternatives: an absolute scale (q / threshold) keeps meaning across decisions but
// saturates; counting tokens instead of requests is the predicted-ttft-scorer's job.
//
// Tunables (parameters, defaults):
//   useLedger  false  score the ledger-corrected queue estimate
#include <algorithm>
#include <limits>

#include "scheduler/plugin_registry.h"

namespace infergate {
namespace {

constexpr bool kDefaultUseLedger = false;

class QueueScorer final : public ScorerPlugin {
 public:
  explicit QueueScorer(PluginParams& p) : use_ledger_(p.Bool("useLedger", kDefaultUseLedger)) {}

  void Score(const SchedulingContext&, std::span<const EndpointView* const> c,
             std::span<double> scores) override {
    double lo = std::numeric_limits<double>::infinity();
    double hi = -lo;
    for (const EndpointView* v : c) {
      lo = std::min(lo, Queue(*v));
      hi = std::max(hi, Queue(*v));
    }
    for (std::size_t i = 0; i < c.size(); ++i) {
      scores[i] = hi == lo ? 1.0 : (hi - Queue(*c[i])) / (hi - lo);
    }
  }

 private:
  double Queue(const EndpointView& v) const { return use_ledger_ ? v.load.waiting_est : v.waiting; }
  bool use_ledger_;
};

}  // namespace

extern const PluginDescriptor kQueueScorerPlugin{
    "queue-scorer", PluginKind::kScorer, "(maxQ - q) / (maxQ - minQ) over the candidates",
    [](PluginParams& p) -> std::unique_ptr<SchedulingPlugin> {
      return std::make_unique<QueueScorer>(p);
    }};

}  // namespace infergate
