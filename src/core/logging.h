// Process-wide logging set-up (spdlog to stderr).
#pragma once

#include <string_view>

namespace infergate {

// Sets the default logger to stderr with the given level name (trace, debug, info, warn,
// error, off). Returns false and leaves the level unchanged for an unknown name.
bool InitLogging(std::string_view level);

}  // namespace infergate
