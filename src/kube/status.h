// What infergate writes to .../status as the controller of its Gateways (pure: objects
// and a snapshot in, merge-patch bodies out; no I/O, the time is given).
//
//   Gateway        status.addresses (the given addresses, IPAddress or Hostname),
//                  conditions Accepted and Programmed, and per listener
//                  Accepted/Programmed/ResolvedRefs with supportedKinds and
//                  attachedRoutes (ResolvedRefs=False RefNotPermitted for a certificateRef
//                  into another namespace without a ReferenceGrant, InvalidCertificateRef
//                  for a missing or non-TLS Secret; Programmed=False then); an invalid
//                  Gateway gets Accepted=False Invalid.
//   HTTPRoute      status.parents[] for each parentRef naming one of our Gateways:
//                  Accepted (True Accepted; False NoMatchingParent / NotAllowedByListeners /
//                  UnsupportedValue) and ResolvedRefs (True ResolvedRefs; False
//                  BackendNotFound when a backendRef names a missing InferencePool or
//                  Service, as GIE's conformance expects; False RefNotPermitted for one in
//                  another namespace that no ReferenceGrant opens).
//   InferencePool  status.parents[] (v1) or status.parent[] (v1alpha2), one per Gateway
//                  whose routes send to it: Accepted (True Accepted; False
//                  HTTPRouteNotAccepted when the pool itself was rejected) and
//                  ResolvedRefs (True ResolvedRefs; False InvalidExtensionRef when its
//                  endpoint picker Service does not exist).
// Entries another controller wrote are kept. Every condition carries type, status,
// reason, message, observedGeneration (metadata.generation) and lastTransitionTime, which
// keeps its old value while the status does not change, so recomputing an unchanged
// state gives an identical body (and nothing is written).
//
// Thread-safety: pure functions.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config/loader.h"
#include "config/snapshot.h"

namespace infergate::kube {

// One object as the API server has it, with the source name the snapshot used for it.
struct WatchedObject {
  std::string source;     // LoadConfigSkippingInvalid's source name
  nlohmann::json object;  // as received (status included)
};

struct StatusInputs {
  std::string controller_name;
  std::vector<std::string> addresses;
  std::string now;  // RFC 3339, for new transitions
  const config::ConfigSnapshot* snapshot = nullptr;
  std::vector<config::RejectedSource> rejected;
  std::string apply_error;  // the gateway refused the snapshot (e.g. a port it cannot bind)
  std::vector<WatchedObject> gateways;  // ours only
  std::vector<WatchedObject> routes;    // routes with a parentRef to one of ours
  std::vector<WatchedObject> pools;
  std::vector<WatchedObject> services;  // to check endpoint picker references
};

struct StatusUpdate {
  std::string kind;
  std::string api_version;
  std::string namespace_name;
  std::string name;
  nlohmann::json status;  // the merge patch's "status" value
};

// The updates whose status differs from what the object already carries.
std::vector<StatusUpdate> ComputeStatusUpdates(const StatusInputs& in);

}  // namespace infergate::kube
