#include "scheduler/plugin_registry.h"

#include <initializer_list>

namespace infergate {

// Defined one per file in filters/, scorers/ and pickers/.
extern const PluginDescriptor kDecisionTreeFilterPlugin;
extern const PluginDescriptor kLeastQueueFilterPlugin;
extern const PluginDescriptor kLeastKvCacheFilterPlugin;
extern const PluginDescriptor kLoraAffinityFilterPlugin;
extern const PluginDescriptor kSessionAffinityFilterPlugin;
extern const PluginDescriptor kKvHeadroomFilterPlugin;
extern const PluginDescriptor kQueueScorerPlugin;
extern const PluginDescriptor kKvCacheUtilizationScorerPlugin;
extern const PluginDescriptor kPrefixCacheScorerPlugin;
extern const PluginDescriptor kLoraAffinityScorerPlugin;
extern const PluginDescriptor kSessionAffinityScorerPlugin;
extern const PluginDescriptor kPredictedTtftScorerPlugin;
extern const PluginDescriptor kMaxScorePickerPlugin;
extern const PluginDescriptor kRandomPickerPlugin;
extern const PluginDescriptor kWeightedRandomPickerPlugin;
extern const PluginDescriptor kRoundRobinPickerPlugin;

bool PluginRegistry::Register(const PluginDescriptor& descriptor) {
  return plugins_.emplace(std::string(descriptor.type), descriptor).second;
}

const PluginDescriptor* PluginRegistry::Find(std::string_view type) const {
  auto it = plugins_.find(type);
  return it == plugins_.end() ? nullptr : &it->second;
}

std::vector<PluginDescriptor> PluginRegistry::List() const {
  std::vector<PluginDescriptor> out;
  out.reserve(plugins_.size());
  for (const auto& [type, d] : plugins_) out.push_back(d);
  return out;
}

Result<std::unique_ptr<SchedulingPlugin>> PluginRegistry::Create(const PluginSpec& spec) const {
  const std::string& name = spec.name.empty() ? spec.type : spec.name;
  const PluginDescriptor* d = Find(spec.type);
  if (d == nullptr) {
    std::string known;
    for (const auto& [type, desc] : plugins_) known += (known.empty() ? "" : ", ") + type;
    return Error{"plugin '" + name + "': unknown type '" + spec.type + "' (known: " + known + ")"};
  }
  PluginParams params(name, spec.parameters);
  std::unique_ptr<SchedulingPlugin> plugin = d->factory(params);
  if (Status s = params.Check(); !s.ok()) return s.error();
  return plugin;
}

const PluginRegistry& PluginRegistry::Builtin() {
  static const PluginRegistry registry = [] {
    PluginRegistry r;
    for (const PluginDescriptor* d :
         {&kDecisionTreeFilterPlugin, &kLeastQueueFilterPlugin, &kLeastKvCacheFilterPlugin,
          &kLoraAffinityFilterPlugin, &kSessionAffinityFilterPlugin, &kKvHeadroomFilterPlugin,
          &kQueueScorerPlugin, &kKvCacheUtilizationScorerPlugin, &kPrefixCacheScorerPlugin,
          &kLoraAffinityScorerPlugin, &kSessionAffinityScorerPlugin, &kPredictedTtftScorerPlugin,
          &kMaxScorePickerPlugin, &kRandomPickerPlugin, &kWeightedRandomPickerPlugin,
          &kRoundRobinPickerPlugin}) {
      r.Register(*d);
    }
    return r;
  }();
  return registry;
}

}  // namespace infergate
