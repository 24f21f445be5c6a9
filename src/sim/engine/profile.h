// Profiles: everything the simulator needs to know about one model-server deployment.
//
// A Profile describes a model (its dimensions), the GPUs it runs on, how it is split
// (tensor and pipeline parallel), the serving engine's settings (vLLM V0 or V1 scheduler,
// max_model_len, block size, prefix caching...), how step durations are computed (a
// roofline model from the hardware numbers, or an exact linear formula) and how output
// lengths end (the EOS model). Profiles live in YAML files under profiles/ (see
// docs/simulator.md for every field); the files in that folder are also compiled into the
// binary so a profile can be named without a path.
//
// Values left unset (std::nullopt or 0 where documented) take vLLM's defaults when an
// Engine is created; ResolveEngineConfig (engine_config.h) shows the resolved values.
//
// Thread-safety: plain values; the loader functions are thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace infergate::sim {

enum class EngineVersion { kV0, kV1 };
enum class SchedulingPolicy { kFcfs, kPriority };
enum class TimingMode { kRoofline, kLinear };
enum class EosModel { kNone, kUniform, kGeometric };

struct ModelSpec {
  std::string name = "model";  // the served model name a server reports by default
  int layers = 0;
  int hidden = 0;
  int heads = 0;
  int kv_heads = 0;
  int head_dim = 0;      // 0: hidden / heads
  int intermediate = 0;  // MLP width (gated MLP: three matrices)
  int vocab = 0;
  double params = 0;  // total parameters; 0: computed from the dimensions
  int dtype_bytes = 2;
  int kv_dtype_bytes = 0;  // 0: dtype_bytes
  bool tied_embeddings = false;
};

// One GPU and the links between GPUs. Rates are per GPU; bandwidths in GB/s (1e9 B/s).
struct HardwareSpec {
  std::string gpu = "gpu";
  double memory_gib = 0;               // device memory as the framework sees it
  double memory_bandwidth_gbs = 0;     // HBM/GDDR peak
  double peak_tflops = 0;              // dense 16-bit tensor-core peak
  double compute_efficiency = 0.5;     // achieved fraction of peak_tflops
  double bandwidth_efficiency = 0.8;   // achieved fraction of memory_bandwidth_gbs
  double allreduce_latency_us = 0;     // per all-reduce call (tensor parallel)
  double allreduce_bandwidth_gbs = 0;  // bus bandwidth of the TP link
  double pp_latency_us = 0;            // per stage-to-stage activation send
  double pp_bandwidth_gbs = 0;         // link between pipeline stages
  double step_overhead_ms = 0;         // fixed CPU/launch cost per step per stage
  double eager_layer_overhead_us = 0;  // extra per layer per step without CUDA graphs
  double activation_reserve_gib = 0;   // activation peak + non-torch memory per GPU
};

struct ParallelSpec {
  int tensor = 1;
  int pipeline = 1;
};

struct EngineSpec {
  EngineVersion version = EngineVersion::kV0;
  int max_model_len = 0;
  int max_num_seqs = 256;
  int max_num_batched_tokens = 0;  // 0: vLLM's default for the version
  int block_size = 16;
  double gpu_memory_utilization = 0.9;
  bool enforce_eager = false;
  std::optional<bool> enable_chunked_prefill;  // unset: V0 off unless max_model_len > 32K
  std::optional<bool> enable_prefix_caching;   // unset: V0 off, V1 on
  SchedulingPolicy scheduling_policy = SchedulingPolicy::kFcfs;
  std::int64_t num_gpu_blocks = 0;  // 0: computed from memory; else used as given
  double watermark = 0.01;          // V0 admission keeps this fraction of blocks free
  int max_loras = 0;                // 0: LoRA disabled
  double lora_load_seconds = 0;     // time to load one adapter, added to the step
};

// Linear timing: per pipeline stage, exact to the nanosecond (coefficients are rounded to
// whole nanoseconds once). A step's stage time is
//   base + prefill_per_token·(prefill tokens) + decode_per_seq·(decode sequences)
//        + decode_per_context_token·(decode context tokens)
// where base is prefill_base for a step with any prefill tokens (the larger of the two
// bases for a mixed step) and decode_base for a decode-only step.
struct LinearTiming {
  double prefill_base_ms = 0;
  double prefill_per_token_ms = 0;
  double decode_base_ms = 0;
  double decode_per_seq_ms = 0;
  double decode_per_context_token_us = 0;
};

struct TimingSpec {
  TimingMode mode = TimingMode::kRoofline;
  LinearTiming linear;
};

// How a request's output ends when the client did not set ignore_eos: `none` runs to
// max_tokens; `uniform` ends after a natural length drawn uniformly in
// [min_fraction, max_fraction]·max_tokens; `geometric` after a geometric length with the
// given mean. Draws depend only on (engine seed, request id).
struct EosSpec {
  EosModel model = EosModel::kNone;
  double min_fraction = 0.0;
  double max_fraction = 1.0;
  double mean_tokens = 0;
};

struct Profile {
  std::string name;    // e.g. "qwq-32b-tp2pp2"
  std::string source;  // file the profile came from ("builtin:<name>" when embedded)
  std::string description;
  ModelSpec model;
  HardwareSpec hardware;
  ParallelSpec parallel;
  EngineSpec engine;
  TimingSpec timing;
  EosSpec eos;
};

// Parses a profile from YAML text. `source` names the text in error messages. Every
// field is checked (unknown fields are errors, so typos do not pass silently); the error
// names the source and the field, e.g. "profiles/x.yaml: model.layers: expected an
// integer, got 'sixty'".
Result<Profile> ParseProfile(std::string_view yaml_text, std::string_view source);

// Loads a profile by name or path: a value that contains '/' or ends in .yaml/.yml is read
// as a file; anything else names a built-in profile (one of ListBuiltinProfiles()).
Result<Profile> LoadProfile(std::string_view name_or_path);

// Names of the profiles compiled into the binary, sorted.
std::vector<std::string> ListBuiltinProfiles();

// Checks cross-field consistency (positive dimensions, heads divisible by TP, ...).
// Errors name the profile's source and the field.
Status ValidateProfile(const Profile& profile);

const char* ToString(EngineVersion v);
const char* ToString(SchedulingPolicy p);

}  // namespace infergate::sim
