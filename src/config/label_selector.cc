// Label selectors with matchExpressions, evaluated as Kubernetes evaluates them.
#include <algorithm>

#include "config/resources.h"

namespace infergate::config {

bool Satisfies(const Labels& labels, const LabelRequirement& requirement) {
  auto it = labels.find(requirement.key);
  const bool present = it != labels.end();
  auto listed = [&] {
    return present && std::find(requirement.values.begin(), requirement.values.end(), it->second) !=
                          requirement.values.end();
  };
  switch (requirement.op) {
    case SelectorOperator::kIn:
      return listed();
    case SelectorOperator::kNotIn:
      return !listed();
    case SelectorOperator::kExists:
      return present;
    case SelectorOperator::kDoesNotExist:
      return !present;
  }
  return false;
}

bool SelectorMatches(const Labels& match_labels, const std::vector<LabelRequirement>& expressions,
                     const Labels& labels) {
  if (match_labels.empty() && expressions.empty()) return false;
  for (const auto& [key, value] : match_labels) {
    auto it = labels.find(key);
    if (it == labels.end() || it->second != value) return false;
  }
  for (const auto& r : expressions) {
    if (!Satisfies(labels, r)) return false;
  }
  return true;
}

std::string ToString(const LabelRequirement& requirement) {
  auto values = [&] {
    std::string out = "(";
    for (std::size_t i = 0; i < requirement.values.size(); ++i) {
      if (i > 0) out += ",";
      out += requirement.values[i];
    }
    return out + ")";
  };
  switch (requirement.op) {
    case SelectorOperator::kIn:
      return requirement.key + " in " + values();
    case SelectorOperator::kNotIn:
      return requirement.key + " notin " + values();
    case SelectorOperator::kExists:
      return requirement.key;
    case SelectorOperator::kDoesNotExist:
      return "!" + requirement.key;
  }
  return requirement.key;
}

}  // namespace infergate::config
