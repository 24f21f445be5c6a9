// EventApplier: applies peer replicas' routing-event messages to this replica's scheduler.
//
// Each peer (a message's origin) gets its own table of the requests it has in flight: a
// dispatch becomes a remote ledger entry (Scheduler::ApplyRemoteDispatch: counted in every
// estimate, kept apart from local accounting) and its prefix blocks enter the prefix
// index; first token, completion and failure move or close the entry; a session binding
// enters the session table; a queue event updates the peer's gateway-queue head
// (FirstPeerHead, for sync::QueueOrder). Remote entries are bounded: a peer holds at most
// max_entries_per_peer, there are at most max_peers peers, and an entry older than
// entry_ttl is dropped. A peer that sends nothing for peer_timeout (its heartbeats
// stopped) has all its entries closed; one that restarts (a new incarnation) has the old
// incarnation's entries closed first. A heartbeat saying the peer has fewer requests in
// flight than are held for it (its completion was lost) closes the oldest surplus.
//
// Messages are untrusted: one that does not decode (garbage, another version, too large,
// absurd counts), or comes from this replica itself, is dropped whole and counted; it
// never reaches the scheduler. A message in an older wire version (a replica not yet
// upgraded) is applied like any and counted in old_version_messages (version 1 has no
// queue events, so its origin is never waited on; versions 1 and 2 no send time, so their
// dispatches are not in dispatch_delay). Events naming an unknown endpoint or request are skipped
// and counted.
//
// Thread-safety: not synchronised; call it where the scheduler is serialised (the pool's
// lock in the gateway).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "scheduler/scheduler.h"
#include "sync/wire.h"

namespace infergate::sync {

struct ApplierOptions {
  std::string self_id;  // messages from this origin are ignored
  // The wall clock's reading less the clock's (as RecorderOptions::wall_offset): the
  // transit of a message is the wall time at its application less its sent_us.
  TimeNs wall_offset = 0;
  TimeNs peer_timeout = 5 * kNanosPerSecond;
  std::size_t max_peers = 64;
  std::size_t max_entries_per_peer = 65'536;
  TimeNs entry_ttl = 30LL * 60 * kNanosPerSecond;
  // Each event is dated when it happened at its origin: now less the message's transit
  // (from its send time, wire version 3) and the event's age at encoding, so the ledger
  // places a peer's dispatch, first token or completion against this replica's last scrape
  // of the endpoint (TokenLedger::FirstToken). A transit read longer than this (a peer's
  // wall clock behind ours, or a message that sat in a reconnect buffer) counts as this.
  TimeNs max_transit = kNanosPerSecond;
};

// How long peers' dispatches took to reach this replica's ledger: from the dispatch at the
// origin (its event's age at encoding) through the origin's batching, the transport and
// the wait for the scheduler, to the application here. Only messages that carry their send
// time (wire version 3) count. Across machines the readings include the difference of
// their wall clocks; a negative transit counts as 0.
struct DelayHistogram {
  static constexpr std::size_t kBounds = 16;
  // Upper bound of bucket i in seconds: 100 us doubling to 3.28 s; bucket kBounds: beyond.
  static constexpr double Bound(std::size_t i) { return 1e-4 * static_cast<double>(1u << i); }
  std::array<std::uint64_t, kBounds + 1> buckets{};  // non-cumulative
  std::uint64_t count = 0;
  double sum_seconds = 0;
  void Observe(double seconds);
};

struct ApplierStats {
  std::uint64_t messages = 0;              // applied
  std::uint64_t bytes = 0;                 // of applied messages
  std::uint64_t events = 0;                // applied
  std::uint64_t invalid_messages = 0;      // did not decode: dropped whole
  std::uint64_t own_messages = 0;          // this replica's own, ignored
  std::uint64_t skipped_events = 0;        // unknown endpoint or request, or over a bound
  std::uint64_t lost_messages = 0;         // gaps in a peer's sequence numbers
  std::uint64_t expired_peers = 0;         // silent beyond peer_timeout
  std::uint64_t expired_entries = 0;       // closed by expiry, restart, TTL or a heartbeat
  std::uint64_t old_version_messages = 0;  // applied, from a peer on an older wire version
  DelayHistogram dispatch_delay;
};

// A peer's gateway-queue head as its queue events say (stamp: QueueOrder::Stamp).
struct PeerQueueHead {
  std::string_view peer;  // valid until the next Apply or Expire
  std::uint64_t id = 0;   // the peer's queue item id
  int priority = 0;
  std::uint64_t stamp_us = 0;
};

struct PeerStatus {
  std::string id;
  TimeNs last_seen = 0;  // on the applier's clock
  std::size_t entries = 0;
  std::uint64_t live = 0;  // its last heartbeat's count
};

class EventApplier {
 public:
  explicit EventApplier(ApplierOptions options);

  // Decodes and applies one message at `now`. Errors: the message was dropped (invalid,
  // or this replica's own); counted in stats() either way.
  Status Apply(std::string_view bytes, TimeNs now, Scheduler& scheduler);
  // Closes the entries of peers silent for peer_timeout and entries older than entry_ttl.
  // Cheap when nothing expires; call it every so often (e.g. each heartbeat interval).
  void Expire(TimeNs now, Scheduler& scheduler);

  std::vector<PeerStatus> Peers() const;
  std::size_t peer_count() const { return peers_.size(); }
  std::size_t remote_entries() const;
  // Of the peers heard from within `fresh_within` of `now`, the first queue head pool-wide
  // among those that come before a local head of `priority` stamped `stamp_us`: a higher
  // priority, or the same and an earlier stamp (the same stamp: the lower replica id).
  // Nothing when no peer's head comes first.
  std::optional<PeerQueueHead> FirstPeerHead(int priority, std::uint64_t stamp_us, TimeNs now,
                                             TimeNs fresh_within) const;
  // The age of the stalest peer's state at `now` (time since its last message); -1 with
  // no peer.
  TimeNs MaxPeerAge(TimeNs now) const;
  const ApplierStats& stats() const { return stats_; }
  void CountInvalid() { ++stats_.invalid_messages; }

 private:
  struct Entry {
    TokenLedger::Handle handle = TokenLedger::kInvalidHandle;
    TimeNs applied = 0;
  };
  struct Peer {
    std::uint64_t incarnation = 0;
    std::uint64_t sequence = 0;
    TimeNs last_seen = 0;
    std::uint64_t live = 0;
    std::unordered_map<std::uint64_t, Entry> entries;
    // Its gateway queue's head (queue events), while it holds requests.
    bool has_head = false;
    std::uint64_t head_id = 0;
    int head_priority = 0;
    std::uint64_t head_stamp_us = 0;
  };
  // `transit`: the message's, as dated (see ApplierOptions::max_transit).
  void ApplyEvent(Peer& peer, const Event& e, TimeNs now, TimeNs transit, Scheduler& scheduler);
  void ClosePeer(Peer& peer, Scheduler& scheduler);
  void CloseOldest(Peer& peer, std::size_t count, Scheduler& scheduler);

  ApplierOptions options_;
  std::unordered_map<std::string, Peer> peers_;
  ApplierStats stats_;
  TimeNs next_ttl_check_ = 0;
};

}  // namespace infergate::sync
