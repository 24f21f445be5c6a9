// The virtual-time cluster: simulated engines, a router and a client, in simulated time.
//
// RunCluster replays a workload against N simulated model servers (sim::Engine, one per
// profile) behind a Router, the way benchmark_serving would drive a gateway, and returns
// what the client observed for every request. Nothing sleeps: an event loop jumps from one
// event to the next, so a 40-minute benchmark takes a fraction of a second, and the same
// options, workload and router give the same result every time.
//
// A request's life:
//   ready       its arrival time (explicit, or from the arrival process)
//   send        when the client sends it: at once, or when a concurrency slot frees up
//               (max_concurrency > 0: ready requests wait in order, as behind
//               benchmark_serving's semaphore)
//   route       send + client_to_gateway: Router::Route with the latest scrapes
//   held        (late binding) the router may keep it in its gateway queue and release it
//               later (Router::Release), or answer it then (e.g. 503 when its TTL expires)
//   submit      dispatch + gateway_to_engine: sim::Engine::Submit
//   tokens      each token reaches the gateway gateway_to_engine after the engine produced
//               it, and the client client_to_gateway after that
//   completion  the last token at the client (the concurrency slot is freed then)
// Engines are scraped at every multiple of scrape_interval (from time 0) while requests
// are outstanding; each snapshot reaches the router scrape_latency later (Router::OnScrape,
// and the snapshots Route sees); with a latency, the router also starts with a snapshot of
// the idle engines at time 0, as a gateway that was scraping them before the run. With
// scrape_interval = 0 the router gets fresh snapshots at every call.
//
// Ties at one instant go: engine steps, scrapes, scrapes reaching the router, deliveries
// to engines, gateway-side callbacks (first token, completion), client-side completions,
// arrivals, routing, router wake-ups. The router's Release runs right after each scrape it
// sees, each gateway-side callback, each Hold and each wake-up, while it holds requests.
//
// Thread-safety: RunCluster is reentrant; the router is used from the calling thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "cluster/router.h"
#include "cluster/workload.h"
#include "core/clock.h"
#include "core/status.h"
#include "sim/engine/engine.h"
#include "sim/engine/profile.h"

namespace infergate::cluster {

struct NetworkDelays {
  TimeNs client_to_gateway = 0;  // one way
  TimeNs gateway_to_engine = 0;  // one way
};

struct ClusterOptions {
  std::vector<sim::Profile> engines;  // one simulated server per entry (at least one)
  ArrivalProcess arrivals;
  int max_concurrency = 0;  // 0: no limit
  TimeNs scrape_interval = 50 * kNanosPerMilli;
  // From taking a snapshot to the router seeing it (the /metrics round trip and parse).
  // Must be below scrape_interval.
  TimeNs scrape_latency = 0;
  // What a scrape reads: false, the engine's state at that instant; true, its state as of
  // its last step end (vLLM V0/V1 update their Prometheus gauges once per engine step, so
  // during a long prefill step /metrics keeps showing the state before it).
  bool metrics_at_step_end = false;
  // llama.cpp's /metrics is made by the loop that runs the model: a scrape taken during a
  // step is answered when the step ends. With this > 0, a scrape whose engine is in a step
  // ending more than this after the scrape is delivered late (EngineScrape::late), as the
  // gateway's scrape timeout would see it; 0: pages are never late.
  TimeNs metrics_stall_timeout = 0;
  NetworkDelays delays;
  // Arrival process, and the engines' output tokens and EOS draws (one model seed for all
  // engines: a request's answer does not depend on where it runs).
  std::uint64_t seed = 0;
  TimeNs time_limit = 7 * 24 * 3600 * kNanosPerSecond;  // simulated; an error past it
  // Called after every periodic scrape with all engines' snapshots (e.g. for time series).
  std::function<void(TimeNs, std::span<const EngineScrape>)> on_scrape;
};

// What the client saw of one request. Times are simulated, from the run's time 0.
struct RequestRecord {
  std::size_t index = 0;  // position in the workload
  int engine = -1;        // the engine that served it (-1: never dispatched)
  bool success = false;
  std::string error;  // why it failed (router rejection or the engine's 400 message)
  TimeNs ready = 0;
  TimeNs send = -1;
  TimeNs routed = -1;      // first reached the gateway
  TimeNs dispatched = -1;  // left the gateway for its engine
  bool held = false;       // the router queued it (late binding)
  TimeNs scheduled = -1;   // the engine first scheduled it (engine time; -1 if never)
  TimeNs first_token = -1;
  TimeNs completion = -1;           // last token (or the error) at the client
  std::vector<TimeNs> token_times;  // every token's arrival at the client, in order
  int prompt_tokens = 0;
  int output_tokens = 0;
  sim::FinishReason finish_reason = sim::FinishReason::kLength;
  int preemptions = 0;           // preemptions the engine reported for it
  int cached_prompt_tokens = 0;  // prefix-cache hit at its first admission
  int retries = 0;               // RouteDecision::kRetry answers before it was dispatched
};

struct ClusterResult {
  std::vector<RequestRecord> requests;         // in workload order
  TimeNs start = 0;                            // first send
  TimeNs end = 0;                              // last completion
  std::vector<sim::EngineStats> engine_stats;  // every engine at the end
  std::uint64_t events = 0;                    // loop iterations, for performance checks
};

// Runs the whole workload to completion. Errors: invalid options (no engines, a profile
// that does not resolve, a bad arrival process, negative delays or interval), or the
// simulated time limit reached with requests outstanding. Requests that the router
// rejects, routes to a non-existent engine, or an engine refuses, fail individually.
Result<ClusterResult> RunCluster(const ClusterOptions& options,
                                 std::span<const WorkloadRequest> workload, Router& router);

}  // namespace infergate::cluster
