// The Kubernetes objects infergate reads, as typed values: Gateway API (Gateway,
// HTTPRoute), core (Service, Pod), the Gateway API Inference Extension (InferencePool,
// InferenceModel, EndpointPickerConfig) and the two Envoy Gateway policies the seed
// deployment uses (BackendTrafficPolicy, ClientTrafficPolicy).
//
// These hold what the manifests say after validation and defaulting (a missing namespace
// is "default", a missing path match is PathPrefix "/", ...). What they resolve to
// (listeners -> rules -> backends -> endpoints) is in config/snapshot.h.
//
// Plain values; immutable once loaded and safe to read from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"

namespace infergate::config {

using Labels = std::map<std::string, std::string, std::less<>>;

// A label selector's matchExpressions operators, with Kubernetes' meaning: In, the label
// is present with one of the values; NotIn, it is absent or has none of them; Exists, it
// is present; DoesNotExist, it is absent.
enum class SelectorOperator { kIn, kNotIn, kExists, kDoesNotExist };

// One requirement of a label selector's matchExpressions.
struct LabelRequirement {
  std::string key;
  SelectorOperator op = SelectorOperator::kIn;
  std::vector<std::string> values;  // In, NotIn: at least one; Exists, DoesNotExist: none
};

// Whether labels satisfy the requirement.
bool Satisfies(const Labels& labels, const LabelRequirement& requirement);
// Whether labels carry every match_labels pair and satisfy every requirement (the AND of
// all of them, as a Kubernetes LabelSelector). An empty selector selects nothing here:
// infergate's selectors always name something.
bool SelectorMatches(const Labels& match_labels, const std::vector<LabelRequirement>& expressions,
                     const Labels& labels);
// kubectl's notation: "tier in (a,b)", "tier notin (c)", "gpu", "!gpu".
std::string ToString(const LabelRequirement& requirement);

// Where an object was defined. document is 1-based within the file; line is 1-based, 0
// when unknown.
struct SourceLocation {
  std::string file;
  int document = 0;
  int line = 0;
};

// Where a field holding a reference sits inside its object, so that errors found when
// references are resolved can point at it. path is like "spec.rules[0].backendRefs[1]".
struct FieldOrigin {
  std::string path;
  int line = 0;
};

struct ObjectMeta {
  std::string name;
  std::string namespace_name = "default";
  Labels labels;
  Labels annotations;
  // metadata.creationTimestamp as seconds since the Unix epoch, when given.
  std::optional<std::int64_t> creation_timestamp;
  SourceLocation source;

