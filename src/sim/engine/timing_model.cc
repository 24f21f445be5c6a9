#include "sim/engine/timing_model.h"

#include <algorithm>
#include <cmath>

#include "sim/engine/engine_config.h"

namespace infergate::sim {
namespace {

// CUDA graphs are captured for batches of up to this many tokens (vLLM's largest capture
// size); bigger batches and prefills run eagerly.
constexpr std::int64_t kMaxGraphTokens = 512;

TimeNs NanosFromMillis(double ms) { return static_cast<TimeNs>(std::llround(ms * 1e6)); }

}  // namespace

void BatchShape::Add(std::int64_t n, std::int64_t context, bool decode, bool samples) {
  if (decode) {
    ++decode_seqs;
    decode_context_tokens += context + n;
  } else {
    ++prefill_seqs;
    prefill_tokens += n;
    prefill_context_tokens += context;
    prefill_attention_pairs +=
        static_cast<double>(n) * static_cast<double>(context) + 0.5 * n * (n + 1.0);
  }
  if (samples) ++sampled_seqs;
}

BatchShape BatchShape::Prefill(std::int64_t tokens, std::int64_t cached) {
  BatchShape b;
  b.Add(tokens - cached, cached, /*decode=*/false, /*samples=*/true);
  return b;
}

BatchShape BatchShape::Decode(int seqs, std::int64_t context) {
  BatchShape b;
  for (int i = 0; i < seqs; ++i) b.Add(1, context - 1, /*decode=*/true, /*samples=*/true);
  return b;
}

Result<TimingModel> TimingModel::Create(const Profile& profile) {
  if (Status s = ValidateProfile(profile); !s.ok()) return s.error();
  TimingModel t;
  t.mode_ = profile.timing.mode;
  t.model_ = profile.model;
  t.hw_ = profile.hardware;
  t.tp_ = profile.parallel.tensor;
  t.pp_ = profile.parallel.pipeline;
  t.eager_ = profile.engine.enforce_eager;
  t.v1_ = profile.engine.version == EngineVersion::kV1;
  t.layer_params_ = LayerParams(profile.model);
  t.head_dim_ = HeadDim(profile.model);
  // Layers are split as evenly as possible; earlier stages take the remainder.
  const int layers = profile.model.layers;
  for (int s = 0; s < t.pp_; ++s) {
    Stage st;
    st.layers = layers / t.pp_ + (s < layers % t.pp_ ? 1 : 0);
    st.first = s == 0;
    st.last = s == t.pp_ - 1;
    t.stages_.push_back(st);
  }
  const LinearTiming& l = profile.timing.linear;
  t.prefill_base_ = NanosFromMillis(l.prefill_base_ms);
  t.prefill_per_token_ = NanosFromMillis(l.prefill_per_token_ms);
  t.decode_base_ = NanosFromMillis(l.decode_base_ms);
  t.decode_per_seq_ = NanosFromMillis(l.decode_per_seq_ms);
  t.decode_per_context_token_ns_ = l.decode_per_context_token_us * 1e3;
  return t;
}

TimeNs TimingModel::StageTime(const BatchShape& b, int stage) const {
  if (mode_ == TimingMode::kLinear) return Linear(b);
  return Roofline(b, stages_[static_cast<std::size_t>(stage)]);
}

TimeNs TimingModel::StepLatency(const BatchShape& b) const {
  TimeNs total = 0;
  for (int s = 0; s < num_stages(); ++s) total += StageTime(b, s);
  return total;
}

TimeNs TimingModel::Linear(const BatchShape& b) const {
  TimeNs base;
  if (b.prefill_tokens > 0) {
    base = b.decode_seqs > 0 ? std::max(prefill_base_, decode_base_) : prefill_base_;
  } else {
    base = decode_base_;
  }
  return base + prefill_per_token_ * b.prefill_tokens + decode_per_seq_ * b.decode_seqs +
         static_cast<TimeNs>(std::llround(decode_per_context_token_ns_ *
                                          static_cast<double>(b.decode_context_tokens)));
}

TimeNs TimingModel::Roofline(const BatchShape& b, const Stage& s) const {
  const double dtype = model_.dtype_bytes;
  const double kv_dtype = model_.kv_dtype_bytes > 0 ? model_.kv_dtype_bytes : dtype;
  const double hidden = model_.hidden;
  const double tokens = static_cast<double>(b.new_tokens());
  const double heads_per_gpu = static_cast<double>(model_.heads) / tp_;
  const double kv_heads_per_gpu = std::max(1.0, static_cast<double>(model_.kv_heads) / tp_);
  const double lm_head = static_cast<double>(model_.vocab) * hidden / tp_;

  // Work: dense matmuls are 2 FLOPs per weight per token; attention 4·head_dim FLOPs per
  // (query, key) pair per head (QK^T and PV); the LM head runs only for sampled positions.
  const double attention_pairs =
      b.prefill_attention_pairs + static_cast<double>(b.decode_context_tokens);
  double flops = 2.0 * tokens * s.layers * layer_params_ / tp_ +
                 4.0 * heads_per_gpu * head_dim_ * s.layers * attention_pairs;
  // Bytes: every weight once per step; K and V of every attended cached token once; K and
  // V written for each new token.
  const double kv_token_bytes = 2.0 * s.layers * kv_heads_per_gpu * head_dim_ * kv_dtype;
  double bytes = s.layers * layer_params_ / tp_ * dtype +
                 kv_token_bytes * static_cast<double>(b.decode_context_tokens +
                                                      b.prefill_context_tokens + b.new_tokens());
  if (s.last) {
    flops += 2.0 * b.sampled_seqs * lm_head;
    bytes += lm_head * dtype;
  }
  if (s.first) bytes += tokens * hidden * dtype;  // embedding rows
  const double compute_s = flops / (hw_.peak_tflops * 1e12 * hw_.compute_efficiency);
  const double memory_s = bytes / (hw_.memory_bandwidth_gbs * 1e9 * hw_.bandwidth_efficiency);
  double seconds = std::max(compute_s, memory_s);

  // Tensor parallel: two ring all-reduces of the hidden states per layer.
  if (tp_ > 1) {
    const double ar_bytes = tokens * hidden * dtype;
    const double per_call = hw_.allreduce_latency_us * 1e-6 +
                            2.0 * (tp_ - 1) / tp_ * ar_bytes / (hw_.allreduce_bandwidth_gbs * 1e9);
    seconds += 2.0 * s.layers * per_call;
  }
  // Pipeline parallel: activations go to the next stage.
  if (!s.last) {
    seconds += hw_.pp_latency_us * 1e-6 + tokens * hidden * dtype / (hw_.pp_bandwidth_gbs * 1e9);
  }
  // Fixed costs: scheduling, sampling and launch overhead per step; without CUDA graphs
  // every layer's kernels are launched one by one.
  const bool graphs =
      !eager_ && b.new_tokens() <= kMaxGraphTokens && (v1_ || b.prefill_tokens == 0);
  seconds += hw_.step_overhead_ms * 1e-3;
  if (!graphs) seconds += hw_.eager_layer_overhead_us * 1e-6 * s.layers;
  return static_cast<TimeNs>(std::llround(seconds * 1e9));
}

}  // namespace infergate::sim
