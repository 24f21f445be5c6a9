// The gateway's request queue: holds requests while the pool has no room and releases
// them, most important first and fairly between clients, when it has.
//
// Structure:
//   band   one per priority value (InferenceObjective priority; PriorityOf(criticality)
//          for InferenceModel); a higher band is always served first (strict priority);
//   flow   within a band, one per fairness id (x-gateway-inference-fairness-id); flows
//          take turns, round-robin by default or least-served first;
//   item   within a flow, first come first served.
// Each item has a deadline (its TTL; expired items are returned to the caller, who answers
// 503) and may be cancelled (client disconnect). Capacity is bounded in items overall and
// optionally per band; an item that does not fit is rejected (the caller answers 429).
//
// Late binding: the queue never decides that capacity exists. The caller calls Dispatch
// whenever capacity may have appeared (a completion, a scrape, an arrival) with a function
// that tries to place the next item (typically: stop if the scheduler's pool is saturated,
// else Pick and send it). Items are opaque ids: the caller owns the requests and the I/O.
//
// Fairness policies:
//   kRoundRobin   flows of a band take turns, one item each (round robin; a new flow joins
//                 at the end of the current round).
//   kLeastServed  the flow with the least service (Σ item cost dispatched) goes next; a flow
//                 that becomes active starts at the band's current service level, so an idle
//                 flow cannot bank credit (start-time fair queueing).
//
// Thread-safety: not synchronised; the caller serialises access (the pool's lock).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/clock.h"

namespace infergate {

enum class FairnessPolicy : std::uint8_t { kRoundRobin, kLeastServed };

struct FlowControlOptions {
  std::size_t max_queued = 1000;        // items over all bands; 0: nothing is queued
  std::size_t max_queued_per_band = 0;  // 0: only the overall bound
  TimeNs default_ttl = 30 * kNanosPerSecond;
  FairnessPolicy fairness = FairnessPolicy::kRoundRobin;
};

using QueueItemId = std::uint64_t;

struct QueuedRequest {
  QueueItemId id = 0;
  int priority = 0;
  std::string_view flow;  // valid while the item is queued
  TimeNs enqueued_at = 0;
  TimeNs deadline = kNever;
  std::uint64_t cost = 1;  // service units for kLeastServed (e.g. prompt tokens)
};

enum class EnqueueResult : std::uint8_t {
  kQueued,
  kRejectedCapacity,  // answer 429
  kDuplicateId,       // an item with this id is already queued (a caller bug)
};

// What the caller did with the item Dispatch offered.
enum class DispatchAction : std::uint8_t {
  kDispatched,  // sent: remove it and count the service for its flow
  kDropped,     // answered otherwise (e.g. the scheduler said 503): remove it, no service
  kStop,        // no room now: keep it at the head and stop
};

struct FlowControlStats {
  std::uint64_t enqueued = 0;
  std::uint64_t rejected = 0;
  std::uint64_t dispatched = 0;
  std::uint64_t dropped = 0;
  std::uint64_t expired = 0;
  std::uint64_t cancelled = 0;
};

class FlowController {
 public:
  explicit FlowController(FlowControlOptions options = {});
  FlowController(const FlowController&) = delete;
  FlowController& operator=(const FlowController&) = delete;
  ~FlowController();

  // Queues item `id`. ttl <= 0 uses options.default_ttl. An empty flow id is a flow of
  // its own (the anonymous flow).
  EnqueueResult Enqueue(QueueItemId id, int priority, std::string_view flow, TimeNs now,
                        TimeNs ttl = 0, std::uint64_t cost = 1);
  // Removes a queued item (client went away). False when it is not queued.
  bool Cancel(QueueItemId id);
  // Removes the items whose deadline is <= now and appends their ids to *expired.
  std::size_t Expire(TimeNs now, std::vector<QueueItemId>* expired);
  // The earliest deadline of a queued item (for a timer), kNever when empty.
  TimeNs NextDeadline() const;

  // The item Dispatch would offer next: the highest band, its next flow by the fairness
  // policy, that flow's oldest item. nullptr when empty. Valid until the queue changes.
  const QueuedRequest* Peek() const;
  // Removes Peek()'s item; `served` adds its cost to its flow's service.
  void PopNext(bool served = true);

  // Expires due items (appending them to *expired when given), then offers items in order
  // to `try_dispatch` until it returns kStop or the queue is empty. Returns the number of
  // items dispatched.
  template <class Fn>
  std::size_t Dispatch(TimeNs now, Fn&& try_dispatch, std::vector<QueueItemId>* expired) {
    std::vector<QueueItemId> local;
    Expire(now, expired ? expired : &local);
    std::size_t n = 0;
    while (const QueuedRequest* item = Peek()) {
      DispatchAction a = try_dispatch(*item);
      if (a == DispatchAction::kStop) break;
      PopNext(a == DispatchAction::kDispatched);
      if (a == DispatchAction::kDispatched) ++n;
    }
    return n;
  }

  std::size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  std::size_t BandSize(int priority) const;
  std::size_t FlowSize(int priority, std::string_view flow) const;
  // Calls fn(priority, flow, length) for every non-empty flow, highest band first.
  void ForEachFlow(const std::function<void(int, std::string_view, std::size_t)>& fn) const;
  const FlowControlStats& stats() const { return stats_; }
  const FlowControlOptions& options() const { return options_; }

 private:
  struct Flow;
  struct Band;
  struct Item {
    QueuedRequest request;
    Flow* flow = nullptr;
    std::list<Item*>::iterator in_flow;
  };
  struct Flow {
    std::string id;
    Band* band = nullptr;
    std::list<Item*> fifo;
    std::uint64_t served = 0;
    std::uint64_t activation = 0;        // tie-break for kLeastServed
    std::list<Flow*>::iterator in_ring;  // kRoundRobin
  };
  using ServiceKey = std::tuple<std::uint64_t, std::uint64_t, Flow*>;
  struct Band {
    int priority = 0;
    std::size_t size = 0;
    std::map<std::string, Flow, std::less<>> flows;  // non-empty flows only
    std::list<Flow*> ring;                           // kRoundRobin: turn order
    std::list<Flow*>::iterator cursor;               // kRoundRobin: whose turn
    std::set<ServiceKey> by_service;                 // kLeastServed
    std::uint64_t service_level = 0;                 // kLeastServed: last dispatched flow's
  };

  Flow* NextFlow(const Band& band) const;
  void ActivateFlow(Band& band, Flow& flow);
  // Removes an item from every structure; `served` counts it for its flow.
  void RemoveItem(Item& item, bool served);

  FlowControlOptions options_;
  std::map<int, Band, std::greater<int>> bands_;  // non-empty bands only
  std::unordered_map<QueueItemId, Item> items_;
  std::set<std::pair<TimeNs, QueueItemId>> deadlines_;
  std::uint64_t activations_ = 0;
  FlowControlStats stats_;
};

}  // namespace infergate
