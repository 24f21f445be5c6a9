// Dispatch by apiVersion/kind, metadata, and the validators shared by the decoders.
#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "config/decode.h"
#include "config/units.h"

namespace infergate::config {
namespace {

struct KnownKind {
  std::string_view kind;
  std::vector<std::string_view> api_versions;
};

// Every kind the loader reads, with the apiVersions it understands (for the message when
// a known kind comes with another one).
const std::vector<KnownKind>& KnownKinds() {
  static const std::vector<KnownKind> kinds = {
      {"GatewayClass",
       {"gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1",
        "gateway.networking.k8s.io/v1alpha2"}},
      {"Gateway", {"gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1"}},
      {"HTTPRoute", {"gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1"}},
      {"Service", {"v1"}},
      {"Pod", {"v1"}},
      {"Secret", {"v1"}},
      {"List", {"v1"}},
      {"InferencePool",
       {"inference.networking.x-k8s.io/v1alpha1", "inference.networking.x-k8s.io/v1alpha2",
        "inference.networking.k8s.io/v1"}},
      {"InferenceModel",
       {"inference.networking.x-k8s.io/v1alpha1", "inference.networking.x-k8s.io/v1alpha2"}},
      {"InferenceObjective", {"llm-d.ai/v1alpha2", "inference.networking.x-k8s.io/v1alpha2"}},
      {"InferenceModelRewrite", {"llm-d.ai/v1alpha2", "inference.networking.x-k8s.io/v1alpha2"}},
      {"EndpointPickerConfig",
       {"inference.networking.x-k8s.io/v1alpha1",
        "config.apix.gateway-api-inference-extension.sigs.k8s.io/v1alpha1"}},
      {"BackendTrafficPolicy", {"gateway.envoyproxy.io/v1alpha1"}},
      {"ClientTrafficPolicy", {"gateway.envoyproxy.io/v1alpha1"}},
      {"EndpointSlice", {"discovery.k8s.io/v1"}},
      {"ReferenceGrant",
       {"gateway.networking.k8s.io/v1beta1", "gateway.networking.k8s.io/v1alpha2"}},
  };
  return kinds;
}

bool IsAlnumLower(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// RFC 1123 subdomain (dots allowed) or label (no dots).
bool IsRfc1123(std::string_view s, bool allow_dots, std::size_t max_len) {
  if (s.empty() || s.size() > max_len) return false;
  std::size_t label_start = 0;
  for (std::size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || (allow_dots && s[i] == '.')) {
      std::string_view label = s.substr(label_start, i - label_start);
      if (label.empty() || label.size() > 63 || !IsAlnumLower(label.front()) ||
          !IsAlnumLower(label.back())) {
        return false;
      }
      label_start = i + 1;
      continue;
    }
    if (!IsAlnumLower(s[i]) && s[i] != '-') return false;
  }
  return true;
}

void RecordSkipped(const YamlField& root, ObjectContext* ctx, DecodeSink* sink,
                   std::string api_version, std::string kind, std::string reason) {
  SkippedObject skipped;
  skipped.source = ctx->where();
  skipped.source.line = root.line();
  skipped.api_version = std::move(api_version);
  skipped.kind = std::move(kind);
  YamlField name = root["metadata"]["name"];
  if (name.IsScalar()) skipped.name = name.node().Scalar();
  skipped.reason = std::move(reason);
  sink->skipped->push_back(std::move(skipped));
}

}  // namespace

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string ObjectLabel(std::string_view kind, std::string_view namespace_name,
                        std::string_view name) {
  if (namespace_name.empty() || namespace_name == "default") {
    return fmt::format("{}/{}", kind, name);
  }
  return fmt::format("{}/{}/{}", kind, namespace_name, name);
}

std::string IncompleteKey(std::string_view kind, const ObjectMeta& meta) {
  return fmt::format("{}/{}/{}", kind, meta.namespace_name, meta.name);
}

bool ValidateObjectName(const YamlField& field, std::string_view value) {
  if (IsRfc1123(value, /*allow_dots=*/true, 253)) return true;
  field.Error(fmt::format(
      "must be a lower-case RFC 1123 name (a-z, 0-9, '-' and '.', starting and ending with "
      "a letter or digit), got {}",
      Quote(value)));
  return false;
}

bool ValidateHostname(const YamlField& field, std::string_view value) {
  std::string_view rest = value;
  if (rest.substr(0, 2) == "*.") rest.remove_prefix(2);
  bool ok = IsRfc1123(ToLower(rest), /*allow_dots=*/true, 253);
  if (ok) {
    // IP addresses are not hostnames here (Gateway API forbids them).
    in_addr a4;
    in6_addr a6;
    std::string s(rest);
    if (inet_pton(AF_INET, s.c_str(), &a4) == 1 || inet_pton(AF_INET6, s.c_str(), &a6) == 1) {
      ok = false;
    }
  }
  if (!ok) {
    field.Error(fmt::format(
        "must be a DNS hostname, optionally starting with \"*.\" (not an IP address), got {}",
        Quote(value)));
  }
  return ok;
}

bool ValidateHeaderName(const YamlField& field, std::string_view value) {
  static constexpr std::string_view kTokenPunct = "!#$%&'*+-.^_`|~";
  bool ok = !value.empty() && value.size() <= 256;
  for (char c : value) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          kTokenPunct.find(c) != std::string_view::npos)) {
      ok = false;
    }
  }
  if (!ok) field.Error(fmt::format("must be an HTTP header name, got {}", Quote(value)));
  return ok;
}

