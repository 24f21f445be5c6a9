// ConfigSnapshot: one loaded, validated configuration and what it resolves to.
//
// Resolution goes from what the gateway serves down to where requests go:
//
//   ResolvedGateway -> ResolvedListener (bind address, port) -> RouteRule (ordered; from
//   every HTTPRoute attached to the listener and from pools' attach-to annotations)
//   -> WeightedBackend -> Backend (a Service port or an InferencePool) -> Endpoint.
//
// A snapshot never changes after it is built: the gateway holds a
// std::shared_ptr<const ConfigSnapshot> and replaces it as a whole on reload. Backends are
// shared between the rules that reference them (std::shared_ptr<const Backend>), so a
// rule, a pool listing and a metrics label all see the same object.
//
// Thread-safe for concurrent readers (nothing in it is mutable).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/resources.h"
#include "core/clock.h"

namespace infergate::config {

// Defaults when no Envoy Gateway policy targets the Gateway.
inline constexpr TimeNs kDefaultRequestTimeout = 3600 * kNanosPerSecond;  // 1h
inline constexpr std::uint64_t kDefaultBodyLimit = 4ull << 20;            // 4 MiB

// One address requests can be sent to: a Pod's IP with a resolved port.
struct Endpoint {
  std::string id;  // "127.0.0.2:8000" ("[::1]:8000" for IPv6); stable, for metrics labels
  std::string pod_namespace;
  std::string pod_name;
  std::string ip;
  std::uint16_t port = 0;
  bool ready = true;
  Labels labels;  // the Pod's labels (e.g. infergate.io/engine-type)
};

// A Pod a backend's selector picked that cannot receive requests, and why (no podIP, not
// ready, terminated, named port not found). Listed by `infergate check`.
struct UnavailablePod {
  std::string pod;  // "namespace/name"
  std::string reason;
};

// An InferenceModel as the pool serving it sees it.
struct ModelRoute {
  std::string object;      // "namespace/name" of the InferenceModel
  std::string model_name;  // what clients send in "model"
  Criticality criticality = Criticality::kStandard;
  std::optional<int> priority;
  // Never empty: the model's targetModels, or the model name itself (weight 1) when it has
  // none. Weights are the effective ones (all 1 when none were given).
  std::vector<TargetModel> targets;
  std::uint64_t total_weight = 0;  // sum of targets' weights
};

// An InferenceObjective as the pool it names sees it.
struct ObjectiveRoute {
  std::string object;  // "namespace/name"
  std::string name;    // what the objective header carries
  int priority = 0;
};

// One InferenceModelRewrite rule as the pool it names sees it.
struct RewriteRoute {
  std::string object;                // "namespace/name" of the InferenceModelRewrite
  std::size_t rule = 0;              // its index in spec.rules
  std::vector<std::string> models;   // exact model names; empty: the fallback rule
  std::vector<TargetModel> targets;  // never empty; name = modelRewrite
  std::uint64_t total_weight = 0;
};

// What an InferencePool backend adds to a Backend.
struct PoolInfo {
  std::string api_version;
  Labels selector;
  std::vector<LabelRequirement> match_expressions;
  std::vector<std::uint16_t> target_ports;
  EndpointPickerRef endpoint_picker;
  FailureMode failure_mode = FailureMode::kFailClose;  // endpoint_picker.failure_mode
  std::string scheduling_profile;                      // the annotation's string
  std::optional<bool> flow_control;                    // the annotation, when present
  std::optional<int> pipeline_parallel_size;           // the annotation, when present
  Labels annotations;
  std::vector<ModelRoute> models;          // sorted by model_name
  std::vector<ObjectiveRoute> objectives;  // sorted by name
  // In (object, rule) order; at most one fallback rule per pool.
  std::vector<RewriteRoute> rewrites;

