// The live state of one InferencePool: its Scheduler and AdmissionController (behind the
// lock every caller must hold), the models its servers say they serve, and the endpoints
// to scrape. The admission rule itself (pick now, hold, reject) is the pure
// AdmissionController's (flowcontrol/admission.h), the same the cluster simulation runs;
// this class adds only the lock, the waiting requests and their wake-ups (and, with replica
// sync, attaches the pool-wide release order the cluster also runs: SetReleaseOrder).
//
// A PoolState outlives configuration reloads as long as the pool's scheduling settings
// (profile, EndpointPickerConfig, failure mode) stay the same, so the ledger, prefix
// index and scraped metrics carry over; endpoints are added and removed in place. When
// the settings change, a new PoolState replaces it; requests in flight finish against the
// one they started with (they hold a shared_ptr).
//
// Thread-safety: all members are safe to call from any thread.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/snapshot.h"
#include "core/clock.h"
#include "flowcontrol/admission.h"
#include "http/beast.h"
#include "scheduler/scheduler.h"
#include "sync/queue_order.h"
#include "sync/recorder.h"

namespace infergate::gateway {

struct PoolSettings {
  std::string profile = "infergate";
  // Hold requests in the gateway's queue while the scheduler says to (late binding).
  bool flow_control = true;
  std::optional<EndpointPickerConfig> picker_config;
  std::string scheduling_profile;
  FailureMode failure_mode = FailureMode::kFailClose;
  // The servers' pipeline-parallel size (vLLM V0 virtual engines); see SchedulerOptions.
  int pipeline_parallel_size = 1;
  // The gateway queue's bounds and fairness (a request's own ttl overrides default_ttl).
  FlowControlOptions queue{.max_queued = 10'000,
                           .max_queued_per_band = 0,
                           .default_ttl = 3600 * kNanosPerSecond,
                           .fairness = FairnessPolicy::kRoundRobin};
  bool operator==(const PoolSettings& o) const;
};

// The scheduling settings of a pool as configured: the profile annotation (a builtin
// name, or "<EndpointPickerConfig name>/<profile name>"), the failure mode, and whether
// the gateway queues its requests (annotation infergate.io/flow-control "true"/"false";
// default: the named profile's NamedProfile::late_binding, off for an
// EndpointPickerConfig). Errors name
// the pool and the annotation.
Result<PoolSettings> SettingsForPool(const config::ConfigSnapshot& snapshot,
                                     const config::Backend& pool,
                                     int default_pipeline_parallel_size = 1);

// A request waiting for a scheduling decision in the pool's queue (late binding). It lives
// in the waiting request's coroutine frame; the pool fills the outcome under its lock and
// wakes the request by cancelling `wake` on the request's own loop.
struct QueueWaiter {
  asio::any_io_executor executor;
  std::shared_ptr<asio::steady_timer> wake;  // shared: a wake may arrive after the request
  const RequestInfo* info = nullptr;         // valid while queued
  // Outcome (under the pool's lock).
  bool done = false;
  bool expired = false;
  PickResult pick;
  TokenLedger::Handle handle{};
  QueueItemId id = 0;
};

enum class Admission : std::uint8_t {
  kPicked,     // decided at once: waiter.pick (picked or not) and waiter.handle are set
  kQueued,     // wait for waiter.wake, then look at waiter.done / expired
  kQueueFull,  // answer 429
};

// One endpoint's scrape loop control: the loop stops when `stop` is set.
struct ScrapeTarget {
  std::string id;  // "ip:port"
  std::string ip;
  std::uint16_t port = 0;
  std::atomic<bool> stop{false};
};

class PoolState {
 public:
  static Result<std::shared_ptr<PoolState>> Create(std::string id, PoolSettings settings,
                                                   const Clock* clock);

  const std::string& id() const { return id_; }
  const PoolSettings& settings() const { return settings_; }

  // Runs f(Scheduler&) under the pool's lock and returns its result.
  template <class F>
  auto WithScheduler(F&& f) {
    std::lock_guard lock(mu_);
    return f(*scheduler_);
  }
  // Runs f(Scheduler&) under the pool's lock, then, under the same lock, offers queued
  // requests to the scheduler while it lets them through and wakes the ones placed or
  // expired. For anything that may free capacity (a scrape, a first token, an end, a
  // re-dispatch). Returns f's result.
  template <class F>
  auto UpdateScheduler(F&& f) {
    std::lock_guard lock(mu_);
    auto result = f(*scheduler_);
    PumpLocked(clock_->Now(), false);
    return result;
  }
  // Immutable after creation: usable without the lock (ComputeBlockHashes).
  const PrefixIndexOptions& prefix_options() const { return prefix_options_; }

