// Subcommands of the infergate executable. Each file cmd_<name>.cc adds its subcommand to
// the root app; when CLI11 selects it, the subcommand stores the function that runs it.
//
// Exit codes (all subcommands): 0 success, 2 usage or configuration error, 1 runtime
// failure.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace infergate::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntime = 1;
inline constexpr int kExitUsage = 2;

using Runner = std::function<int()>;

void AddServeCommand(CLI::App& root, Runner& run);
void AddCheckCommand(CLI::App& root, Runner& run);
void AddSimCommand(CLI::App& root, Runner& run);
void AddBenchCommand(CLI::App& root, Runner& run);
void AddSimulateCommand(CLI::App& root, Runner& run);
void AddEppCommand(CLI::App& root, Runner& run);

}  // namespace infergate::cli