  // The model clients call model_name, or nullptr.
  const ModelRoute* FindModel(std::string_view model_name) const;
  // The objective called `name`, or nullptr.
  const ObjectiveRoute* FindObjective(std::string_view name) const;
  // The rewrite rule for a request for `model`: the first rule that names it exactly,
  // else the fallback rule, else nullptr.
  const RewriteRoute* FindRewrite(std::string_view model) const;
};

// Where a rule sends requests: a Service port or an InferencePool, with its endpoints.
struct Backend {
  BackendKind kind = BackendKind::kService;
  std::string id;  // "namespace/name", e.g. "default/qwq-dist-v1"; stable, for metrics
  std::string namespace_name;
  std::string name;
  // Service: the Service port the route named (endpoints use its resolved targetPort).
  std::uint16_t service_port = 0;
  // Service: the ready Pods its selector picks, as ip:targetPort.
  // InferencePool: every routable Pod its selector picks, one endpoint per target port,
  // ready or not (Endpoint::ready). Sorted by (pod namespace, pod name, port).
  std::vector<Endpoint> endpoints;
  std::vector<UnavailablePod> unavailable;
  PoolInfo pool;  // meaningful only when kind == kInferencePool
};

struct WeightedBackend {
  // Null when the reference did not resolve (RouteRule::unresolved_backends says why):
  // the requests that pick it are answered 500.
  std::shared_ptr<const Backend> backend;
  std::uint32_t weight = 1;
};

struct ResolvedMirror {
  std::shared_ptr<const Backend> backend;
  std::uint32_t numerator = 100;
  std::uint32_t denominator = 100;
};

// One HTTPRoute rule as attached to one listener.
// Gateway API condition reasons the resolution records (for status writers).
inline constexpr std::string_view kRefNotPermitted = "RefNotPermitted";
inline constexpr std::string_view kInvalidCertificateRef = "InvalidCertificateRef";
inline constexpr std::string_view kBackendNotFound = "BackendNotFound";

struct RouteRule {
  std::string route;  // "namespace/name" of the HTTPRoute (or of the pool, if synthesized)
  std::string route_namespace;
  std::string route_name;
  std::size_t rule_index = 0;
  // True for the rule made from an InferencePool's attach-to annotation; such a rule loses
  // ties against every HTTPRoute.
  bool synthesized = false;
  std::optional<std::int64_t> route_created;  // creationTimestamp, seconds
  // Hostnames the rule answers on, after intersecting with the listener's hostname;
  // empty = any. Lower-case; may start with "*.".
  std::vector<std::string> hostnames;
  std::vector<RouteMatch> matches;        // never empty
  std::vector<WeightedBackend> backends;  // may be empty: requests get 500
  std::optional<HeaderModifier> request_header_modifier;
  std::optional<HeaderModifier> response_header_modifier;
  std::optional<URLRewrite> url_rewrite;
  std::optional<RequestRedirect> redirect;
  std::vector<ResolvedMirror> mirrors;
  RouteTimeouts timeouts;
  // Non-empty: the rule is not served (see HTTPRouteRule::unsupported); requests it
  // matches get a 500 naming these.
  std::vector<std::string> unsupported;
  // Why each null backend of `backends` (in their order) did not resolve
  // (LoadOptions::unresolved_backends_answer_500).
  std::vector<std::string> unresolved_backends;
  // The Gateway API reason of each entry of unresolved_backends: kBackendNotFound, or
  // kRefNotPermitted for a backend in another namespace that no ReferenceGrant opens.
  std::vector<std::string> unresolved_reasons;

