// Loading a configuration: multi-document YAML of Kubernetes objects (the files a user
// applies with kubectl) into a validated, resolved ConfigSnapshot.
//
// Kinds read (others, and unknown apiVersions of these, are skipped with one info line
// each, so whole manifests can be fed in):
//   gateway.networking.k8s.io v1/v1beta1    GatewayClass (ignored), Gateway, HTTPRoute
//   v1                                      Service, Pod, List (its items)
//   inference.networking.x-k8s.io           InferencePool, InferenceModel (v1alpha1,
//                                           v1alpha2), EndpointPickerConfig (v1alpha1)
//   inference.networking.k8s.io v1          InferencePool
//   gateway.envoyproxy.io v1alpha1          BackendTrafficPolicy (timeout.http.
//                                           requestTimeout), ClientTrafficPolicy
//                                           (connection.bufferLimit)
// infergate annotations: infergate.io/bind-address on a Gateway (default 0.0.0.0),
// infergate.io/scheduling-profile on an InferencePool (default "infergate").
// Defaults without policies: request timeout 1h, request body limit 4 MiB.
//
// Errors: every problem of a load is collected and returned together, one per line, each
// naming the file (with the YAML line when known), the document (1-based), the object and
// the field, e.g.
//   bad.yaml:14: document 3: HTTPRoute/plain: spec.rules[0].backendRefs[1].weight: must be
//   an integer between 0 and 1000000, got "abc"
// Objects outside the "default" namespace are named Kind/namespace/name.
//
// Thread-safe: the functions share no state (they log through spdlog).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/snapshot.h"
#include "core/status.h"

namespace infergate::config {

struct LoadOptions {
  // Log skipped objects (info) and warnings (warn) through spdlog. `infergate check`
  // turns this off and prints them itself.
  bool log_notices = true;
  // Services resolve to the ready endpoints of their EndpointSlices (the API server's
  // view) instead of their selector over Pods (file mode).
  bool service_endpoints_from_slices = false;
  // A route's backendRef that does not resolve (unknown Service or InferencePool, a port
  // it lacks) keeps its rule, with requests that would go to it answered 500 (Gateway
  // API's rule for invalid backendRefs), and is a warning, not an error (Kubernetes mode:
  // the route's status says ResolvedRefs=False). Off: an error (file mode).
  bool unresolved_backends_answer_500 = false;
};

// One YAML text and the name errors should use for it.
struct ConfigSource {
  std::string name;
  std::string text;
};

// Loads files and directories (a directory contributes its *.yaml and *.yml files, sorted
// by name, not recursively). Requires at least one path. Returns the snapshot, or an Error
// whose message lists every problem, one per line.
Result<std::shared_ptr<const ConfigSnapshot>> LoadConfig(const std::vector<std::string>& paths,
                                                         const LoadOptions& options = {});

// Loads YAML texts given in memory, as if each were a file called source.name.
Result<std::shared_ptr<const ConfigSnapshot>> LoadConfigFromSources(
    const std::vector<ConfigSource>& sources, const LoadOptions& options = {});

// Convenience for one text.
Result<std::shared_ptr<const ConfigSnapshot>> LoadConfigFromString(
    const std::string& text, const std::string& name = "<config>", const LoadOptions& options = {});

// A source LoadConfigSkippingInvalid left out, with the problems that made it so (each
// formatted as LoadConfig's errors are, so it starts with the source's name).
struct RejectedSource {
  std::string name;
  std::vector<std::string> errors;
};

struct PartialLoad {
  std::shared_ptr<const ConfigSnapshot> snapshot;
  std::vector<RejectedSource> rejected;  // in the order they were found
};

// Loads sources as LoadConfigFromSources does, except that a source with a problem is
// left out (and listed in rejected) instead of failing the whole load; a source that only
// fails once another was left out (a route to a pool that was rejected) is left out in
// turn. For sources holding one object each (the Kubernetes provider), so one invalid
// object never takes the others down. Source names must be distinct; a problem is
// attributed by its "name:" prefix. Returns an Error only when a problem names no source.
Result<PartialLoad> LoadConfigSkippingInvalid(std::vector<ConfigSource> sources,
                                              const LoadOptions& options = {});

}  // namespace infergate::config
