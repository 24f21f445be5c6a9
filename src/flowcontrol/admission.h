// AdmissionController: the one rule that decides, for each request of a pool, "pick an
// endpoint now", "hold it in the gateway queue" or "reject it", with the reason. The live
// gateway (gateway/pool_state.h: adds its mutex, waiters and wake-ups) and the virtual-time
// cluster (cluster/scheduler_router.h: adds virtual time) both call it, so the numbers the
// simulator produces come from the rule the gateway runs.
//
// The rule (late binding on):
//   - A Sheddable request is never held: it is picked at once, and the scheduler sheds it
//     (429) when the pool is saturated. Holding it would turn "shed under saturation" into
//     "queue under saturation", the opposite of what Sheddable asks for.
//   - Every other request enters the FlowController (priority bands, fair flows, FCFS,
//     TTL, capacity: a full queue rejects with 429), and the queue is offered to the
//     scheduler in its order: the head is held while Scheduler::CanHold() (a hold can end:
//     some ready endpoint has fresh metrics) and Scheduler::ShouldHold(request) (no
//     endpoint should take it now); otherwise it is picked. A request picked during its
//     own admission (nothing ahead of it, nothing to wait for) is "picked now".
//   - While the scheduler cannot hold (no fresh metrics) nothing waits: the pool's failure
//     mode decides through Pick (FailOpen routes, FailClose answers 503), rather than a
//     wait of unknown length.
//   - A held request whose TTL runs out is rejected (503).
// With late binding off (or `queueing` false for one request) every request is picked
// at once. Every pick that chose an endpoint is recorded (Scheduler::Dispatch); a pick that
// did not is a rejection carrying the pick's reason (shed 429, unavailable 503).
//
// Call Pump after anything that may free capacity (a scrape, a first token, a completion,
// a re-dispatch), and Pump(now, force = true) to decide every queued request holding none
// (the pool is retired or drained, or nothing is left to scrape).
//
// Thread-safety: not synchronised; the caller serialises access (the pool's lock). Pure:
// time is passed in, the Scheduler reads its own injected clock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "flowcontrol/flow_controller.h"
#include "scheduler/scheduler.h"

namespace infergate {

enum class AdmissionVerdict : std::uint8_t {
  kPick,    // an endpoint was chosen and the dispatch recorded
  kHold,    // waiting in the gateway queue
  kReject,  // answered without an endpoint (status and reason below)
};

enum class AdmissionReason : std::uint8_t {
  kPicked,       // kPick
  kHeld,         // kHold
  kPickRefused,  // kReject: the scheduler shed it or found no endpoint (see the PickResult)
  kQueueFull,    // kReject 429: the gateway queue is at capacity
  kExpired,      // kReject 503: its TTL ran out while held
  kDuplicateId,  // kReject 500: the caller reused a queued id (a bug of the caller)
};
std::string_view AdmissionReasonName(AdmissionReason reason);

struct AdmissionDecision {
  AdmissionVerdict verdict = AdmissionVerdict::kReject;
  AdmissionReason reason = AdmissionReason::kPickRefused;
  // The scheduler's answer (kPick and kPickRefused; empty otherwise).
  PickResult pick;
  // The ledger handle of the dispatch (kPick).
  TokenLedger::Handle handle = TokenLedger::kInvalidHandle;

  bool picked() const { return verdict == AdmissionVerdict::kPick; }
  // 200 picked, 0 held; rejections: the pick's status (429 / 503), 429 queue full, 503
  // expired, 500 duplicate id.
  int http_status() const;
  // The reason as a short name: the PickReason's for kPick / kPickRefused ("scheduled",
  // "saturated", "no-fresh-metrics", ...), else "held", "queue-full", "queue-ttl",
  // "duplicate-id".
  std::string_view ReasonName() const;
};

struct AdmissionOptions {
  // Hold requests in the gateway queue (late binding); off: every request is picked at
  // once.
  bool late_binding = true;
  FlowControlOptions queue;
};

class AdmissionController {
 public:
  // Decisions made for queued requests (by Admit's or Pump's pass over the queue).
  using DecidedFn = std::function<void(QueueItemId, const AdmissionDecision&)>;

  // `scheduler` must outlive the controller.
  AdmissionController(AdmissionOptions options, Scheduler* scheduler);
  AdmissionController(const AdmissionController&) = delete;
  AdmissionController& operator=(const AdmissionController&) = delete;

  // Decides request `id` (unique among held ones) and returns its decision; when held,
  // its decision comes later through a Pump's `decided`. `request` must stay valid while
  // the request is held (until it is decided or cancelled). ttl <= 0: the queue's default.
  // `queueing` false picks at once (a caller that cannot wait). A request that entered
  // the queue is offered in queue order with the others: each one the pass decides is
  // reported through `decided`, in order, this one included (it is also returned); a
  // request picked without entering the queue (Sheddable, late binding off, `queueing`
  // false) or rejected by the queue is only returned.
  AdmissionDecision Admit(QueueItemId id, const RequestInfo& request, TimeNs now, TimeNs ttl,
                          bool queueing, const DecidedFn& decided);
  // Offers the queue to the scheduler (see the header comment); reports each request it
  // decides, expired ones included, through `decided`. Returns how many it decided.
  std::size_t Pump(TimeNs now, bool force, const DecidedFn& decided);
  // Removes a held request (its client went away). False when it is not held.
  bool Cancel(QueueItemId id);

  bool late_binding() const { return options_.late_binding; }
  std::size_t queued() const { return queue_.size(); }
  // The earliest TTL deadline of a held request (kNever when none).
  TimeNs NextDeadline() const { return queue_.NextDeadline(); }
  // The longest the queue has been (counting each request as it entered).
  std::size_t max_queued() const { return max_queued_; }
  // The request the next pass offers first (nullptr: nothing queued). Valid until the
  // queue changes.
  const QueuedRequest* Head() const { return queue_.Peek(); }

  // Several gateway replicas (src/sync): asked, before a pass lets a held request through
  // (the scheduler would pick it), whether it must wait for a peer replica whose queue
  // head comes first pool-wide; true keeps it and everything behind it held. Not asked
  // when the pass is forced or nothing can be held. Empty: never wait.
  using ReleaseGate = std::function<bool(const QueuedRequest& head, TimeNs now)>;
  void SetReleaseGate(ReleaseGate gate) { gate_ = std::move(gate); }

  // Calls fn(priority, flow, length) for each non-empty flow of the queue.
  void ForEachQueuedFlow(const std::function<void(int, std::string_view, std::size_t)>& fn) const {
    queue_.ForEachFlow(fn);
  }
  Scheduler& scheduler() { return *scheduler_; }

 private:
  // Picks `request` and records the dispatch when an endpoint was chosen.
  void PickNow(const RequestInfo& request, AdmissionDecision* out);
  AdmissionOptions options_;
  Scheduler* scheduler_;
  FlowController queue_;
  std::unordered_map<QueueItemId, const RequestInfo*> held_;
  std::vector<QueueItemId> expired_;
  AdmissionDecision scratch_;
  std::size_t max_queued_ = 0;
  ReleaseGate gate_;
};

}  // namespace infergate
