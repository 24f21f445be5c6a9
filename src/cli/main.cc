#include <cstdio>

#include "cli/commands.h"
#include "core/logging.h"

int main(int argc, char** argv) {
  using namespace infergate::cli;
  CLI::App app{
      "infergate: an inference gateway for LLM serving, with a vLLM-faithful simulator,\n"
      "a benchmark_serving-compatible load generator and a virtual-time cluster."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "infergate 0.1.0");
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off")
      ->capture_default_str();

  Runner run;
  AddServeCommand(app, run);
  AddCheckCommand(app, run);
  AddSimCommand(app, run);
  AddBenchCommand(app, run);
  AddSimulateCommand(app, run);
  AddEppCommand(app, run);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }
  if (!infergate::InitLogging(log_level)) {
    std::fprintf(stderr, "infergate: unknown --log-level '%s'\n", log_level.c_str());
    return kExitUsage;
  }
  if (!run) {
    std::fputs(app.help().c_str(), stderr);
    return kExitUsage;
  }
  return run();
}
