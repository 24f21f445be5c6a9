#include "cli/cluster_flags.h"

#include <fmt/format.h>

#include <cmath>

#include "sim/engine/profile.h"

namespace infergate::cli {

void AddClusterFlags(CLI::App& cmd, ClusterFlags& f) {
  cmd.add_option("--profile", f.profile,
                 "Engine profile name or YAML path (default: the preset's)");
  cmd.add_option("--servers", f.servers, "Number of simulated servers (default: the preset's)");
  cmd.add_option("--num-gpu-blocks", f.num_gpu_blocks,
                 "Override the profile's KV cache size in blocks");
  cmd.add_option("--redirect-after", f.redirect_after_s,
                 "Re-dispatch, as infergate serve --redirect-after: a request of a policy with "
                 "the gateway queue that has no first token this many seconds after its "
                 "dispatch, and waits for KV space (the oldest of ours in its virtual engine), "
                 "is aborted and sent once to an endpoint that can admit it now with no "
                 "prefill queued in its virtual engine (0: never)")
      ->capture_default_str();
  cmd.add_option("--gateway-replicas", f.gateway_replicas,
                 "Gateway replicas behind a random L4 balancer, each with its own scheduler "
                 "and queue, scraping on its own phase")
      ->capture_default_str();
  cmd.add_flag("--no-replica-sync", f.no_replica_sync,
               "Replicas share no routing events (measures what sync recovers)");
  cmd.add_option("--sync-delay", f.sync_delay_ms,
                 "Replica sync: milliseconds from a replica's flush to its peers applying "
                 "the messages (the NATS hop)")
      ->capture_default_str();
  cmd.add_option("--sync-flush", f.sync_flush_ms,
                 "Replica sync: the publisher's flush interval in milliseconds, as serve's "
                 "(news after a quiet interval goes at once, else when the interval has "
                 "passed)")
      ->capture_default_str();
  cmd.add_option("--sync-order-wait", f.sync_order_wait_ms,
                 "Replica sync: the longest a replica's queue head waits on a peer's head that "
                 "comes first pool-wide, in milliseconds, as serve's (0: no pool-wide release "
                 "order)")
      ->capture_default_str();
  cmd.add_option("--sync-loss", f.sync_loss,
                 "Replica sync: probability each message is lost on its way to a peer")
      ->capture_default_str();
  cmd.add_option("--scrape-interval", f.scrape_interval_ms, "Milliseconds between /metrics scrapes")
      ->capture_default_str();
  cmd.add_option("--scrape-latency", f.scrape_latency_ms,
                 "Milliseconds from taking a scrape to the scheduler seeing it")
      ->capture_default_str();
  cmd.add_option("--gauges", f.gauges,
                 "What a scrape shows: step = the engine as of its last step end (vLLM "
                 "updates its gauges once per step); instant = the engine at that moment")
      ->capture_default_str();
  cmd.add_option("--client-delay", f.client_delay_ms, "Client <-> gateway one-way delay (ms)")
      ->capture_default_str();
  cmd.add_option("--engine-delay", f.engine_delay_ms, "Gateway <-> engine one-way delay (ms)")
      ->capture_default_str();
  cmd.add_option("--eos", f.eos,
                 "none: outputs run to max_tokens (the seed); early: each ends at a uniformly "
                 "random point before max_tokens")
      ->capture_default_str();
  cmd.add_option("--criticality", f.criticality,
                 "InferenceModel criticality of every request (the seed's was Critical)")
      ->capture_default_str();
  cmd.add_flag("--exact-prompt-tokens", f.exact_prompt_tokens,
               "Give the scheduler exact prompt token counts (default: estimated from "
               "characters and calibrated from usage, as the gateway does)");
  cmd.add_option("--scheduler-seed", f.scheduler_seed, "Seed of the scheduler's tie-breaks")
      ->capture_default_str();
  cmd.add_option("--queue-ttl", f.queue_ttl_s, "Gateway queue TTL in seconds (then 503)")
      ->capture_default_str();
  cmd.add_option("--queue-capacity", f.queue_capacity, "Gateway queue capacity (then 429)")
      ->capture_default_str();
  cmd.add_option("--fairness", f.fairness, "Gateway queue fairness: round-robin | least-served")
      ->capture_default_str();
}

Result<cluster::ClusterSetup> ResolveClusterFlags(const ClusterFlags& f,
                                                  const cluster::WorkloadPreset& preset) {
  cluster::ClusterSetup setup;
  const std::string profile_name = f.profile.empty() ? preset.profile : f.profile;
  Result<sim::Profile> profile = sim::LoadProfile(profile_name);
  if (!profile.ok()) return Error{"--profile: " + profile.error().message};
  const long long blocks = f.num_gpu_blocks > 0 ? f.num_gpu_blocks : preset.num_gpu_blocks;
  if (f.num_gpu_blocks < 0) return Error{"--num-gpu-blocks must be >= 0"};
  if (blocks > 0) profile->engine.num_gpu_blocks = blocks;
  if (f.eos == "early") {
    // Each output ends at a uniformly random point before max_tokens.
    profile->eos.model = sim::EosModel::kUniform;
    profile->eos.min_fraction = 0.0;
    profile->eos.max_fraction = 1.0;
  } else if (f.eos != "none") {
    return Error{"--eos must be none or early (got '" + f.eos + "')"};
  }
  const int servers = f.servers > 0 ? f.servers : preset.servers;
  if (f.servers < 0 || servers > 1000) return Error{"--servers must be in [1, 1000]"};
  setup.engines.assign(static_cast<std::size_t>(servers), *profile);
  if (auto c = sim::ResolveEngineConfig(*profile); !c.ok()) {
    return Error{"--profile " + profile_name + ": " + c.error().message};
  }
  setup.model_id = preset.model_id.empty() ? profile->model.name : preset.model_id;

  if (!(f.scrape_interval_ms > 0)) return Error{"--scrape-interval must be > 0 ms"};
  if (!(f.scrape_latency_ms >= 0) || f.scrape_latency_ms >= f.scrape_interval_ms) {
    return Error{"--scrape-latency must be >= 0 and below --scrape-interval"};
  }
  if (!(f.client_delay_ms >= 0) || !(f.engine_delay_ms >= 0)) {
    return Error{"network delays must be >= 0"};
  }
  setup.scrape_interval = FromMillis(f.scrape_interval_ms);
  setup.scrape_latency = FromMillis(f.scrape_latency_ms);
  if (f.gateway_replicas < 1 || f.gateway_replicas > 64) {
    return Error{fmt::format("--gateway-replicas must be 1 to 64 (got {})", f.gateway_replicas)};
  }
  if (f.gateway_replicas > 1 && f.scrape_latency_ms >= f.scrape_interval_ms / f.gateway_replicas) {
    return Error{fmt::format(
        "--gateway-replicas {}: the replicas scrape {} ms apart; --scrape-latency must be below",
        f.gateway_replicas, f.scrape_interval_ms / f.gateway_replicas)};
  }
  if (!(f.sync_delay_ms >= 0) || std::isinf(f.sync_delay_ms)) {
    return Error{"--sync-delay must be >= 0 ms"};
  }
  if (!(f.sync_flush_ms >= 0) || std::isinf(f.sync_flush_ms)) {
    return Error{"--sync-flush must be >= 0 ms"};
  }
  if (!(f.sync_order_wait_ms >= 0) || std::isinf(f.sync_order_wait_ms)) {
    return Error{"--sync-order-wait must be >= 0 ms"};
  }
  if (!(f.sync_loss >= 0 && f.sync_loss <= 1)) return Error{"--sync-loss must be in [0, 1]"};
  setup.gateway_replicas = f.gateway_replicas;
  setup.replica_sync.enabled = !f.no_replica_sync;
  setup.replica_sync.delay = FromMillis(f.sync_delay_ms);
  setup.replica_sync.flush_interval = FromMillis(f.sync_flush_ms);
  setup.replica_sync.loss = f.sync_loss;
  setup.replica_sync.queue_order = f.sync_order_wait_ms > 0;
  if (f.sync_order_wait_ms > 0)
    setup.replica_sync.queue_order_wait = FromMillis(f.sync_order_wait_ms);
  if (f.gauges != "step" && f.gauges != "instant") {
    return Error{"--gauges must be step or instant"};
  }
  setup.metrics_at_step_end = f.gauges == "step";
  setup.delays.client_to_gateway = FromMillis(f.client_delay_ms);
  setup.delays.gateway_to_engine = FromMillis(f.engine_delay_ms);
  setup.scheduler_seed = static_cast<std::uint64_t>(f.scheduler_seed);
  setup.exact_prompt_tokens = f.exact_prompt_tokens;
  if (f.criticality == "Critical") {
    setup.criticality = Criticality::kCritical;
  } else if (f.criticality == "Standard") {
    setup.criticality = Criticality::kStandard;
  } else if (f.criticality == "Sheddable") {
    setup.criticality = Criticality::kSheddable;
  } else {
    return Error{"--criticality must be Critical, Standard or Sheddable"};
  }
  if (!(f.queue_ttl_s > 0)) return Error{"--queue-ttl must be > 0 s"};
  if (f.queue_capacity < 1) return Error{"--queue-capacity must be >= 1"};
  setup.queue.default_ttl = FromSeconds(f.queue_ttl_s);
  setup.queue.max_queued = static_cast<std::size_t>(f.queue_capacity);
  if (f.fairness == "round-robin") {
    setup.queue.fairness = FairnessPolicy::kRoundRobin;
  } else if (f.fairness == "least-served") {
    setup.queue.fairness = FairnessPolicy::kLeastServed;
  } else {
    return Error{"--fairness must be round-robin or least-served"};
  }
  if (!(f.redirect_after_s >= 0) || std::isinf(f.redirect_after_s)) {
    return Error{fmt::format("--redirect-after must be >= 0 seconds (got {})", f.redirect_after_s)};
  }
  setup.redirect_after = FromSeconds(f.redirect_after_s);
  return setup;
}

}  // namespace infergate::cli
