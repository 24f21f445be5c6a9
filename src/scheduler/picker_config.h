// The scheduling configuration as a plain value: GIE's EndpointPickerConfig, minus YAML.
//
// The config loader (another module) reads the YAML document and fills this struct; the
// scheduler validates it when it builds a pipeline (SchedulingPipeline::Build), so bad
// plugin types, references and parameters are reported there with the plugin's name.
//
//   plugins:                          → plugins
//   - type: prefix-cache-scorer         type (a registered plugin type)
//     name: prefix                      name (optional; defaults to type)
//     parameters: {hashBlockSize: 64}   parameters (string → string; numbers as text)
//   schedulingProfiles:               → scheduling_profiles
//   - name: default
//     plugins:
//     - pluginRef: prefix               plugin_ref (a plugin's name)
//       weight: 3                       weight (scorers; default 1)
//   saturationDetector:               → saturation_detector
//     queueDepthThreshold: 5
//     kvCacheUtilThreshold: 0.8
//     metricsStalenessThreshold: 200ms  (as nanoseconds here)
//
// Thread-safety: plain values.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"

namespace infergate {

struct PluginSpec {
  std::string type;
  std::string name;  // empty: the type
  std::map<std::string, std::string> parameters;
};

struct ProfilePluginRef {
  std::string plugin_ref;
  std::optional<double> weight;
};

struct SchedulingProfileSpec {
  std::string name;
  std::vector<ProfilePluginRef> plugins;
};

struct SaturationDetectorSpec {
  std::optional<double> queue_depth_threshold;
  std::optional<double> kv_cache_util_threshold;
  std::optional<TimeNs> metrics_staleness_threshold;
};

struct EndpointPickerConfig {
  std::vector<PluginSpec> plugins;
  std::vector<SchedulingProfileSpec> scheduling_profiles;
  std::optional<SaturationDetectorSpec> saturation_detector;
};

}  // namespace infergate
