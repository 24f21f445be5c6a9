// HTTPS listeners (certificateRefs, Secrets, SNI sharing of a port), the HTTPRoute filters
// URLRewrite / RequestRedirect / ResponseHeaderModifier, and what is unsupported: reported,
// skipped, never fatal.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/decode.h"
#include "config_test_util.h"

namespace infergate::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::LoadErrors;
using testing::LoadOk;
using testing::OneError;
using ::testing::SizeIs;
using testing::Yaml;

// "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n" and a key, base64.
// The PEM texts are only carried here; the gateway's TLS code parses them.
const std::string kCertPem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const std::string kCertB64 =
    "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=";

std::string TlsSecret(const std::string& name, const std::string& ns = "default",
                      const std::string& type = "kubernetes.io/tls") {
  return Yaml(R"(
apiVersion: v1
kind: Secret
metadata: {name: )" +
              name + ", namespace: " + ns + R"(}
type: )" + type +
              R"(
data:
  tls.crt: )" +
              kCertB64 + R"(
stringData:
  tls.key: "KEY-)" +
              name + R"("
---
)");
}

TEST(ConfigDecodeBase64, StandardAlphabetWithOrWithoutPadding) {
  EXPECT_EQ(DecodeBase64("aGVsbG8="), "hello");
  EXPECT_EQ(DecodeBase64("aGVsbG8"), "hello");
  EXPECT_EQ(DecodeBase64("aGVs\nbG8h"), "hello!");
  EXPECT_EQ(DecodeBase64(""), "");
  EXPECT_EQ(DecodeBase64(kCertB64), kCertPem);
  EXPECT_FALSE(DecodeBase64("aGVsbG8=x"));  // data after padding
  EXPECT_FALSE(DecodeBase64("a"));          // a lone digit carries no byte
  EXPECT_FALSE(DecodeBase64("aGV$"));
  EXPECT_FALSE(DecodeBase64("aGVsbG8==="));
}

