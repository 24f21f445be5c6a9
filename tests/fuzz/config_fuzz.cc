// libFuzzer target for configuration loading: multi-document YAML (Kubernetes objects)
// through decoding and resolution into a snapshot (src/config/loader.h).
//
// Properties: loading never throws and never crashes; an error names the source; a
// failed load has a message, a successful one a snapshot whose every rule has resolved
// backends and compiles into a route table (as a reload does); loading is deterministic (the same
// text gives the same error or the same shape twice).
#include <spdlog/spdlog.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "config/loader.h"
#include "fuzz_check.h"
#include "routing/route_table.h"

namespace {

std::string Shape(const infergate::config::ConfigSnapshot& s) {
  std::string out;
  for (const auto& g : s.gateways) {
    out += g.id + ";";
    for (const auto& l : g.listeners) {
      out += l.name + ":" + std::to_string(l.port) + ":" + std::to_string(l.rules.size()) + ";";
    }
  }
  out += std::to_string(s.pools.size());
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool quiet = [] {
    spdlog::set_level(spdlog::level::off);
    return true;
  }();
  (void)quiet;
  const std::string text(reinterpret_cast<const char*>(data), size);
  infergate::config::LoadOptions options;
  options.log_notices = false;
  const auto first = infergate::config::LoadConfigFromString(text, "fuzz.yaml", options);
  const auto second = infergate::config::LoadConfigFromString(text, "fuzz.yaml", options);
  IG_FUZZ_CHECK(first.ok() == second.ok());
  if (!first.ok()) {
    IG_FUZZ_CHECK(!first.error().message.empty());
    IG_FUZZ_CHECK(first.error().message == second.error().message);
    return 0;
  }
  const auto& snapshot = **first;
  IG_FUZZ_CHECK(Shape(snapshot) == Shape(**second));
  for (const auto& g : snapshot.gateways) {
    for (const auto& l : g.listeners) {
      for (const auto& rule : l.rules) {
        for (const auto& b : rule.backends) IG_FUZZ_CHECK(b.backend != nullptr);
      }
      // The gateway compiles each listener's rules when it applies a configuration.
      const infergate::routing::RouteTable table(l.rules);
      IG_FUZZ_CHECK(table.routes().size() == l.rules.size());
    }
  }
  return 0;
}
