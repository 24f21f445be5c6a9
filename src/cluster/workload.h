// Workloads for the cluster simulation: the requests and when the client may send them.
//
// A workload is a list of requests. Each becomes ready to send at its explicit arrival
// time, or at the time the arrival process gives it; a ready request is sent at once
// unless the client's concurrency limit holds it back (benchmark_serving's semaphore:
// ready requests wait in order for a free slot).
//
// The arrival process is benchmark_serving's: the first request at time 0, then gaps drawn
// from a gamma distribution with shape `burstiness` and mean 1/rate (burstiness 1 is a
// Poisson process); rate = infinity makes every request ready at time 0.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "core/tokenizer.h"
#include "scheduler/random.h"

namespace infergate::cluster {

struct WorkloadRequest {
  std::vector<TokenId> prompt_tokens;  // used when not empty
  std::string prompt_text;             // otherwise tokenized with the simulator's tokenizer
  std::optional<int> max_tokens;       // unset: the engine's default (max_model_len − prompt)
  int min_tokens = 0;
  bool ignore_eos = false;
  std::string lora;
  int priority = 0;               // the engine's (vLLM priority scheduling: lower first)
  std::optional<TimeNs> arrival;  // ready time; overrides the arrival process
  // What the gateway sees besides the body (headers): the flow-control priority
  // (InferenceObjective; unset: the criticality's band), the fairness id
  // (x-gateway-inference-fairness-id) and a session key.
  std::optional<int> gateway_priority;
  std::string fairness_id;
  std::string session_key;
  // Where a shared-prefix request comes from, for traces only (routers must not use them:
  // a gateway does not know them): the conversation and the 0-based turn within it.
  int session = -1;
  int turn = 0;
};

struct ArrivalProcess {
  double rate = std::numeric_limits<double>::infinity();  // requests per second
  double burstiness = 1.0;                                // gamma shape
};

// Checks rate > 0 and burstiness > 0.
Status ValidateArrivalProcess(const ArrivalProcess& process);

// Ready times for `workload`: explicit arrivals as given, the others from `process`
// (the k-th request without an explicit arrival gets the k-th time of the process).
// Deterministic in `seed`. Requires a valid process.
std::vector<TimeNs> ReadyTimes(const ArrivalProcess& process,
                               std::span<const WorkloadRequest> workload, std::uint64_t seed);

// The workload generators' randomness: the core's generator (infergate::Rng,
// xoshiro256**) with the distributions they need, deterministic across platforms, unlike
// <random>'s distributions. Its state is seeded by chaining SplitMix64's finalizer from
// the seed (each state word the mix of the one before), which differs from
// infergate::Rng's own seeding and is kept so that every workload draws as it always has.
class WorkloadRng {
 public:
  explicit WorkloadRng(std::uint64_t seed);
  std::uint64_t Next() { return rng_.Next(); }
  // Uniform in [0, 1).
  double Uniform() { return rng_.NextDouble(); }
  // Uniform integer in [lo, hi], both inclusive. Requires lo <= hi.
  std::int64_t UniformInt(std::int64_t lo, std::int64_t hi);
  double Normal();
  // Gamma with the given shape (> 0) and scale (> 0).
  double Gamma(double shape, double scale);

 private:
  Rng rng_;
};

}  // namespace infergate::cluster
