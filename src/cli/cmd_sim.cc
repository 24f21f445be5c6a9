#include <cstdio>

#include "cli/commands.h"

namespace infergate::cli {

void AddSimCommand(CLI::App& root, Runner& run) {
  auto* cmd = root.add_subcommand("sim", "(not built yet)");
  cmd->callback([&run] {
    run = [] {
      std::fputs("infergate sim: not built yet\n", stderr);
      return kExitRuntime;
    };
  });
}

}  // namespace infergate::cli