  // "namespace/name/rules[i]", e.g. "default/reasoning-backend/rules[0]".
  std::string Id() const;
};

// A server certificate of an HTTPS listener, from a kubernetes.io/tls Secret.
struct TlsCertificate {
  std::string secret;  // "namespace/name"
  std::string cert_pem;
  std::string key_pem;
};

struct ResolvedListener {
  std::string gateway;  // "namespace/name"
  std::string name;
  std::string bind_address;
  std::uint16_t port = 0;                           // 0: pick a free port
  std::string protocol = "HTTP";                    // HTTP or HTTPS when served
  std::string hostname;                             // empty: any
  TimeNs request_timeout = kDefaultRequestTimeout;  // 0 = no timeout
  std::uint64_t body_limit = kDefaultBodyLimit;     // bytes
  // Ordered by route (oldest creationTimestamp first, routes without one after those with
  // one, synthesized last, then "namespace/name"), then rule index. Per-request precedence
  // (exact path first, ...) is the routing module's job.
  std::vector<RouteRule> rules;
  // HTTPS: the certificates of tls.certificateRefs, in order (SNI picks the one whose
  // names match, the first is the default; the PEM texts are checked when the gateway
  // builds its TLS contexts).
  std::vector<TlsCertificate> certificates;
  // Why the gateway does not serve this listener (unsupported protocol or TLS mode, a
  // certificate Secret that is missing or not of type kubernetes.io/tls); empty when it
  // does. Routes still attach to it; it is reported, never fatal.
  std::string not_served;
  // When a certificateRef is why it is not served: the Gateway API reason for the
  // listener's ResolvedRefs=False, kRefNotPermitted (another namespace, no
  // ReferenceGrant) or kInvalidCertificateRef.
  std::string refs_reason;
};

struct ResolvedGateway {
  std::string id;  // "namespace/name"
  std::string namespace_name;
  std::string name;
  std::string bind_address;
  // From a BackendTrafficPolicy / ClientTrafficPolicy targeting the whole Gateway, else
  // the defaults above. A policy naming a listener (sectionName) overrides it on that
  // listener only (see ResolvedListener).
  TimeNs request_timeout = kDefaultRequestTimeout;
  std::uint64_t body_limit = kDefaultBodyLimit;
  std::vector<ResolvedListener> listeners;  // in spec order
};

// An object the loader did not use: a kind infergate does not read, or an apiVersion of a
// known kind it does not support.
struct SkippedObject {
  SourceLocation source;
  std::string api_version;
  std::string kind;
  std::string name;
  std::string reason;
};

// The typed objects as loaded, in load order (files in command-line order, directories'
// files sorted, documents in file order).
struct LoadedObjects {
  std::vector<Gateway> gateways;
  std::vector<HTTPRoute> routes;
  std::vector<Service> services;
  std::vector<Pod> pods;
  std::vector<InferencePool> pools;
  std::vector<InferenceModel> models;
  std::vector<InferenceObjective> objectives;
  std::vector<InferenceModelRewrite> rewrites;
  std::vector<EndpointPickerConfig> picker_configs;
  std::vector<BackendTrafficPolicy> backend_policies;
  std::vector<ClientTrafficPolicy> client_policies;
  std::vector<Secret> secrets;
  std::vector<std::string> gateway_classes;  // names; accepted and otherwise ignored
  std::vector<EndpointSlice> endpoint_slices;
  std::vector<ReferenceGrant> reference_grants;
};

struct ConfigSnapshot {
  std::vector<std::string> files;  // every file read, in order
  LoadedObjects objects;
  std::vector<ResolvedGateway> gateways;  // in load order
  // Every InferencePool as a backend, sorted by id (the same objects rules point at).
  std::vector<std::shared_ptr<const Backend>> pools;
  std::vector<SkippedObject> skipped;
  std::vector<std::string> warnings;
  // Services resolve through EndpointSlices (Kubernetes mode) rather than their selector
  // over Pods (file mode). See LoadOptions::service_endpoints_from_slices.
  bool service_endpoints_from_slices = false;
  // See LoadOptions::unresolved_backends_answer_500.
  bool unresolved_backends_answer_500 = false;

  // Lookups; nullptr when absent.
  const ResolvedGateway* FindGateway(std::string_view namespace_name, std::string_view name) const;
  const Backend* FindPool(std::string_view namespace_name, std::string_view name) const;
  // EndpointPickerConfigs are keyed by name alone (the profile annotation has no
  // namespace).
  const EndpointPickerConfig* FindPickerConfig(std::string_view name) const;
};

}  // namespace infergate::config
