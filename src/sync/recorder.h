// EventRecorder: turns a scheduler's local request events into routing-event messages for
// the other gateway replicas (sync/wire.h).
//
// It is the scheduler's SchedulerEventSink: each dispatch (with its accounted prompt size,
// expected output and at most max_block_hashes prefix hashes), first token, completion
// (with usage), failure and session binding becomes an event in a bounded pending list,
// stamped with the clock. TakeMessages encodes the pending events into messages of at most
// max_message_bytes each, appending a heartbeat (the number of local requests in flight)
// when one is due, so peers can tell a live replica from a gone one and repair counts a
// lost message left wrong. When the pending list is full (no transport draining it) new
// events are dropped and counted: the request path never waits for the transport.
//
// The same recorder serves the live gateway (a publisher thread drains it to NATS) and the
// virtual-time cluster (which delivers its messages to peers after a modelled delay).
//
// Thread-safety: every method may be called from any thread (one internal mutex); the
// sink methods are cheap (a copy of the hashes at most).
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "core/clock.h"
#include "scheduler/scheduler.h"
#include "sync/wire.h"

namespace infergate::sync {

struct RecorderOptions {
  std::string replica_id = "replica";  // 1..kMaxIdBytes bytes
  std::uint64_t incarnation = 1;       // a new value per process start
  std::size_t max_pending_events = 65'536;
  std::size_t max_message_bytes = kMaxMessageBytes;  // clamped to [1 KiB, kMaxMessageBytes]
  std::size_t max_block_hashes = kMaxBlockHashes;    // clamped to kMaxBlockHashes
  TimeNs heartbeat_interval = kNanosPerSecond;
  // The wall clock's reading less the clock's: each message carries the wall time it was
  // encoded at (MessageHeader::sent_us), the clock's reading plus this (0 where every
  // replica's clock is one shared clock, as in the virtual-time cluster).
  TimeNs wall_offset = 0;
  // Called (without the recorder's lock held, on the thread that made the news) when the
  // recorder goes from nothing to send to something: an event, or a queue head that is
  // news. The transport's cue to flush at once rather than at its next tick.
  std::function<void()> on_news;
};

// The local gateway queue as peers need it: how many requests it holds and the one it
// offers next (its priority and its arrival as QueueOrder::Stamp gives it).
struct QueueHeadState {
  std::size_t held = 0;
  std::uint64_t id = 0;        // with held > 0: the head's queue item id
  int priority = 0;            // with held > 0
  std::uint64_t stamp_us = 0;  // with held > 0
};

struct RecorderStats {
  std::uint64_t dispatches = 0;      // local dispatches recorded
  std::uint64_t events = 0;          // events encoded into messages
  std::uint64_t messages = 0;        // messages produced
  std::uint64_t bytes = 0;           // their total size
  std::uint64_t dropped_events = 0;  // pending list full
  std::uint64_t heartbeats = 0;
  std::uint64_t queue_events = 0;  // queue-head updates sent
};

// When news made at `now` goes out, for a transport that flushes at once after a quiet
// `interval` and otherwise batches: at `now` when the last flush (`last`, kNever: none) is
// an interval or more ago; with the flush already due when `now` is not past it; else
// an interval after the last flush.
inline TimeNs NextFlush(TimeNs now, TimeNs last, TimeNs interval) {
  if (last == kNever || now - last >= interval) return now;
  if (now <= last) return last;
  return last + interval;
}

class EventRecorder final : public SchedulerEventSink {
 public:
  EventRecorder(RecorderOptions options, const Clock* clock);

  void OnLocalDispatch(const LocalDispatchEvent& event) override;
  void OnLocalFirstToken(TokenLedger::Handle handle) override;
  void OnLocalFinish(TokenLedger::Handle handle, const std::optional<Usage>& usage,
                     bool failed) override;

  // The local gateway queue's head now (call before TakeMessages, or whenever the queue
  // changes). A queue event goes out with the next messages when the head changed (a new
  // head, or the queue emptied or filled; the count alone is not news), and with every
  // heartbeat while requests are held, so a lost update is repaired within an interval.
  void SetQueueHead(const QueueHeadState& head);
  // Appends to *out the pending events as messages (in order), then the queue head when it
  // is news, plus a heartbeat when one is due or `heartbeat` is set; clears the pending
  // list.
  void TakeMessages(std::vector<std::string>* out, bool heartbeat = false);
  // When the next heartbeat is due (a time at or before now: due now), for a transport
  // deciding when to wake.
  TimeNs NextHeartbeat() const;
  RecorderStats stats() const;
  const RecorderOptions& options() const { return options_; }

 private:
  struct Pending {
    Event event;
    TimeNs at = 0;
  };
  // Whether there is nothing to send (caller holds mu_).
  bool Idle() const { return pending_.empty() && !queue_changed_; }
  // Adds an event (caller holds mu_); true when it is the first news since the last take.
  bool Push(Event event);
  // Runs `change` under mu_ (it returns whether it made the first news since the last
  // take), then tells the transport, outside the lock, when it did.
  template <class F>
  void Record(F&& change) {
    bool news = false;
    {
      std::lock_guard lock(mu_);
      news = change();
    }
    if (news && options_.on_news) options_.on_news();
  }

  RecorderOptions options_;
  const Clock* clock_;
  mutable std::mutex mu_;
  std::vector<Pending> pending_;
  std::int64_t live_ = 0;  // local requests in flight (dispatches less finishes)
  std::uint64_t sequence_ = 0;
  TimeNs last_heartbeat_ = kNever;
  QueueHeadState queue_;        // the latest SetQueueHead
  bool queue_changed_ = false;  // since the last queue event
  RecorderStats stats_;
  std::vector<Event> batch_;  // TakeMessages scratch
  std::string buffer_;
};

}  // namespace infergate::sync
