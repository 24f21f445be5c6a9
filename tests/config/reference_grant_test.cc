// ReferenceGrants: a Gateway's certificateRef to a Secret and an HTTPRoute's backendRef to
// a Service or InferencePool in another namespace resolve only when a grant in that
// namespace allows the (group, kind, namespace) they come from and the (group, kind,
// name) they name. Not granted: the listener is not served (RefNotPermitted); the
// backendRef is an error in file mode and, in Kubernetes mode, kept with its requests
// answered 500 (RefNotPermitted). Bad grants are errors naming the file and field.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config_test_util.h"

namespace infergate::config {
namespace {

using ::testing::HasSubstr;
using testing::LoadErrors;
using testing::LoadOk;
using ::testing::SizeIs;
using testing::Yaml;

// Gateway "gw" in default: an HTTPS listener whose certificate is Secret team/cert, and
// an HTTP listener.
const std::string kGatewayWithForeignCert = Yaml(R"(
apiVersion: v1
kind: Secret
metadata: {name: cert, namespace: team}
type: kubernetes.io/tls
stringData: {tls.crt: CERT, tls.key: KEY}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  listeners:
  - name: tls
    protocol: HTTPS
    port: 8443
    tls: {certificateRefs: [{name: cert, namespace: team}]}
  - {name: http, protocol: HTTP, port: 8080}
---
)");

// A grant in namespace ns from (group, kind, from_ns) to (to_group, to_kind, to_name).
std::string Grant(const std::string& ns, const std::string& kind, const std::string& to_kind,
                  const std::string& to_name = "", const std::string& to_group = "\"\"",
                  const std::string& from_ns = "default") {
  std::string to = "{group: " + to_group + ", kind: " + to_kind;
  if (!to_name.empty()) to += ", name: " + to_name;
  to += "}";
  static int serial = 0;  // distinct names
  return "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\n"
         "metadata: {name: grant-" +
         std::to_string(++serial) + ", namespace: " + ns +
         "}\nspec:\n  from: [{group: gateway.networking.k8s.io, kind: " + kind +
         ", namespace: " + from_ns + "}]\n  to: [" + to + "]\n---\n";
}

const ResolvedListener& ListenerNamed(const ConfigSnapshot& snap, const std::string& name) {
  for (const auto& l : snap.gateways.at(0).listeners) {
    if (l.name == name) return l;
  }
  throw std::runtime_error("no listener " + name);
}

TEST(ConfigReferenceGrant, GrantedCertificateInAnotherNamespaceIsServed) {
  auto snap = LoadOk(kGatewayWithForeignCert + Grant("team", "Gateway", "Secret"));
  ASSERT_TRUE(snap);
  const auto& l = ListenerNamed(*snap, "tls");
  EXPECT_EQ(l.not_served, "");
  EXPECT_EQ(l.refs_reason, "");
  ASSERT_THAT(l.certificates, SizeIs(1));
  EXPECT_EQ(l.certificates[0].secret, "team/cert");
  EXPECT_EQ(l.certificates[0].cert_pem, "CERT");
  EXPECT_TRUE(snap->warnings.empty());
  // A grant naming the Secret itself works as well as one for every Secret.
  auto named = LoadOk(kGatewayWithForeignCert + Grant("team", "Gateway", "Secret", "cert"));
  ASSERT_TRUE(named);
  EXPECT_EQ(ListenerNamed(*named, "tls").not_served, "");
}

TEST(ConfigReferenceGrant, CertificateWithoutAMatchingGrantIsNotPermitted) {
  const std::string refused =
      "Secret \"team/cert\" is in another namespace and no ReferenceGrant in namespace "
      "\"team\" allows Gateway references from namespace \"default\" to it";
  struct Case {
    std::string what, grant;
  } cases[] = {
      {"no grant", ""},
      {"a grant naming another Secret", Grant("team", "Gateway", "Secret", "other-cert")},
      {"a grant in the Gateway's namespace", Grant("default", "Gateway", "Secret")},
      {"a grant for HTTPRoutes", Grant("team", "HTTPRoute", "Secret")},
      {"a grant for Services", Grant("team", "Gateway", "Service")},
      {"a grant from another namespace",
       Grant("team", "Gateway", "Secret", "", "\"\"", "elsewhere")},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    auto snap = LoadOk(kGatewayWithForeignCert + c.grant);
    ASSERT_TRUE(snap);
    const auto& l = ListenerNamed(*snap, "tls");
    EXPECT_EQ(l.not_served, refused);
    EXPECT_EQ(l.refs_reason, "RefNotPermitted");
    EXPECT_TRUE(l.certificates.empty());
    EXPECT_EQ(ListenerNamed(*snap, "http").not_served, "");
    ASSERT_THAT(snap->warnings, SizeIs(1));
    EXPECT_THAT(snap->warnings[0],
                HasSubstr("Gateway/gw: spec.listeners[0].tls.certificateRefs[0]: " + refused +
                          "; the listener is not served"));
  }
}

TEST(ConfigReferenceGrant, MissingCertificateInTheSameNamespaceIsAnInvalidRef) {
  auto snap = LoadOk(Yaml(R"(
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  listeners:
  - {name: tls, protocol: HTTPS, port: 8443, tls: {certificateRefs: [{name: nope}]}}
)"));
  ASSERT_TRUE(snap);
  EXPECT_EQ(ListenerNamed(*snap, "tls").refs_reason, "InvalidCertificateRef");
}

// An HTTPRoute in default sending to Service team/svc and InferencePool models/pool.
const std::string kForeignBackends = Yaml(R"(
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  listeners:
  - {name: http, protocol: HTTP, port: 8080}
---
apiVersion: v1
kind: Service
metadata: {name: svc, namespace: team}
spec:
  selector: {app: srv}
  ports: [{port: 80, targetPort: 8000}]
---
apiVersion: v1
kind: Pod
metadata: {name: srv-0, namespace: team, labels: {app: srv}}
status: {podIP: 127.0.0.2}
---
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {name: pool, namespace: models}
spec:
  selector: {matchLabels: {app: vllm}}
  targetPorts: [{number: 8000}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /svc}}]
    backendRefs: [{name: svc, namespace: team, port: 80}]
  - backendRefs:
    - {group: inference.networking.k8s.io, kind: InferencePool, name: pool, namespace: models}
---
)");

const std::string kServiceGrant = Grant("team", "HTTPRoute", "Service", "svc");
const std::string kPoolGrant =
    Grant("models", "HTTPRoute", "InferencePool", "", "inference.networking.k8s.io");

TEST(ConfigReferenceGrant, GrantedBackendsInOtherNamespacesResolve) {
  auto snap = LoadOk(kForeignBackends + kServiceGrant + kPoolGrant);
  ASSERT_TRUE(snap);
  const auto& rules = ListenerNamed(*snap, "http").rules;
  ASSERT_THAT(rules, SizeIs(2));
  ASSERT_THAT(rules[0].backends, SizeIs(1));
  ASSERT_NE(rules[0].backends[0].backend, nullptr);
  EXPECT_EQ(rules[0].backends[0].backend->id, "team/svc");
  EXPECT_EQ(rules[0].backends[0].backend->endpoints.size(), 1u);
  ASSERT_NE(rules[1].backends[0].backend, nullptr);
  EXPECT_EQ(rules[1].backends[0].backend->id, "models/pool");
}

TEST(ConfigReferenceGrant, BackendsWithoutAMatchingGrantAreRefusedInFileMode) {
  // A grant for another Service name and a grant whose group is not the pool's: two
  // errors, each naming the field.
  auto errors = LoadErrors(kForeignBackends + Grant("team", "HTTPRoute", "Service", "other") +
                           Grant("models", "HTTPRoute", "InferencePool", "", "\"\""));
  ASSERT_THAT(errors, SizeIs(2));
  EXPECT_THAT(errors[0], HasSubstr("HTTPRoute/r: spec.rules[0].backendRefs[0].namespace: Service "
                                   "\"team/svc\" is in another namespace and no ReferenceGrant in "
                                   "namespace \"team\" allows HTTPRoute references from namespace "
                                   "\"default\" to it"));
  EXPECT_THAT(errors[1], HasSubstr("spec.rules[1].backendRefs[0].namespace: InferencePool "
                                   "\"models/pool\" is in another namespace and no "
                                   "ReferenceGrant in namespace \"models\""));
}

TEST(ConfigReferenceGrant, KubernetesModeKeepsUngrantedBackendsAnswering500) {
  LoadOptions options;
  options.log_notices = false;
  options.unresolved_backends_answer_500 = true;
  auto snap = LoadConfigFromString(kForeignBackends + kPoolGrant, "test.yaml", options);
  ASSERT_TRUE(snap.ok()) << snap.error().message;
  const auto& rules = ListenerNamed(**snap, "http").rules;
  ASSERT_THAT(rules, SizeIs(2));
  ASSERT_THAT(rules[0].backends, SizeIs(1));
  EXPECT_EQ(rules[0].backends[0].backend, nullptr);
  ASSERT_THAT(rules[0].unresolved_backends, SizeIs(1));
  EXPECT_THAT(rules[0].unresolved_backends[0],
              HasSubstr("no ReferenceGrant in namespace \"team\""));
  ASSERT_THAT(rules[0].unresolved_reasons, SizeIs(1));
  EXPECT_EQ(rules[0].unresolved_reasons[0], "RefNotPermitted");
  ASSERT_NE(rules[1].backends[0].backend, nullptr);  // the granted pool
}

TEST(ConfigReferenceGrant, BadGrantsAreErrorsNamingTheField) {
  auto errors = LoadErrors(Yaml(R"(
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: a, namespace: team}
spec:
  from:
  - {kind: Gateway, namespace: default}
  - {group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: Not_A_Namespace}
  - {group: gateway.networking.k8s.io, namespace: default}
  to: []
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: b, namespace: team}
spec:
  to:
  - {group: "", kind: Secret, name: Bad_Name}
  - {group: ""}
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: c, namespace: team}
)"));
  std::string all;
  for (const auto& e : errors) all += e + "\n";
  EXPECT_THAT(all, HasSubstr("test.yaml:6"));
  EXPECT_THAT(all, HasSubstr("ReferenceGrant/team/a: spec.from[0].group: is required (\"\" for "
                             "the core group)"));
  EXPECT_THAT(all, HasSubstr("ReferenceGrant/team/a: spec.from[1].namespace: must be a "
                             "lower-case RFC 1123 name"));
  EXPECT_THAT(all, HasSubstr("ReferenceGrant/team/a: spec.from[2].kind: is required"));
  EXPECT_THAT(all, HasSubstr("ReferenceGrant/team/a: spec.to: must have at least one entry"));
  EXPECT_THAT(all, HasSubstr("ReferenceGrant/team/b: spec.from: is required"));
  EXPECT_THAT(all, HasSubstr("ReferenceGrant/team/b: spec.to[0].name: must be a lower-case"));
  EXPECT_THAT(all, HasSubstr("ReferenceGrant/team/b: spec.to[1].kind: is required"));
  EXPECT_THAT(all, HasSubstr("ReferenceGrant/team/c: spec: is required"));
}

}  // namespace
}  // namespace infergate::config
