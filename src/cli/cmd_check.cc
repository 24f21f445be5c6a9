#include <cstdio>

#include "cli/commands.h"

namespace infergate::cli {

void AddCheckCommand(CLI::App& root, Runner& run) {
  auto* cmd = root.add_subcommand("check", "(not built yet)");
  cmd->callback([&run] {
    run = [] {
      std::fputs("infergate check: not built yet\n", stderr);
      return kExitRuntime;
    };
  });
}

}  // namespace infergate::cli
