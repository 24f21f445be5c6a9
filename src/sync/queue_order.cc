#include "sync/queue_order.h"

#include <algorithm>

namespace infergate::sync {

QueueOrder::QueueOrder(QueueOrderOptions options, const EventApplier* peers)
    : options_(options), peers_(peers) {}

std::uint64_t QueueOrder::Stamp(TimeNs enqueued_at) const {
  return static_cast<std::uint64_t>(std::max<TimeNs>(enqueued_at + options_.wall_offset, 0) /
                                    kNanosPerMicro);
}

QueueHeadState QueueOrder::HeadState(std::size_t held, const QueuedRequest* head) const {
  QueueHeadState s;
  s.held = head != nullptr ? std::max<std::size_t>(held, 1) : 0;
  if (head != nullptr) {
    s.id = head->id;
    s.priority = head->priority;
    s.stamp_us = Stamp(head->enqueued_at);
  }
  return s;
}

bool QueueOrder::ShouldWait(const QueuedRequest& head, TimeNs now) {
  const std::optional<PeerQueueHead> first =
      peers_->FirstPeerHead(head.priority, Stamp(head.enqueued_at), now, options_.fresh_within);
  if (!first) {
    waiting_ = false;
    return false;
  }
  const bool same =
      waiting_ && head.id == head_ && first->peer == blocker_ && first->id == blocker_id_;
  if (!same) {
    waiting_ = true;
    gave_up_ = false;
    head_ = head.id;
    blocker_.assign(first->peer);
    blocker_id_ = first->id;
    since_ = now;
    ++stats_.waits;
    if (options_.max_wait > 0) return true;
    gave_up_ = true;
    ++stats_.timed_out;
    return false;
  }
  if (gave_up_) return false;
  if (now - since_ >= options_.max_wait) {
    gave_up_ = true;
    ++stats_.timed_out;
    return false;
  }
  return true;
}

void QueueOrder::Gate(AdmissionController& admission, std::function<bool()> open) {
  admission.SetReleaseGate([this, open = std::move(open)](const QueuedRequest& head, TimeNs now) {
    if (open && open()) return false;
    return ShouldWait(head, now);
  });
}

TimeNs QueueOrder::NextDeadline(TimeNs now) const {
  if (!waiting_ || gave_up_) return kNever;
  const TimeNs deadline = since_ + options_.max_wait;
  return deadline > now ? deadline : kNever;
}

}  // namespace infergate::sync
