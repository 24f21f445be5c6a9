#include "sync/recorder.h"

#include <algorithm>

namespace infergate::sync {

EventRecorder::EventRecorder(RecorderOptions options, const Clock* clock)
    : options_(std::move(options)), clock_(clock) {
  if (options_.replica_id.empty()) options_.replica_id = "replica";
  if (options_.replica_id.size() > kMaxIdBytes) options_.replica_id.resize(kMaxIdBytes);
  options_.max_message_bytes =
      std::clamp<std::size_t>(options_.max_message_bytes, 1024, kMaxMessageBytes);
  options_.max_block_hashes = std::min(options_.max_block_hashes, kMaxBlockHashes);
}

bool EventRecorder::Push(Event event) {
  // Caller holds mu_.
  if (pending_.size() >= options_.max_pending_events) {
    ++stats_.dropped_events;
    return false;
  }
  const bool news = Idle();
  pending_.push_back(Pending{std::move(event), clock_->Now()});
  return news;
}

void EventRecorder::OnLocalDispatch(const LocalDispatchEvent& d) {
  Event e;
  e.type = EventType::kDispatch;
  e.request = d.handle;
  e.endpoint = std::string(d.endpoint.substr(0, kMaxStringBytes));
  e.prompt_tokens = static_cast<std::uint64_t>(std::max<std::int64_t>(d.prompt_tokens, 0));
  e.output_tokens = static_cast<std::uint64_t>(std::max<std::int64_t>(d.expected_output_tokens, 0));
  // The chain's leading blocks are the ones a match needs first; a long prompt's tail is
  // left out rather than making a long message.
  const std::size_t blocks = std::min(d.block_hashes.size(), options_.max_block_hashes);
  e.block_hashes.assign(d.block_hashes.begin(), d.block_hashes.begin() + blocks);
  Record([&] {
    ++stats_.dispatches;
    ++live_;
    bool news = Push(std::move(e));
    if (!d.session_key.empty()) {
      Event s;
      s.type = EventType::kSession;
      s.session_key = std::string(d.session_key.substr(0, kMaxStringBytes));
      s.endpoint = std::string(d.endpoint.substr(0, kMaxStringBytes));
      news |= Push(std::move(s));
    }
    return news;
  });
}

void EventRecorder::OnLocalFirstToken(TokenLedger::Handle handle) {
  Event e;
  e.type = EventType::kFirstToken;
  e.request = handle;
  Record([&] { return Push(std::move(e)); });
}

void EventRecorder::OnLocalFinish(TokenLedger::Handle handle, const std::optional<Usage>& usage,
                                  bool failed) {
  Event e;
  e.request = handle;
  if (failed) {
    e.type = EventType::kFailure;
  } else {
    e.type = EventType::kCompletion;
    if (usage) {
      e.has_usage = true;
      e.prompt_tokens = static_cast<std::uint64_t>(std::max<std::int64_t>(usage->prompt_tokens, 0));
      e.output_tokens =
          static_cast<std::uint64_t>(std::max<std::int64_t>(usage->completion_tokens, 0));
    }
  }
  Record([&] {
    live_ = std::max<std::int64_t>(live_ - 1, 0);
    return Push(std::move(e));
  });
}

void EventRecorder::SetQueueHead(const QueueHeadState& head) {
  Record([&] {
    bool news = false;
    const bool was_held = queue_.held > 0, held = head.held > 0;
    if (was_held != held || (held && (head.id != queue_.id || head.priority != queue_.priority ||
                                      head.stamp_us != queue_.stamp_us))) {
      news = Idle();
      queue_changed_ = true;
    }
    queue_ = head;
    return news;
  });
}

TimeNs EventRecorder::NextHeartbeat() const {
  std::lock_guard lock(mu_);
  return last_heartbeat_ == kNever ? 0 : last_heartbeat_ + options_.heartbeat_interval;
}

void EventRecorder::TakeMessages(std::vector<std::string>* out, bool heartbeat) {
  std::lock_guard lock(mu_);
  const TimeNs now = clock_->Now();
  if (last_heartbeat_ == kNever || now - last_heartbeat_ >= options_.heartbeat_interval) {
    heartbeat = true;
  }
  if (Idle() && !heartbeat) return;
  MessageHeader header{options_.replica_id, options_.incarnation, 0};
  header.sent_us =
      static_cast<std::uint64_t>(std::max<TimeNs>(now + options_.wall_offset, 0) / kNanosPerMicro);
  const std::size_t header_bytes = EncodedHeaderSize(header) + 3;
  std::size_t size = header_bytes;
  batch_.clear();
  auto flush = [&] {
    header.sequence = ++sequence_;
    EncodeMessage(header, batch_, &buffer_);
    stats_.events += batch_.size();
    ++stats_.messages;
    stats_.bytes += buffer_.size();
    out->push_back(buffer_);
    batch_.clear();
    size = header_bytes;
  };
  auto add = [&](Event e) {
    const std::size_t n = EncodedEventSize(e);
    if (!batch_.empty() && (size + n > options_.max_message_bytes || batch_.size() >= kMaxEvents)) {
      flush();
    }
    size += n;
    batch_.push_back(std::move(e));
  };
  for (Pending& p : pending_) {
    p.event.age_us = static_cast<std::uint64_t>(std::max<TimeNs>(now - p.at, 0) / kNanosPerMicro);
    add(std::move(p.event));
  }
  pending_.clear();
  // After the events: a peer applies a dispatch that left this queue before it learns the
  // head that replaced it, so it never sees capacity this replica has just taken as free.
  if (queue_changed_ || (heartbeat && queue_.held > 0)) {
    Event q;
    q.type = EventType::kQueue;
    q.held = queue_.held;
    if (queue_.held > 0) {
      q.request = queue_.id;
      q.priority = queue_.priority;
      q.stamp_us = queue_.stamp_us;
    }
    add(std::move(q));
    queue_changed_ = false;
    ++stats_.queue_events;
  }
  if (heartbeat) {
    Event hb;
    hb.type = EventType::kHeartbeat;
    hb.live = static_cast<std::uint64_t>(live_);
    hb.interval_ms = static_cast<std::uint64_t>(options_.heartbeat_interval / kNanosPerMilli);
    add(std::move(hb));
    last_heartbeat_ = now;
    ++stats_.heartbeats;
  }
  if (!batch_.empty()) flush();
}

RecorderStats EventRecorder::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace infergate::sync
