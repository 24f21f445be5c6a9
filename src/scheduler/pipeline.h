// One scheduling profile, built: its filters, weighted scorers and picker.
//
// Build() validates an EndpointPickerConfig and instantiates the chosen profile's plugins
// from a registry: every plugin referenced must exist, have a known type and valid
// parameters; a profile has at most one picker (max-score-picker when it names none, as
// GIE does) and scorer weights must be positive. Plugins declared but not referenced by
// the chosen profile are still validated, so a typo anywhere in the document is an error.
//
// Run() applies the profile to a candidate list. A filter's kShed verdict is ignored for
// Critical requests (they are never shed): the filter's input is kept instead.
//
// Thread-safety: not synchronised (plugins keep state); one per scheduler.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "scheduler/picker_config.h"
#include "scheduler/plugin.h"
#include "scheduler/plugin_registry.h"

namespace infergate {

// Receives how long each stage of a pipeline run took, for plugin duration metrics. The
// pipeline reads time only from clock(), and only on the runs it samples.
class StageObserver {
 public:
  virtual ~StageObserver() = default;
  virtual const Clock& clock() const = 0;
  // Called once per stage when the observer is installed, in stage order: `extension_point`
  // is Filter, Scorer or Picker; `type` and `name` are the plugin's.
  virtual void Describe(std::size_t stage, std::string_view extension_point, std::string_view type,
                        std::string_view name) = 0;
  // One sampled run of stage `stage` took `duration`.
  virtual void Observe(std::size_t stage, TimeNs duration) = 0;
};

class SchedulingPipeline {
 public:
  // Builds the profile named `profile_name`, or the only profile when it is empty.
  static Result<std::unique_ptr<SchedulingPipeline>> Build(
      const EndpointPickerConfig& config, std::string_view profile_name = {},
      const PluginRegistry& registry = PluginRegistry::Builtin());

  struct Outcome {
    FilterVerdict verdict = FilterVerdict::kContinue;
    // The plugin (its configured name) that shed or rejected, or emptied the candidates.
    std::string_view decided_by;
  };

  // Filters `candidates` in place, scores the survivors and lets the picker append to
  // `order` at most `count` indices into the filtered `candidates`, best first.
  // Requires candidates non-empty and count >= 1. On kShed/kReject `order` stays empty;
  // kContinue with an empty `order` means the filters removed every candidate.
  Outcome Run(const SchedulingContext& ctx, CandidateList& candidates, std::size_t count,
              std::vector<std::uint32_t>& order);

  // Late binding: true when one of the profile's plugins has a hold rule.
  bool has_hold_rule() const { return has_hold_rule_; }
  // True when a plugin with a hold rule wants `request` kept in the gateway queue rather
  // than sent to any of `candidates` now.
  bool WantsHold(const SchedulingContext& ctx, std::span<const EndpointView* const> candidates);

  const std::string& profile_name() const { return profile_name_; }
  // Union of the plugins' PluginNeeds bits.
  std::uint32_t needs() const { return needs_; }
  // Settings carried by the profile's plugins (e.g. prefix-cache-scorer's block size), or
  // nullptr when none of them configures that structure.
  const PrefixIndexOptions* prefix_options() const { return prefix_options_; }
  const TtftModelParams* ttft_params() const { return ttft_params_; }
  // Reports stage durations of one run in `sample_every` to `observer` (null: none, the
  // default); the observer must outlive the pipeline or be replaced first.
  void set_stage_observer(StageObserver* observer, std::uint32_t sample_every = 8);
  // "name(type) ×weight" for each stage, for logs and `infergate check`.
  std::string Describe() const;

 private:
  struct Stage {
    std::string name;
    std::string type;
    double weight = 1;
    std::unique_ptr<SchedulingPlugin> plugin;
  };

  std::string profile_name_;
  std::vector<Stage> filters_;
  std::vector<Stage> scorers_;
  Stage picker_;
  std::vector<std::unique_ptr<SchedulingPlugin>> unused_;  // validated, not in the profile
  std::uint32_t needs_ = 0;
  bool has_hold_rule_ = false;
  const PrefixIndexOptions* prefix_options_ = nullptr;
  const TtftModelParams* ttft_params_ = nullptr;

  StageObserver* observer_ = nullptr;
  std::uint32_t sample_every_ = 8;
  std::uint32_t runs_ = 0;

  CandidateList backup_;
  std::vector<double> scores_;
  std::vector<double> totals_;
};

}  // namespace infergate
