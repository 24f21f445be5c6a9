// Resolution of what attaches to InferencePools: InferenceModels, InferenceObjectives and
// InferenceModelRewrites.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <tuple>

#include "config/decode.h"
#include "config/resolver.h"
#include "config/units.h"

namespace infergate::config::resolve_internal {

void Resolver::AttachModels() {
  // (pool key, modelName) -> the model that claimed it first.
  std::map<std::pair<std::string, std::string>, const InferenceModel*> claimed;
  for (const auto& model : objects_.models) {
    if (models_[model.meta.Key()] != &model || model.pool_ref.name.empty()) continue;
    std::string pool_key = model.meta.namespace_name + "/" + model.pool_ref.name;
    auto it = pool_backends_.find(pool_key);
    if (it == pool_backends_.end()) {
      Error(model.meta, "InferenceModel", model.pool_ref.origin.path + ".name",
            model.pool_ref.origin.line,
            fmt::format("InferencePool {} not found in namespace {}", Quote(model.pool_ref.name),
                        Quote(model.meta.namespace_name)));
      continue;
    }
    if (model.model_name.empty()) continue;
    auto [c, inserted] = claimed.emplace(std::make_pair(pool_key, model.model_name), &model);
    if (!inserted) {
      Error(model.meta, "InferenceModel", "spec.modelName", model.meta.source.line,
            fmt::format(
                "model {} is already served in InferencePool {} by {} ({})",
                Quote(model.model_name), Quote(pool_key),
                ObjectLabel("InferenceModel", c->second->meta.namespace_name, c->second->meta.name),
                Where(c->second->meta.source)));
      continue;
    }
    ModelRoute route;
    route.object = model.meta.Key();
    route.model_name = model.model_name;
    route.criticality = model.criticality;
    route.priority = model.priority;
    route.targets = model.target_models;
    if (route.targets.empty()) route.targets.push_back({model.model_name, 1});
    for (const auto& t : route.targets) route.total_weight += t.weight;
    auto& pool = std::const_pointer_cast<Backend>(it->second)->pool;
    pool.models.push_back(std::move(route));
  }
  for (auto& [key, backend] : pool_backends_) {
    (void)key;
    auto& models = backend->pool.models;
    std::sort(models.begin(), models.end(),
              [](const ModelRoute& a, const ModelRoute& b) { return a.model_name < b.model_name; });
  }
}

// The pool an object's poolRef names (in the object's namespace), or nullptr after
// reporting it missing.
Backend* Resolver::PoolOf(const ObjectMeta& meta, std::string_view kind, const PoolRef& ref) {
  auto it = pool_backends_.find(meta.namespace_name + "/" + ref.name);
  if (it != pool_backends_.end()) return std::const_pointer_cast<Backend>(it->second).get();
  Error(meta, kind, ref.origin.path + ".name", ref.origin.line,
        fmt::format("InferencePool {} not found in namespace {}", Quote(ref.name),
                    Quote(meta.namespace_name)));
  return nullptr;
}

void Resolver::AttachObjectives() {
  for (const auto& objective : objectives_) {
    const InferenceObjective& o = *objective.second;
    if (o.pool_ref.name.empty() || Incomplete("InferenceObjective", o.meta)) continue;
    Backend* pool = PoolOf(o.meta, "InferenceObjective", o.pool_ref);
    if (!pool) continue;
    pool->pool.objectives.push_back({o.meta.Key(), o.meta.name, o.priority.value_or(0)});
  }
  for (auto& [key, backend] : pool_backends_) {
    (void)key;
    auto& objectives = backend->pool.objectives;
    std::sort(objectives.begin(), objectives.end(),
              [](const ObjectiveRoute& a, const ObjectiveRoute& b) { return a.name < b.name; });
  }
}

void Resolver::AttachRewrites() {
  // Per pool: which rule claimed each exact model name, and the fallback rule.
  std::map<std::pair<std::string, std::string>, std::string> claimed;
  std::map<std::string, std::string> fallback;
  for (const auto& entry : rewrites_) {
    const InferenceModelRewrite& rw = *entry.second;
    if (rw.pool_ref.name.empty() || Incomplete("InferenceModelRewrite", rw.meta)) continue;
    Backend* pool = PoolOf(rw.meta, "InferenceModelRewrite", rw.pool_ref);
    if (!pool) continue;
    for (std::size_t i = 0; i < rw.rules.size(); ++i) {
      const ModelRewriteRule& rule = rw.rules[i];
      if (rule.targets.empty()) continue;
      const std::string where = fmt::format("{} rules[{}]", rw.meta.Key(), i);
      bool clash = false;
      if (rule.models.empty()) {
        auto [it, inserted] = fallback.emplace(pool->id, where);
        if (!inserted) {
          Error(rw.meta, "InferenceModelRewrite", rule.origin.path + ".matches", rule.origin.line,
                fmt::format("InferencePool {} already has a rule for every other model ({})",
                            Quote(pool->id), it->second));
          clash = true;
        }
      }
      for (const auto& model : rule.models) {
        auto [it, inserted] = claimed.emplace(std::make_pair(pool->id, model), where);
        if (!inserted) {
          Error(rw.meta, "InferenceModelRewrite", rule.origin.path + ".matches", rule.origin.line,
                fmt::format("model {} is already rewritten in InferencePool {} by {}", Quote(model),
                            Quote(pool->id), it->second));
          clash = true;
        }
      }
      if (clash) continue;
      RewriteRoute route;
      route.object = rw.meta.Key();
      route.rule = i;
      route.models = rule.models;
      for (const auto& t : rule.targets) {
        route.targets.push_back({t.model, t.weight});
        route.total_weight += t.weight;
      }
      pool->pool.rewrites.push_back(std::move(route));
    }
  }
}

}  // namespace infergate::config::resolve_internal
