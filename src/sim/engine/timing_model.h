// TimingModel: how long one engine step takes on each pipeline stage.
//
// A step (one scheduler iteration of one virtual engine) is described by its BatchShape:
// how many tokens are computed for sequences in prefill and how much context they attend
// to, how many sequences decode one token and over how much context. Two modes:
//
//   linear    per stage: base + b·prefill_tokens + c·decode_seqs + d·decode_context_tokens,
//             exact to the nanosecond (tests, the benchmark client's accuracy check, and
//             profiles fitted to measurements).
//   roofline  per stage: max(compute, memory) + all-reduce + stage send + overheads, from
//             the model's dimensions and the hardware's rates (docs/simulator.md has the
//             formulas and where they come from).
//
// Thread-safety: immutable after Create; safe to share.
#pragma once

#include <cstdint>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "sim/engine/profile.h"

namespace infergate::sim {

struct BatchShape {
  int prefill_seqs = 0;                     // sequences computing prompt (or recompute) tokens
  std::int64_t prefill_tokens = 0;          // tokens computed for them (prefix-cache hits excluded)
  std::int64_t prefill_context_tokens = 0;  // tokens already cached before their chunks
  double prefill_attention_pairs = 0;       // Σ n·c + n(n+1)/2 over chunks of n after c cached
  int decode_seqs = 0;                      // sequences computing exactly one new token
  std::int64_t decode_context_tokens = 0;   // Σ tokens each decode sequence attends to
  int sampled_seqs = 0;                     // sequences that sample a token at the end of the step

  bool empty() const { return prefill_tokens == 0 && decode_seqs == 0; }
  std::int64_t new_tokens() const { return prefill_tokens + decode_seqs; }

  // Adds one sequence computing `n` tokens after `context` tokens already in its cache;
  // `decode` marks a one-token decode (as opposed to a prefill chunk of length 1).
  void Add(std::int64_t n, std::int64_t context, bool decode, bool samples);

  // Shapes for tables and tests: one prompt of `tokens` (after `cached` prefix-cache
  // hits), and `seqs` decoding sequences of `context` tokens each.
  static BatchShape Prefill(std::int64_t tokens, std::int64_t cached = 0);
  static BatchShape Decode(int seqs, std::int64_t context);
};

class TimingModel {
 public:
  // Requires a valid profile (see ValidateProfile).
  static Result<TimingModel> Create(const Profile& profile);

  int num_stages() const { return static_cast<int>(stages_.size()); }

  // Time stage `stage` (0-based, < num_stages()) spends on `batch`, including the send of
  // its activations to the next stage. Requires !batch.empty().
  TimeNs StageTime(const BatchShape& batch, int stage) const;

  // Time from the first stage's start to the last stage's end for `batch` alone.
  TimeNs StepLatency(const BatchShape& batch) const;

 private:
  struct Stage {
    int layers = 0;
    bool first = false;
    bool last = false;
  };
  TimeNs Roofline(const BatchShape& b, const Stage& s) const;
  TimeNs Linear(const BatchShape& b) const;

  TimingMode mode_ = TimingMode::kLinear;
  std::vector<Stage> stages_;
  // Linear coefficients in nanoseconds.
  TimeNs prefill_base_ = 0, prefill_per_token_ = 0, decode_base_ = 0, decode_per_seq_ = 0;
  double decode_per_context_token_ns_ = 0;
  // Roofline inputs (SI units).
  ModelSpec model_;
  HardwareSpec hw_;
  int tp_ = 1;
  int pp_ = 1;
  bool eager_ = false;
  bool v1_ = false;
  double layer_params_ = 0;
  int head_dim_ = 0;
};

}  // namespace infergate::sim
