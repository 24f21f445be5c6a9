// The live state of one InferencePool: its Scheduler (behind the lock every caller must
// hold), the models its servers say they serve, and the endpoints to scrape.
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
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "config/snapshot.h"
#include "core/clock.h"
#include "scheduler/scheduler.h"

namespace infergate::gateway {

struct PoolSettings {
  std::string profile = "infergate";
  std::optional<EndpointPickerConfig> picker_config;
  std::string scheduling_profile;
  FailureMode failure_mode = FailureMode::kFailClose;
  bool operator==(const PoolSettings& o) const;
};

// The scheduling settings of a pool as configured: the profile annotation (a builtin
// name, or "<EndpointPickerConfig name>/<profile name>") and the failure mode. Errors name
// the pool and the annotation.
Result<PoolSettings> SettingsForPool(const config::ConfigSnapshot& snapshot,
                                     const config::Backend& pool);

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
  // Immutable after creation: usable without the lock (ComputeBlockHashes).
  const PrefixIndexOptions& prefix_options() const { return prefix_options_; }

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

 private:
  PoolState() = default;

  std::string id_;
  PoolSettings settings_;
  PrefixIndexOptions prefix_options_;
  std::mutex mu_;
  std::unique_ptr<Scheduler> scheduler_;
  std::mutex targets_mu_;
  std::map<std::string, std::shared_ptr<ScrapeTarget>> targets_;
  mutable std::mutex models_mu_;
  std::map<std::string, std::vector<std::string>> served_;
};

}  // namespace infergate::gateway