  // Late binding: AdmissionController::Admit under the pool's lock. kPicked: decided at
  // once (waiter.pick, picked or not, and waiter.handle are set); kQueued: held, decided
  // later by a pump (then woken); kQueueFull: the queue is at capacity (429). `queueing`
  // false picks at once.
  Admission PickOrQueue(QueueWaiter& waiter, TimeNs ttl, bool queueing);
  // Decides every queued request now, holding none (the pool is retired, the gateway is
  // draining, or nothing is left to scrape): picked, or answered by the failure mode.
  void ReleaseQueue();
  // Removes a queued request (its client went away). False when it was decided already
  // (then the caller owns waiter.handle).
  bool CancelQueued(QueueWaiter& waiter);
  // True once the waiter's outcome is set.
  bool Decided(const QueueWaiter& waiter) const;
  std::size_t queued() const;
  // Calls fn(priority, flow, length) for each non-empty flow of the queue.
  void ForEachQueuedFlow(const std::function<void(int, std::string_view, std::size_t)>& fn);

  // Several gateway replicas (gateway/replica_sync.h): one pool-wide release order. Under
  // the lock, the queue asks `order` before each release (sync::QueueOrder::Gate: it waits
  // while a peer's head comes first, at most the order's bound), except while
  // `*peers_reachable` is false (NATS down: local knowledge); after every change of the
  // queue its head goes to `recorder` (published with the next flush, never waited on).
  // `order` and `recorder` must outlive the attachment; all nullptr detaches. The caller
  // re-runs the pump when a wait's bound runs out: WakeIfDue. `on_earlier_deadline` (may be
  // empty; called under the lock, so it must not call back into the pool) is told whenever
  // release_deadline() moves earlier, so that timer can sleep until it rather than poll.
  void SetReleaseOrder(sync::QueueOrder* order, sync::EventRecorder* recorder,
                       const std::atomic<bool>* peers_reachable,
                       std::function<void()> on_earlier_deadline = {});
  // When a release the order holds back is due by the order's bound (kNever: none). Read
  // without the lock, for a timer deciding when to call WakeIfDue.
  TimeNs release_deadline() const { return release_deadline_.load(std::memory_order_relaxed); }
  // At or past release_deadline(): offers the queue to the scheduler again (the wait on a
  // peer's head has run out, so the head goes unless the scheduler holds it).
  void WakeIfDue(TimeNs now);

  // Makes the scheduler's endpoints those of `pool` (adding, removing, updating
  // readiness). Returns the scrape targets to start; targets of removed endpoints are
  // stopped.
  std::vector<std::shared_ptr<ScrapeTarget>> SetEndpoints(const config::Backend& pool);
  // Stops every scrape loop (the pool left the configuration or was replaced).
  void StopScraping();

  // The models endpoint `id` listed at /v1/models.
  void SetServedModels(const std::string& id, std::vector<std::string> models);
  // True when an endpoint lists `model`, or when none has reported a list yet (then the
  // gateway cannot know and lets the server decide).
  bool MayServe(std::string_view model) const;
  // True only when an endpoint lists `model` (for bounded metric labels).
  bool Lists(std::string_view model) const;
  // Every model some endpoint listed, sorted, each once.
  std::vector<std::string> ServedModels() const;

 private:
  PoolState() = default;

  std::string id_;
  PoolSettings settings_;
  PrefixIndexOptions prefix_options_;
  void PumpLocked(TimeNs now, bool force);
  // After any change of the queue: its head to the recorder, the order's deadline.
  void QueueChangedLocked(TimeNs now);
  // A held request was decided: fill its waiter and wake it.
  void OnDecided(QueueItemId id, const AdmissionDecision& decision);
  static void Wake(QueueWaiter& w);

  mutable std::mutex mu_;
  const Clock* clock_ = nullptr;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<AdmissionController> admission_;  // uses *scheduler_
  AdmissionController::DecidedFn on_decided_;
  std::unordered_map<QueueItemId, QueueWaiter*> waiters_;
  QueueItemId next_item_ = 1;
  sync::QueueOrder* order_ = nullptr;        // replica sync's release order (or none)
  sync::EventRecorder* recorder_ = nullptr;  // where the queue's head is published
  std::function<void()> on_earlier_deadline_;
  std::atomic<TimeNs> release_deadline_{kNever};
  std::mutex targets_mu_;
  std::map<std::string, std::shared_ptr<ScrapeTarget>> targets_;
  mutable std::mutex models_mu_;
  std::map<std::string, std::vector<std::string>> served_;
};

}  // namespace infergate::gateway
