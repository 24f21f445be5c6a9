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
// Late binding: Route may answer Hold, keeping the request in a gateway queue. The
// simulation then calls Release whenever capacity may have appeared (after the Hold
// itself, a scrape reaching the gateway, a first token, a completion, and at NextWakeup)
// and the router answers, for any held requests, an engine or a rejection.
//
// The real gateway scheduler is adapted to this interface by SchedulerRouter
// (cluster/scheduler_router.h); the RoundRobinRouter below is the plain gateway's policy
// (the seed's first row).
//
// Thread-safety: called from one thread; implementations need no locking.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

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
  // The page did not arrive within the scrape timeout (ClusterOptions::
  // metrics_stall_timeout): the router sees a late scrape, and `stats` must not be read.
  bool late = false;
  // The connection was refused (the engine is down): the router sees an unreachable
  // endpoint until its next answer; `stats` must not be read.
  bool down = false;
};

struct RouteRequest {
  std::size_t index = 0;                     // position in the workload
  const WorkloadRequest* request = nullptr;  // max_tokens, lora, priority...
  std::span<const TokenId> prompt;           // tokenized prompt
};

struct RouteDecision {
  enum class Kind { kEngine, kReject, kRetry, kHold };
  Kind kind = Kind::kEngine;
  int engine = 0;       // kEngine: index into the engines
  TimeNs retry_at = 0;  // kRetry: ask again at this time (must be later than now)
  std::string reason;   // kReject: recorded as the request's error

  static RouteDecision To(int engine) { return {Kind::kEngine, engine, 0, {}}; }
  static RouteDecision Reject(std::string reason) {
    return {Kind::kReject, 0, 0, std::move(reason)};
  }
  static RouteDecision RetryAt(TimeNs t) { return {Kind::kRetry, 0, t, {}}; }
  // The router keeps the request and answers for it later from Release.
  static RouteDecision Hold() { return {Kind::kHold, 0, 0, {}}; }
};

// A held request the router now dispatches (kEngine) or answers (kReject).
struct ReleasedRequest {
  std::size_t index = 0;
  RouteDecision decision;
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
  // A periodic scrape of every engine reached the gateway at `now` (each snapshot as of its
  // taken_at). Called before any Route that sees it.
  virtual void OnScrape(std::span<const EngineScrape> /*engines*/, TimeNs /*now*/) {}
  // Late binding: appends to *out the held requests the router releases now, each with a
  // kEngine or kReject decision (anything else is taken as a rejection). Called only while
  // requests are held.
  virtual void Release(std::span<const EngineScrape> /*engines*/, TimeNs /*now*/,
                       std::vector<ReleasedRequest>* /*out*/) {}
  // Moves dispatched requests that have no first token yet: appends (index, kEngine
  // decision to another engine); the gateway aborts each at its engine and sends it to the
  // new one. Called after each scrape reaches the gateway.
  virtual void Redirect(TimeNs /*now*/, std::vector<ReleasedRequest>* /*out*/) {}
  // When Release must be called next even if nothing happens (e.g. a queue deadline);
  // kNever when no such time.
  virtual TimeNs NextWakeup() const { return kNever; }
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