bool ValidateIpAddress(const YamlField& field, std::string_view value) {
  std::string s(value);
  in_addr a4;
  in6_addr a6;
  if (inet_pton(AF_INET, s.c_str(), &a4) == 1 || inet_pton(AF_INET6, s.c_str(), &a6) == 1) {
    return true;
  }
  field.Error(fmt::format("must be an IPv4 or IPv6 address, got {}", Quote(value)));
  return false;
}

bool DecodeMeta(const YamlField& root, std::string_view kind, ObjectContext* ctx, ObjectMeta* meta,
                bool name_required, std::string_view default_name) {
  meta->source = ctx->where();
  meta->source.line = root.line();
  YamlField metadata = root["metadata"];
  metadata.ExpectMap();
  if (auto ns = metadata["namespace"].String()) {
    if (ValidateObjectName(metadata["namespace"], *ns)) meta->namespace_name = *ns;
  }
  YamlField name = metadata["name"];
  std::string raw = name.IsScalar() ? name.node().Scalar() : std::string();
  if (!name_required && !name.present()) raw = std::string(default_name);
  // Name the object before validating the name, so that every error carries the label.
  ctx->set_object(ObjectLabel(kind, meta->namespace_name, raw.empty() ? "?" : raw));
  bool name_ok = false;
  if (!name_required && !name.present()) {
    meta->name = raw;
    name_ok = true;
  } else if (auto n = name.RequiredString()) {
    meta->name = *n;
    name_ok = ValidateObjectName(name, *n);
  }
  if (auto labels = metadata["labels"].StringMap()) meta->labels = std::move(*labels);
  if (auto annotations = metadata["annotations"].StringMap()) {
    meta->annotations = std::move(*annotations);
  }
  YamlField created = metadata["creationTimestamp"];
  if (auto ts = created.String()) {
    meta->creation_timestamp = ParseTimestamp(*ts);
    if (!meta->creation_timestamp) {
      created.Error(fmt::format("must be an RFC 3339 time such as \"2024-05-01T12:00:00Z\", got {}",
                                Quote(*ts)));
    }
  }
  return name_ok;
}

