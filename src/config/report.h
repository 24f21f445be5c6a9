// Describing a ConfigSnapshot for people (`infergate check`) and for programs (its
// `--output json`, and any debug endpoint that wants the same view).
//
// Pure functions of the snapshot; thread-safe.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "config/snapshot.h"

namespace infergate::config {

// Listeners -> rules (with their matches, filters and timeouts) -> backends (weights) ->
// endpoints (ready or not, and Pods that are not routable with the reason), then pools
// (failure mode, profile, models and their target weights), endpoint-picker configs,
// skipped objects and warnings. Ends with a newline.
std::string DescribeSnapshot(const ConfigSnapshot& snapshot);

// One line for a skipped object, e.g.
// "seed.yaml:1: document 1: skipped v1/ConfigMap qwq-dist-v1-cm: kind not used by infergate".
std::string DescribeSkipped(const SkippedObject& skipped);

// The same content as DescribeSnapshot as JSON, plus "valid": true. Durations appear as
// Gateway API strings and as seconds, sizes in bytes.
nlohmann::json SnapshotToJson(const ConfigSnapshot& snapshot);

}  // namespace infergate::config
