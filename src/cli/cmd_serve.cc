#include <cstdio>

#include "cli/commands.h"

namespace infergate::cli {

void AddServeCommand(CLI::App& root, Runner& run) {
  auto* cmd = root.add_subcommand("serve", "(not built yet)");
  cmd->callback([&run] {
    run = [] {
      std::fputs("infergate serve: not built yet\n", stderr);
      return kExitRuntime;
    };
  });
}

}  // namespace infergate::cli