  // "namespace/name".
  std::string Key() const { return namespace_name + "/" + name; }
};

// ---------------------------------------------------------------- Gateway API

// A listener's tls.certificateRefs[] entry: a Secret of type kubernetes.io/tls.
struct CertificateRef {
  std::string namespace_name;  // defaulted to the Gateway's namespace
  std::string name;
  FieldOrigin origin;
};

struct Listener {
  std::string name;
  // 0 asks the gateway to pick a free port (it reports the bound one).
  int port = 0;
  // HTTP or HTTPS (TLS mode Terminate). Other protocols are kept so that routes naming the
  // listener still resolve, but the listener is not served (see unsupported).
  std::string protocol = "HTTP";
  std::string hostname;  // empty: any host; for HTTPS also the SNI name it answers
  // spec.listeners[].allowedRoutes.namespaces.from: false = Same (the default), true = All.
  bool routes_from_all_namespaces = false;
  std::vector<CertificateRef> certificate_refs;  // HTTPS: tls.certificateRefs
  // Why the gateway does not serve this listener (an unsupported protocol or TLS mode);
  // empty when it does. Reported as a warning, never fatal for the configuration.
  std::string unsupported;
  FieldOrigin origin;
};

struct Gateway {
  ObjectMeta meta;
  std::string gateway_class;
  // Annotation infergate.io/bind-address (an IPv4 or IPv6 literal), default "0.0.0.0".
  std::string bind_address = "0.0.0.0";
  std::vector<Listener> listeners;
};

struct ParentRef {
  std::string namespace_name;  // defaulted to the route's namespace
  std::string name;
  std::string section_name;  // empty: every listener of the Gateway
  std::optional<int> port;
  FieldOrigin origin;
};

enum class PathMatchType { kPathPrefix, kExact, kRegularExpression };
enum class ValueMatchType { kExact, kRegularExpression };

struct PathMatch {
  PathMatchType type = PathMatchType::kPathPrefix;
  std::string value = "/";
};

// A header or query-parameter match. Header names are stored lower-cased (they match case
// insensitively); query-parameter names are case-sensitive and stored as written.
struct ValueMatch {
  ValueMatchType type = ValueMatchType::kExact;
  std::string name;
  std::string value;
};

struct RouteMatch {
  PathMatch path;
  std::vector<ValueMatch> headers;       // duplicates by name removed (first one kept)
  std::vector<ValueMatch> query_params;  // duplicates by name removed (first one kept)
  std::string method;                    // empty: any method
};

enum class BackendKind { kService, kInferencePool };

struct BackendRef {
  BackendKind kind = BackendKind::kService;
  std::string group;           // "" for Service; an inference.networking group for pools
  std::string namespace_name;  // defaulted to the route's namespace
  std::string name;
  std::optional<int> port;
  std::uint32_t weight = 1;  // 0..1,000,000; 0 = never chosen
  FieldOrigin origin;
};

struct HeaderValue {
  std::string name;
  std::string value;
};

// RequestHeaderModifier filter: set replaces, add appends, remove deletes. Names are kept
// as written; they compare case-insensitively.
struct HeaderModifier {
  std::vector<HeaderValue> set;
  std::vector<HeaderValue> add;
  std::vector<std::string> remove;
};

// URLRewrite / RequestRedirect path modifier.
enum class PathModifierType { kReplaceFullPath, kReplacePrefixMatch };

struct PathModifier {
  PathModifierType type = PathModifierType::kReplaceFullPath;
  std::string value;  // the full path, or what replaces the matched prefix
};

// URLRewrite filter: the request goes upstream with another Host and/or path.
struct URLRewrite {
  std::optional<std::string> hostname;
  std::optional<PathModifier> path;
};

// RequestRedirect filter: the gateway answers with a redirect instead of proxying. Unset
// fields keep the request's value (the port then follows the Gateway API's rules: the
// scheme's well-known port when the scheme changes, else the listener's port).
struct RequestRedirect {
  std::optional<std::string> scheme;  // "http" or "https"
  std::optional<std::string> hostname;
  std::optional<PathModifier> path;
  std::optional<int> port;
  int status_code = 302;  // 301 or 302
};

// RequestMirror filter: a copy of numerator/denominator of matching requests goes to
// backend (from spec.percent as n/100, spec.fraction, or 100% when neither is given).
struct RequestMirror {
  BackendRef backend;
  std::uint32_t numerator = 100;
  std::uint32_t denominator = 100;
};

// HTTPRoute rule timeouts. nullopt = not set; 0 = explicitly disabled ("0s").
struct RouteTimeouts {
  std::optional<TimeNs> request;
  std::optional<TimeNs> backend_request;
};

struct HTTPRouteRule {
  std::vector<RouteMatch> matches;  // never empty: defaults to one PathPrefix "/" match
  std::vector<BackendRef> backends;
  std::optional<HeaderModifier> request_header_modifier;
  std::optional<HeaderModifier> response_header_modifier;
  std::optional<URLRewrite> url_rewrite;
  std::optional<RequestRedirect> redirect;
  std::vector<RequestMirror> mirrors;
  RouteTimeouts timeouts;
  // What the rule asks for that infergate does not implement, one entry per feature
  // ("spec.rules[0].filters[1]: filter type ExtensionRef is not supported"). A rule with
  // any is not served: the requests it matches get a 500 (the Gateway API's answer for a
  // filter that cannot be applied) instead of reaching a backend without it. Reported as
  // warnings (and, in Kubernetes, on the route's status), never fatal.
  std::vector<std::string> unsupported;
};

struct HTTPRoute {
  ObjectMeta meta;
  std::vector<ParentRef> parents;
  std::vector<std::string> hostnames;  // lower-cased; may start with "*."
  std::vector<HTTPRouteRule> rules;    // never empty: defaults to one rule matching "/"
};

// A ReferenceGrant (gateway.networking.k8s.io/v1beta1). It lives in the namespace of the
// objects it opens up: objects of a `from` entry (group, kind, namespace) may refer to
// the objects of a `to` entry (group, kind, and name when given) in the grant's
// namespace. infergate reads it for Gateway certificateRefs to Secrets and HTTPRoute
// backendRefs to Services and InferencePools in another namespace.
struct ReferenceGrantFrom {
  std::string group;  // "" for the core group
  std::string kind;
  std::string namespace_name;
};

struct ReferenceGrantTo {
  std::string group;  // "" for the core group
  std::string kind;
  std::string name;  // "" = every object of the kind
};

struct ReferenceGrant {
  ObjectMeta meta;
  std::vector<ReferenceGrantFrom> from;  // at least one
  std::vector<ReferenceGrantTo> to;      // at least one
};

// ---------------------------------------------------------------- core

// A Secret. Only what TLS listeners need is kept: the type and, for kubernetes.io/tls,
// the PEM certificate chain and private key (data base64-decoded, or stringData).
struct Secret {
  ObjectMeta meta;
  std::string type;  // "kubernetes.io/tls", "Opaque", ...
  std::string tls_crt;
  std::string tls_key;
};

struct ServicePort {
  std::string name;
  int port = 0;
  // targetPort: a number, or the name of a container port of the selected Pods. Exactly
  // one is set; the default is the number equal to port.
  int target_port = 0;
  std::string target_port_name;
};

struct Service {
  ObjectMeta meta;
  // nullopt: no selector (the Service has no endpoints here).
  std::optional<Labels> selector;
  std::vector<ServicePort> ports;
};

struct ContainerPort {
  std::string name;
  int port = 0;
};

struct Pod {
  ObjectMeta meta;
  std::string ip;  // status.podIP, else status.podIPs[0].ip; empty: not routable
  // status.conditions[type=Ready].status == "True"; true when there is no Ready condition.
  bool ready = true;
  std::string phase;  // status.phase, may be empty; Succeeded/Failed pods are not routable
  std::vector<ContainerPort> container_ports;  // all containers' named and unnamed ports
};

// discovery.k8s.io/v1 EndpointSlice: how a Service resolves to endpoints when the
// configuration comes from the API server (the Service's selector is not consulted then).
struct EndpointSlicePort {
  std::string name;  // the Service port's name ("" for an unnamed port)
  int port = 0;      // the resolved target port
};

struct SliceEndpoint {
  std::vector<std::string> addresses;
  // conditions.ready (absent means ready, as the API says) and conditions.terminating.
  bool ready = true;
  bool terminating = false;
  std::string pod_namespace;  // targetRef, when it names a Pod
  std::string pod_name;
};

struct EndpointSlice {
  ObjectMeta meta;
  std::string service_name;  // label kubernetes.io/service-name
  std::vector<EndpointSlicePort> ports;
  std::vector<SliceEndpoint> endpoints;
};

// ---------------------------------------------------------------- inference extension

enum class FailureMode { kFailClose, kFailOpen };

// The pool's endpoint-picker extension (v1alpha1/2 extensionRef, v1 endpointPickerRef).
// infergate picks endpoints itself; the reference is kept for the ext_proc mode and for
// its failure mode.
struct EndpointPickerRef {
  bool present = false;
  std::string group;
  std::string kind = "Service";
  std::string name;
  int port = 9002;
  FailureMode failure_mode = FailureMode::kFailClose;
};

// Annotation inference.networking.x-k8s.io/attach-to: serve the pool on a Gateway
// listener without an HTTPRoute.
struct AttachTo {
  std::string namespace_name;  // defaulted to the pool's namespace
  std::string gateway;
  int port = 0;
  std::string section_name;  // optional
  FieldOrigin origin;
};

inline constexpr std::string_view kDefaultSchedulingProfile = "infergate";

struct InferencePool {
  ObjectMeta meta;
  std::string api_version;  // e.g. "inference.networking.x-k8s.io/v1alpha2"
  Labels selector;          // matchLabels; with match_expressions, never both empty
  std::vector<LabelRequirement> match_expressions;  // v1's selector.matchExpressions
  std::vector<int> target_ports;                    // 1..8 distinct ports (one for v1alpha1/2)
  EndpointPickerRef endpoint_picker;
  std::optional<AttachTo> attach_to;
  // Annotation infergate.io/scheduling-profile: a builtin profile name or
  // "<EndpointPickerConfig name>/<profile name>"; checked by the scheduler, not here.
  std::string scheduling_profile = std::string(kDefaultSchedulingProfile);
  // Annotation infergate.io/flow-control ("true"/"false"): whether the gateway queues the
  // pool's requests; unset, the scheduling profile's default.
  std::optional<bool> flow_control;
  // Annotation infergate.io/pipeline-parallel-size (1..16): the servers' vLLM V0
  // --pipeline-parallel-size, which the infergate profile mirrors (each stage a virtual
  // engine with its share of the KV cache); unset, the gateway's default.
  std::optional<int> pipeline_parallel_size;
};

enum class Criticality { kCritical, kStandard, kSheddable };

struct TargetModel {
  std::string name;
  std::uint32_t weight = 1;  // 1..1,000,000; 1 for every target when none was given
};

struct PoolRef {
  std::string group;
  std::string kind = "InferencePool";
  std::string name;
  FieldOrigin origin;
};

struct InferenceModel {
  ObjectMeta meta;
  std::string model_name;
  Criticality criticality = Criticality::kStandard;
  std::vector<TargetModel> target_models;  // at most 10; may be empty
  PoolRef pool_ref;
  std::optional<int> priority;  // InferenceObjective-style spec.priority, when given
};

// InferenceObjective (llm-d.ai/v1alpha2, or the older inference.networking.x-k8s.io/
// v1alpha2): a named priority for a pool's requests, chosen per request by the header
// x-llm-d-inference-objective (or x-gateway-inference-objective).
struct InferenceObjective {
  ObjectMeta meta;
  std::optional<int> priority;  // spec.priority; unset: 0. < 0 is sheddable
  PoolRef pool_ref;
};

// One target of an InferenceModelRewrite rule: the model the request is sent as.
struct ModelRewriteTarget {
  std::string model;         // modelRewrite
  std::uint32_t weight = 1;  // 1..1,000,000; 1 for every target when none was given
};

struct ModelRewriteRule {
  // matches[].model.value (type Exact); empty: the rule applies to every request of the
  // pool that no other rule matched (a fallback).
  std::vector<std::string> models;
  std::vector<ModelRewriteTarget> targets;  // at least one
  FieldOrigin origin;
};

// InferenceModelRewrite (llm-d.ai/v1alpha2): aliasing and canary splits of model names
// within one pool; the request's body is rewritten to the chosen target.
struct InferenceModelRewrite {
  ObjectMeta meta;
  PoolRef pool_ref;
  std::vector<ModelRewriteRule> rules;
};

// A generic endpoint-picker plugin configuration (GIE's EndpointPickerConfig). The
// scheduler turns it into pipelines; here it is only parsed and cross-checked.
struct PluginSpec {
  std::string type;
  std::string name;  // defaults to type
  // Scalars as strings; nested values flattened with dotted keys ("a.b", "list.0").
  std::map<std::string, std::string> parameters;
};

struct ProfilePlugin {
  std::string plugin_ref;
  double weight = 1.0;
};

struct SchedulingProfile {
  std::string name;
  std::vector<ProfilePlugin> plugins;
};

struct EndpointPickerConfig {
  ObjectMeta meta;  // name defaults to "default" (GIE's files carry no metadata)
  std::vector<PluginSpec> plugins;
  std::vector<SchedulingProfile> profiles;
};

// ---------------------------------------------------------------- Envoy Gateway policies

struct PolicyTargetRef {
  std::string group;
  std::string kind;
  std::string name;
  std::string section_name;  // a listener name, or empty for the whole Gateway
  FieldOrigin origin;
};

struct BackendTrafficPolicy {
  ObjectMeta meta;
  std::vector<PolicyTargetRef> targets;
  std::optional<TimeNs> request_timeout;  // spec.timeout.http.requestTimeout
};

struct ClientTrafficPolicy {
  ObjectMeta meta;
  std::vector<PolicyTargetRef> targets;
  std::optional<std::uint64_t> buffer_limit;  // spec.connection.bufferLimit, bytes
};

// ---------------------------------------------------------------- names

std::string_view ToString(PathMatchType t);
std::string_view ToString(ValueMatchType t);
std::string_view ToString(BackendKind k);
std::string_view ToString(FailureMode m);
std::string_view ToString(Criticality c);

}  // namespace infergate::config
