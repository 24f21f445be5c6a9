#include "flowcontrol/admission.h"

#include <algorithm>

namespace infergate {

std::string_view AdmissionReasonName(AdmissionReason reason) {
  switch (reason) {
    case AdmissionReason::kPicked:
      return "picked";
    case AdmissionReason::kHeld:
      return "held";
    case AdmissionReason::kPickRefused:
      return "pick-refused";
    case AdmissionReason::kQueueFull:
      return "queue-full";
    case AdmissionReason::kExpired:
      return "queue-ttl";
    case AdmissionReason::kDuplicateId:
      return "duplicate-id";
  }
  return "unknown";
}

int AdmissionDecision::http_status() const {
  switch (reason) {
    case AdmissionReason::kPicked:
    case AdmissionReason::kPickRefused:
      return pick.http_status();
    case AdmissionReason::kHeld:
      return 0;
    case AdmissionReason::kQueueFull:
      return 429;
    case AdmissionReason::kExpired:
      return 503;
    case AdmissionReason::kDuplicateId:
      return 500;
  }
  return 500;
}

std::string_view AdmissionDecision::ReasonName() const {
  if (reason == AdmissionReason::kPicked || reason == AdmissionReason::kPickRefused) {
    return PickReasonName(pick.reason);
  }
  return AdmissionReasonName(reason);
}

AdmissionController::AdmissionController(AdmissionOptions options, Scheduler* scheduler)
    : options_(options), scheduler_(scheduler), queue_(options.queue) {}

void AdmissionController::PickNow(const RequestInfo& request, AdmissionDecision* out) {
  scheduler_->Pick(request, &out->pick);
  out->handle = TokenLedger::kInvalidHandle;
  if (out->pick.picked()) {
    out->verdict = AdmissionVerdict::kPick;
    out->reason = AdmissionReason::kPicked;
    out->handle = scheduler_->Dispatch(request, out->pick, out->pick.endpoints.front());
  } else {
    out->verdict = AdmissionVerdict::kReject;
    out->reason = AdmissionReason::kPickRefused;
  }
}

AdmissionDecision AdmissionController::Admit(QueueItemId id, const RequestInfo& request, TimeNs now,
                                             TimeNs ttl, bool queueing, const DecidedFn& decided) {
  AdmissionDecision d;
  // Sheddable requests are never held: a saturated pool sheds them (Pick says so). Nor is
  // a prompt no endpoint's KV cache can ever hold (Scheduler::LargerThanEveryKvCache).
  if (!options_.late_binding || !queueing || request.IsSheddable() ||
      scheduler_->LargerThanEveryKvCache(request)) {
    PickNow(request, &d);
    return d;
  }
  // The queue's cost of an item is what the gateway knows of its prompt (kLeastServed).
  const auto cost = static_cast<std::uint64_t>(std::max<std::int64_t>(1, request.PromptTokens()));
  const EnqueueResult r = queue_.Enqueue(id, request.priority, request.fairness_id, now, ttl, cost);
  if (r != EnqueueResult::kQueued) {
    d.verdict = AdmissionVerdict::kReject;
    d.reason = r == EnqueueResult::kRejectedCapacity ? AdmissionReason::kQueueFull
                                                     : AdmissionReason::kDuplicateId;
    return d;
  }
  max_queued_ = std::max(max_queued_, queue_.size());
  held_[id] = &request;
  d.verdict = AdmissionVerdict::kHold;
  d.reason = AdmissionReason::kHeld;
  Pump(now, false, [&](QueueItemId item, const AdmissionDecision& x) {
    if (item == id) d = x;
    if (decided) decided(item, x);
  });
  return d;
}

std::size_t AdmissionController::Pump(TimeNs now, bool force, const DecidedFn& decided) {
  if (queue_.empty()) return 0;
  // A hold ends at the next event that frees capacity, which needs fresh metrics to be
  // seen; without them the failure mode decides at once.
  const bool can_hold = !force && scheduler_->CanHold();
  std::size_t n = 0;
  expired_.clear();
  queue_.Dispatch(
      now,
      [&](const QueuedRequest& item) {
        auto it = held_.find(item.id);
        if (it == held_.end()) return DispatchAction::kDropped;  // not ours: cannot happen
        const RequestInfo& request = *it->second;
        if (can_hold && scheduler_->ShouldHold(request)) return DispatchAction::kStop;
        if (can_hold && gate_ && gate_(item, now)) return DispatchAction::kStop;
        PickNow(request, &scratch_);
        held_.erase(it);
        ++n;
        if (decided) decided(item.id, scratch_);
        return scratch_.picked() ? DispatchAction::kDispatched : DispatchAction::kDropped;
      },
      &expired_);
  for (QueueItemId id : expired_) {
    if (held_.erase(id) == 0) continue;
    ++n;
    AdmissionDecision d;
    d.verdict = AdmissionVerdict::kReject;
    d.reason = AdmissionReason::kExpired;
    if (decided) decided(id, d);
  }
  return n;
}

bool AdmissionController::Cancel(QueueItemId id) {
  if (held_.erase(id) == 0) return false;
  queue_.Cancel(id);
  return true;
}

}  // namespace infergate
