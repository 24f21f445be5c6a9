// session-affinity-filter: keeps a session on the endpoint that served it.
//
// Algorithm. When the request carries a session key and the session table names an
// endpoint that is still a candidate (ready, fresh metrics, not filtered out earlier) and
// is not saturated (the saturation detector's per-endpoint utilisation below
// maxUtilisation), the candidates narrow to that endpoint alone. Otherwise nothing
// changes, and the endpoint the request is dispatched to becomes the session's new home
// (Scheduler::Dispatch records it).
//
// Source: sticky sessions as in GIE's session-affinity scorer and classic load balancers;
// multi-turn chats reuse their history's KV cache only if they return to the same server.
// Alternatives: a scorer (session-affinity-scorer) that only biases the choice; this
// filter is strict while the endpoint is healthy, and gives way as soon as it saturates.
//
// Tunables (parameters, defaults):
//   maxUtilisation  1.0  stick only while max(queue/5, kv/0.8) of the endpoint is below this
#include "scheduler/plugin_registry.h"

namespace infergate {
namespace {

constexpr double kDefaultMaxUtilisation = 1.0;

class SessionAffinityFilter final : public FilterPlugin {
 public:
  explicit SessionAffinityFilter(PluginParams& p)
      : max_utilisation_(p.Double("maxUtilisation", kDefaultMaxUtilisation, 0, 1e9)) {}

  FilterVerdict Filter(const SchedulingContext& ctx, CandidateList& c) override {
    if (ctx.request->session_key.empty() || ctx.sessions == nullptr) {
      return FilterVerdict::kContinue;
    }
    const std::string* home = ctx.sessions->Lookup(ctx.request->session_key, ctx.now);
    if (home == nullptr) return FilterVerdict::kContinue;
    for (const EndpointView* v : c) {
      if (v->id != *home) continue;
      if (ctx.saturation->Utilisation(*v) < max_utilisation_) c.assign(1, v);
      break;
    }
    return FilterVerdict::kContinue;
  }

 private:
  double max_utilisation_;
};

}  // namespace

extern const PluginDescriptor kSessionAffinityFilterPlugin{
    "session-affinity-filter", PluginKind::kFilter,
    "keeps a session on its previous endpoint while that endpoint is not saturated",
    [](PluginParams& p) -> std::unique_ptr<SchedulingPlugin> {
      return std::make_unique<SessionAffinityFilter>(p);
    }};

}  // namespace infergate
