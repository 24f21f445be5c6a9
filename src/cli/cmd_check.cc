// `infergate check -f CONFIG.yaml [-f MORE.yaml | -f DIR] [--output text|json]`: loads a
// configuration exactly as `serve` would, and prints what it resolves to, or every error.
#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "config/loader.h"
#include "config/report.h"
#include "core/clock.h"
#include "gateway/pool_state.h"
#include "http/tls_certificate.h"

namespace infergate::cli {
namespace {

struct CheckOptions {
  std::vector<std::string> files;
  std::string output = "text";
};

int PrintErrors(const std::vector<std::string>& errors, bool json) {
  if (json) {
    nlohmann::json out = {{"valid", false}, {"errors", errors}};
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    std::fprintf(stderr, "infergate check: the configuration has %zu error%s:\n", errors.size(),
                 errors.size() == 1 ? "" : "s");
    for (const auto& e : errors) std::fprintf(stderr, "  %s\n", e.c_str());
  }
  return kExitUsage;
}

int RunCheck(const CheckOptions& options) {
  config::LoadOptions load;
  load.log_notices = false;  // printed below, with the rest
  auto result = config::LoadConfig(options.files, load);
  const bool json = options.output == "json";

  if (!result.ok()) {
    std::vector<std::string> errors;
    const std::string& message = result.error().message;
    std::size_t start = 0;
    while (start <= message.size()) {
      std::size_t end = message.find('\n', start);
      if (end == std::string::npos) end = message.size();
      if (end > start) errors.push_back(message.substr(start, end - start));
      start = end + 1;
    }
    return PrintErrors(errors, json);
  }

  const config::ConfigSnapshot& snapshot = **result;
  // A pool's scheduling profile is the scheduler's to check (a bare name must be one of
  // its builtin profiles): build each pool's scheduler as `serve` would.
  std::vector<std::string> errors;
  SteadyClock clock;
  for (const auto& pool : snapshot.pools) {
    auto settings = gateway::SettingsForPool(snapshot, *pool);
    if (!settings.ok()) {
      errors.push_back(settings.error().message);
      continue;
    }
    auto state = gateway::PoolState::Create(pool->id, std::move(*settings), &clock);
    if (!state.ok()) errors.push_back(state.error().message);
  }
  if (!errors.empty()) return PrintErrors(errors, json);
  // HTTPS listeners whose certificate does not load are not served (as serve does): a
  // warning, not an error.
  std::vector<std::string> tls_warnings;
  for (const auto& gw : snapshot.gateways) {
    for (const auto& l : gw.listeners) {
      if (l.protocol != "HTTPS" || !l.not_served.empty() || l.certificates.empty()) continue;
      for (const auto& cert : l.certificates) {
        if (auto st = http::CheckTlsCertificate(cert.cert_pem, cert.key_pem, cert.secret);
            !st.ok()) {
          tls_warnings.push_back(
              fmt::format("listener {}/{} is not served: {}", gw.id, l.name, st.error().message));
          break;
        }
      }
    }
  }
  if (json) {
    auto out = config::SnapshotToJson(snapshot);
    for (const auto& w : tls_warnings) out["warnings"].push_back(w);
    std::printf("%s\n", out.dump(2).c_str());
    return kExitOk;
  }
  std::size_t listeners = 0;
  for (const auto& gw : snapshot.gateways) listeners += gw.listeners.size();
  std::printf(
      "Configuration OK: %zu file%s, %zu Gateway%s, %zu listener%s, %zu InferencePool%s.\n\n",
      snapshot.files.size(), snapshot.files.size() == 1 ? "" : "s", snapshot.gateways.size(),
      snapshot.gateways.size() == 1 ? "" : "s", listeners, listeners == 1 ? "" : "s",
      snapshot.pools.size(), snapshot.pools.size() == 1 ? "" : "s");
  std::fputs(config::DescribeSnapshot(snapshot).c_str(), stdout);
  if (!tls_warnings.empty()) {
    std::printf("TLS warnings (%zu):\n", tls_warnings.size());
    for (const auto& w : tls_warnings) std::printf("  %s\n", w.c_str());
  }
  return kExitOk;
}

}  // namespace

void AddCheckCommand(CLI::App& root, Runner& run) {
  auto* cmd = root.add_subcommand(
      "check",
      "Validate a configuration and print what it resolves to.\n"
      "Reads the Kubernetes objects `serve` reads (Gateway, HTTPRoute, Service, Pod,\n"
      "InferencePool, InferenceModel, EndpointPickerConfig, Envoy Gateway policies; other\n"
      "kinds are listed as skipped) and prints listeners -> routes -> backends -> endpoints,\n"
      "the pools with their models, timeouts and body limits. On errors it prints every\n"
      "problem with its file, line, document, object and field.\n"
      "Exit status: 0 valid, 2 invalid (or bad usage).");
  auto options = std::make_shared<CheckOptions>();
  cmd->add_option("-f,--filename", options->files,
                  "YAML file of Kubernetes objects, or a directory of *.yaml/*.yml files "
                  "(repeatable)")
      ->required()
      ->take_all();
  cmd->add_option("-o,--output", options->output, "Output format: text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  cmd->callback([&run, options] { run = [options] { return RunCheck(*options); }; });
}

}  // namespace infergate::cli
