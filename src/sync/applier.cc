#include "sync/applier.h"

#include <algorithm>

namespace infergate::sync {

EventApplier::EventApplier(ApplierOptions options) : options_(std::move(options)) {}

void DelayHistogram::Observe(double seconds) {
  std::size_t i = 0;
  while (i < kBounds && seconds > Bound(i)) ++i;
  ++buckets[i];
  ++count;
  sum_seconds += seconds;
}

Status EventApplier::Apply(std::string_view bytes, TimeNs now, Scheduler& scheduler) {
  Result<Message> m = DecodeMessage(bytes);
  if (!m.ok()) {
    ++stats_.invalid_messages;
    return m.error();
  }
  const MessageHeader& h = m->header;
  if (h.origin == options_.self_id) {
    ++stats_.own_messages;
    return Error{"own message"};
  }
  auto it = peers_.find(h.origin);
  if (it == peers_.end()) {
    if (peers_.size() >= options_.max_peers) {
      ++stats_.invalid_messages;
      return Error{"too many peers"};
    }
    it = peers_.emplace(h.origin, Peer{}).first;
    it->second.incarnation = h.incarnation;
  }
  Peer& peer = it->second;
  if (peer.incarnation != h.incarnation) {
    // The peer restarted: what its previous process had in flight is gone with it.
    ClosePeer(peer, scheduler);
    peer.incarnation = h.incarnation;
    peer.sequence = 0;
    peer.has_head = false;
  }
  if (peer.sequence != 0 && h.sequence > peer.sequence + 1) {
    stats_.lost_messages += h.sequence - peer.sequence - 1;
  }
  peer.sequence = std::max(peer.sequence, h.sequence);
  peer.last_seen = now;
  ++stats_.messages;
  if (h.version < kWireVersion) ++stats_.old_version_messages;
  stats_.bytes += bytes.size();
  // The message's transit, from its encoding at the origin to now (wall clocks, in
  // microseconds: sent_us may be anything up to kMaxStampUs). A peer's wrong clock (or a
  // forged send time) reads at most as long as an event's age may be: the sum stays sane.
  const std::uint64_t now_us =
      static_cast<std::uint64_t>(std::max<TimeNs>(now + options_.wall_offset, 0) / kNanosPerMicro);
  const std::uint64_t transit_us = std::min(now_us > h.sent_us ? now_us - h.sent_us : 0, kMaxAgeUs);
  const TimeNs transit =
      h.version >= kFirstVersionWithSentTime
          ? std::min(static_cast<TimeNs>(transit_us) * kNanosPerMicro, options_.max_transit)
          : 0;
  for (const Event& e : m->events) {
    if (h.version >= kFirstVersionWithSentTime && e.type == EventType::kDispatch) {
      stats_.dispatch_delay.Observe(static_cast<double>(transit_us + e.age_us) * 1e-6);
    }
    ApplyEvent(peer, e, now, transit, scheduler);
  }
  return {};
}

void EventApplier::ApplyEvent(Peer& peer, const Event& e, TimeNs now, TimeNs transit,
                              Scheduler& scheduler) {
  // When the event happened at its origin (age_us <= kMaxAgeUs: no overflow).
  const TimeNs at = now - transit - static_cast<TimeNs>(e.age_us) * kNanosPerMicro;
  switch (e.type) {
    case EventType::kDispatch: {
      if (peer.entries.size() >= options_.max_entries_per_peer ||
          peer.entries.contains(e.request)) {
        ++stats_.skipped_events;
        return;
      }
      RemoteDispatch d;
      d.endpoint = e.endpoint;
      d.dispatched = at;
      d.prompt_tokens = static_cast<std::int64_t>(e.prompt_tokens);
      d.expected_output_tokens = static_cast<std::int64_t>(e.output_tokens);
      d.block_hashes = e.block_hashes;
      const TokenLedger::Handle handle = scheduler.ApplyRemoteDispatch(d);
      if (handle == TokenLedger::kInvalidHandle) {
        ++stats_.skipped_events;
        return;
      }
      peer.entries.emplace(e.request, Entry{handle, now});
      break;
    }
    case EventType::kFirstToken: {
      auto it = peer.entries.find(e.request);
      if (it == peer.entries.end()) {
        ++stats_.skipped_events;
        return;
      }
      scheduler.OnFirstToken(it->second.handle, at);
      break;
    }
    case EventType::kCompletion:
    case EventType::kFailure: {
      auto it = peer.entries.find(e.request);
      if (it == peer.entries.end()) {
        ++stats_.skipped_events;
        return;
      }
      if (e.type == EventType::kCompletion && e.has_usage) {
        scheduler.OnComplete(it->second.handle,
                             Usage{static_cast<std::int64_t>(e.prompt_tokens),
                                   static_cast<std::int64_t>(e.output_tokens)},
                             at);
      } else {
        scheduler.OnFailure(it->second.handle, at);
      }
      peer.entries.erase(it);
      break;
    }
    case EventType::kSession:
      scheduler.ApplyRemoteSession(e.session_key, e.endpoint);
      break;
    case EventType::kHeartbeat:
      peer.live = e.live;
      // Events arrive in order, so after a heartbeat the peer has exactly `live` requests
      // in flight; more held here means a completion or failure was lost on the way.
      if (peer.entries.size() > e.live) CloseOldest(peer, peer.entries.size() - e.live, scheduler);
      break;
    case EventType::kQueue:
      peer.has_head = e.held > 0;
      peer.head_priority = static_cast<int>(e.priority);  // |priority| < 2^31: decoded so
      peer.head_stamp_us = e.stamp_us;
      peer.head_id = e.request;
      break;
  }
  ++stats_.events;
}

void EventApplier::ClosePeer(Peer& peer, Scheduler& scheduler) {
  for (auto& [id, entry] : peer.entries) scheduler.OnFailure(entry.handle);
  stats_.expired_entries += peer.entries.size();
  peer.entries.clear();
}

void EventApplier::CloseOldest(Peer& peer, std::size_t count, Scheduler& scheduler) {
  std::vector<std::pair<TimeNs, std::uint64_t>> by_age;
  by_age.reserve(peer.entries.size());
  for (const auto& [id, entry] : peer.entries) by_age.emplace_back(entry.applied, id);
  count = std::min(count, by_age.size());
  std::partial_sort(by_age.begin(), by_age.begin() + static_cast<std::ptrdiff_t>(count),
                    by_age.end());
  for (std::size_t i = 0; i < count; ++i) {
    auto it = peer.entries.find(by_age[i].second);
    scheduler.OnFailure(it->second.handle);
    peer.entries.erase(it);
  }
  stats_.expired_entries += count;
}

void EventApplier::Expire(TimeNs now, Scheduler& scheduler) {
  const bool ttl_check = now >= next_ttl_check_;
  if (ttl_check) next_ttl_check_ = now + std::max<TimeNs>(options_.entry_ttl / 16, kNanosPerSecond);
  for (auto it = peers_.begin(); it != peers_.end();) {
    Peer& peer = it->second;
    if (now - peer.last_seen >= options_.peer_timeout) {
      ClosePeer(peer, scheduler);
      ++stats_.expired_peers;
      it = peers_.erase(it);
      continue;
    }
    if (ttl_check) {
      for (auto e = peer.entries.begin(); e != peer.entries.end();) {
        if (now - e->second.applied >= options_.entry_ttl) {
          scheduler.OnFailure(e->second.handle);
          ++stats_.expired_entries;
          e = peer.entries.erase(e);
        } else {
          ++e;
        }
      }
    }
    ++it;
  }
}

std::vector<PeerStatus> EventApplier::Peers() const {
  std::vector<PeerStatus> out;
  for (const auto& [id, peer] : peers_) {
    out.push_back(PeerStatus{id, peer.last_seen, peer.entries.size(), peer.live});
  }
  std::sort(out.begin(), out.end(),
            [](const PeerStatus& a, const PeerStatus& b) { return a.id < b.id; });
  return out;
}

std::size_t EventApplier::remote_entries() const {
  std::size_t n = 0;
  for (const auto& [id, peer] : peers_) n += peer.entries.size();
  return n;
}

std::optional<PeerQueueHead> EventApplier::FirstPeerHead(int priority, std::uint64_t stamp_us,
                                                         TimeNs now, TimeNs fresh_within) const {
  std::optional<PeerQueueHead> first;
  // Whether head (p, t, id) comes before (q, u, other) pool-wide.
  auto before = [](int p, std::uint64_t t, std::string_view id, int q, std::uint64_t u,
                   std::string_view other) {
    if (p != q) return p > q;
    if (t != u) return t < u;
    return id < other;
  };
  for (const auto& [id, peer] : peers_) {
    if (!peer.has_head || now - peer.last_seen > fresh_within) continue;
    if (!before(peer.head_priority, peer.head_stamp_us, id, priority, stamp_us, options_.self_id)) {
      continue;
    }
    if (!first || before(peer.head_priority, peer.head_stamp_us, id, first->priority,
                         first->stamp_us, first->peer)) {
      first = PeerQueueHead{id, peer.head_id, peer.head_priority, peer.head_stamp_us};
    }
  }
  return first;
}

TimeNs EventApplier::MaxPeerAge(TimeNs now) const {
  TimeNs age = -1;
  for (const auto& [id, peer] : peers_) age = std::max(age, now - peer.last_seen);
  return age;
}

}  // namespace infergate::sync
