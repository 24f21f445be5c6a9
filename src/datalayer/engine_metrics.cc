#include "datalayer/engine_metrics.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <span>

#include "datalayer/prometheus_text.h"

namespace infergate {
namespace {

enum class Role : std::uint8_t {
  kNone,
  kWaiting,
  kRunning,
  kKvUsage,        // the engine's current KV-use gauge
  kKvUsageLegacy,  // vLLM's older name, used only when the current one is absent
  kCacheConfig,    // an info metric whose labels carry block size and block count
  kLora,
  kPrefixQueries,
  kPrefixHits,
  kPrefixHitRate,
  kBlockSize,       // a gauge: tokens per block
  kNumBlocks,       // a gauge: blocks in the cache
  kCapacityTokens,  // a gauge: tokens the cache holds
};

struct NameRole {
  std::string_view name;
  Role role;
};

constexpr NameRole kVllmNames[] = {
    {"vllm:num_requests_waiting", Role::kWaiting},
    {"vllm:num_requests_running", Role::kRunning},
    {"vllm:kv_cache_usage_perc", Role::kKvUsage},
    {"vllm:gpu_cache_usage_perc", Role::kKvUsageLegacy},
    {"vllm:cache_config_info", Role::kCacheConfig},
    {"vllm:lora_requests_info", Role::kLora},
    {"vllm:prefix_cache_queries_total", Role::kPrefixQueries},
    {"vllm:prefix_cache_hits_total", Role::kPrefixHits},
    {"vllm:gpu_prefix_cache_queries_total", Role::kPrefixQueries},
    {"vllm:gpu_prefix_cache_hits_total", Role::kPrefixHits},
    {"vllm:gpu_prefix_cache_hit_rate", Role::kPrefixHitRate},
};
constexpr NameRole kSglangNames[] = {
    {"sglang:num_queue_reqs", Role::kWaiting},
    {"sglang:num_running_reqs", Role::kRunning},
    {"sglang:token_usage", Role::kKvUsage},
    {"sglang:cache_config_info", Role::kCacheConfig},
    {"sglang:max_total_num_tokens", Role::kCapacityTokens},
    {"sglang:cache_hit_rate", Role::kPrefixHitRate},
};
constexpr NameRole kTrtllmNames[] = {
    {"trtllm_num_requests_waiting", Role::kWaiting},
    {"trtllm_num_requests_running", Role::kRunning},
    {"trtllm_kv_cache_utilization", Role::kKvUsage},
    {"trtllm_kv_cache_tokens_per_block", Role::kBlockSize},
    {"trtllm_kv_cache_max_blocks", Role::kNumBlocks},
    {"trtllm_kv_cache_hit_rate", Role::kPrefixHitRate},
};
constexpr NameRole kLlamacppNames[] = {
    {"llamacpp:requests_deferred", Role::kWaiting},
    {"llamacpp:requests_processing", Role::kRunning},
    // llamacpp:kv_cache_usage_ratio is left out on purpose: finished slots keep their
    // cache, so it stays high on an idle server (ApplyLlamacppSlots gives the load).
};

struct EngineMapping {
  EngineKind kind;
  std::string_view prefix;  // every metric of the engine starts with it
  std::span<const NameRole> names;
  // Labels of the cache-config info metric.
  std::string_view block_size_label;
  std::string_view num_blocks_label;
};

constexpr EngineMapping kMappings[] = {
    {EngineKind::kVllm, "vllm:", kVllmNames, "block_size", "num_gpu_blocks"},
    {EngineKind::kSglang, "sglang:", kSglangNames, "page_size", "num_pages"},
    {EngineKind::kTrtllm, "trtllm_", kTrtllmNames, "", ""},
    {EngineKind::kLlamacpp, "llamacpp:", kLlamacppNames, "", ""},
};

const EngineMapping* MappingFor(EngineKind kind) {
  for (const EngineMapping& m : kMappings) {
    if (m.kind == kind) return &m;
  }
  return nullptr;
}

const EngineMapping* MappingForName(std::string_view metric) {
  for (const EngineMapping& m : kMappings) {
    if (metric.starts_with(m.prefix)) return &m;
  }
  return nullptr;
}

Role RoleOf(const EngineMapping& m, std::string_view name) {
  if (!name.starts_with(m.prefix)) return Role::kNone;
  for (const NameRole& nr : m.names) {
    if (nr.name.size() == name.size() && nr.name == name) return nr.role;
  }
  return Role::kNone;
}

struct Mean {
  double sum = 0;
  int count = 0;
  void Add(double v) {
    sum += v;
    ++count;
  }
  double Value() const { return count ? sum / count : 0.0; }
};

struct Sum {
  double sum = 0;
  bool seen = false;
  void Add(double v) {
    sum += v;
    seen = true;
  }
};

// Block sizes, block counts and token capacities beyond this are not a real server's
// (a trillion tokens); larger values are treated as unknown rather than converted, which
// would overflow.
constexpr std::int64_t kMaxCount = std::int64_t{1} << 40;

// A gauge value as a count in [1, kMaxCount], or 0 when it is not one.
std::int64_t ToCount(double v) {
  if (!(v >= 1.0) || v > static_cast<double>(kMaxCount)) return 0;
  return static_cast<std::int64_t>(v);
}

bool ParseLabelInt(const PromSample& s, std::string_view label, std::int64_t* out) {
  const PromLabel* l = s.FindLabel(label);
  if (l == nullptr || l->escaped) return false;
  std::int64_t v = 0;
  auto [ptr, ec] = std::from_chars(l->value.data(), l->value.data() + l->value.size(), v);
  if (ec != std::errc() || ptr != l->value.data() + l->value.size() || v < 0 || v > kMaxCount) {
    return false;
  }
  *out = v;
  return true;
}

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

void SplitAdapters(const PromLabel* label, std::vector<std::string>& out) {
  out.clear();
  if (label == nullptr) return;
  std::string value = label->UnescapedValue();
  std::string_view rest(value);
  while (!rest.empty()) {
    std::size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (!item.empty()) out.emplace_back(item);
  }
}

bool Contains(const std::vector<std::string>& list, std::string_view x) {
  return std::find(list.begin(), list.end(), x) != list.end();
}

}  // namespace

Result<EngineKind> ParseEngineKind(std::string_view name) {
  std::string n = ToLower(name);
  if (n.empty()) return EngineKind::kAuto;
  if (n == "vllm" || n == "vllm-v0" || n == "vllm-v1") return EngineKind::kVllm;
  if (n == "sglang") return EngineKind::kSglang;
  if (n == "trtllm" || n == "trt-llm" || n == "tensorrt-llm" || n == "trtllm-serve") {
    return EngineKind::kTrtllm;
  }
  if (n == "llamacpp" || n == "llama.cpp" || n == "llama-cpp") return EngineKind::kLlamacpp;
  return Error{"unknown engine type '" + std::string(name) +
               "' (expected vllm, sglang, trtllm or llamacpp)"};
}

std::string_view EngineKindName(EngineKind kind) {
  switch (kind) {
    case EngineKind::kAuto:
      return "auto";
    case EngineKind::kVllm:
      return "vllm";
    case EngineKind::kSglang:
      return "sglang";
    case EngineKind::kTrtllm:
      return "trtllm";
    case EngineKind::kLlamacpp:
      return "llamacpp";
  }
  return "unknown";
}

bool EndpointMetrics::HasRunningAdapter(std::string_view adapter) const {
  return Contains(running_lora_adapters, adapter);
}

bool EndpointMetrics::HasWaitingAdapter(std::string_view adapter) const {
  return Contains(waiting_lora_adapters, adapter);
}

Result<EndpointMetrics> ExtractEndpointMetrics(std::string_view body, EngineKind kind) {
  const EngineMapping* mapping = MappingFor(kind);
  EndpointMetrics m;
  Sum waiting, running, num_blocks_gauge, capacity_gauge, queries, hits;
  Mean kv, kv_legacy, hit_rate, block_size_gauge;
  std::int64_t cfg_block_size = 0, cfg_blocks = 0;
  bool cfg_seen = false;
  double lora_newest = -std::numeric_limits<double>::infinity();

  PrometheusTextReader reader(body);
  PromSample s;
  while (reader.Next(&s)) {
    if (mapping == nullptr) {
      mapping = MappingForName(s.name);
      if (mapping == nullptr) continue;
    }
    Role role = RoleOf(*mapping, s.name);
    if (role == Role::kNone) continue;
    // Info metrics carry their payload in labels; every other role needs a finite value.
    if (role != Role::kCacheConfig && !std::isfinite(s.value)) continue;
    if (mapping->kind == EngineKind::kVllm && s.FindLabel("engine") != nullptr) m.vllm_v1 = true;
    switch (role) {
      case Role::kNone:
        break;
      case Role::kWaiting:
        waiting.Add(s.value);
        break;
      case Role::kRunning:
        running.Add(s.value);
        break;
      case Role::kKvUsage:
        kv.Add(s.value);
        if (mapping->kind == EngineKind::kVllm) m.vllm_v1 = true;
        break;
      case Role::kKvUsageLegacy:
        kv_legacy.Add(s.value);
        break;
      case Role::kCacheConfig: {
        cfg_seen = true;
        std::int64_t bs = 0, nb = 0;
        if (ParseLabelInt(s, mapping->block_size_label, &bs)) {
          cfg_block_size = std::max(cfg_block_size, bs);
        }
        if (ParseLabelInt(s, mapping->num_blocks_label, &nb)) {
          cfg_blocks = std::min(cfg_blocks + nb, kMaxCount);
        }
        if (const PromLabel* pc = s.FindLabel("enable_prefix_caching")) {
          std::string v = ToLower(pc->value);
          m.prefix_caching_enabled = v == "true" || v == "1";
          m.present |= kFieldPrefixCachingConfig;
        }
        break;
      }
      case Role::kLora:
        if (s.value > lora_newest) {
          lora_newest = s.value;
          SplitAdapters(s.FindLabel("running_lora_adapters"), m.running_lora_adapters);
          SplitAdapters(s.FindLabel("waiting_lora_adapters"), m.waiting_lora_adapters);
          std::int64_t max_lora = 0;
          m.max_lora = ParseLabelInt(s, "max_lora", &max_lora)
                           ? static_cast<int>(std::min<std::int64_t>(max_lora, 1 << 20))
                           : 0;
          m.present |= kFieldLora;
        }
        break;
      case Role::kPrefixQueries:
        queries.Add(s.value);
        if (mapping->kind == EngineKind::kVllm) m.vllm_v1 = true;
        break;
      case Role::kPrefixHits:
        hits.Add(s.value);
        break;
      case Role::kPrefixHitRate:
        // vLLM V0 reports -1 when prefix caching is off.
        if (s.value >= 0) hit_rate.Add(s.value);
        break;
      case Role::kBlockSize:
        block_size_gauge.Add(s.value);
        break;
      case Role::kNumBlocks:
        num_blocks_gauge.Add(s.value);
        break;
      case Role::kCapacityTokens:
        capacity_gauge.Add(s.value);
        break;
    }
  }
  m.malformed_lines = reader.malformed_lines();

  if (mapping == nullptr) {
    std::string msg = "no metrics of a known engine (vllm, sglang, trtllm, llamacpp) in " +
                      std::to_string(reader.lines()) + " lines";
    if (!reader.first_error().empty()) msg += "; first malformed " + reader.first_error();
    return Error{std::move(msg)};
  }
  m.engine = mapping->kind;
  // Queue lengths are clamped to [0, 1e9]: a negative or astronomical gauge is a broken
  // exporter, and downstream arithmetic must stay finite.
  constexpr double kMaxRequests = 1e9;
  if (waiting.seen) {
    m.waiting_requests = std::clamp(waiting.sum, 0.0, kMaxRequests);
    m.present |= kFieldWaiting;
  }
  if (running.seen) {
    m.running_requests = std::clamp(running.sum, 0.0, kMaxRequests);
    m.present |= kFieldRunning;
  }
  const Mean& kv_src = kv.count ? kv : kv_legacy;
  if (kv_src.count) {
    m.kv_usage = std::clamp(kv_src.Value(), 0.0, 1.0);
    m.present |= kFieldKvUsage;
  }
  if (cfg_seen) {
    m.kv_block_size = cfg_block_size;
    m.kv_num_blocks = cfg_blocks;
  }
  if (block_size_gauge.count && num_blocks_gauge.seen) {
    m.kv_block_size = ToCount(block_size_gauge.Value());
    m.kv_num_blocks = ToCount(num_blocks_gauge.sum);
  }
  if (m.kv_block_size > 0 && m.kv_num_blocks > 0 &&
      m.kv_block_size <= kMaxCount / m.kv_num_blocks) {
    m.kv_capacity_tokens = m.kv_block_size * m.kv_num_blocks;
  } else if (capacity_gauge.seen) {
    m.kv_capacity_tokens = ToCount(capacity_gauge.sum);
  }
  if (m.kv_capacity_tokens > 0) m.present |= kFieldKvCapacity;
  // Sums of finite samples can still overflow to infinity; such a page is broken and
  // leaves these fields unknown rather than poisoning the scorers' arithmetic.
  if (queries.seen && hits.seen && std::isfinite(queries.sum) && std::isfinite(hits.sum)) {
    m.prefix_cache_queries = queries.sum;
    m.prefix_cache_hits = hits.sum;
    m.present |= kFieldPrefixCacheCounters;
    if (!m.Has(kFieldPrefixCachingConfig)) {
      // Only an engine with prefix caching on exports these counters.
      m.prefix_caching_enabled = true;
      m.present |= kFieldPrefixCachingConfig;
    }
  }
  if (hit_rate.count && std::isfinite(hit_rate.Value())) {
    m.prefix_cache_hit_rate = std::clamp(hit_rate.Value(), 0.0, 1.0);
    m.present |= kFieldPrefixCacheHitRate;
  }
  if (!m.Has(kFieldWaiting) && !m.Has(kFieldRunning) && !m.Has(kFieldKvUsage)) {
    std::string msg = "no " + std::string(EngineKindName(m.engine)) +
                      " load metrics (waiting, running, KV use) in " +
                      std::to_string(reader.lines()) + " lines";
    if (!reader.first_error().empty()) msg += "; first malformed " + reader.first_error();
    return Error{std::move(msg)};
  }
  return m;
}

void ApplyLlamacppSlots(EndpointMetrics& m, int slots) {
  if (slots <= 0 || m.engine != EngineKind::kLlamacpp) return;
  m.slots = slots;
  m.kv_usage = std::clamp(m.running_requests / slots, 0.0, 1.0);
  m.present |= kFieldKvUsage;
}

Result<int> ParseLlamacppSlots(std::string_view body) {
  // /props: {"total_slots": N, ...}; /slots: [{"id": 0, ...}, ...] (one object per slot).
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && j.contains("total_slots") && j["total_slots"].is_number_integer()) {
    const auto n = j["total_slots"].get<std::int64_t>();
    if (n > 0 && n <= 1'000'000) return static_cast<int>(n);
  }
  if (j.is_array() && !j.empty() && j.size() <= 1'000'000) return static_cast<int>(j.size());
  return Error{"no slot count (total_slots in /props, or the /slots array)"};
}

}  // namespace infergate