TEST(ConfigHttps, ListenersShareAPortByHostnameWithTheirCertificates) {
  auto snap = LoadOk(TlsSecret("api-cert") + TlsSecret("any-cert") + Yaml(R"(
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  listeners:
  - name: api
    protocol: HTTPS
    port: 8443
    hostname: API.example.com
    tls:
      certificateRefs: [{name: api-cert}]
  - name: rest
    protocol: HTTPS
    port: 8443
    tls:
      mode: Terminate
      certificateRefs: [{kind: Secret, group: "", name: any-cert}]
  - {name: plain, protocol: HTTP, port: 8080}
)"));
  ASSERT_TRUE(snap);
  const auto& listeners = snap->gateways[0].listeners;
  ASSERT_THAT(listeners, SizeIs(3));
  EXPECT_EQ(listeners[0].protocol, "HTTPS");
  EXPECT_EQ(listeners[0].hostname, "api.example.com");
  ASSERT_THAT(listeners[0].certificates, SizeIs(1));
  EXPECT_EQ(listeners[0].certificates[0].secret, "default/api-cert");
  EXPECT_EQ(listeners[0].certificates[0].cert_pem, kCertPem);       // data: base64-decoded
  EXPECT_EQ(listeners[0].certificates[0].key_pem, "KEY-api-cert");  // stringData: as is
  EXPECT_EQ(listeners[1].certificates[0].secret, "default/any-cert");
  EXPECT_TRUE(listeners[0].not_served.empty());
  EXPECT_EQ(listeners[2].protocol, "HTTP");
  EXPECT_TRUE(listeners[2].certificates.empty());
  EXPECT_TRUE(snap->warnings.empty());
}

TEST(ConfigHttps, UnusableCertificatesLeaveTheListenerOutNotTheConfiguration) {
  auto snap =
      LoadOk(TlsSecret("opaque", "default", "Opaque") + TlsSecret("elsewhere", "team") + Yaml(R"(
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  listeners:
  - {name: a, protocol: HTTPS, port: 1, tls: {certificateRefs: [{name: missing}]}}
  - {name: b, protocol: HTTPS, port: 2, tls: {certificateRefs: [{name: opaque}]}}
  - name: c
    protocol: HTTPS
    port: 3
    tls: {certificateRefs: [{name: elsewhere, namespace: team}]}
  - {name: d, protocol: HTTPS, port: 4, tls: {mode: Passthrough}}
  - {name: e, protocol: TCP, port: 5}
  - {name: f, protocol: HTTP, port: 6}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{name: gw, sectionName: e}]
)"));
  ASSERT_TRUE(snap);
  const auto& l = snap->gateways[0].listeners;
  EXPECT_EQ(l[0].not_served, "Secret \"default/missing\" not found");
  EXPECT_EQ(l[1].not_served,
            "Secret \"default/opaque\" has type \"Opaque\", not kubernetes.io/tls");
  EXPECT_THAT(l[2].not_served, HasSubstr("no ReferenceGrant in namespace \"team\""));
  EXPECT_EQ(l[3].not_served, "TLS mode Passthrough is not supported (Terminate is)");
  EXPECT_EQ(l[4].not_served, "protocol TCP is not supported (HTTP and HTTPS are)");
  EXPECT_EQ(l[5].not_served, "");
  EXPECT_TRUE(l[0].certificates.empty());
  // A route may still attach to a listener that is not served.
  EXPECT_THAT(l[4].rules, SizeIs(1));
  ASSERT_THAT(snap->warnings, SizeIs(5));
  EXPECT_THAT(snap->warnings[0],
              HasSubstr("Gateway/gw: spec.listeners[3].tls.mode: TLS mode Passthrough is not "
                        "supported (Terminate is); the listener is not served"));
}

TEST(ConfigHttps, ListenerErrors) {
  auto errors = LoadErrors(Yaml(R"(
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  listeners:
  - {name: a, protocol: HTTPS, port: 8443}
  - {name: b, protocol: HTTPS, port: 8444, tls: {certificateRefs: []}}
  - {name: c, protocol: HTTP, port: 8080, tls: {certificateRefs: [{name: x}]}}
  - {name: d, protocol: HTTPS, port: 9443, tls: {certificateRefs: [{kind: ConfigMap, name: x}]}}
  - {name: e, protocol: HTTP, port: 8443}
)"));
  EXPECT_THAT(
      errors,
      ElementsAre(
          "test.yaml:6: document 1: Gateway/gw: spec.listeners[0].tls: is required for an HTTPS "
          "listener",
          "test.yaml:7: document 1: Gateway/gw: spec.listeners[1].tls.certificateRefs: must name "
          "at "
          "least one Secret for TLS mode Terminate",
          "test.yaml:8: document 1: Gateway/gw: spec.listeners[2].tls: is only allowed on HTTPS "
          "listeners, not HTTP",
          "test.yaml:9: document 1: Gateway/gw: spec.listeners[3].tls.certificateRefs[0].kind: "
          "must "
          "be a core Secret, got core/ConfigMap",
          "test.yaml:10: document 1: Gateway/gw: spec.listeners[4].port: port 8443 is already used "
          "by listener \"a\" (listeners share a port only as HTTPS listeners with different "
          "hostnames)"));
}

TEST(ConfigHttps, SameHostnameTwiceOnOnePortIsAnError) {
  EXPECT_THAT(OneError(TlsSecret("s") + Yaml(R"(
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  listeners:
  - {name: a, protocol: HTTPS, port: 8443, hostname: x.io, tls: {certificateRefs: [{name: s}]}}
  - {name: b, protocol: HTTPS, port: 8443, hostname: x.io, tls: {certificateRefs: [{name: s}]}}
)")),
              HasSubstr("spec.listeners[1].port: port 8443 is already used by listener \"a\""));
}

TEST(ConfigSecret, BadTlsSecret) {
  auto errors = LoadErrors(Yaml(R"(
apiVersion: v1
kind: Secret
metadata: {name: s}
type: kubernetes.io/tls
data:
  tls.crt: "not base64!"
)"));
  EXPECT_THAT(errors,
              ElementsAre("test.yaml:6: document 1: Secret/s: data[\"tls.crt\"]: must be base64 "
                          "(the Secret's data values are base64-encoded)",
                          HasSubstr("data[\"tls.key\"]: is required for a Secret of type "
                                    "kubernetes.io/tls")));
}

const std::string kRouteHead = Yaml(R"(
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{name: gw, sectionName: http}]
  rules:
)");

TEST(ConfigFilters, RewriteRedirectAndResponseHeaders) {
  auto snap = LoadOk(testing::kGateway + testing::kServers + kRouteHead + Yaml(R"(
  - matches: [{path: {type: PathPrefix, value: /old}}]
    filters:
    - type: URLRewrite
      urlRewrite:
        hostname: Backend.Example.com
        path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        set: [{name: Cache-Control, value: no-store}]
        add: [{name: X-Served-By, value: infergate}]
        remove: [server]
    backendRefs: [{name: svc, port: 80}]
    timeouts: {request: 10s, backendRequest: 2s}
  - matches: [{path: {type: Exact, value: /moved}}]
    filters:
    - type: RequestRedirect
      requestRedirect:
        scheme: https
        hostname: example.com
        port: 8443
        statusCode: 301
        path: {type: ReplaceFullPath, replaceFullPath: /here}
)"));
  ASSERT_TRUE(snap);
  const auto& rules = snap->gateways[0].listeners[0].rules;
  ASSERT_THAT(rules, SizeIs(2));
  const RouteRule& rewrite = rules[0];
  ASSERT_TRUE(rewrite.url_rewrite);
  EXPECT_EQ(rewrite.url_rewrite->hostname, "backend.example.com");
  ASSERT_TRUE(rewrite.url_rewrite->path);
  EXPECT_EQ(rewrite.url_rewrite->path->type, PathModifierType::kReplacePrefixMatch);
  EXPECT_EQ(rewrite.url_rewrite->path->value, "/new");
  ASSERT_TRUE(rewrite.response_header_modifier);
  EXPECT_EQ(rewrite.response_header_modifier->set[0].name, "Cache-Control");
  EXPECT_EQ(rewrite.response_header_modifier->add[0].value, "infergate");
  EXPECT_THAT(rewrite.response_header_modifier->remove, ElementsAre("server"));
  EXPECT_EQ(rewrite.timeouts.backend_request, 2 * kNanosPerSecond);
  const RouteRule& redirect = rules[1];
  ASSERT_TRUE(redirect.redirect);
  EXPECT_EQ(redirect.redirect->scheme, "https");
  EXPECT_EQ(redirect.redirect->hostname, "example.com");
  EXPECT_EQ(redirect.redirect->port, 8443);
  EXPECT_EQ(redirect.redirect->status_code, 301);
  EXPECT_EQ(redirect.redirect->path->value, "/here");
  EXPECT_TRUE(redirect.backends.empty());
  // A redirect needs no backend: no "no endpoints" warning for it.
  EXPECT_TRUE(snap->warnings.empty());
}

TEST(ConfigFilters, UnsupportedFiltersSkipTheRuleNotTheConfiguration) {
  auto snap = LoadOk(testing::kGateway + testing::kServers + kRouteHead + Yaml(R"(
  - matches: [{path: {value: /ext}}]
    filters:
    - type: ExtensionRef
      extensionRef: {group: example.com, kind: Auth, name: a}
    backendRefs: [{name: svc, port: 80}]
  - matches: [{path: {value: /per-backend}}]
    backendRefs:
    - name: svc
      port: 80
      filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: a, value: b}]}}]
  - backendRefs: [{name: svc, port: 80}]
)"));
  ASSERT_TRUE(snap);
  const auto& rules = snap->gateways[0].listeners[0].rules;
  ASSERT_THAT(rules, SizeIs(3));
  EXPECT_THAT(rules[0].unsupported,
              ElementsAre(HasSubstr("spec.rules[0].filters[0].type: filter type \"ExtensionRef\" "
                                    "is not supported")));
  EXPECT_THAT(rules[1].unsupported,
              ElementsAre("spec.rules[1].backendRefs[0].filters: per-backend filters are not "
                          "supported (put them on the rule)"));
  EXPECT_TRUE(rules[2].unsupported.empty());
  ASSERT_THAT(snap->warnings, SizeIs(2));
  EXPECT_THAT(snap->warnings[0], HasSubstr("the rule is not served (its requests get 500)"));
}

