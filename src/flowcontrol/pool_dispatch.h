// Late binding between a FlowController and one pool's Scheduler.
//
// DispatchWhileUnsaturated offers queued requests, highest band first, while the pool's
// saturation detector says some endpoint has room; `place` does the rest for each item
// (usually: Pick, then Dispatch and send, returning kDispatched; or answer a shed /
// unavailable pick and return kDropped). Call it after every event that may free
// capacity: a completion, a scrape, an arrival. Because place() records each dispatch in
// the scheduler's ledger, the saturation check before the next item already counts it.
//
// Thread-safety: as FlowController and Scheduler (the caller holds the pool's lock).
#pragma once

#include <vector>

#include "flowcontrol/flow_controller.h"
#include "scheduler/scheduler.h"

namespace infergate {

template <class PlaceFn>
std::size_t DispatchWhileUnsaturated(FlowController& queue, Scheduler& scheduler, TimeNs now,
                                     PlaceFn&& place, std::vector<QueueItemId>* expired) {
  return queue.Dispatch(
      now,
      [&](const QueuedRequest& item) {
        if (scheduler.IsSaturated()) return DispatchAction::kStop;
        return place(item);
      },
      expired);
}

}  // namespace infergate
