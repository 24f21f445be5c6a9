// QueueOrder: several gateway replicas release their held requests in one pool-wide
// first-come order, as a single gateway's queue would.
//
// Each replica holds its own requests in its own gateway queue (AdmissionController). When
// capacity appears, every replica that learns of it (the owner of a completion at once, its
// peers one sync delay later) would let its own head through, and the replicas that act
// within one sync delay of each other cannot see each other's dispatches: they all take the
// same room. Measured in virtual time, that double booking (not the missing 3/4 of the
// calibration, nor the order itself) is what four synced replicas lost to one gateway
// (docs/experiments/2026-12-07-replicas.md).
//
// The rule, asked by the queue (AdmissionController::ReleaseGate) for a head the scheduler
// would let through now: wait while a peer's queue head comes first pool-wide (a higher
// priority, or the same and an earlier arrival; peers' heads come with their routing
// events, sync::EventRecorder::SetQueueHead).
//
// Arrivals are compared as stamps: the arrival on the replica's wall clock, in
// microseconds (Stamp). A peer's head dated by its event's age on arrival would look one
// transport delay younger than it is, to every replica alike, so two replicas with heads
// that arrived within a delay of each other would both think theirs first and both take
// the room. With stamps every replica compares the same two numbers and they agree on
// which is first (ties: the lower replica id); clock skew between hosts can only bias that
// order, never make it inconsistent. The peer with the first head takes the room,
// and its dispatch reaches the others in the same message as its next head, so they see the
// room taken before they decide again. Bounded: a head waits at most max_wait on one peer's
// head (the peer may not see the room at all: its own scrape has not shown it yet, or its
// head does not fit), never on a peer not heard from within fresh_within, and never when
// the queue is forced.
//
// Thread-safety: not synchronised; call it where the applier is used (the pool's lock in
// the gateway).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/clock.h"
#include "flowcontrol/admission.h"
#include "flowcontrol/flow_controller.h"
#include "sync/applier.h"
#include "sync/recorder.h"

namespace infergate::sync {

struct QueueOrderOptions {
  // The wall clock's reading less the replica's clock's at start (Stamp = local time plus
  // this): 0 in virtual time, where one clock serves every replica.
  TimeNs wall_offset = 0;
  // The longest a head waits on one peer's head (several sync delays: the peer must see
  // the room and its dispatch must come back).
  TimeNs max_wait = 10 * kNanosPerMilli;
  // Peers heard from longer ago are not waited on (two heartbeat intervals).
  TimeNs fresh_within = 2 * kNanosPerSecond;
};

struct QueueOrderStats {
  std::uint64_t waits = 0;      // a head started waiting on a peer's
  std::uint64_t timed_out = 0;  // ... and was let through by the bound
};

class QueueOrder {
 public:
  // `peers` must outlive this object.
  QueueOrder(QueueOrderOptions options, const EventApplier* peers);

  // Whether local head `head`, which the scheduler would let through at `now`, must wait
  // for a peer's head first.
  bool ShouldWait(const QueuedRequest& head, TimeNs now);
  // Makes `admission` ask ShouldWait before each release (its ReleaseGate), the same in the
  // virtual-time cluster and in `serve`. `open`, when given, is asked first: true lets the
  // release go without asking (`serve`: NATS is unreachable, so peers' dispatches could not
  // be seen anyway; route on local knowledge). This object must outlive the gate (or
  // `admission.SetReleaseGate({})` first).
  void Gate(AdmissionController& admission, std::function<bool()> open = {});
  // What the recorder sends for `admission`'s queue now.
  QueueHeadState HeadState(const AdmissionController& admission) const {
    return HeadState(admission.queued(), admission.Head());
  }
  // What the recorder sends for a queue of `held` requests offering `head` next (nullptr:
  // none): EventRecorder::SetQueueHead(order.HeadState(...)).
  QueueHeadState HeadState(std::size_t held, const QueuedRequest* head) const;
  // The pool-wide stamp of a local arrival time.
  std::uint64_t Stamp(TimeNs enqueued_at) const;
  // When the current wait ends by its bound, if that is after `now`; kNever otherwise (so
  // a caller arming a timer from it never spins on a wait nobody asks about any more).
  TimeNs NextDeadline(TimeNs now) const;
  const QueueOrderStats& stats() const { return stats_; }
  const QueueOrderOptions& options() const { return options_; }

 private:
  QueueOrderOptions options_;
  const EventApplier* peers_;
  // The current wait: which local head on which peer's head, since when.
  bool waiting_ = false;
  bool gave_up_ = false;
  QueueItemId head_ = 0;
  std::string blocker_;
  std::uint64_t blocker_id_ = 0;
  TimeNs since_ = 0;
  QueueOrderStats stats_;
};

}  // namespace infergate::sync
