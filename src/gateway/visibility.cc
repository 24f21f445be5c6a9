#include "gateway/visibility.h"

#ifndef INFERGATE_COMMIT
#define INFERGATE_COMMIT "unknown"
#endif
#ifndef INFERGATE_VERSION
#define INFERGATE_VERSION "0"
#endif

namespace infergate::gateway {

namespace {

std::vector<double> SizeBuckets() {
  // 64 B .. 1 GiB: fine steps to 64 KiB, then powers of two.
  return telemetry::ExponentialBuckets(64, 2, 25);
}

}  // namespace

VisibilityMetrics::VisibilityMetrics(telemetry::Registry& r)
    : request_sizes(r.AddHistogram("inference_model_request_sizes",
                                   "Inference request body size in bytes, by model and target "
                                   "model.",
                                   {"model_name", "target_model_name"}, SizeBuckets())),
      response_sizes(r.AddHistogram(
          "inference_model_response_sizes",
          "Inference response body size in bytes as received from the model server.",
          {"model_name", "target_model_name"},
          {1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536})),
      ntpot(r.AddHistogram("inference_model_normalized_time_per_output_token_seconds",
                           "Request duration divided by its output tokens (from usage).",
                           {"model_name", "target_model_name"},
                           {0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10})),
      plugin_duration(r.AddHistogram(
          "inference_extension_plugin_duration_seconds",
          "Time one scheduling plugin took in a sampled decision (one in eight is timed).",
          {"extension_point", "plugin_type", "plugin_name"},
          {0.000001, 0.000002, 0.000005, 0.00001, 0.00002, 0.00005, 0.0001, 0.0002, 0.0005, 0.001,
           0.002, 0.005, 0.01, 0.02, 0.05, 0.1})),
      scheduler_attempts(r.AddCounter("inference_extension_scheduler_attempts_total",
                                      "Scheduling decisions, by result (success: an endpoint "
                                      "was picked; failure: shed or none available).",
                                      {"status"})),
      prefix_hit_ratio(
          r.AddHistogram("inference_extension_prefix_indexer_hit_ratio",
                         "Share of the prompt's prefix blocks the chosen endpoint holds, per "
                         "decision of a profile that matches prefixes.",
                         {}, {0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1})
              .With({})),
      prefix_hit_bytes(
          r.AddHistogram(
               "inference_extension_prefix_indexer_hit_bytes",
               "Prompt characters matched in the chosen endpoint's prefix "
               "index, per decision of a profile that matches prefixes.",
               {}, {0, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536})
              .With({})),
      decisions(r.AddCounter("infergate_pool_decisions_total",
                             "Scheduling decisions per pool, by outcome reason (scheduled, "
                             "fail_open, saturated, no_endpoints, ...).",
                             {"pool", "reason"})) {
  r.AddGauge("inference_extension_info", "Build information of the gateway (always 1).",
             {"commit", "build_ref"})
      .With({INFERGATE_COMMIT, "infergate-" INFERGATE_VERSION})
      .Set(1);
}

void StageTimer::Describe(std::size_t stage, std::string_view extension_point,
                          std::string_view type, std::string_view name) {
  if (stages_.size() <= stage) stages_.resize(stage + 1, nullptr);
  stages_[stage] = &family_.With({extension_point, type, name});
}

void StageTimer::Observe(std::size_t stage, TimeNs duration) {
  if (stage < stages_.size() && stages_[stage]) stages_[stage]->Observe(ToSeconds(duration));
}

void Visibility::InstallStageTimer(Scheduler& s) {
  auto timer = std::make_unique<StageTimer>(metrics.plugin_duration);
  s.set_stage_observer(timer.get());
  std::lock_guard lock(mu_);
  timers_.push_back(std::move(timer));
}

bool Visibility::ShouldSamplePredictions(TimeNs now) {
  if (now - viewed_at_.load(std::memory_order_relaxed) > 30 * kNanosPerSecond) return false;
  TimeNs next = next_sample_.load(std::memory_order_relaxed);
  if (now < next) return false;
  return next_sample_.compare_exchange_strong(next, now + kNanosPerSecond / 5,
                                              std::memory_order_relaxed);
}

void Visibility::ObserveTtft(const std::string& pool, TimeNs at, double seconds) {
  telemetry::SampleWindow* w = nullptr;
  {
    std::lock_guard lock(mu_);
    auto it = ttft_.find(pool);
    if (it == ttft_.end()) {
      it =
          ttft_.emplace(pool, std::make_unique<telemetry::SampleWindow>(60 * kNanosPerSecond, 4096))
              .first;
    }
    w = it->second.get();
  }
  w->Add(at, seconds);
}

telemetry::WindowSummary Visibility::TtftSummary(const std::string& pool, TimeNs now) const {
  std::lock_guard lock(mu_);
  auto it = ttft_.find(pool);
  return it == ttft_.end() ? telemetry::WindowSummary{} : it->second->Summarize(now);
}

}  // namespace infergate::gateway
