#include "sim/engine/profile.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <initializer_list>
#include <sstream>

#include "sim/engine/builtin_profiles.h"

namespace infergate::sim {
namespace {

// Reads typed fields out of a YAML tree, remembering the first error with the source,
// line and dotted field path so the user can find it.
class FieldReader {
 public:
  explicit FieldReader(std::string_view source) : source_(source) {}

  bool failed() const { return error_.has_value(); }
  Error TakeError() { return std::move(*error_); }

  void Fail(const YAML::Node& node, std::string_view path, std::string_view what) {
    if (error_) return;
    std::string where(source_);
    if (node.IsDefined() && node.Mark().line >= 0) {
      where += ":" + std::to_string(node.Mark().line + 1);
    }
    error_ = Error{where + ": " + std::string(path) + ": " + std::string(what)};
  }

  // Requires `node` to be a map whose keys are all in `keys`.
  bool CheckMap(const YAML::Node& node, std::string_view path,
                std::initializer_list<std::string_view> keys) {
    if (!node.IsMap()) {
      Fail(node, path.empty() ? "(top level)" : path, "expected a mapping");
      return false;
    }
    for (const auto& kv : node) {
      const std::string key = kv.first.Scalar();
      if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
        std::string allowed;
        for (auto k : keys) allowed += (allowed.empty() ? "" : ", ") + std::string(k);
        Fail(kv.first, Join(path, key), "unknown field (expected one of: " + allowed + ")");
        return false;
      }
    }
    return true;
  }

  static std::string Join(std::string_view path, std::string_view key) {
    return path.empty() ? std::string(key) : std::string(path) + "." + std::string(key);
  }

  // Each reader leaves `out` unchanged when the key is absent.
  void String(const YAML::Node& map, std::string_view path, const char* key, std::string& out) {
    YAML::Node n = map[key];
    if (!n) return;
    if (!n.IsScalar()) return Fail(n, Join(path, key), "expected a string");
    out = n.Scalar();
  }

  template <class Int>
  void Integer(const YAML::Node& map, std::string_view path, const char* key, Int& out) {
    YAML::Node n = map[key];
    if (!n) return;
    const std::string s = n.IsScalar() ? n.Scalar() : std::string();
    Int v{};
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (!n.IsScalar() || s.empty() || ec != std::errc() || end != s.data() + s.size()) {
      // Accept integral values written in exponent form (e.g. 3.2e3).
      double d = 0;
      if (n.IsScalar() && ParseDouble(s, d) && std::floor(d) == d && std::abs(d) < 9e18) {
        out = static_cast<Int>(d);
        return;
      }
      return Fail(n, Join(path, key), "expected an integer, got '" + s + "'");
    }
    out = v;
  }

  void Number(const YAML::Node& map, std::string_view path, const char* key, double& out) {
    YAML::Node n = map[key];
    if (!n) return;
    double v = 0;
    if (!n.IsScalar() || !ParseDouble(n.Scalar(), v)) {
      return Fail(n, Join(path, key),
                  "expected a number, got '" + (n.IsScalar() ? n.Scalar() : "") + "'");
    }
    out = v;
  }

  void Bool(const YAML::Node& map, std::string_view path, const char* key, bool& out) {
    std::optional<bool> v;
    OptionalBool(map, path, key, v);
    if (v) out = *v;
  }

  void OptionalBool(const YAML::Node& map, std::string_view path, const char* key,
                    std::optional<bool>& out) {
    YAML::Node n = map[key];
    if (!n) return;
    const std::string s = n.IsScalar() ? n.Scalar() : "";
    if (s == "true" || s == "True") {
      out = true;
    } else if (s == "false" || s == "False") {
      out = false;
    } else {
      Fail(n, Join(path, key), "expected true or false, got '" + s + "'");
    }
  }

  template <class E>
  void Enum(const YAML::Node& map, std::string_view path, const char* key,
            std::initializer_list<std::pair<std::string_view, E>> values, E& out) {
    YAML::Node n = map[key];
    if (!n) return;
    const std::string s = n.IsScalar() ? n.Scalar() : "";
    std::string allowed;
    for (const auto& [name, value] : values) {
      if (s == name) {
        out = value;
        return;
      }
      allowed += (allowed.empty() ? "" : ", ") + std::string(name);
    }
    Fail(n, Join(path, key), "expected one of " + allowed + ", got '" + s + "'");
  }

 private:
  static bool ParseDouble(const std::string& s, double& out) {
    if (s.empty()) return false;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && end == s.data() + s.size() && std::isfinite(out);
  }

