// Classify: the step of the inference request path that turns what a request says (its
// body's model, its objective and fairness headers) and what its pool is configured with
// (InferenceModels, InferenceObjectives, InferenceModelRewrites) into how it is scheduled:
// the model it is sent as, its criticality and priority band, its fairness flow.
//
// Resolution, in order:
//   model     an InferenceModel (legacy) named by the body's model picks a weighted target
//             and sets the criticality (and spec.priority when given); else the pool's
//             InferenceModelRewrite rule that names the model exactly, else its fallback
//             rule (empty matches), picks a weighted target; else the model is sent as is
//             (known = false: the caller checks the pool's servers serve it).
//   objective the header x-llm-d-inference-objective (else x-gateway-inference-objective)
//             names one of the pool's InferenceObjectives: its priority (< 0 sheddable,
//             > 0 critical: never shed by a profile, as a priority header always was);
//             an integer is taken as the priority itself, and Critical / Standard /
//             Sheddable as a criticality (the forms the gateway accepted before
//             InferenceObjective); anything else leaves the model's settings.
//   fairness  x-llm-d-inference-fairness-id (else x-gateway-inference-fairness-id).
//
// Pure: no I/O, no Asio; the weighted choice among targets is the caller's (it keeps
// one smooth round robin per model or rule), passed as a function.
// Thread-safety: Classify is reentrant; its result points into `pool`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "config/snapshot.h"
#include "scheduler/request.h"

namespace infergate::gateway {

// Request headers (names as clients send them; lookups are case-insensitive).
inline constexpr std::string_view kObjectiveHeader = "x-llm-d-inference-objective";
inline constexpr std::string_view kLegacyObjectiveHeader = "x-gateway-inference-objective";
inline constexpr std::string_view kFairnessHeader = "x-llm-d-inference-fairness-id";
inline constexpr std::string_view kLegacyFairnessHeader = "x-gateway-inference-fairness-id";
// Response header of a request the gateway refused (shed, queue full, queue TTL, ...).
inline constexpr std::string_view kDroppedReasonHeader = "x-llm-d-request-dropped-reason";

// Chooses one of a model's or rule's targets: `owner` is the config::ModelRoute or
// config::RewriteRoute, `weights` its targets' weights; returns an index into them.
using ChooseTarget =
    std::function<std::size_t(const void* owner, std::span<const std::uint32_t> weights)>;

struct ClassifyInput {
  std::string_view model;                       // the body's "model"
  std::optional<std::string_view> objective;    // the objective header's value, when sent
  std::optional<std::string_view> fairness_id;  // the fairness header's value, when sent
};

struct RequestClass {
  std::string target;  // the model the request is sent as (the body is rewritten to it)
  Criticality criticality = Criticality::kStandard;
  int priority = 0;
  std::string fairness_id;
  // Set when the target is a LoRA adapter of an InferenceModel's base model.
  bool lora = false;
  // What matched (pointers into the pool's configuration), when anything did.
  const config::ModelRoute* model = nullptr;
  const config::RewriteRoute* rewrite = nullptr;
  const config::ObjectiveRoute* objective = nullptr;

  // True when the pool's configuration names the model (an InferenceModel or a rewrite).
  bool known() const { return model != nullptr || rewrite != nullptr; }
  bool rewritten(std::string_view requested) const { return target != requested; }
};

Criticality FromConfig(config::Criticality c);
std::string_view CriticalityLabel(Criticality c);

RequestClass Classify(const ClassifyInput& in, const config::PoolInfo& pool,
                      const ChooseTarget& choose);

}  // namespace infergate::gateway