void DecodeObject(const YamlField& root, ObjectContext* ctx, DecodeSink* sink) {
  // Label the object first (as far as it can be named), so every error carries it.
  if (YamlField k = root["kind"]; k.IsScalar()) {
    YamlField name = root["metadata"]["name"];
    ctx->set_object(name.IsScalar() ? fmt::format("{}/{}", k.node().Scalar(), name.node().Scalar())
                                    : k.node().Scalar());
  }
  if (root.path().empty()) CheckDuplicateKeys(root);
  auto api_version = root["apiVersion"].RequiredString();
  auto kind = root["kind"].RequiredString();
  if (!api_version || !kind) return;

  const auto& known = KnownKinds();
  auto it =
      std::find_if(known.begin(), known.end(), [&](const KnownKind& k) { return k.kind == *kind; });
  if (it == known.end()) {
    RecordSkipped(root, ctx, sink, *api_version, *kind, "kind not used by infergate");
    return;
  }
  if (std::find(it->api_versions.begin(), it->api_versions.end(), *api_version) ==
      it->api_versions.end()) {
    std::string supported;
    for (auto v : it->api_versions) {
      if (!supported.empty()) supported += ", ";
      supported += v;
    }
    RecordSkipped(root, ctx, sink, *api_version, *kind,
                  fmt::format("apiVersion {} of {} is not supported (supported: {})", *api_version,
                              *kind, supported));
    return;
  }

  const std::string& k = *kind;
  if (k == "GatewayClass") {
    ObjectMeta meta;
    if (DecodeMeta(root, k, ctx, &meta)) sink->objects->gateway_classes.push_back(meta.name);
  } else if (k == "Gateway") {
    DecodeGateway(root, ctx, sink);
  } else if (k == "HTTPRoute") {
    DecodeHTTPRoute(root, ctx, sink);
  } else if (k == "Service") {
    DecodeService(root, ctx, sink);
  } else if (k == "Pod") {
    DecodePod(root, ctx, sink);
  } else if (k == "Secret") {
    DecodeSecret(root, ctx, sink);
  } else if (k == "List") {
    YamlField items = root["items"];
    items.ForEach([&](const YamlField& item) {
      if (!item.ExpectMap()) return;
      ObjectContext item_ctx(*ctx);
      DecodeObject(YamlField(&item_ctx, item.node(), item.path(), item.line(), item.line_base()),
                   &item_ctx, sink);
    });
  } else if (k == "InferencePool") {
    DecodeInferencePool(root, *api_version, ctx, sink);
  } else if (k == "InferenceModel") {
    DecodeInferenceModel(root, ctx, sink);
  } else if (k == "InferenceObjective") {
    DecodeInferenceObjective(root, *api_version, ctx, sink);
  } else if (k == "InferenceModelRewrite") {
    DecodeInferenceModelRewrite(root, *api_version, ctx, sink);
  } else if (k == "EndpointPickerConfig") {
    DecodeEndpointPickerConfig(root, ctx, sink);
  } else if (k == "BackendTrafficPolicy") {
    DecodeBackendTrafficPolicy(root, ctx, sink);
  } else if (k == "ClientTrafficPolicy") {
    DecodeClientTrafficPolicy(root, ctx, sink);
  } else if (k == "EndpointSlice") {
    DecodeEndpointSlice(root, ctx, sink);
  } else if (k == "ReferenceGrant") {
    DecodeReferenceGrant(root, ctx, sink);
  }
}

std::string_view ToString(PathMatchType t) {
  switch (t) {
    case PathMatchType::kPathPrefix:
      return "PathPrefix";
    case PathMatchType::kExact:
      return "Exact";
    case PathMatchType::kRegularExpression:
      return "RegularExpression";
  }
  return "?";
}

std::string_view ToString(ValueMatchType t) {
  return t == ValueMatchType::kExact ? "Exact" : "RegularExpression";
}

std::string_view ToString(BackendKind k) {
  return k == BackendKind::kService ? "Service" : "InferencePool";
}

std::string_view ToString(FailureMode m) {
  return m == FailureMode::kFailClose ? "FailClose" : "FailOpen";
}

std::string_view ToString(Criticality c) {
  switch (c) {
    case Criticality::kCritical:
      return "Critical";
    case Criticality::kStandard:
      return "Standard";
    case Criticality::kSheddable:
      return "Sheddable";
  }
  return "?";
}

}  // namespace infergate::config
