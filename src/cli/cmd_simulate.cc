#include <cstdio>

#include "cli/commands.h"

namespace infergate::cli {

void AddSimulateCommand(CLI::App& root, Runner& run) {
  auto* cmd = root.add_subcommand("simulate", "(not built yet)");
  cmd->callback([&run] {
    run = [] {
      std::fputs("infergate simulate: not built yet\n", stderr);
      return kExitRuntime;
    };
  });
}

}  // namespace infergate::cli
