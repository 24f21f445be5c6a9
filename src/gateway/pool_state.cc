#include "gateway/pool_state.h"

#include <algorithm>
#include <set>

#include "scheduler/profiles.h"

namespace infergate::gateway {

bool PoolSettings::operator==(const PoolSettings& o) const {
  auto same_config = [](const std::optional<EndpointPickerConfig>& a,
                        const std::optional<EndpointPickerConfig>& b) {
    if (a.has_value() != b.has_value()) return false;
    if (!a) return true;
    if (a->plugins.size() != b->plugins.size() ||
        a->scheduling_profiles.size() != b->scheduling_profiles.size()) {
      return false;
    }
    for (std::size_t i = 0; i < a->plugins.size(); ++i) {
      const auto &x = a->plugins[i], &y = b->plugins[i];
      if (x.type != y.type || x.name != y.name || x.parameters != y.parameters) return false;
    }
    for (std::size_t i = 0; i < a->scheduling_profiles.size(); ++i) {
      const auto &x = a->scheduling_profiles[i], &y = b->scheduling_profiles[i];
      if (x.name != y.name || x.plugins.size() != y.plugins.size()) return false;
      for (std::size_t j = 0; j < x.plugins.size(); ++j) {
        if (x.plugins[j].plugin_ref != y.plugins[j].plugin_ref ||
            x.plugins[j].weight != y.plugins[j].weight) {
          return false;
        }
      }
    }
    return true;
  };
  return profile == o.profile && scheduling_profile == o.scheduling_profile &&
         flow_control == o.flow_control && failure_mode == o.failure_mode &&
         pipeline_parallel_size == o.pipeline_parallel_size &&
         queue.max_queued == o.queue.max_queued &&
         queue.max_queued_per_band == o.queue.max_queued_per_band &&
         queue.default_ttl == o.queue.default_ttl && queue.fairness == o.queue.fairness &&
         same_config(picker_config, o.picker_config);
}

Result<PoolSettings> SettingsForPool(const config::ConfigSnapshot& snapshot,
                                     const config::Backend& pool,
                                     int default_pipeline_parallel_size) {
  PoolSettings s;
  s.pipeline_parallel_size =
      pool.pool.pipeline_parallel_size.value_or(default_pipeline_parallel_size);
  // Whether the gateway queues is the profile's (NamedProfile::late_binding: the
  // infergate policy does, the GIE profiles model GIE as deployed, without a queue); an
  // EndpointPickerConfig does not unless annotated. The annotation overrides either way.
  const std::string& profile_annotation = pool.pool.scheduling_profile;
  bool profile_late_binding = false;
  if (profile_annotation.find('/') == std::string::npos) {
    const Result<NamedProfile> named =
        FindNamedProfile(profile_annotation.empty() ? s.profile : profile_annotation);
    profile_late_binding = named.ok() && named->late_binding;  // unknown: Create reports it
  }
  s.flow_control = pool.pool.flow_control.value_or(profile_late_binding);
  s.failure_mode = pool.pool.failure_mode == config::FailureMode::kFailOpen
                       ? FailureMode::kFailOpen
                       : FailureMode::kFailClose;
  const std::string& annotation = pool.pool.scheduling_profile;
  if (annotation.empty()) return s;
  const auto slash = annotation.find('/');
  if (slash == std::string::npos) {
    s.profile = annotation;
    return s;
  }
  const std::string config_name = annotation.substr(0, slash);
  const config::EndpointPickerConfig* cfg = snapshot.FindPickerConfig(config_name);
  if (!cfg) {
    return Error{"InferencePool " + pool.id + ": annotation infergate.io/scheduling-profile: " +
                 "no EndpointPickerConfig named '" + config_name + "'"};
  }
  // The configuration module's typed document, in the scheduler's plain form.
  EndpointPickerConfig picker;
  for (const auto& p : cfg->plugins) {
    picker.plugins.push_back({p.type, p.name, p.parameters});
  }
  for (const auto& prof : cfg->profiles) {
    SchedulingProfileSpec spec{prof.name, {}};
    for (const auto& ref : prof.plugins) spec.plugins.push_back({ref.plugin_ref, ref.weight});
    picker.scheduling_profiles.push_back(std::move(spec));
  }
  s.picker_config = std::move(picker);
  s.scheduling_profile = annotation.substr(slash + 1);
  return s;
}

Result<std::shared_ptr<PoolState>> PoolState::Create(std::string id, PoolSettings settings,
                                                     const Clock* clock) {
  SchedulerOptions o;
  o.profile = settings.profile;
  o.picker_config = settings.picker_config;
  o.scheduling_profile = settings.scheduling_profile;
  o.failure_mode = settings.failure_mode;
  o.pipeline_virtual_engines = settings.pipeline_parallel_size;
  auto scheduler = Scheduler::Create(o, clock);
  if (!scheduler.ok()) {
    return Error{"InferencePool " + id + ": scheduling profile: " + scheduler.error().message};
  }
  auto state = std::shared_ptr<PoolState>(new PoolState());
  state->id_ = std::move(id);
  state->settings_ = std::move(settings);
  state->scheduler_ = std::move(*scheduler);
  state->clock_ = clock;
  state->prefix_options_ = state->scheduler_->prefix_options();
  state->admission_ = std::make_unique<AdmissionController>(
      AdmissionOptions{.late_binding = state->settings_.flow_control,
                       .queue = state->settings_.queue},
      state->scheduler_.get());
  state->on_decided_ = [raw = state.get()](QueueItemId id, const AdmissionDecision& d) {
    raw->OnDecided(id, d);
  };
  return state;
}

void PoolState::Wake(QueueWaiter& w) {
  // The timer belongs to the waiter's loop: touch it there. An expiry in the past also
  // releases a wait that has not started yet (cancel() would only affect pending ones).
  asio::post(w.executor,
             [timer = w.wake] { timer->expires_at(asio::steady_timer::time_point::min()); });
}

void PoolState::OnDecided(QueueItemId id, const AdmissionDecision& d) {
  auto it = waiters_.find(id);
  if (it == waiters_.end()) return;
  QueueWaiter& w = *it->second;
  w.pick = d.pick;
  w.handle = d.handle;
  w.expired = d.reason == AdmissionReason::kExpired;
  w.done = true;
  waiters_.erase(it);
  Wake(w);
}

Admission PoolState::PickOrQueue(QueueWaiter& w, TimeNs ttl, bool queueing) {
  std::lock_guard lock(mu_);
  w.id = next_item_++;
  const TimeNs now = clock_->Now();
  AdmissionDecision d = admission_->Admit(w.id, *w.info, now, ttl, queueing, on_decided_);
  QueueChangedLocked(now);
  switch (d.reason) {
    case AdmissionReason::kHeld:
      waiters_[w.id] = &w;
      return Admission::kQueued;
    case AdmissionReason::kQueueFull:
    case AdmissionReason::kDuplicateId:
      return Admission::kQueueFull;
    case AdmissionReason::kExpired:
      w.expired = true;
      break;
    case AdmissionReason::kPicked:
    case AdmissionReason::kPickRefused:
      break;
  }
  w.pick = std::move(d.pick);
  w.handle = d.handle;
  w.done = true;
  return Admission::kPicked;
}

void PoolState::PumpLocked(TimeNs now, bool force) {
  admission_->Pump(now, force, on_decided_);
  QueueChangedLocked(now);
}

void PoolState::QueueChangedLocked(TimeNs now) {
  if (order_ == nullptr) return;
  if (recorder_ != nullptr) recorder_->SetQueueHead(order_->HeadState(*admission_));
  const TimeNs deadline = order_->NextDeadline(now);
  const TimeNs before = release_deadline_.exchange(deadline, std::memory_order_relaxed);
  if (deadline < before && on_earlier_deadline_) on_earlier_deadline_();
}

void PoolState::SetReleaseOrder(sync::QueueOrder* order, sync::EventRecorder* recorder,
                                const std::atomic<bool>* peers_reachable,
                                std::function<void()> on_earlier_deadline) {
  std::lock_guard lock(mu_);
  order_ = order;
  recorder_ = recorder;
  on_earlier_deadline_ = order == nullptr ? nullptr : std::move(on_earlier_deadline);
  if (order == nullptr) {
    admission_->SetReleaseGate({});
    release_deadline_.store(kNever, std::memory_order_relaxed);
    return;
  }
  std::function<bool()> open;
  if (peers_reachable != nullptr) open = [peers_reachable] { return !peers_reachable->load(); };
  order->Gate(*admission_, std::move(open));
  QueueChangedLocked(clock_->Now());
}

void PoolState::WakeIfDue(TimeNs now) {
  if (now < release_deadline()) return;
  std::lock_guard lock(mu_);
  PumpLocked(clock_->Now(), false);
}

void PoolState::ReleaseQueue() {
  std::lock_guard lock(mu_);
  PumpLocked(clock_->Now(), true);
}

bool PoolState::Decided(const QueueWaiter& w) const {
  std::lock_guard lock(mu_);
  return w.done;
}

bool PoolState::CancelQueued(QueueWaiter& w) {
  std::lock_guard lock(mu_);
  if (w.done) return false;
  admission_->Cancel(w.id);
  QueueChangedLocked(clock_->Now());
  waiters_.erase(w.id);
  w.done = true;
  return true;
}

std::size_t PoolState::queued() const {
  std::lock_guard lock(mu_);
  return admission_->queued();
}

void PoolState::ForEachQueuedFlow(
    const std::function<void(int, std::string_view, std::size_t)>& fn) {
  std::lock_guard lock(mu_);
  admission_->ForEachQueuedFlow(fn);
}

std::vector<std::shared_ptr<ScrapeTarget>> PoolState::SetEndpoints(const config::Backend& pool) {
  std::vector<std::shared_ptr<ScrapeTarget>> started;
  std::set<std::string> wanted;
  {
    std::lock_guard lock(mu_);
    for (const auto& ep : pool.endpoints) {
      wanted.insert(ep.id);
      EndpointSpec spec;
      spec.id = ep.id;
      spec.labels.insert(ep.labels.begin(), ep.labels.end());
      spec.ready = ep.ready;
      (void)scheduler_->UpsertEndpoint(spec);  // an unknown engine label falls back to detection
    }
  }
  std::lock_guard tlock(targets_mu_);
  for (const auto& ep : pool.endpoints) {
    if (targets_.count(ep.id)) continue;
    auto t = std::make_shared<ScrapeTarget>();
    t->id = ep.id;
    t->ip = ep.ip;
    t->port = ep.port;
    targets_.emplace(ep.id, t);
    started.push_back(t);
  }
  for (auto it = targets_.begin(); it != targets_.end();) {
    if (wanted.count(it->first)) {
      ++it;
      continue;
    }
    it->second->stop = true;
    {
      std::lock_guard lock(mu_);
      scheduler_->RemoveEndpoint(it->first);
    }
    {
      std::lock_guard mlock(models_mu_);
      served_.erase(it->first);
    }
    it = targets_.erase(it);
  }
  // With endpoints gone (maybe all, and with them the scrapes that pump the queue),
  // queued requests are decided on what is left.
  if (targets_.empty()) ReleaseQueue();
  return started;
}

void PoolState::StopScraping() {
  {
    std::lock_guard lock(targets_mu_);
    for (auto& [id, t] : targets_) t->stop = true;
  }
  // Nothing will pump this pool's queue again: decide what waits in it now.
  ReleaseQueue();
}

void PoolState::SetServedModels(const std::string& id, std::vector<std::string> models) {
  std::lock_guard lock(models_mu_);
  served_[id] = std::move(models);
}

bool PoolState::MayServe(std::string_view model) const {
  std::lock_guard lock(models_mu_);
  if (served_.empty()) return true;
  for (const auto& [id, models] : served_) {
    if (std::find(models.begin(), models.end(), model) != models.end()) return true;
  }
  return false;
}

bool PoolState::Lists(std::string_view model) const {
  std::lock_guard lock(models_mu_);
  for (const auto& [id, models] : served_) {
    if (std::find(models.begin(), models.end(), model) != models.end()) return true;
  }
  return false;
}

std::vector<std::string> PoolState::ServedModels() const {
  std::set<std::string> all;
  {
    std::lock_guard lock(models_mu_);
    for (const auto& [id, models] : served_) all.insert(models.begin(), models.end());
  }
  return {all.begin(), all.end()};
}

}  // namespace infergate::gateway
