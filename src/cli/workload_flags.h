// The flags `infergate bench` and `infergate simulate` share: the dataset (random and
// shared-prefix knobs, prompt count, warm-up), the arrivals (rate, burstiness, client
// concurrency), the workload seed, and which metrics the result table shows. Declared once
// here, validated once.
//
// A flag left out keeps the base workload's value: benchmark_serving's defaults for
// `bench`, the preset's for `simulate`. ApplyWorkloadFlags lays the given flags over the
// base and checks them; the datasets check their own lengths and ratios when drawn.
//
// Thread-safety: plain values; CLI11 writes the flags while it parses.
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>

#include "cluster/experiment.h"
#include "core/status.h"
#include "loadgen/result.h"

namespace infergate::cli {

struct WorkloadFlags {
  std::optional<long long> seed;
  std::optional<int> num_prompts;  // every dataset's
  std::optional<int> warmup_prompts;
  std::optional<std::string> request_rate;  // requests per second, or inf
  std::optional<double> burstiness;
  std::optional<int> max_concurrency;  // 0: no limit
  bool ignore_eos = false;
  std::optional<std::string> random_length_semantics;
  std::optional<int> random_input_len, random_output_len, random_prefix_len;
  std::optional<double> random_range_ratio;  // unset: the length semantics' default
  std::optional<long long> random_vocab_size;
  std::optional<int> sp_tenants, sp_prefix_len, sp_question_len, sp_turns, sp_active_sessions,
      sp_output_len;
  std::optional<double> sp_range_ratio;
};

// Adds the workload flags to `cmd`. `defaults`: the values the help shows, where the
// command has fixed ones (bench); null where they come from elsewhere (simulate's presets).
void AddWorkloadFlags(CLI::App& cmd, WorkloadFlags& flags, const cluster::WorkloadSpec* defaults);

// `base` with the given flags applied. Errors name the flag: a seed outside [0, 2^32 - 1],
// fewer than one prompt, a warm-up that leaves no request of the run to measure, a rate or
// burstiness that is not > 0, a negative concurrency, unknown length semantics.
Result<cluster::WorkloadSpec> ApplyWorkloadFlags(const WorkloadFlags& flags,
                                                 cluster::WorkloadSpec base);

struct MetricFlags {
  std::string percentile_metrics = "ttft,tpot,itl";
  std::string metric_percentiles = "99";
};

// --percentile-metrics and --metric-percentiles.
void AddMetricFlags(CLI::App& cmd, MetricFlags& flags);
// Errors name the bad metric or percentile.
Result<loadgen::MetricOptions> ParseMetricFlags(const MetricFlags& flags);

}  // namespace infergate::cli
