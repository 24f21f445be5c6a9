// ReplicaRouter: several gateway replicas behind an L4 load balancer, in virtual time.
//
// A production gateway runs as R replicas; each has its own scheduler (ledger, prefix
// index, session table) and gateway queue, and scrapes the engines on its own phase. The
// ReplicaRouter composes R SchedulerRouters that way: each request goes to one replica
// drawn at random (seeded), as a balancer spreading connections would, and that replica's
// router answers for it to the end (its first token and completion go back to it). Scrapes:
// the simulation must scrape every scrape_interval / R (ClusterOptions); the n-th scrape
// goes to replica n mod R, so each replica sees a scrape every scrape_interval, R phases
// apart.
//
// Replica sync (options.sync): every replica's scheduler reports its own requests to a
// sync::EventRecorder; after every call the recorders' messages are flushed by the live
// publisher's rule (at once after a quiet flush interval, else when the interval has
// passed) and delivered to every other replica's sync::EventApplier `delay` after the
// flush, each message lost with probability `loss` (seeded) — the shipped event code with
// a modelled transport. Messages are applied
// at the first call at or after their due time: decisions are only made inside calls, so
// every decision sees exactly the messages due by then, and while requests are held
// NextWakeup asks for a call when the next message is due. Heartbeats and peer expiry run
// as in the live gateway. Release asks the replicas in a rotating order (none is always
// first to take capacity that has just appeared).
//
// Thread-safety: as Router (one thread).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cluster/router.h"
#include "cluster/scheduler_router.h"
#include "sync/applier.h"
#include "sync/queue_order.h"
#include "sync/recorder.h"

namespace infergate::cluster {

struct ReplicaSyncOptions {
  bool enabled = true;
  // A replica's messages go out as `infergate serve` flushes them (sync::NextFlush): at
  // once after a quiet flush interval, else batched until the interval has passed; they
  // are applied by every peer `delay` after the flush (the NATS hop).
  TimeNs flush_interval = 2 * kNanosPerMilli;
  TimeNs delay = 1 * kNanosPerMilli;
  double loss = 0;  // probability a message is lost, per receiver
  TimeNs heartbeat_interval = kNanosPerSecond;
  TimeNs peer_timeout = 5 * kNanosPerSecond;
  // One pool-wide release order (sync::QueueOrder): a replica lets its queue head through
  // only when no peer's head comes first, waiting at most queue_order_wait on one peer.
  bool queue_order = true;
  TimeNs queue_order_wait = 10 * kNanosPerMilli;
};

// What replica sync did during a run.
struct ReplicaSyncStats {
  std::uint64_t dispatches = 0;  // local dispatches over all replicas
  std::uint64_t messages = 0;    // published (each goes to R - 1 peers)
  std::uint64_t bytes = 0;       // published
  std::uint64_t lost = 0;        // deliveries dropped by the modelled loss
  std::uint64_t applied = 0;     // deliveries applied
  std::uint64_t invalid = 0;     // deliveries that did not decode (never, in simulation)
  std::uint64_t expired_entries = 0;
  std::size_t max_message_bytes = 0;
  std::uint64_t order_waits = 0;      // queue heads that waited on a peer's (QueueOrder)
  std::uint64_t order_timed_out = 0;  // ... and went by the bound
  // Peers' dispatches applied (from messages with their send time) and the sum of their
  // delays from the dispatch to the application (batching plus the modelled delay).
  std::uint64_t delayed_dispatches = 0;
  double dispatch_delay_seconds = 0;
};

class ReplicaRouter final : public Router {
 public:
  // `replicas` routers (at least one), each with its own scheduler seed already set.
  ReplicaRouter(std::vector<std::unique_ptr<SchedulerRouter>> replicas, ReplicaSyncOptions sync,
                std::uint64_t seed);

  RouteDecision Route(const RouteRequest& request, std::span<const EngineScrape> engines,
                      TimeNs now) override;
  void OnFirstToken(std::size_t index, int engine, TimeNs now) override;
  void OnCompleted(const Completion& completion, TimeNs now) override;
  void OnScrape(std::span<const EngineScrape> engines, TimeNs now) override;
  void Release(std::span<const EngineScrape> engines, TimeNs now,
               std::vector<ReleasedRequest>* out) override;
  void Redirect(TimeNs now, std::vector<ReleasedRequest>* out) override;
  TimeNs NextWakeup() const override;

  std::size_t size() const { return replicas_.size(); }
  SchedulerRouter& replica(std::size_t k) { return *replicas_[k]; }
  // The replica that answered for workload request `index` (-1: none yet).
  int ReplicaOf(std::size_t index) const { return index < owner_.size() ? owner_[index] : -1; }
  GatewayQueueStats queue_stats() const;
  std::vector<std::pair<std::string, std::uint64_t>> refusals() const;
  ReplicaSyncStats sync_stats() const;

 private:
  struct InFlight {
    TimeNs due = 0;
    std::size_t to = 0;
    std::shared_ptr<const std::string> bytes;
  };
  // Applies due messages and runs expiry, then moves every replica's clock to `now`.
  void Deliver(TimeNs now);
  // Takes every replica's new messages and puts them on the wire.
  void Publish(TimeNs now);

  std::vector<std::unique_ptr<SchedulerRouter>> replicas_;
  ReplicaSyncOptions sync_;
  std::mt19937_64 rng_;       // which replica takes each request
  std::mt19937_64 loss_rng_;  // the modelled message loss
  std::vector<int> owner_;
  std::uint64_t scrapes_ = 0;
  std::size_t release_turn_ = 0;  // the replica Release asks first
  std::vector<std::unique_ptr<sync::EventRecorder>> recorders_;
  std::vector<std::unique_ptr<sync::EventApplier>> appliers_;
  std::vector<std::unique_ptr<sync::QueueOrder>> orders_;  // with sync.queue_order
  TimeNs now_ = 0;                                         // the latest call's time
  std::deque<InFlight> wire_;                              // in due order
  std::vector<TimeNs> last_flush_;                         // per replica (kNever: none yet)
  std::vector<std::string> out_;
  TimeNs next_expiry_ = 0;
  ReplicaSyncStats stats_;
};

}  // namespace infergate::cluster
