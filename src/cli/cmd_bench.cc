#include <cstdio>

#include "cli/commands.h"

namespace infergate::cli {

void AddBenchCommand(CLI::App& root, Runner& run) {
  auto* cmd = root.add_subcommand("bench", "(not built yet)");
  cmd->callback([&run] {
    run = [] {
      std::fputs("infergate bench: not built yet\n", stderr);
      return kExitRuntime;
    };
  });
}

}  // namespace infergate::cli
