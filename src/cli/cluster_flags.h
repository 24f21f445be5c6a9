// The flags of `infergate simulate` that describe the simulated cluster and its gateway:
// the engines (profile, count, KV cache size, when outputs end), the scrapes, the network
// delays, gateway replicas and their sync, the gateway queue, re-dispatch, and the
// requests' criticality. The workload flags are in workload_flags.h.
//
// Thread-safety: plain values; CLI11 writes the flags while it parses.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "cluster/experiment.h"
#include "cluster/workload_presets.h"
#include "core/status.h"

namespace infergate::cli {

struct ClusterFlags {
  std::string profile;  // empty: the preset's
  int servers = 0;      // 0: the preset's
  long long num_gpu_blocks = 0;
  double redirect_after_s = ToSeconds(cluster::ClusterSetup{}.redirect_after);
  double scrape_interval_ms = 50;
  double scrape_latency_ms = 1;
  int gateway_replicas = 1;
  bool no_replica_sync = false;
  double sync_delay_ms = 1;
  double sync_flush_ms = 2;
  double sync_order_wait_ms = 10;
  double sync_loss = 0;
  std::string gauges = "step";
  double client_delay_ms = 0.5;
  double engine_delay_ms = 0.25;
  std::string eos = "none";
  std::string criticality = "Critical";
  bool exact_prompt_tokens = false;
  long long scheduler_seed = 1;
  double queue_ttl_s = 600;
  long long queue_capacity = 100000;
  std::string fairness = "round-robin";
};

void AddClusterFlags(CLI::App& cmd, ClusterFlags& flags);

// The cluster of `preset` with the flags applied (an engine profile, server count or KV
// cache size given overrides the preset's), validated. Errors name the flag.
Result<cluster::ClusterSetup> ResolveClusterFlags(const ClusterFlags& flags,
                                                  const cluster::WorkloadPreset& preset);

}  // namespace infergate::cli
