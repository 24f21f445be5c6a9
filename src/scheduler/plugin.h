// Scheduling plugins: filters narrow the candidates, scorers score them, a picker chooses.
//
// A decision runs one profile: its filters in order, then every scorer (each candidate's
// total is Σ weight · score, scores in [0, 1]), then its picker, which orders the best
// candidates (the first is the choice, the rest are fallbacks). Plugins are created by
// type name from a registry (scheduler/plugin_registry.h); each lives in its own file
// under filters/, scorers/ or pickers/ and opens with its algorithm, source, alternatives
// and tunables.
//
// Plugins read the world only through SchedulingContext and EndpointView (no clocks, no
// I/O), may keep private state between decisions (e.g. a round-robin cursor), and are
// called with the scheduler's lock held: they must be fast and never block.
//
// Thread-safety: a plugin instance belongs to one scheduler and is not synchronised.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "scheduler/endpoint_view.h"
#include "scheduler/prefix_index.h"
#include "scheduler/random.h"
#include "scheduler/request.h"
#include "scheduler/saturation_detector.h"
#include "scheduler/session_table.h"
#include "scheduler/ttft_model.h"

namespace infergate {

enum class PluginKind : std::uint8_t { kFilter, kScorer, kPicker };
std::string_view PluginKindName(PluginKind kind);

// What a plugin needs the scheduler to prepare (bits of SchedulingPlugin::needs()).
enum PluginNeeds : std::uint32_t {
  kNeedsMetrics = 1u << 0,      // scraped metrics: without fresh ones the pool's failure
                                // mode decides instead of the profile
  kNeedsPrefixMatch = 1u << 1,  // prefix index matches in EndpointView::prefix_blocks
  kNeedsKvOutlook = 1u << 2,    // EndpointView::kv_outlook (the ledger's KV projection)
};

// Supplies EndpointView::kv_outlook on demand: projecting an endpoint's KV cache is a pass
// over its in-flight requests, so only the endpoints a decision prices pay for it (a
// session's home, the survivors of the filters). The scheduler implements it.
class KvOutlookSource {
 public:
  // Sets endpoint.kv_outlook when the endpoint's outlook can be projected (its KV capacity
  // is known); later calls in the same decision do nothing. `endpoint` is one of the
  // decision's SchedulingContext::endpoints.
  virtual void Project(const EndpointView& endpoint) = 0;
  // Project for each of `endpoints`, together: faster than one at a time (the final sums
  // of several endpoints overlap).
  virtual void ProjectAll(std::span<const EndpointView* const> endpoints) = 0;

 protected:
  ~KvOutlookSource() = default;
};

struct SchedulingContext {
  const RequestInfo* request = nullptr;
  TimeNs now = 0;
  std::int64_t prompt_tokens = 0;  // calibrated (see TokenLedger)
  std::int64_t expected_output_tokens = 0;
  std::size_t prompt_blocks = 0;            // blocks of the prompt hashed for the prefix index
  std::int64_t block_tokens = 16;           // tokens per prefix block
  std::span<const EndpointView> endpoints;  // every ready endpoint of the pool
  Rng* rng = nullptr;
  const SaturationDetector* saturation = nullptr;
  const SessionTable* sessions = nullptr;
  const TtftModelParams* ttft = nullptr;
  // Late binding asks only whether some endpoint can admit the request now (re-dispatch),
  // not whether it should rather wait for a shorter prefill queue.
  bool admission_only = false;

  // The request as the cost model sees it (set by the scheduler from the fields above).
  RequestShape shape;
  // The prefill timing the ledger has learned (PredictTtft uses it once it has enough
  // samples).
  PrefillTiming prefill_timing;

  // The cost model's prediction for `endpoint` (one of `endpoints`) under `ttft`, computed
  // once per decision however many plugins ask.
  const TtftPrediction& Predict(const EndpointView& endpoint) const;

  // Makes endpoint.kv_outlook available (when the profile needs outlooks, they are
  // projected on first use). Predict calls it; call it before reading kv_outlook or
  // calling PredictTtft directly.
  void PrepareKvOutlook(const EndpointView& endpoint) const {
    if (kv_outlooks != nullptr) kv_outlooks->Project(endpoint);
  }
  // PrepareKvOutlook for each of `endpoints`; cheaper than one by one.
  void PrepareKvOutlooks(std::span<const EndpointView* const> endpoints) const {
    if (kv_outlooks != nullptr) kv_outlooks->ProjectAll(endpoints);
  }
  // Null when the views carry their outlooks already (or the profile needs none).
  KvOutlookSource* kv_outlooks = nullptr;

