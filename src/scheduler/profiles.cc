#include "scheduler/profiles.h"

#include <string>

namespace infergate {
namespace {

EndpointPickerConfig Single(std::vector<PluginSpec> plugins, std::vector<ProfilePluginRef> refs) {
  EndpointPickerConfig c;
  c.plugins = std::move(plugins);
  c.scheduling_profiles.push_back(SchedulingProfileSpec{"default", std::move(refs)});
  return c;
}

NamedProfile RoundRobin() {
  NamedProfile p{"round-robin", "every ready endpoint in turn (plain gateway)", {}, false, false};
  p.config = Single({{"round-robin-picker", "", {}}}, {{"round-robin-picker", std::nullopt}});
  return p;
}

NamedProfile GieV0() {
  NamedProfile p{
      "gie-v0", "GIE v0 decision tree (queue, KV, LoRA), random choice", {}, false, false};
  p.config = Single({{"decision-tree-filter", "", {}}, {"random-picker", "", {}}},
                    {{"decision-tree-filter", std::nullopt}, {"random-picker", std::nullopt}});
  return p;
}

NamedProfile GieDefault(bool ledger) {
  NamedProfile p{ledger ? "gie-ledger" : "gie-default",
                 ledger ? "gie-default with ledger-corrected queue and KV"
                        : "GIE v1 default: queue x2, KV x2, prefix x3, max score",
                 {},
                 true,
                 false};
  std::map<std::string, std::string> params;
  if (ledger) params["useLedger"] = "true";
  p.config = Single({{"queue-scorer", "", params},
                     {"kv-cache-utilization-scorer", "", params},
                     {"prefix-cache-scorer", "", {}},
                     {"max-score-picker", "", {}}},
                    {{"queue-scorer", 2.0},
                     {"kv-cache-utilization-scorer", 2.0},
                     {"prefix-cache-scorer", 3.0},
                     {"max-score-picker", std::nullopt}});
  return p;
}

NamedProfile Infergate() {
  NamedProfile p{"infergate", "session affinity, KV headroom, predicted-TTFT cost model in tokens",
                 {},          true,
                 true,        true};
  p.config = Single({{"session-affinity-filter", "", {}},
                     {"kv-headroom-filter", "", {}},
                     {"predicted-ttft-scorer", "", {}},
                     {"max-score-picker", "", {}}},
                    {{"session-affinity-filter", std::nullopt},
                     {"kv-headroom-filter", std::nullopt},
                     {"predicted-ttft-scorer", 1.0},
                     {"max-score-picker", std::nullopt}});
  return p;
}

}  // namespace

std::vector<std::string_view> NamedProfileNames() {
  return {"round-robin", "gie-v0", "gie-default", "gie-ledger", "infergate"};
}

Result<NamedProfile> FindNamedProfile(std::string_view name) {
  if (name == "round-robin") return RoundRobin();
  if (name == "gie-v0") return GieV0();
  if (name == "gie-default") return GieDefault(false);
  if (name == "gie-ledger") return GieDefault(true);
  if (name == "infergate") return Infergate();
  std::string known;
  for (std::string_view n : NamedProfileNames())
    known += (known.empty() ? "" : ", ") + std::string(n);
  return Error{"unknown scheduling profile '" + std::string(name) + "' (known: " + known + ")"};
}

}  // namespace infergate
