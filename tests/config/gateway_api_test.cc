// Gateway, HTTPRoute and the Envoy Gateway policies: decoding, defaults, validation and
// the references between them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config_test_util.h"

namespace infergate::config {
namespace {

using ::testing::ElementsAre;
using testing::EndpointIds;
using ::testing::HasSubstr;
using testing::kGateway;
using testing::kServers;
using testing::LoadErrors;
using testing::LoadOk;
using testing::OneError;
using ::testing::SizeIs;
using testing::Yaml;

// ------------------------------------------------------------------- Gateway

TEST(ConfigGateway, ListenersBindAddressAndDefaults) {
  auto snap = LoadOk(kGateway + Yaml(R"(
apiVersion: gateway.networking.k8s.io/v1beta1
kind: Gateway
metadata: {name: other, namespace: team}
spec:
  gatewayClassName: infergate
  listeners:
  - name: any
    protocol: HTTP
    port: 0
  - name: named
    protocol: HTTP
    port: 0
    hostname: API.Example.com
)"));
  ASSERT_TRUE(snap);
  ASSERT_THAT(snap->gateways, SizeIs(2));
  const ResolvedGateway& gw = snap->gateways[0];
  EXPECT_EQ(gw.id, "default/gw");
  EXPECT_EQ(gw.bind_address, "127.0.0.1");
  EXPECT_EQ(gw.request_timeout, kDefaultRequestTimeout);
  EXPECT_EQ(gw.body_limit, kDefaultBodyLimit);
  ASSERT_THAT(gw.listeners, SizeIs(2));
  EXPECT_EQ(gw.listeners[0].name, "http");
  EXPECT_EQ(gw.listeners[0].port, 8080);
  EXPECT_EQ(gw.listeners[0].bind_address, "127.0.0.1");
  EXPECT_EQ(gw.listeners[0].gateway, "default/gw");
  EXPECT_EQ(gw.listeners[1].port, 8081);
  EXPECT_TRUE(gw.listeners[0].rules.empty());

  const ResolvedGateway& other = snap->gateways[1];
  EXPECT_EQ(other.id, "team/other");
  EXPECT_EQ(other.bind_address, "0.0.0.0");
  // Port 0 twice is fine: each listener gets its own free port.
  EXPECT_EQ(other.listeners[0].port, 0);
  EXPECT_EQ(other.listeners[1].port, 0);
  EXPECT_EQ(other.listeners[1].hostname, "api.example.com");
  EXPECT_EQ(snap->objects.gateways[1].gateway_class, "infergate");
}

TEST(ConfigGateway, HttpsListenersNeedTls) {
  EXPECT_EQ(OneError(Yaml(R"(
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  listeners:
  - name: http
    protocol: HTTP
    port: 8080
  - name: https
    protocol: HTTPS
    port: 8443
)")),
            "test.yaml:9: document 1: Gateway/gw: spec.listeners[1].tls: is required for an "
            "HTTPS listener");
}

TEST(ConfigGateway, ListenerProblems) {
  auto errors = LoadErrors(Yaml(R"(
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: gw
  annotations: {infergate.io/bind-address: localhost}
spec:
  listeners:
  - {name: a, protocol: HTTP, port: 8080}
  - {name: a, protocol: HTTP, port: 8080}
  - {name: c, protocol: HTTP, port: 70000}
  - {name: d, protocol: HTTP, port: 1, allowedRoutes: {namespaces: {from: Selector}}}
  - {protocol: HTTP, port: 2, hostname: "10.0.0.1"}
)"));
  EXPECT_THAT(
      errors,
      ElementsAre(
          "test.yaml:5: document 1: Gateway/gw: "
          "metadata.annotations[\"infergate.io/bind-address\"]: "
          "must be an IPv4 or IPv6 address, got \"localhost\"",
          "test.yaml:9: document 1: Gateway/gw: spec.listeners[1].name: listener name \"a\" is "
          "already used by spec.listeners[0]",
          "test.yaml:9: document 1: Gateway/gw: spec.listeners[1].port: port 8080 is already used "
          "by listener \"a\" (listeners share a port only as HTTPS listeners with different "
          "hostnames)",
          "test.yaml:10: document 1: Gateway/gw: spec.listeners[2].port: must be an integer "
          "between "
          "0 and 65535, got \"70000\"",
          "test.yaml:11: document 1: Gateway/gw: spec.listeners[3].allowedRoutes.namespaces.from: "
          "Selector is not supported; use Same or All",
          "test.yaml:12: document 1: Gateway/gw: spec.listeners[4].name: is required",
          "test.yaml:12: document 1: Gateway/gw: spec.listeners[4].hostname: must be a DNS "
          "hostname, "
          "optionally starting with \"*.\" (not an IP address), got \"10.0.0.1\""));
}

TEST(ConfigGateway, ListenersAreRequired) {
  EXPECT_EQ(OneError("apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n"
                     "metadata: {name: gw}\nspec: {listeners: []}\n"),
            "test.yaml:4: document 1: Gateway/gw: spec.listeners: must list at least one listener");
  EXPECT_EQ(OneError("apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n"
                     "metadata: {name: gw}\n"),
            "test.yaml:1: document 1: Gateway/gw: spec: is required");
}

TEST(ConfigGateway, TwoGatewaysMayNotBindTheSamePort) {
  std::string second = Yaml(R"(
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: second}
spec:
  listeners:
  - {name: web, protocol: HTTP, port: 8080}
)");
  // kGateway binds 127.0.0.1:8080; the second binds 0.0.0.0:8080, which overlaps.
  EXPECT_EQ(OneError(kGateway + second),
            "test.yaml:17: document 2: Gateway/second: spec.listeners[0].port: port 8080 on "
            "0.0.0.0 is also bound by Gateway \"default/gw\" listener \"http\" on 127.0.0.1");
  // Distinct loopback addresses do not overlap.
  std::string distinct = second;
  distinct.replace(distinct.find("metadata: {name: second}"), 24,
                   "metadata: {name: second, annotations: {infergate.io/bind-address: 127.0.0.9}}");
  EXPECT_TRUE(LoadOk(kGateway + distinct));
}

// ------------------------------------------------------------------- HTTPRoute

TEST(ConfigHTTPRoute, DecodesEveryField) {
  auto snap = LoadOk(kGateway + kServers + Yaml(R"(
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: full
  creationTimestamp: "2024-05-01T12:00:00Z"
spec:
  parentRefs:
  - name: gw
    sectionName: http
    port: 8080
  hostnames: ["Api.Example.com", "*.example.org"]
  rules:
  - matches:
    - path: {type: Exact, value: /v1/completions}
      method: POST
      headers:
      - {name: X-Tenant, value: a}
      - {name: x-tenant, value: ignored}
      - {type: RegularExpression, name: x-version, value: "v[0-9]+"}
      queryParams:
      - {name: debug, value: "1"}
    - path: {type: RegularExpression, value: "/v1/.*"}
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: X-Set, value: s}]
        add: [{name: X-Add, value: a}]
        remove: [X-Remove]
    - type: RequestMirror
      requestMirror:
        backendRef: {name: svc, port: 80}
        percent: 10
    - type: RequestMirror
      requestMirror:
        backendRef: {name: svc, port: 80}
        fraction: {numerator: 1, denominator: 3}
    backendRefs:
    - {name: svc, port: 80, weight: 3}
    - {kind: Service, group: "", name: svc, port: 80, weight: 0}
    timeouts: {request: 10s, backendRequest: 2s}
  - backendRefs:
    - {name: svc, port: 80}
)"));
  ASSERT_TRUE(snap);
  const HTTPRoute& route = snap->objects.routes.at(0);
  ASSERT_THAT(route.parents, SizeIs(1));
  EXPECT_EQ(route.parents[0].namespace_name, "default");
  EXPECT_EQ(route.parents[0].section_name, "http");
  EXPECT_EQ(route.parents[0].port, 8080);
  EXPECT_THAT(route.hostnames, ElementsAre("api.example.com", "*.example.org"));
  ASSERT_THAT(route.rules, SizeIs(2));
  const HTTPRouteRule& r0 = route.rules[0];
  ASSERT_THAT(r0.matches, SizeIs(2));
  EXPECT_EQ(r0.matches[0].path.type, PathMatchType::kExact);
  EXPECT_EQ(r0.matches[0].path.value, "/v1/completions");
  EXPECT_EQ(r0.matches[0].method, "POST");
  // Header names are lower-cased; the repeated x-tenant match is dropped.
  ASSERT_THAT(r0.matches[0].headers, SizeIs(2));
  EXPECT_EQ(r0.matches[0].headers[0].name, "x-tenant");
  EXPECT_EQ(r0.matches[0].headers[0].value, "a");
  EXPECT_EQ(r0.matches[0].headers[1].type, ValueMatchType::kRegularExpression);
  ASSERT_THAT(r0.matches[0].query_params, SizeIs(1));
  EXPECT_EQ(r0.matches[0].query_params[0].name, "debug");
  EXPECT_EQ(r0.matches[1].path.type, PathMatchType::kRegularExpression);
  ASSERT_TRUE(r0.request_header_modifier);
  EXPECT_EQ(r0.request_header_modifier->set[0].name, "X-Set");
  EXPECT_EQ(r0.request_header_modifier->add[0].value, "a");
  EXPECT_THAT(r0.request_header_modifier->remove, ElementsAre("X-Remove"));
  ASSERT_THAT(r0.mirrors, SizeIs(2));
  EXPECT_EQ(r0.mirrors[0].numerator, 10u);
  EXPECT_EQ(r0.mirrors[0].denominator, 100u);
  EXPECT_EQ(r0.mirrors[1].numerator, 1u);
  EXPECT_EQ(r0.mirrors[1].denominator, 3u);
  EXPECT_EQ(r0.timeouts.request, 10 * kNanosPerSecond);
  EXPECT_EQ(r0.timeouts.backend_request, 2 * kNanosPerSecond);
  ASSERT_THAT(r0.backends, SizeIs(2));
  EXPECT_EQ(r0.backends[0].weight, 3u);
  EXPECT_EQ(r0.backends[1].weight, 0u);
  // A rule without matches matches every path.
  ASSERT_THAT(route.rules[1].matches, SizeIs(1));
  EXPECT_EQ(route.rules[1].matches[0].path.type, PathMatchType::kPathPrefix);
  EXPECT_EQ(route.rules[1].matches[0].path.value, "/");
  EXPECT_EQ(route.rules[1].backends[0].weight, 1u);
  EXPECT_EQ(route.rules[1].backends[0].kind, BackendKind::kService);

  // Resolution: both rules on listener http only, backends shared, mirrors resolved.
  const ResolvedListener& http = snap->gateways[0].listeners[0];
  const ResolvedListener& llm = snap->gateways[0].listeners[1];
  EXPECT_TRUE(llm.rules.empty());
  ASSERT_THAT(http.rules, SizeIs(2));
  const RouteRule& rule = http.rules[0];
  EXPECT_EQ(rule.Id(), "default/full/rules[0]");
  EXPECT_EQ(rule.route_created, 1714564800);
  EXPECT_THAT(rule.hostnames, ElementsAre("api.example.com", "*.example.org"));
  ASSERT_THAT(rule.backends, SizeIs(2));
  EXPECT_EQ(rule.backends[0].backend, rule.backends[1].backend);  // one Backend per Service port
  EXPECT_EQ(rule.backends[0].backend, http.rules[1].backends[0].backend);
  EXPECT_EQ(rule.backends[0].backend->id, "default/svc");
  EXPECT_EQ(rule.backends[0].backend->service_port, 80);
  EXPECT_THAT(EndpointIds(*rule.backends[0].backend),
              ElementsAre("127.0.0.2:8000", "127.0.0.3:8000"));
  ASSERT_THAT(rule.mirrors, SizeIs(2));
  EXPECT_EQ(rule.mirrors[0].backend->id, "default/svc");
  ASSERT_THAT(snap->warnings, SizeIs(1));
  EXPECT_THAT(snap->warnings[0],
              HasSubstr("test.yaml:54: document 5: HTTPRoute/full: spec.rules[0].matches[0]."
                        "headers[1]: header \"x-tenant\" is matched earlier in this list"));
}

TEST(ConfigHTTPRoute, DefaultsToOneRuleMatchingEverything) {
  auto snap = LoadOk(kGateway + Yaml(R"(
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: empty}
spec:
  parentRefs: [{name: gw}]
)"));
  ASSERT_TRUE(snap);
  // No sectionName or port: attached to every listener of the Gateway.
  for (const auto& l : snap->gateways[0].listeners) {
    ASSERT_THAT(l.rules, SizeIs(1));
    EXPECT_EQ(l.rules[0].matches[0].path.value, "/");
    EXPECT_TRUE(l.rules[0].backends.empty());
  }
}

TEST(ConfigHTTPRoute, WeightErrorNamesFileDocumentObjectAndField) {
  EXPECT_EQ(OneError(kGateway + kServers + Yaml(R"(
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: plain}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs:
    - name: svc
      port: 80
    - name: svc
      port: 80
      weight: abc
)")),
            "test.yaml:48: document 5: HTTPRoute/plain: spec.rules[0].backendRefs[1].weight: must "
            "be an integer between 0 and 1000000, got \"abc\"");
}

TEST(ConfigHTTPRoute, ValidatesMatchesFiltersAndTimeouts) {
  auto errors = LoadErrors(Yaml(R"(
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: bad}
spec:
  parentRefs: [{name: gw, kind: Service, group: ""}]
  hostnames: ["-bad-"]
  rules:
  - matches:
    - path: {value: v1}
    - path: {type: Exact, value: "/a//b"}
    - path: {type: Regex, value: /}
    - path: {type: RegularExpression, value: "(unclosed"}
      method: FETCH
      headers: [{name: "bad header", value: x}]
      queryParams: [{name: q}]
    filters:
    - type: URLRewrite
    - type: RequestHeaderModifier
      requestHeaderModifier: {set: [{name: X-A, value: "1"}], remove: [x-a]}
    - type: RequestHeaderModifier
      requestHeaderModifier: {}
    - type: RequestMirror
      requestMirror: {backendRef: {name: svc, port: 80}, percent: 5, fraction: {numerator: 1}}
    - type: RequestMirror
      requestMirror: {backendRef: {name: svc, port: 80}, fraction: {numerator: 5, denominator: 4}}
    backendRefs:
    - {name: svc}
    - {kind: Deployment, name: x}
    - {kind: InferencePool, name: p}
    - {name: svc, port: 80, weight: 2000000}
    timeouts: {request: 1.5s, backendRequest: 10s}
  - timeouts: {request: 5s, backendRequest: 10s}
)"));
  EXPECT_THAT(
      errors,
      ElementsAre(
          "test.yaml:5: document 1: HTTPRoute/bad: spec.parentRefs[0].kind: only Gateway parents "
          "(gateway.networking.k8s.io) are supported, got /Service",
          "test.yaml:6: document 1: HTTPRoute/bad: spec.hostnames[0]: must be a DNS hostname, "
          "optionally starting with \"*.\" (not an IP address), got \"-bad-\"",
          "test.yaml:9: document 1: HTTPRoute/bad: spec.rules[0].matches[0].path.value: must start "
          "with \"/\", got \"v1\"",
          "test.yaml:10: document 1: HTTPRoute/bad: spec.rules[0].matches[1].path.value: must not "
          "contain \"//\", got \"/a//b\"",
          "test.yaml:11: document 1: HTTPRoute/bad: spec.rules[0].matches[2].path.type: must be "
          "one "
          "of PathPrefix, Exact, RegularExpression; got \"Regex\"",
          // The error text of std::regex is the library's; only the start is checked below.
          errors.size() > 5 ? errors[5] : "",
          "test.yaml:14: document 1: HTTPRoute/bad: spec.rules[0].matches[3].headers[0].name: must "
          "be "
          "an HTTP header name, got \"bad header\"",
          "test.yaml:15: document 1: HTTPRoute/bad: spec.rules[0].matches[3].queryParams[0].value: "
          "is required",
          "test.yaml:13: document 1: HTTPRoute/bad: spec.rules[0].matches[3].method: must be one "
          "of "
          "GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH; got \"FETCH\"",
          "test.yaml:17: document 1: HTTPRoute/bad: spec.rules[0].filters[0].urlRewrite: is "
          "required for a URLRewrite filter",
          "test.yaml:19: document 1: HTTPRoute/bad: spec.rules[0].filters[1].requestHeaderModifier."
          "remove[0]: header \"x-a\" is already modified by spec.rules[0].filters[1]."
          "requestHeaderModifier.set[0].name",
          "test.yaml:20: document 1: HTTPRoute/bad: spec.rules[0].filters[2].type: only one "
          "RequestHeaderModifier filter is allowed per rule",
          "test.yaml:23: document 1: HTTPRoute/bad: "
          "spec.rules[0].filters[3].requestMirror.fraction: "
          "percent and fraction are mutually exclusive",
          "test.yaml:25: document 1: HTTPRoute/bad: "
          "spec.rules[0].filters[4].requestMirror.fraction."
          "numerator: must not exceed the denominator (4), got 5",
          "test.yaml:27: document 1: HTTPRoute/bad: spec.rules[0].backendRefs[0].port: is required "
          "for a Service backend",
          "test.yaml:28: document 1: HTTPRoute/bad: spec.rules[0].backendRefs[1].kind: must be "
          "Service or InferencePool, got \"Deployment\"",
          "test.yaml:29: document 1: HTTPRoute/bad: spec.rules[0].backendRefs[2].group: must be "
          "inference.networking.x-k8s.io or inference.networking.k8s.io for kind InferencePool, "
          "got \"\"",
          "test.yaml:30: document 1: HTTPRoute/bad: spec.rules[0].backendRefs[3].weight: must be "
          "an "
          "integer between 0 and 1000000, got \"2000000\"",
          "test.yaml:31: document 1: HTTPRoute/bad: spec.rules[0].timeouts.request: must be a "
          "duration such as \"10s\", \"500ms\" or \"1h30m\", got \"1.5s\"",
          "test.yaml:32: document 1: HTTPRoute/bad: spec.rules[1].timeouts.backendRequest: must "
          "not "
          "exceed timeouts.request (5s)",
          // Not a follow-on error: there is no Service "svc" in this text.
          "test.yaml:30: document 1: HTTPRoute/bad: spec.rules[0].backendRefs[3].name: Service "
          "\"svc\" not found in namespace \"default\""));
  ASSERT_GT(errors.size(), 5u);
  EXPECT_THAT(errors[5],
              HasSubstr("test.yaml:12: document 1: HTTPRoute/bad: spec.rules[0]."
                        "matches[3].path.value: invalid regular expression \"(unclosed\""));
}

TEST(ConfigHTTPRoute, ReferencesMustResolve) {
  auto errors = LoadErrors(kGateway + kServers + Yaml(R"(
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: refs}
spec:
  parentRefs:
  - {name: nope}
  - {name: gw, sectionName: missing}
  - {name: gw, port: 9999}
  - {name: gw, namespace: elsewhere}
  rules:
  - backendRefs:
    - {name: missing-svc, port: 80}
    - {name: svc, port: 81}
    - {group: inference.networking.x-k8s.io, kind: InferencePool, name: missing-pool}
    filters:
    - type: RequestMirror
      requestMirror: {backendRef: {name: ghost, port: 1}}
)"));
  EXPECT_THAT(
      errors,
      ElementsAre(
          "test.yaml:48: document 5: HTTPRoute/refs: spec.rules[0].backendRefs[0].name: Service "
          "\"missing-svc\" not found in namespace \"default\"",
          "test.yaml:49: document 5: HTTPRoute/refs: spec.rules[0].backendRefs[1].port: Service "
          "\"default/svc\" has no port 81 (ports: 80)",
          "test.yaml:50: document 5: HTTPRoute/refs: spec.rules[0].backendRefs[2].name: "
          "InferencePool \"missing-pool\" not found in namespace \"default\"",
          "test.yaml:53: document 5: HTTPRoute/refs: spec.rules[0].filters[0].requestMirror."
          "backendRef.name: Service \"ghost\" not found in namespace \"default\"",
          "test.yaml:42: document 5: HTTPRoute/refs: spec.parentRefs[0].name: Gateway \"nope\" not "
          "found in namespace \"default\"",
          "test.yaml:43: document 5: HTTPRoute/refs: spec.parentRefs[1].sectionName: Gateway "
          "\"default/gw\" has no listener \"missing\" (listeners: http, llm)",
          "test.yaml:44: document 5: HTTPRoute/refs: spec.parentRefs[2].port: Gateway "
          "\"default/gw\" "
          "has no listener on port 9999",
          "test.yaml:45: document 5: HTTPRoute/refs: spec.parentRefs[3].name: Gateway \"gw\" not "
          "found in namespace \"elsewhere\""));
}

TEST(ConfigHTTPRoute, CrossNamespaceAttachmentFollowsAllowedRoutes) {
  std::string route = Yaml(R"(
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: team}
spec:
  parentRefs: [{name: gw, namespace: default, sectionName: http}]
)");
  EXPECT_EQ(OneError(kGateway + route),
            "test.yaml:16: document 2: HTTPRoute/team/r: spec.parentRefs[0]: the route cannot "
            "attach to Gateway \"default/gw\": listener \"http\" accepts routes from namespace "
            "\"default\" only (allowedRoutes.namespaces.from: Same)");
  std::string open = kGateway;
  open.replace(
      open.find("{name: http, protocol: HTTP, port: 8080}"), 40,
      "{name: http, protocol: HTTP, port: 8080, allowedRoutes: {namespaces: {from: All}}}");
  auto snap = LoadOk(open + route);
  ASSERT_TRUE(snap);
  ASSERT_THAT(snap->gateways[0].listeners[0].rules, SizeIs(1));
  EXPECT_EQ(snap->gateways[0].listeners[0].rules[0].route, "team/r");
}

TEST(ConfigHTTPRoute, HostnamesIntersectWithTheListener) {
  std::string gateway = Yaml(R"(
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  listeners:
  - {name: exact, protocol: HTTP, port: 1, hostname: api.example.com}
  - {name: wild, protocol: HTTP, port: 2, hostname: "*.example.com"}
  - {name: any, protocol: HTTP, port: 3}
---
)");
  auto route = [](const std::string& name, const std::string& hostnames) {
    return "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: " + name +
           "}\nspec:\n  parentRefs: [{name: gw}]\n  hostnames: " + hostnames + "\n---\n";
  };
  auto snap = LoadOk(gateway + route("none", "[]") + route("wild", "[\"*.example.com\"]") +
                     route("deep", "[\"a.b.example.com\", \"other.org\"]") +
                     route("widest", "[\"*.com\"]"));
  ASSERT_TRUE(snap);
  auto hosts = [&](int listener, const std::string& name) -> std::vector<std::string> {
    for (const auto& r : snap->gateways[0].listeners[listener].rules) {
      if (r.route_name == name) return r.hostnames;
    }
    return {"(not attached)"};
  };
  // exact listener: routes narrow to its hostname.
  EXPECT_THAT(hosts(0, "none"), ElementsAre("api.example.com"));
  EXPECT_THAT(hosts(0, "wild"), ElementsAre("api.example.com"));
  EXPECT_THAT(hosts(0, "deep"), ElementsAre("(not attached)"));
  EXPECT_THAT(hosts(0, "widest"), ElementsAre("api.example.com"));
  // wildcard listener: keeps the route hostnames within it.
  EXPECT_THAT(hosts(1, "none"), ElementsAre("*.example.com"));
  EXPECT_THAT(hosts(1, "wild"), ElementsAre("*.example.com"));
  EXPECT_THAT(hosts(1, "deep"), ElementsAre("a.b.example.com"));
  EXPECT_THAT(hosts(1, "widest"), ElementsAre("*.example.com"));
  // no listener hostname: the route's own.
  EXPECT_TRUE(hosts(2, "none").empty());
  EXPECT_THAT(hosts(2, "deep"), ElementsAre("a.b.example.com", "other.org"));

  // A route whose hostnames fit no listener it names is an error.
  EXPECT_THAT(OneError(gateway + Yaml(R"(
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: misfit}
spec:
  parentRefs: [{name: gw, sectionName: exact}]
  hostnames: [other.org]
)")),
              HasSubstr("HTTPRoute/misfit: spec.parentRefs[0]: the route cannot attach to Gateway "
                        "\"default/gw\": no route hostname matches listener \"exact\" hostname "
                        "\"api.example.com\""));
}

TEST(ConfigHTTPRoute, RulesAreOrderedByRouteAgeThenName) {
  auto route = [](const std::string& name, const std::string& created) {
    std::string meta = created.empty()
                           ? "{name: " + name + "}"
                           : "{name: " + name + ", creationTimestamp: \"" + created + "\"}";
    return "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: " + meta +
           "\nspec:\n  parentRefs: [{name: gw, sectionName: http}]\n  rules: [{}, {}]\n---\n";
  };
  auto snap = LoadOk(kGateway + route("b", "") + route("a", "") +
                     route("new", "2024-06-01T00:00:00Z") + route("old", "2020-01-01T00:00:00Z"));
  ASSERT_TRUE(snap);
  std::vector<std::string> ids;
  for (const auto& r : snap->gateways[0].listeners[0].rules) ids.push_back(r.Id());
  EXPECT_THAT(ids, ElementsAre("default/old/rules[0]", "default/old/rules[1]",
                               "default/new/rules[0]", "default/new/rules[1]", "default/a/rules[0]",
                               "default/a/rules[1]", "default/b/rules[0]", "default/b/rules[1]"));
}

TEST(ConfigHTTPRoute, RouteWithoutParentsIsAWarning) {
  auto snap = LoadOk(
      "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
      "metadata: {name: lonely}\nspec: {}\n");
  ASSERT_TRUE(snap);
  ASSERT_THAT(snap->warnings, SizeIs(1));
  EXPECT_THAT(snap->warnings[0], HasSubstr("HTTPRoute/lonely: spec.parentRefs: no parentRefs"));
}

// ------------------------------------------------------------------- policies

TEST(ConfigPolicies, TimeoutAndBodyLimitApplyPerGateway) {
  auto snap = LoadOk(kGateway + Yaml(R"(
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: timeout}
spec:
  timeout: {http: {requestTimeout: 1h30m}}
  targetRef: {group: gateway.networking.k8s.io, kind: Gateway, name: gw}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: ClientTrafficPolicy
metadata: {name: limit}
spec:
  connection: {bufferLimit: 1.5Gi}
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: ClientTrafficPolicy
metadata: {name: llm-limit}
spec:
  connection: {bufferLimit: 512Ki}
  targetRefs:
  - {group: gateway.networking.k8s.io, kind: Gateway, name: gw, sectionName: llm}
  - {group: gateway.networking.k8s.io, kind: HTTPRoute, name: some-route}
)"));
  ASSERT_TRUE(snap);
  const ResolvedGateway& gw = snap->gateways[0];
  EXPECT_EQ(gw.request_timeout, 5400 * kNanosPerSecond);
  EXPECT_EQ(gw.body_limit, 1610612736u);
  EXPECT_EQ(gw.listeners[0].request_timeout, 5400 * kNanosPerSecond);
  EXPECT_EQ(gw.listeners[0].body_limit, 1610612736u);
  EXPECT_EQ(gw.listeners[1].request_timeout, 5400 * kNanosPerSecond);
  EXPECT_EQ(gw.listeners[1].body_limit, 512u * 1024);  // the listener-level policy wins there
  ASSERT_THAT(snap->warnings, SizeIs(1));
  EXPECT_THAT(snap->warnings[0],
              HasSubstr("ClientTrafficPolicy/llm-limit: spec.targetRefs[1]: only Gateway targets "
                        "are applied; HTTPRoute/some-route ignored"));
}

TEST(ConfigPolicies, Problems) {
  auto errors = LoadErrors(kGateway + Yaml(R"(
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: one}
spec:
  timeout: {http: {requestTimeout: 10s}}
  targetRef: {group: gateway.networking.k8s.io, kind: Gateway, name: gw}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: two}
spec:
  timeout: {http: {requestTimeout: 20s}}
  targetRef: {group: gateway.networking.k8s.io, kind: Gateway, name: gw}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: ClientTrafficPolicy
metadata: {name: bad}
spec:
  connection: {bufferLimit: 20MB}
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: missing}]
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: ClientTrafficPolicy
metadata: {name: zero}
spec:
  connection: {bufferLimit: "0"}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: ClientTrafficPolicy
metadata: {name: section}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw, sectionName: nope}]
)"));
  EXPECT_THAT(
      errors,
      ElementsAre(
          "test.yaml:30: document 4: ClientTrafficPolicy/bad: spec.connection.bufferLimit: must be "
          "a "
          "byte quantity such as \"20Mi\", \"1G\" or \"4096\", got \"20MB\"",
          "test.yaml:36: document 5: ClientTrafficPolicy/zero: spec.targetRefs: is required (or "
          "targetRef)",
          "test.yaml:37: document 5: ClientTrafficPolicy/zero: spec.connection.bufferLimit: must "
          "be "
          "greater than 0",
          "test.yaml:19: document 3: BackendTrafficPolicy/two: spec.timeout.http.requestTimeout: "
          "conflicts with BackendTrafficPolicy/one, which also sets the request timeout of "
          "\"default/gw\"",
          "test.yaml:31: document 4: ClientTrafficPolicy/bad: spec.targetRefs[0].name: Gateway "
          "\"missing\" not found in namespace \"default\"",
          "test.yaml:43: document 6: ClientTrafficPolicy/section: spec.targetRefs[0].sectionName: "
          "Gateway \"default/gw\" has no listener \"nope\""));
}

}  // namespace
}  // namespace infergate::config
