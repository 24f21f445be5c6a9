// libFuzzer target for the Prometheus text reader and the engine metric mappings.
//
// Build with clang, run on a scratch copy of the seeds (libFuzzer adds new inputs to its
// first corpus directory); docs/scheduling.md has the commands.
// The same entry point runs every seed in a normal unit test (fuzz_corpus_test.cc).
//
// Invariants checked (a violation aborts, which both libFuzzer and the unit test report):
// every view the reader returns lies inside the input; the reader consumes the input in
// one pass (samples + malformed lines never exceed lines); extraction returns a value or
// an error for every engine, and a value has KV use within [0, 1].
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "datalayer/engine_metrics.h"
#include "datalayer/prometheus_text.h"

namespace {

void Require(bool ok) {
  if (!ok) std::abort();
}

bool Inside(std::string_view part, std::string_view whole) {
  return part.empty() ||
         (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  infergate::PrometheusTextReader reader(body);
  infergate::PromSample s;
  std::size_t samples = 0;
  while (reader.Next(&s)) {
    ++samples;
    Require(!s.name.empty());
    Require(Inside(s.name, body));
    for (const infergate::PromLabel& l : s.labels) {
      Require(Inside(l.name, body));
      Require(Inside(l.value, body));
      std::string unescaped;
      infergate::AppendUnescaped(l.value, unescaped);
      Require(unescaped.size() <= l.value.size());
    }
  }
  Require(samples + reader.malformed_lines() <= reader.lines());
  for (infergate::EngineKind kind :
       {infergate::EngineKind::kAuto, infergate::EngineKind::kVllm, infergate::EngineKind::kSglang,
        infergate::EngineKind::kTrtllm, infergate::EngineKind::kLlamacpp}) {
    infergate::Result<infergate::EndpointMetrics> m = infergate::ExtractEndpointMetrics(body, kind);
    if (m.ok()) Require(m->kv_usage >= 0.0 && m->kv_usage <= 1.0);
  }
  return 0;
}
