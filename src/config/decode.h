// Internal to ig_config: decoding Kubernetes objects from YAML into the typed values of
// config/resources.h, with every problem recorded in the load's Diagnostics.
//
// Decoders validate what one object can validate on its own (shapes, ranges, enums,
// formats); references between objects are checked later, by resolution (resolve.h).
#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "config/resources.h"
#include "config/snapshot.h"
#include "config/yaml_field.h"

namespace infergate::config {

inline constexpr std::string_view kGatewayApiGroup = "gateway.networking.k8s.io";
inline constexpr std::string_view kInferenceAlphaGroup = "inference.networking.x-k8s.io";
inline constexpr std::string_view kInferenceGroup = "inference.networking.k8s.io";
// llm-d's group for InferenceObjective and InferenceModelRewrite (they left GIE in 2026).
inline constexpr std::string_view kLlmdGroup = "llm-d.ai";

// Annotations infergate reads.
inline constexpr std::string_view kBindAddressAnnotation = "infergate.io/bind-address";
inline constexpr std::string_view kSchedulingProfileAnnotation = "infergate.io/scheduling-profile";
inline constexpr std::string_view kFlowControlAnnotation = "infergate.io/flow-control";
inline constexpr std::string_view kPipelineParallelAnnotation =
    "infergate.io/pipeline-parallel-size";
inline constexpr std::string_view kAttachToAnnotation = "inference.networking.x-k8s.io/attach-to";

// Where decoded objects go.
struct DecodeSink {
  LoadedObjects* objects;
  std::vector<SkippedObject>* skipped;
  Diagnostics* diag;
  // "Kind/namespace/name" of objects that decoded with errors: resolution does not report
  // follow-on problems about their contents.
  std::set<std::string>* incomplete;
};

// Decodes one document (or one item of a v1 List when root.path() is "items[i]").
// Requires root to be a map.
void DecodeObject(const YamlField& root, ObjectContext* ctx, DecodeSink* sink);

// Decoders per kind, each given the object's root map and version.
void DecodeGateway(const YamlField& root, ObjectContext* ctx, DecodeSink* sink);
void DecodeHTTPRoute(const YamlField& root, ObjectContext* ctx, DecodeSink* sink);
// One of an HTTPRoute's spec.rules (decode_http_route_rule.cc); `owner` is the route's
// metadata (the namespace its backendRefs default to).
HTTPRouteRule DecodeHTTPRouteRule(const YamlField& rule, const ObjectMeta& owner);
void DecodeBackendTrafficPolicy(const YamlField& root, ObjectContext* ctx, DecodeSink* sink);
void DecodeClientTrafficPolicy(const YamlField& root, ObjectContext* ctx, DecodeSink* sink);
void DecodeService(const YamlField& root, ObjectContext* ctx, DecodeSink* sink);
void DecodePod(const YamlField& root, ObjectContext* ctx, DecodeSink* sink);
void DecodeEndpointSlice(const YamlField& root, ObjectContext* ctx, DecodeSink* sink);
void DecodeInferencePool(const YamlField& root, std::string_view api_version, ObjectContext* ctx,
                         DecodeSink* sink);
void DecodeInferenceModel(const YamlField& root, ObjectContext* ctx, DecodeSink* sink);
void DecodeInferenceObjective(const YamlField& root, std::string_view api_version,
                              ObjectContext* ctx, DecodeSink* sink);
void DecodeInferenceModelRewrite(const YamlField& root, std::string_view api_version,
                                 ObjectContext* ctx, DecodeSink* sink);
void DecodeEndpointPickerConfig(const YamlField& root, ObjectContext* ctx, DecodeSink* sink);
void DecodeSecret(const YamlField& root, ObjectContext* ctx, DecodeSink* sink);
void DecodeReferenceGrant(const YamlField& root, ObjectContext* ctx, DecodeSink* sink);

// Standard base64 (RFC 4648 §4; padding optional, whitespace ignored). nullopt when text
// is not base64.
std::optional<std::string> DecodeBase64(std::string_view text);

// Reads metadata into meta and names the object in ctx ("Kind/name", or
// "Kind/namespace/name" outside "default"). With name_required false a missing name
// becomes default_name. Returns false when the name is missing or invalid.
bool DecodeMeta(const YamlField& root, std::string_view kind, ObjectContext* ctx, ObjectMeta* meta,
                bool name_required = true, std::string_view default_name = {});

// The label errors use for an object.
std::string ObjectLabel(std::string_view kind, std::string_view namespace_name,
                        std::string_view name);
// The key DecodeSink::incomplete uses.
std::string IncompleteKey(std::string_view kind, const ObjectMeta& meta);

// Field validators: each records an error on field and returns false when value is not
// acceptable.
bool ValidateObjectName(const YamlField& field, std::string_view value);  // RFC 1123
bool ValidateHostname(const YamlField& field, std::string_view value);    // may be "*.x"
bool ValidateHeaderName(const YamlField& field, std::string_view value);  // RFC 7230 token
bool ValidateIpAddress(const YamlField& field, std::string_view value);

// The field for annotation key under root's metadata.annotations.
YamlField Annotation(const YamlField& root, std::string_view key);

// Lower-cases ASCII.
std::string ToLower(std::string_view s);

}  // namespace infergate::config
