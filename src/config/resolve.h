// Internal to ig_config: resolution of a loaded set of objects into the snapshot's
// listeners, rules, backends and endpoints, with every cross-reference checked.
#pragma once

#include <set>
#include <string>

#include "config/snapshot.h"
#include "config/yaml_field.h"

namespace infergate::config {

// Fills snapshot->gateways and snapshot->pools from snapshot->objects, and reports
// duplicate objects and unresolvable references (parentRefs, sectionNames, backendRefs,
// ports, poolRefs, attach-to, policy targets, profiles) to diag. incomplete holds the
// IncompleteKey of objects that already failed to decode; problems that follow from those
// failures are not reported again.
void Resolve(const std::set<std::string>& incomplete, ConfigSnapshot* snapshot, Diagnostics* diag);

// Whether host (lower-case, no port) is covered by pattern ("x.example.com" or
// "*.example.com"; a wildcard covers one or more labels, not the bare domain).
bool HostnameCovers(std::string_view pattern, std::string_view host);

}  // namespace infergate::config
