// libFuzzer target for the llama.cpp slot count (src/datalayer/engine_metrics.h): the
// gateway reads a llama.cpp server's /props (total_slots) or /slots (one object per slot)
// to turn requests_processing into a load share.
//
// Properties: the parser answers a value or an error with a message, never a crash or a
// hang; a value is a slot count in [1, 1,000,000]; the same body gives the same answer
// twice; applied to a llama.cpp page (ApplyLlamacppSlots), the count gives a KV-use share
// in [0, 1] for any number of requests processing, and leaves another engine's page alone.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "datalayer/engine_metrics.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const auto slots = infergate::ParseLlamacppSlots(body);
  const auto again = infergate::ParseLlamacppSlots(body);
  IG_FUZZ_CHECK(slots.ok() == again.ok());
  if (!slots.ok()) {
    IG_FUZZ_CHECK(!slots.error().message.empty());
    return 0;
  }
  IG_FUZZ_CHECK(*slots == *again);
  IG_FUZZ_CHECK(*slots >= 1 && *slots <= 1'000'000);

  // The body's first bytes pick how many requests the page says are processing (up to
  // twice the slots, as a page racing a /props change can), so the share is exercised at
  // and beyond its bounds.
  const double processing =
      size > 0 ? static_cast<double>(data[0] % 8) * static_cast<double>(*slots) / 4.0 : 0.0;
  infergate::EndpointMetrics m;
  m.engine = infergate::EngineKind::kLlamacpp;
  m.running_requests = processing;
  m.present = infergate::kFieldRunning;
  infergate::ApplyLlamacppSlots(m, *slots);
  IG_FUZZ_CHECK(m.slots == *slots);
  IG_FUZZ_CHECK(m.Has(infergate::kFieldKvUsage));
  IG_FUZZ_CHECK(std::isfinite(m.kv_usage) && m.kv_usage >= 0 && m.kv_usage <= 1);
  IG_FUZZ_CHECK(m.running_requests == processing);

  infergate::EndpointMetrics vllm;
  vllm.engine = infergate::EngineKind::kVllm;
  vllm.kv_usage = 0.5;
  vllm.present = infergate::kFieldKvUsage;
  infergate::ApplyLlamacppSlots(vllm, *slots);
  IG_FUZZ_CHECK(vllm.slots == 0 && vllm.kv_usage == 0.5);
  return 0;
}
