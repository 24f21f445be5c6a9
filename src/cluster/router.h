// Router: the decision the cluster simulation asks for each request: which engine serves
// it.
//
// The simulation calls Route when a request reaches the gateway (its send time plus the
// client-to-gateway delay). A router may look at the engines only through the scraped
// snapshots it is given: each was taken at a multiple of the scrape interval and is as
// stale as that makes it (taken_at says when), exactly what a gateway polling /metrics
// sees. What the gateway itself knows instantly (what it dispatched, which first tokens
// and completions it has seen) it learns through the On* callbacks, so it can keep a
// ledger. All calls happen in simulated-time order on one thread.
//
// The real gateway scheduler is adapted to this interface by the `simulate` command; the
// RoundRobinRouter below is the plain gateway's policy (the seed's first row).
//
// Thread-safety: called from one thread; implementations need no locking.
#pragma once

#include <cstddef>
#include <span>
#include <string>

#include "cluster/workload.h"
#include "core/clock.h"
#include "core/tokenizer.h"
#include "sim/engine/engine.h"

namespace infergate::cluster {

// One engine's /metrics as of `taken_at` (-1 before the first scrape, with empty stats).
struct EngineScrape {
  int engine = 0;
  TimeNs taken_at = -1;
  sim::EngineStats stats;
};

struct RouteRequest {
  std::size_t index = 0;                     // position in the workload
  const WorkloadRequest* request = nullptr;  // max_tokens, lora, priority...
  std::span<const TokenId> prompt;           // tokenized prompt
};

struct RouteDecision {
  enum class Kind { kEngine, kReject, kRetry };
  Kind kind = Kind::kEngine;
  int engine = 0;       // kEngine: index into the engines
  TimeNs retry_at = 0;  // kRetry: ask again at this time (must be later than now)
  std::string reason;   // kReject: recorded as the request's error

  static RouteDecision To(int engine) { return {Kind::kEngine, engine, 0, {}}; }
  static RouteDecision Reject(std::string reason) {
    return {Kind::kReject, 0, 0, std::move(reason)};
  }
  static RouteDecision RetryAt(TimeNs t) { return {Kind::kRetry, 0, t, {}}; }
};

// What the gateway sees when a response ends.
struct Completion {
  std::size_t index = 0;
  int engine = 0;
  bool success = false;
  int prompt_tokens = 0;
  int output_tokens = 0;
};

class Router {
 public:
  virtual ~Router() = default;
  // Chooses the engine for `request` at gateway time `now`. `engines` holds the latest
  // scrape of every engine, in engine order.
  virtual RouteDecision Route(const RouteRequest& request, std::span<const EngineScrape> engines,
                              TimeNs now) = 0;
  // The request was sent to `engine` (right after a kEngine decision).
  virtual void OnDispatched(const RouteRequest& /*request*/, int /*engine*/, TimeNs /*now*/) {}
  // The first token of request `index` passed the gateway.
  virtual void OnFirstToken(std::size_t /*index*/, int /*engine*/, TimeNs /*now*/) {}
  // The response ended (finished, or failed at the engine) as seen by the gateway.
  virtual void OnCompleted(const Completion& /*completion*/, TimeNs /*now*/) {}
};

// Round robin over all engines in order, ignoring their state.
class RoundRobinRouter final : public Router {
 public:
  RouteDecision Route(const RouteRequest& request, std::span<const EngineScrape> engines,
                      TimeNs now) override;

 private:
  std::size_t next_ = 0;
};

}  // namespace infergate::cluster
