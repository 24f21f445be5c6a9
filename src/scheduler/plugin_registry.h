// Scheduling plugins by type name.
//
// Each plugin file defines one PluginDescriptor (type name, kind, one-line summary and a
// factory that reads its parameters). The builtin registry lists them once, in
// plugin_registry.cc: static libraries drop object files nothing refers to, so plugins
// that registered themselves from global constructors would silently vanish from some
// executables; one explicit list is the dependable alternative. Adding a plugin is a new
// file plus one line there.
//
// Thread-safety: a registry is immutable once built; Builtin() is initialised on first use
// (thread-safe) and may be read from any thread.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "scheduler/picker_config.h"
#include "scheduler/plugin.h"

namespace infergate {

using PluginFactory = std::unique_ptr<SchedulingPlugin> (*)(PluginParams& params);

struct PluginDescriptor {
  std::string_view type;
  PluginKind kind;
  std::string_view summary;
  PluginFactory factory;
};

class PluginRegistry {
 public:
  // Adds a plugin type; false when the type is already registered.
  bool Register(const PluginDescriptor& descriptor);
  const PluginDescriptor* Find(std::string_view type) const;
  // All descriptors, ordered by type.
  std::vector<PluginDescriptor> List() const;

  // Creates a plugin from a config entry; an error names the plugin and the problem
  // (unknown type, bad or unknown parameter).
  Result<std::unique_ptr<SchedulingPlugin>> Create(const PluginSpec& spec) const;

  // The plugins shipped with infergate.
  static const PluginRegistry& Builtin();

 private:
  std::map<std::string, PluginDescriptor, std::less<>> plugins_;
};

}  // namespace infergate