  std::string source_;
  std::optional<Error> error_;
};

void ReadModel(FieldReader& r, const YAML::Node& n, ModelSpec& m) {
  const char* p = "model";
  if (!r.CheckMap(n, p,
                  {"name", "layers", "hidden", "heads", "kv_heads", "head_dim", "intermediate",
                   "vocab", "params", "dtype_bytes", "kv_dtype_bytes", "tied_embeddings"})) {
    return;
  }
  r.String(n, p, "name", m.name);
  r.Integer(n, p, "layers", m.layers);
  r.Integer(n, p, "hidden", m.hidden);
  r.Integer(n, p, "heads", m.heads);
  r.Integer(n, p, "kv_heads", m.kv_heads);
  r.Integer(n, p, "head_dim", m.head_dim);
  r.Integer(n, p, "intermediate", m.intermediate);
  r.Integer(n, p, "vocab", m.vocab);
  r.Number(n, p, "params", m.params);
  r.Integer(n, p, "dtype_bytes", m.dtype_bytes);
  r.Integer(n, p, "kv_dtype_bytes", m.kv_dtype_bytes);
  r.Bool(n, p, "tied_embeddings", m.tied_embeddings);
}

void ReadHardware(FieldReader& r, const YAML::Node& n, HardwareSpec& h) {
  const char* p = "hardware";
  if (!r.CheckMap(n, p,
                  {"gpu", "memory_gib", "memory_bandwidth_gbs", "peak_tflops", "compute_efficiency",
                   "bandwidth_efficiency", "allreduce_latency_us", "allreduce_bandwidth_gbs",
                   "pp_latency_us", "pp_bandwidth_gbs", "step_overhead_ms",
                   "eager_layer_overhead_us", "activation_reserve_gib"})) {
    return;
  }
  r.String(n, p, "gpu", h.gpu);
  r.Number(n, p, "memory_gib", h.memory_gib);
  r.Number(n, p, "memory_bandwidth_gbs", h.memory_bandwidth_gbs);
  r.Number(n, p, "peak_tflops", h.peak_tflops);
  r.Number(n, p, "compute_efficiency", h.compute_efficiency);
  r.Number(n, p, "bandwidth_efficiency", h.bandwidth_efficiency);
  r.Number(n, p, "allreduce_latency_us", h.allreduce_latency_us);
  r.Number(n, p, "allreduce_bandwidth_gbs", h.allreduce_bandwidth_gbs);
  r.Number(n, p, "pp_latency_us", h.pp_latency_us);
  r.Number(n, p, "pp_bandwidth_gbs", h.pp_bandwidth_gbs);
  r.Number(n, p, "step_overhead_ms", h.step_overhead_ms);
  r.Number(n, p, "eager_layer_overhead_us", h.eager_layer_overhead_us);
  r.Number(n, p, "activation_reserve_gib", h.activation_reserve_gib);
}

void ReadEngine(FieldReader& r, const YAML::Node& n, EngineSpec& e) {
  const char* p = "engine";
  if (!r.CheckMap(n, p,
                  {"version", "max_model_len", "max_num_seqs", "max_num_batched_tokens",
                   "block_size", "gpu_memory_utilization", "enforce_eager",
                   "enable_chunked_prefill", "enable_prefix_caching", "scheduling_policy",
                   "num_gpu_blocks", "watermark", "max_loras", "lora_load_seconds"})) {
    return;
  }
  r.Enum<EngineVersion>(n, p, "version", {{"v0", EngineVersion::kV0}, {"v1", EngineVersion::kV1}},
                        e.version);
  r.Integer(n, p, "max_model_len", e.max_model_len);
  r.Integer(n, p, "max_num_seqs", e.max_num_seqs);
  r.Integer(n, p, "max_num_batched_tokens", e.max_num_batched_tokens);
  r.Integer(n, p, "block_size", e.block_size);
  r.Number(n, p, "gpu_memory_utilization", e.gpu_memory_utilization);
  r.Bool(n, p, "enforce_eager", e.enforce_eager);
  r.OptionalBool(n, p, "enable_chunked_prefill", e.enable_chunked_prefill);
  r.OptionalBool(n, p, "enable_prefix_caching", e.enable_prefix_caching);
  r.Enum<SchedulingPolicy>(
      n, p, "scheduling_policy",
      {{"fcfs", SchedulingPolicy::kFcfs}, {"priority", SchedulingPolicy::kPriority}},
      e.scheduling_policy);
  r.Integer(n, p, "num_gpu_blocks", e.num_gpu_blocks);
  r.Number(n, p, "watermark", e.watermark);
  r.Integer(n, p, "max_loras", e.max_loras);
  r.Number(n, p, "lora_load_seconds", e.lora_load_seconds);
}

void ReadTiming(FieldReader& r, const YAML::Node& n, TimingSpec& t) {
  const char* p = "timing";
  if (!r.CheckMap(n, p,
                  {"mode", "prefill_base_ms", "prefill_per_token_ms", "decode_base_ms",
                   "decode_per_seq_ms", "decode_per_context_token_us"})) {
    return;
  }
  r.Enum<TimingMode>(
      n, p, "mode", {{"roofline", TimingMode::kRoofline}, {"linear", TimingMode::kLinear}}, t.mode);
  r.Number(n, p, "prefill_base_ms", t.linear.prefill_base_ms);
  r.Number(n, p, "prefill_per_token_ms", t.linear.prefill_per_token_ms);
  r.Number(n, p, "decode_base_ms", t.linear.decode_base_ms);
  r.Number(n, p, "decode_per_seq_ms", t.linear.decode_per_seq_ms);
  r.Number(n, p, "decode_per_context_token_us", t.linear.decode_per_context_token_us);
}

void ReadEos(FieldReader& r, const YAML::Node& n, EosSpec& e) {
  const char* p = "eos";
  if (!r.CheckMap(n, p, {"model", "min_fraction", "max_fraction", "mean_tokens"})) return;
  r.Enum<EosModel>(n, p, "model",
                   {{"none", EosModel::kNone},
                    {"uniform", EosModel::kUniform},
                    {"geometric", EosModel::kGeometric}},
                   e.model);
  r.Number(n, p, "min_fraction", e.min_fraction);
  r.Number(n, p, "max_fraction", e.max_fraction);
  r.Number(n, p, "mean_tokens", e.mean_tokens);
}

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{path + ": cannot open profile file"};
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Error{path + ": read error"};
  return ss.str();
}

