#include "gateway/classify.h"

#include <cctype>
#include <charconv>
#include <vector>

namespace infergate::gateway {
namespace {

bool EqualsNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
    if (std::tolower(x) != std::tolower(y)) return false;
  }
  return true;
}

template <class Targets>
std::size_t Choose(const void* owner, const Targets& targets, const ChooseTarget& choose) {
  if (targets.size() <= 1 || !choose) return 0;
  std::vector<std::uint32_t> weights;
  weights.reserve(targets.size());
  for (const auto& t : targets) weights.push_back(t.weight);
  const std::size_t i = choose(owner, weights);
  return i < targets.size() ? i : 0;
}

}  // namespace

Criticality FromConfig(config::Criticality c) {
  switch (c) {
    case config::Criticality::kCritical:
      return Criticality::kCritical;
    case config::Criticality::kSheddable:
      return Criticality::kSheddable;
    default:
      return Criticality::kStandard;
  }
}

std::string_view CriticalityLabel(Criticality c) {
  return c == Criticality::kCritical    ? "Critical"
         : c == Criticality::kSheddable ? "Sheddable"
                                        : "Standard";
}

RequestClass Classify(const ClassifyInput& in, const config::PoolInfo& pool,
                      const ChooseTarget& choose) {
  RequestClass c;
  c.target = std::string(in.model);
  if (const config::ModelRoute* model = pool.FindModel(in.model)) {
    c.model = model;
    c.target = model->targets[Choose(model, model->targets, choose)].name;
    c.criticality = FromConfig(model->criticality);
    c.priority = model->priority.value_or(PriorityOf(c.criticality));
    c.lora = c.target != model->model_name;
  } else if (const config::RewriteRoute* rewrite = pool.FindRewrite(in.model)) {
    c.rewrite = rewrite;
    c.target = rewrite->targets[Choose(rewrite, rewrite->targets, choose)].name;
  }
  if (in.objective) {
    const std::string_view v = *in.objective;
    int n = 0;
    const auto r = std::from_chars(v.data(), v.data() + v.size(), n);
    if (const config::ObjectiveRoute* objective = pool.FindObjective(v)) {
      c.objective = objective;
      c.priority = objective->priority;
      c.criticality =
          objective->priority > 0 ? Criticality::kCritical : CriticalityOf(objective->priority);
    } else if (!v.empty() && r.ec == std::errc() && r.ptr == v.data() + v.size()) {
      c.priority = n;
      c.criticality = n > 0 ? Criticality::kCritical : CriticalityOf(n);
    } else if (EqualsNoCase(v, "Critical")) {
      c.criticality = Criticality::kCritical;
      c.priority = PriorityOf(c.criticality);
    } else if (EqualsNoCase(v, "Sheddable")) {
      c.criticality = Criticality::kSheddable;
      c.priority = PriorityOf(c.criticality);
    } else if (EqualsNoCase(v, "Standard")) {
      c.criticality = Criticality::kStandard;
      c.priority = 0;
    }
  }
  if (in.fairness_id) c.fairness_id = std::string(*in.fairness_id);
  return c;
}

}  // namespace infergate::gateway
