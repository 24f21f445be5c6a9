// ReplicaSync: several `infergate serve` replicas share their routing events over NATS.
//
// Each InferencePool gets a subject, <prefix>.<pool> (the pool id with every character
// outside [A-Za-z0-9_-] turned into '_'). A replica's pool scheduler reports its own
// requests to a sync::EventRecorder (src/sync); a publisher thread drains the recorders
// and publishes their messages, with a heartbeat every second: news goes out at once when
// the last flush of news is a flush interval (2 ms) or more ago, else when the interval
// has passed (sync::NextFlush), so a quiet replica's dispatch reaches its peers after one
// NATS hop and a busy one still sends at most one batch per interval. A
// subscription to <prefix>.> hands peers' messages (on the NATS client's thread) to the
// pool's sync::EventApplier under the pool's lock (PoolState::UpdateScheduler, so a freed
// slot lets queued requests through), and the publisher thread expires silent peers.
//
// One pool-wide release order (sync::QueueOrder, the same code the virtual-time cluster
// runs): each pool's queue publishes its head with the other events whenever it changes
// (PoolState::SetReleaseOrder; a queue event, wire version 2) and lets its head through only
// when no peer heard from within two heartbeat intervals has a head that comes first,
// waiting at most queue_order_wait on one peer's head. The publisher thread is the wait's
// timer: it sleeps no longer than the earliest bound (a bound that moves earlier wakes it)
// and re-runs that pool's pump (PoolState::WakeIfDue). Otherwise it sleeps until news, a
// heartbeat or the peer expiry is due: an idle replica wakes about once a second. While
// NATS is down the order is not asked (local knowledge). Peers on wire version 1 (a
// rolling update) are applied and counted; they send no queue head, so they are never
// waited on.
//
// The request path never waits on NATS: the recorder's bounded queue takes events under
// the pool's lock and drops (counting) when full. While NATS is unreachable, messages are
// dropped and counted, the gateway routes on its local knowledge, and one log line says so;
// the client reconnects forever, and on reconnection a heartbeat goes out at once (peers'
// heartbeats and new events rebuild their state here; the age of each pool's stalest peer
// state is a metric). Messages from this replica (NATS echo is off anyway) and bad ones
// (garbage, another version, too large) are dropped and counted.
//
// Metrics (Collect): infergate_replica_sync_connected, _published_messages_total,
// _published_bytes_total, _publisher_wakeups_total, _local_dispatches_total,
// _bytes_per_request, _messages_per_request, _dropped_messages_total{reason}, and per pool
// _received_messages_total, _invalid_messages_total, _lost_messages_total, _peers,
// _remote_inflight_requests, _peer_state_age_seconds, _expired_entries_total,
// _old_version_messages_total, _queue_order_waits_total, _queue_order_timeouts_total,
// and the histogram _dispatch_delay_seconds (a peer's dispatch to its application here).
//
// Thread-safety: SetPools and Collect may be called from any thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "gateway/pool_state.h"
#include "telemetry/metrics.h"

namespace infergate::gateway {

struct ReplicaSyncOptions {
  std::vector<std::string> urls;  // nats://host:port, ...
  std::string creds_file;         // NATS credentials (JWT + seed); empty: none
  std::string replica_id;         // empty: $HOSTNAME, else a random id
  std::string subject_prefix = "infergate.sync";
  TimeNs flush_interval = 2 * kNanosPerMilli;  // the longest news waits for a batch
  TimeNs heartbeat_interval = kNanosPerSecond;
  TimeNs peer_timeout = 5 * kNanosPerSecond;
  // One pool-wide release order (sync::QueueOrder, as in the virtual-time cluster): each
  // pool's queue publishes its head and lets it through only when no peer's head comes
  // first, waiting at most queue_order_wait on one peer's head.
  bool queue_order = true;
  TimeNs queue_order_wait = 10 * kNanosPerMilli;
};

// "nats://a:4222,nats://b:4222" → the URLs. Errors: an empty list or a URL that is not
// nats:// or tls://.
Result<std::vector<std::string>> ParseNatsUrls(std::string_view list);

// The subject of a pool's events.
std::string PoolSubject(std::string_view prefix, std::string_view pool_id);

class ReplicaSync {
 public:
  // Connects (or keeps trying in the background when NATS is not up yet) and starts the
  // publisher. Errors: bad options (no URL, an unreadable credentials file).
  static Result<std::unique_ptr<ReplicaSync>> Start(ReplicaSyncOptions options, const Clock* clock);
  ~ReplicaSync();
  ReplicaSync(const ReplicaSync&) = delete;
  ReplicaSync& operator=(const ReplicaSync&) = delete;

  // The live pools (by id) after a configuration change: new ones get a recorder and an
  // applier, replaced or removed ones are detached.
  void SetPools(const std::map<std::string, std::shared_ptr<PoolState>>& pools);
  void Collect(telemetry::MetricWriter& w);
  const std::string& replica_id() const;

  class Impl;

 private:
  explicit ReplicaSync(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace infergate::gateway
