// session-affinity-scorer: biases a session towards the endpoint that served it.
//
// Algorithm. score = 1 for the endpoint the session table names for the request's session
// key, 0 for every other candidate (and 0 for all when there is no key or no entry).
// Combined with other scorers by weight, so a loaded home endpoint can still lose.
//
// Source: GIE's session-affinity scorer. Alternatives: session-affinity-filter, which is
// strict until the endpoint saturates (used by the infergate profile).
//
// Tunables: none.
#include "scheduler/plugin_registry.h"

namespace infergate {
namespace {

class SessionAffinityScorer final : public ScorerPlugin {
 public:
  explicit SessionAffinityScorer(PluginParams&) {}

  void Score(const SchedulingContext& ctx, std::span<const EndpointView* const> c,
             std::span<double> scores) override {
    const std::string* home = nullptr;
    if (!ctx.request->session_key.empty() && ctx.sessions != nullptr) {
      home = ctx.sessions->Lookup(ctx.request->session_key, ctx.now);
    }
    for (std::size_t i = 0; i < c.size(); ++i) {
      scores[i] = home != nullptr && c[i]->id == *home ? 1.0 : 0.0;
    }
  }

  std::uint32_t needs() const override { return 0; }
};

}  // namespace

extern const PluginDescriptor kSessionAffinityScorerPlugin{
    "session-affinity-scorer", PluginKind::kScorer,
    "1 for the endpoint that served the request's session, else 0",
    [](PluginParams& p) -> std::unique_ptr<SchedulingPlugin> {
      return std::make_unique<SessionAffinityScorer>(p);
    }};

}  // namespace infergate
