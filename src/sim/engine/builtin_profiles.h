// The profile files of profiles/ as compiled into the binary (see embed_profiles.cmake).
#pragma once

namespace infergate::sim::internal {

struct BuiltinProfileText {
  const char* name;  // file name without .yaml
  const char* yaml;
};

extern const BuiltinProfileText kBuiltinProfiles[];
extern const int kNumBuiltinProfiles;

}  // namespace infergate::sim::internal
