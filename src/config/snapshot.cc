#include "config/snapshot.h"

#include <fmt/format.h>

#include <algorithm>

namespace infergate::config {

const ModelRoute* PoolInfo::FindModel(std::string_view model_name) const {
  auto it = std::lower_bound(
      models.begin(), models.end(), model_name,
      [](const ModelRoute& m, std::string_view name) { return m.model_name < name; });
  if (it == models.end() || it->model_name != model_name) return nullptr;
  return &*it;
}

const ObjectiveRoute* PoolInfo::FindObjective(std::string_view name) const {
  auto it =
      std::lower_bound(objectives.begin(), objectives.end(), name,
                       [](const ObjectiveRoute& o, std::string_view n) { return o.name < n; });
  if (it == objectives.end() || it->name != name) return nullptr;
  return &*it;
}

const RewriteRoute* PoolInfo::FindRewrite(std::string_view model) const {
  const RewriteRoute* fallback = nullptr;
  for (const RewriteRoute& r : rewrites) {
    if (r.models.empty()) {
      if (!fallback) fallback = &r;
      continue;
    }
    if (std::find(r.models.begin(), r.models.end(), model) != r.models.end()) return &r;
  }
  return fallback;
}

std::string RouteRule::Id() const { return fmt::format("{}/rules[{}]", route, rule_index); }

const ResolvedGateway* ConfigSnapshot::FindGateway(std::string_view namespace_name,
                                                   std::string_view name) const {
  for (const auto& gw : gateways) {
    if (gw.namespace_name == namespace_name && gw.name == name) return &gw;
  }
  return nullptr;
}

const Backend* ConfigSnapshot::FindPool(std::string_view namespace_name,
                                        std::string_view name) const {
  for (const auto& pool : pools) {
    if (pool->namespace_name == namespace_name && pool->name == name) return pool.get();
  }
  return nullptr;
}

const EndpointPickerConfig* ConfigSnapshot::FindPickerConfig(std::string_view name) const {
  for (const auto& config : objects.picker_configs) {
    if (config.meta.name == name) return &config;
  }
  return nullptr;
}

}  // namespace infergate::config
