#include "scheduler/pipeline.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

namespace infergate {

Result<std::unique_ptr<SchedulingPipeline>> SchedulingPipeline::Build(
    const EndpointPickerConfig& config, std::string_view profile_name,
    const PluginRegistry& registry) {
  // Instantiate every declared plugin, keyed by name.
  std::map<std::string, std::pair<const PluginSpec*, std::unique_ptr<SchedulingPlugin>>,
           std::less<>>
      plugins;
  for (const PluginSpec& spec : config.plugins) {
    if (spec.type.empty()) return Error{"a plugin without a type"};
    const std::string& name = spec.name.empty() ? spec.type : spec.name;
    if (plugins.count(name)) return Error{"plugin name '" + name + "' is used twice"};
    Result<std::unique_ptr<SchedulingPlugin>> p = registry.Create(spec);
    if (!p.ok()) return p.error();
    plugins.emplace(name, std::make_pair(&spec, std::move(p).value()));
  }

  if (config.scheduling_profiles.empty()) return Error{"no schedulingProfiles"};
  const SchedulingProfileSpec* profile = nullptr;
  if (profile_name.empty()) {
    if (config.scheduling_profiles.size() != 1) {
      return Error{"several schedulingProfiles; name the one to use"};
    }
    profile = &config.scheduling_profiles.front();
  } else {
    for (const SchedulingProfileSpec& p : config.scheduling_profiles) {
      if (p.name == profile_name) profile = &p;
    }
    if (profile == nullptr) {
      return Error{"no scheduling profile named '" + std::string(profile_name) + "'"};
    }
  }

  auto pipeline = std::unique_ptr<SchedulingPipeline>(new SchedulingPipeline());
  pipeline->profile_name_ = profile->name;
  std::set<std::string, std::less<>> used;
  for (const ProfilePluginRef& ref : profile->plugins) {
    auto it = plugins.find(ref.plugin_ref);
    if (it == plugins.end()) {
      return Error{"profile '" + profile->name + "' refers to undeclared plugin '" +
                   ref.plugin_ref + "'"};
    }
    if (!used.insert(ref.plugin_ref).second) {
      return Error{"profile '" + profile->name + "' uses plugin '" + ref.plugin_ref + "' twice"};
    }
    Stage stage;
    stage.name = ref.plugin_ref;
    stage.type = it->second.first->type;
    stage.plugin = std::move(it->second.second);
    if (ref.weight) {
      if (stage.plugin->kind() != PluginKind::kScorer) {
        return Error{"profile '" + profile->name + "': weight given for " +
                     std::string(PluginKindName(stage.plugin->kind())) + " '" + stage.name +
                     "' (only scorers take weights)"};
      }
      if (!(*ref.weight > 0) || !std::isfinite(*ref.weight)) {
        return Error{"profile '" + profile->name + "': weight of '" + stage.name +
                     "' must be a positive number"};
      }
      stage.weight = *ref.weight;
    }
    switch (stage.plugin->kind()) {
      case PluginKind::kFilter:
        pipeline->filters_.push_back(std::move(stage));
        break;
      case PluginKind::kScorer:
        pipeline->scorers_.push_back(std::move(stage));
        break;
      case PluginKind::kPicker:
        if (pipeline->picker_.plugin) {
          return Error{"profile '" + profile->name + "' has two pickers ('" +
                       pipeline->picker_.name + "', '" + stage.name + "')"};
        }
        pipeline->picker_ = std::move(stage);
        break;
    }
  }
  if (!pipeline->picker_.plugin) {
    PluginSpec spec{"max-score-picker", "", {}};
    Result<std::unique_ptr<SchedulingPlugin>> p = registry.Create(spec);
    if (!p.ok()) return p.error();
    pipeline->picker_.name = "max-score-picker";
    pipeline->picker_.type = "max-score-picker";
    pipeline->picker_.plugin = std::move(p).value();
  }
  for (auto& [name, entry] : plugins) {
    if (entry.second) pipeline->unused_.push_back(std::move(entry.second));
  }

  auto visit = [&](const Stage& s) {
    pipeline->needs_ |= s.plugin->needs();
    if (!pipeline->prefix_options_) pipeline->prefix_options_ = s.plugin->prefix_options();
    if (!pipeline->ttft_params_) pipeline->ttft_params_ = s.plugin->ttft_params();
    pipeline->has_hold_rule_ |= s.plugin->has_hold_rule();
  };
  for (const Stage& s : pipeline->filters_) visit(s);
  for (const Stage& s : pipeline->scorers_) visit(s);
  visit(pipeline->picker_);
  return pipeline;
}

void SchedulingPipeline::set_stage_observer(StageObserver* observer, std::uint32_t sample_every) {
  observer_ = observer;
  sample_every_ = std::max<std::uint32_t>(sample_every, 1);
  if (!observer_) return;
  std::size_t i = 0;
  for (const Stage& s : filters_) observer_->Describe(i++, "Filter", s.type, s.name);
  for (const Stage& s : scorers_) observer_->Describe(i++, "Scorer", s.type, s.name);
  observer_->Describe(i, "Picker", picker_.type, picker_.name);
}

SchedulingPipeline::Outcome SchedulingPipeline::Run(const SchedulingContext& ctx,
                                                    CandidateList& candidates, std::size_t count,
                                                    std::vector<std::uint32_t>& order) {
  order.clear();
  // Timing every run would cost two clock reads per stage per decision; a sample is
  // enough for a latency distribution.
  StageObserver* const timing = observer_ && (runs_++ % sample_every_ == 0) ? observer_ : nullptr;
  TimeNs mark = timing ? timing->clock().Now() : 0;
  std::size_t stage_index = 0;
  auto lap = [&]() {
    if (!timing) return;
    const TimeNs now = timing->clock().Now();
    timing->Observe(stage_index, now - mark);
    mark = now;
  };
  for (Stage& stage : filters_) {
    auto* filter = static_cast<FilterPlugin*>(stage.plugin.get());
    const bool critical = ctx.request->IsCritical();
    if (critical) backup_.assign(candidates.begin(), candidates.end());
    FilterVerdict v = filter->Filter(ctx, candidates);
    lap();
    ++stage_index;
    if (v == FilterVerdict::kShed && critical) {
      candidates.assign(backup_.begin(), backup_.end());
      continue;
    }
    if (v != FilterVerdict::kContinue) {
      candidates.clear();
      return Outcome{v, stage.name};
    }
    if (candidates.empty()) return Outcome{FilterVerdict::kContinue, stage.name};
  }

  const std::size_t n = candidates.size();
  totals_.assign(n, 0.0);
  scores_.resize(n);
  for (Stage& stage : scorers_) {
    auto* scorer = static_cast<ScorerPlugin*>(stage.plugin.get());
    scorer->Score(ctx, candidates, scores_);
    for (std::size_t i = 0; i < n; ++i) {
      totals_[i] += stage.weight * std::clamp(scores_[i], 0.0, 1.0);
    }
    lap();
    ++stage_index;
  }
  static_cast<PickerPlugin*>(picker_.plugin.get())
      ->Pick(ctx, candidates, totals_, std::min(count, n), order);
  lap();
  return Outcome{};
}

bool SchedulingPipeline::WantsHold(const SchedulingContext& ctx,
                                   std::span<const EndpointView* const> candidates) {
  auto wants = [&](Stage& s) {
    return s.plugin->has_hold_rule() && s.plugin->WantsHold(ctx, candidates);
  };
  for (Stage& s : filters_) {
    if (wants(s)) return true;
  }
  for (Stage& s : scorers_) {
    if (wants(s)) return true;
  }
  return wants(picker_);
}

std::string SchedulingPipeline::Describe() const {
  std::string out = "profile " + profile_name_ + ":";
  auto add = [&out](const Stage& s, bool weighted) {
    out += " " + s.name + (s.name == s.type ? "" : "(" + s.type + ")");
    if (weighted) {
      char buf[32];
      std::snprintf(buf, sizeof buf, " x%g", s.weight);
      out += buf;
    }
    out += ";";
  };
  for (const Stage& s : filters_) add(s, false);
  for (const Stage& s : scorers_) add(s, true);
  add(picker_, false);
  out.pop_back();
  return out;
}

}  // namespace infergate