TEST(ConfigFilters, InvalidFilterValuesAreErrors) {
  auto errors = LoadErrors(testing::kGateway + kRouteHead + Yaml(R"(
  - matches: [{path: {type: Exact, value: /a}}]
    filters:
    - type: URLRewrite
      urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /b}}
  - filters:
    - {type: RequestRedirect, requestRedirect: {statusCode: 305, scheme: ftp}}
    - {type: URLRewrite, urlRewrite: {hostname: "*.x.io", path: {type: ReplaceFullPath}}}
    - {type: ResponseHeaderModifier}
)"));
  EXPECT_THAT(errors,
              ElementsAre(HasSubstr("spec.rules[0].filters: URLRewrite with ReplacePrefixMatch "
                                    "requires every match of the rule to be a PathPrefix"),
                          HasSubstr("requestRedirect.scheme: must be one of http, https"),
                          HasSubstr("requestRedirect.statusCode: must be 301, 302, 303, 307 or "
                                    "308, got 305"),
                          HasSubstr("urlRewrite.hostname: must be a hostname without wildcard"),
                          HasSubstr("urlRewrite.path.replaceFullPath: is required for type "
                                    "ReplaceFullPath"),
                          HasSubstr("filters[2].responseHeaderModifier: is required for a "
                                    "ResponseHeaderModifier filter"),
                          HasSubstr("spec.rules[1].filters: URLRewrite and RequestRedirect cannot "
                                    "be used in the same rule")));
}

}  // namespace
}  // namespace infergate::config
