// libFuzzer target for the engine metric mappings (src/datalayer/engine_metrics.h) on top
// of the Prometheus text reader: what the scheduler learns of a model server from one
// scraped /metrics page.
//
// Properties: for every engine (and auto-detection) the result is a value or an error;
// a value's numbers are finite and in range (queues in [0, 1e9], KV use in [0, 1], block
// and capacity counts non-negative, capacity = block size × blocks when both are known
// from one source), the engine named matches the one asked for, and reading the same
// page twice gives the same numbers.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "datalayer/engine_metrics.h"
#include "fuzz_check.h"

namespace {

using infergate::EndpointMetrics;
using infergate::EngineKind;

void CheckValue(const EndpointMetrics& m) {
  IG_FUZZ_CHECK(std::isfinite(m.waiting_requests) && m.waiting_requests >= 0 &&
                m.waiting_requests <= 1e9);
  IG_FUZZ_CHECK(std::isfinite(m.running_requests) && m.running_requests >= 0 &&
                m.running_requests <= 1e9);
  IG_FUZZ_CHECK(std::isfinite(m.kv_usage) && m.kv_usage >= 0 && m.kv_usage <= 1);
  IG_FUZZ_CHECK(m.kv_block_size >= 0 && m.kv_num_blocks >= 0 && m.kv_capacity_tokens >= 0);
  IG_FUZZ_CHECK(std::isfinite(m.prefix_cache_queries) && std::isfinite(m.prefix_cache_hits));
  IG_FUZZ_CHECK(std::isfinite(m.prefix_cache_hit_rate));
  IG_FUZZ_CHECK(m.max_lora >= 0);
  IG_FUZZ_CHECK(m.Has(infergate::kFieldWaiting) || m.Has(infergate::kFieldRunning) ||
                m.Has(infergate::kFieldKvUsage));
}

bool Same(const EndpointMetrics& a, const EndpointMetrics& b) {
  return a.engine == b.engine && a.present == b.present &&
         a.waiting_requests == b.waiting_requests && a.running_requests == b.running_requests &&
         a.kv_usage == b.kv_usage && a.kv_capacity_tokens == b.kv_capacity_tokens &&
         a.running_lora_adapters == b.running_lora_adapters &&
         a.waiting_lora_adapters == b.waiting_lora_adapters;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  for (EngineKind kind : {EngineKind::kAuto, EngineKind::kVllm, EngineKind::kSglang,
                          EngineKind::kTrtllm, EngineKind::kLlamacpp}) {
    const auto m = infergate::ExtractEndpointMetrics(body, kind);
    if (!m.ok()) {
      IG_FUZZ_CHECK(!m.error().message.empty());
      continue;
    }
    CheckValue(*m);
    if (kind != EngineKind::kAuto) IG_FUZZ_CHECK(m->engine == kind);
    const auto again = infergate::ExtractEndpointMetrics(body, kind);
    IG_FUZZ_CHECK(again.ok() && Same(*m, *again));
  }
  return 0;
}