bool LooksLikePath(std::string_view s) {
  auto ends_with = [&](std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
  };
  return s.find('/') != std::string_view::npos || ends_with(".yaml") || ends_with(".yml");
}

}  // namespace

const char* ToString(EngineVersion v) { return v == EngineVersion::kV0 ? "v0" : "v1"; }
const char* ToString(SchedulingPolicy p) {
  return p == SchedulingPolicy::kFcfs ? "fcfs" : "priority";
}

Result<Profile> ParseProfile(std::string_view yaml_text, std::string_view source) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    return Error{std::string(source) + ":" + std::to_string(e.mark.line + 1) +
                 ": invalid YAML: " + e.msg};
  }
  FieldReader r(source);
  Profile profile;
  profile.source = std::string(source);
  try {
    if (r.CheckMap(
            root, "",
            {"name", "description", "model", "hardware", "parallel", "engine", "timing", "eos"})) {
      r.String(root, "", "name", profile.name);
      r.String(root, "", "description", profile.description);
      if (root["model"]) {
        ReadModel(r, root["model"], profile.model);
      } else {
        r.Fail(root, "model", "missing (the model's dimensions are required)");
      }
      if (root["hardware"]) ReadHardware(r, root["hardware"], profile.hardware);
      if (YAML::Node n = root["parallel"]) {
        if (r.CheckMap(n, "parallel", {"tensor", "pipeline"})) {
          r.Integer(n, "parallel", "tensor", profile.parallel.tensor);
          r.Integer(n, "parallel", "pipeline", profile.parallel.pipeline);
        }
      }
      if (root["engine"]) {
        ReadEngine(r, root["engine"], profile.engine);
      } else {
        r.Fail(root, "engine", "missing (engine.max_model_len is required)");
      }
      if (root["timing"]) ReadTiming(r, root["timing"], profile.timing);
      if (root["eos"]) ReadEos(r, root["eos"], profile.eos);
    }
  } catch (const YAML::Exception& e) {
    return Error{std::string(source) + ": " + e.what()};
  }
  if (r.failed()) return r.TakeError();
  if (profile.name.empty()) {
    // Name a file-based profile after its file.
    std::string_view s = source;
    if (auto slash = s.rfind('/'); slash != std::string_view::npos) s.remove_prefix(slash + 1);
    if (s.starts_with("builtin:")) s.remove_prefix(8);
    if (auto dot = s.rfind('.'); dot != std::string_view::npos) s = s.substr(0, dot);
    profile.name = std::string(s);
  }
  Status valid = ValidateProfile(profile);
  if (!valid.ok()) return valid.error();
  return profile;
}