  // Memo for Predict, owned by the scheduler (one slot per entry of `endpoints`).
  TtftPrediction* prediction_memo = nullptr;
  std::uint8_t* prediction_known = nullptr;
};

using CandidateList = std::vector<const EndpointView*>;

enum class FilterVerdict : std::uint8_t {
  kContinue,  // go on with the (possibly narrowed) candidates
  kShed,      // refuse the request: 429 (ignored for Critical requests)
  kReject,    // no endpoint can serve it: 503
};

class SchedulingPlugin {
 public:
  virtual ~SchedulingPlugin() = default;
  virtual PluginKind kind() const = 0;
  virtual std::uint32_t needs() const { return kNeedsMetrics; }
  // Settings of shared structures that this plugin's parameters configure, if any.
  virtual const PrefixIndexOptions* prefix_options() const { return nullptr; }
  virtual const TtftModelParams* ttft_params() const { return nullptr; }
  // Late binding: whether the plugin has an opinion on holding requests in the gateway
  // queue (Scheduler::ShouldHold asks only such plugins).
  virtual bool has_hold_rule() const { return false; }
  // True when this request should rather wait in the gateway queue than go to any of
  // `candidates` now (e.g. none of them can admit it soon). Requires has_hold_rule().
  virtual bool WantsHold(const SchedulingContext& /*ctx*/,
                         std::span<const EndpointView* const> /*candidates*/) {
    return false;
  }
};

class FilterPlugin : public SchedulingPlugin {
 public:
  PluginKind kind() const final { return PluginKind::kFilter; }
  // Narrows `candidates` in place (order preserved). An empty result with kContinue is
  // reported as "no candidate" (503).
  virtual FilterVerdict Filter(const SchedulingContext& ctx, CandidateList& candidates) = 0;
};

class ScorerPlugin : public SchedulingPlugin {
 public:
  PluginKind kind() const final { return PluginKind::kScorer; }
  // Writes scores[i] in [0, 1] for candidates[i] (1 is best). Requires equal sizes.
  virtual void Score(const SchedulingContext& ctx, std::span<const EndpointView* const> candidates,
                     std::span<double> scores) = 0;
};

class PickerPlugin : public SchedulingPlugin {
 public:
  PluginKind kind() const final { return PluginKind::kPicker; }
  // Appends to `order` at most `count` distinct indices into `candidates`, best first.
  // Requires candidates non-empty and totals.size() == candidates.size().
  virtual void Pick(const SchedulingContext& ctx, std::span<const EndpointView* const> candidates,
                    std::span<const double> totals, std::size_t count,
                    std::vector<std::uint32_t>& order) = 0;
};

// A plugin's parameters (string → string, from the config) with typed, range-checked
// reads. Errors are collected; Check() reports the first, and any parameter the plugin
// never read (a misspelt key should not silently fall back to a default).
class PluginParams {
 public:
  PluginParams(std::string plugin_name, const std::map<std::string, std::string>& values)
      : plugin_(std::move(plugin_name)), values_(values) {}

  double Double(std::string_view key, double def, double min, double max);
  std::int64_t Int(std::string_view key, std::int64_t def, std::int64_t min, std::int64_t max);
  bool Bool(std::string_view key, bool def);
  // An integer in [min, max], or one of `words`, each standing for its value.
  struct Word {
    std::string_view text;
    std::int64_t value;
  };
  std::int64_t IntOrWord(std::string_view key, std::int64_t def, std::int64_t min, std::int64_t max,
                         std::span<const Word> words);
  // Accepts "250ms", "2s", "1.5m", "1h", "500us", "100ns", or a bare number of seconds.
  TimeNs Duration(std::string_view key, TimeNs def);

  Status Check() const;

 private:
  const std::string* Find(std::string_view key);
  void Fail(std::string_view key, const std::string& value, std::string_view expected);

  std::string plugin_;
  const std::map<std::string, std::string>& values_;
  std::set<std::string, std::less<>> read_;
  std::string error_;
};

}  // namespace infergate