Result<Profile> LoadProfile(std::string_view name_or_path) {
  if (name_or_path.empty()) return Error{"profile: empty name"};
  if (LooksLikePath(name_or_path)) {
    const std::string path(name_or_path);
    auto text = ReadFile(path);
    if (!text.ok()) return text.error();
    return ParseProfile(*text, path);
  }
  for (int i = 0; i < internal::kNumBuiltinProfiles; ++i) {
    if (name_or_path == internal::kBuiltinProfiles[i].name) {
      return ParseProfile(internal::kBuiltinProfiles[i].yaml,
                          "builtin:" + std::string(name_or_path));
    }
  }
  std::string known;
  for (const auto& n : ListBuiltinProfiles()) known += (known.empty() ? "" : ", ") + n;
  return Error{"unknown profile '" + std::string(name_or_path) + "' (built-in profiles: " + known +
               "; or give a path to a .yaml file)"};
}

std::vector<std::string> ListBuiltinProfiles() {
  std::vector<std::string> names;
  for (int i = 0; i < internal::kNumBuiltinProfiles; ++i) {
    names.emplace_back(internal::kBuiltinProfiles[i].name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

Status ValidateProfile(const Profile& p) {
  const std::string src = p.source.empty() ? "profile '" + p.name + "'" : p.source;
  auto fail = [&](std::string_view field, const std::string& what) -> Status {
    return Error{src + ": " + std::string(field) + ": " + what};
  };
  const ModelSpec& m = p.model;
  if (m.layers <= 0) return fail("model.layers", "must be > 0");
  if (m.hidden <= 0) return fail("model.hidden", "must be > 0");
  if (m.heads <= 0) return fail("model.heads", "must be > 0");
  if (m.kv_heads <= 0) return fail("model.kv_heads", "must be > 0");
  if (m.heads % m.kv_heads != 0) return fail("model.kv_heads", "must divide model.heads");
  if (m.head_dim < 0) return fail("model.head_dim", "must be >= 0 (0: hidden / heads)");
  if (m.head_dim == 0 && m.hidden % m.heads != 0) {
    return fail("model.head_dim", "not given and model.hidden is not a multiple of model.heads");
  }
  if (m.intermediate <= 0) return fail("model.intermediate", "must be > 0");
  if (m.vocab <= 0) return fail("model.vocab", "must be > 0");
  if (m.params < 0) return fail("model.params", "must be >= 0 (0: from the dimensions)");
  if (m.dtype_bytes != 1 && m.dtype_bytes != 2 && m.dtype_bytes != 4) {
    return fail("model.dtype_bytes", "must be 1, 2 or 4");
  }
  if (m.kv_dtype_bytes != 0 && m.kv_dtype_bytes != 1 && m.kv_dtype_bytes != 2 &&
      m.kv_dtype_bytes != 4) {
    return fail("model.kv_dtype_bytes", "must be 0 (same as dtype_bytes), 1, 2 or 4");
  }

  const ParallelSpec& par = p.parallel;
  if (par.tensor < 1) return fail("parallel.tensor", "must be >= 1");
  if (par.pipeline < 1) return fail("parallel.pipeline", "must be >= 1");
  if (m.heads % par.tensor != 0) {
    return fail("parallel.tensor", "must divide model.heads (" + std::to_string(m.heads) + ")");
  }
  if (par.pipeline > m.layers) return fail("parallel.pipeline", "exceeds model.layers");

  const EngineSpec& e = p.engine;
  if (e.max_model_len <= 0) return fail("engine.max_model_len", "must be > 0");
  if (e.max_num_seqs <= 0) return fail("engine.max_num_seqs", "must be > 0");
  if (e.max_num_batched_tokens < 0) {
    return fail("engine.max_num_batched_tokens", "must be >= 0 (0: vLLM's default)");
  }
  if (e.block_size <= 0) return fail("engine.block_size", "must be > 0");
  if (!(e.gpu_memory_utilization > 0 && e.gpu_memory_utilization <= 1)) {
    return fail("engine.gpu_memory_utilization", "must be in (0, 1]");
  }
  if (e.num_gpu_blocks < 0) return fail("engine.num_gpu_blocks", "must be >= 0 (0: computed)");
  if (!(e.watermark >= 0 && e.watermark < 1)) return fail("engine.watermark", "must be in [0, 1)");
  if (e.max_loras < 0) return fail("engine.max_loras", "must be >= 0");
  if (e.lora_load_seconds < 0) return fail("engine.lora_load_seconds", "must be >= 0");
  if (e.version == EngineVersion::kV1) {
    if (par.pipeline > 1) {
      return fail("parallel.pipeline", "engine v1 with pipeline parallel is not modelled");
    }
    if (e.enable_chunked_prefill == false) {
      return fail("engine.enable_chunked_prefill", "engine v1 always uses chunked prefill");
    }
  }
  const bool chunked =
      e.version == EngineVersion::kV1 || e.enable_chunked_prefill.value_or(e.max_model_len > 32768);
  if (e.max_num_batched_tokens > 0) {
    if (!chunked && e.max_num_batched_tokens < e.max_model_len) {
      return fail("engine.max_num_batched_tokens",
                  "is smaller than engine.max_model_len without chunked prefill, so longer "
                  "prompts could never be scheduled");
    }
    if (e.max_num_batched_tokens < e.max_num_seqs) {
      return fail("engine.max_num_batched_tokens", "must be >= engine.max_num_seqs");
    }
  }

  const HardwareSpec& h = p.hardware;
  auto positive = [&](double v, std::string_view field) -> Status {
    if (!(v > 0)) return fail(field, "must be > 0");
    return Ok();
  };
  auto fraction = [&](double v, std::string_view field) -> Status {
    if (!(v > 0 && v <= 1)) return fail(field, "must be in (0, 1]");
    return Ok();
  };
  for (auto [v, f] : {std::pair{h.allreduce_latency_us, "hardware.allreduce_latency_us"},
                      std::pair{h.pp_latency_us, "hardware.pp_latency_us"},
                      std::pair{h.step_overhead_ms, "hardware.step_overhead_ms"},
                      std::pair{h.eager_layer_overhead_us, "hardware.eager_layer_overhead_us"},
                      std::pair{h.activation_reserve_gib, "hardware.activation_reserve_gib"}}) {
    if (v < 0) return fail(f, "must be >= 0");
  }
  if (e.num_gpu_blocks == 0) {
    if (Status s = positive(h.memory_gib, "hardware.memory_gib"); !s.ok()) {
      return Error{s.error().message + " (or set engine.num_gpu_blocks)"};
    }
  }
  if (p.timing.mode == TimingMode::kRoofline) {
    for (auto [v, f] : {std::pair{h.memory_bandwidth_gbs, "hardware.memory_bandwidth_gbs"},
                        std::pair{h.peak_tflops, "hardware.peak_tflops"}}) {
      if (Status s = positive(v, f); !s.ok()) return s;
    }
    if (Status s = fraction(h.compute_efficiency, "hardware.compute_efficiency"); !s.ok()) {
      return s;
    }
    if (Status s = fraction(h.bandwidth_efficiency, "hardware.bandwidth_efficiency"); !s.ok()) {
      return s;
    }
    if (par.tensor > 1) {
      if (Status s = positive(h.allreduce_bandwidth_gbs, "hardware.allreduce_bandwidth_gbs");
          !s.ok()) {
        return Error{s.error().message + " (needed when parallel.tensor > 1)"};
      }
    }
    if (par.pipeline > 1) {
      if (Status s = positive(h.pp_bandwidth_gbs, "hardware.pp_bandwidth_gbs"); !s.ok()) {
        return Error{s.error().message + " (needed when parallel.pipeline > 1)"};
      }
    }
  } else {
    const LinearTiming& l = p.timing.linear;
    for (auto [v, f] :
         {std::pair{l.prefill_base_ms, "timing.prefill_base_ms"},
          std::pair{l.prefill_per_token_ms, "timing.prefill_per_token_ms"},
          std::pair{l.decode_base_ms, "timing.decode_base_ms"},
          std::pair{l.decode_per_seq_ms, "timing.decode_per_seq_ms"},
          std::pair{l.decode_per_context_token_us, "timing.decode_per_context_token_us"}}) {
      if (v < 0) return fail(f, "must be >= 0");
    }
    if (l.prefill_base_ms + l.prefill_per_token_ms <= 0 ||
        l.decode_base_ms + l.decode_per_seq_ms + l.decode_per_context_token_us <= 0) {
      return fail("timing", "linear timing needs a positive prefill and decode cost");
    }
  }

  const EosSpec& eos = p.eos;
  if (eos.model == EosModel::kUniform) {
    if (!(eos.min_fraction >= 0 && eos.min_fraction <= eos.max_fraction && eos.max_fraction <= 1 &&
          eos.max_fraction > 0)) {
      return fail("eos", "uniform needs 0 <= min_fraction <= max_fraction <= 1, max_fraction > 0");
    }
  } else if (eos.model == EosModel::kGeometric) {
    if (!(eos.mean_tokens >= 1)) return fail("eos.mean_tokens", "must be >= 1 for geometric");
  }
  return Ok();
}

}  // namespace infergate::sim
