// Service and Pod: decoding, and how they become a Service backend's endpoints.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config_test_util.h"

namespace infergate::config {
namespace {

using ::testing::ElementsAre;
using testing::EndpointIds;
using ::testing::HasSubstr;
using testing::kGateway;
using testing::LoadErrors;
using testing::LoadOk;
using testing::OneError;
using ::testing::SizeIs;
using testing::Yaml;

std::string RouteTo(const std::string& service, int port) {
  return "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\n"
         "spec:\n  parentRefs: [{name: gw, sectionName: http}]\n  rules:\n  - backendRefs: "
         "[{name: " +
         service + ", port: " + std::to_string(port) + "}]\n---\n";
}

const Backend& OnlyBackend(const ConfigSnapshot& snap) {
  return *snap.gateways.at(0).listeners.at(0).rules.at(0).backends.at(0).backend;
}

TEST(ConfigPod, AddressReadinessPhaseAndPorts) {
  auto snap = LoadOk(Yaml(R"(
apiVersion: v1
kind: Pod
metadata: {name: plain}
status: {podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: dual}
spec:
  containers:
  - name: a
    ports: [{containerPort: 8000, name: http}, {containerPort: 9000}]
  - name: b
    ports: [{containerPort: 9100, name: metrics}]
status:
  podIPs: [{ip: "fd00::1"}, {ip: 10.0.0.2}]
  conditions:
  - {type: PodScheduled, status: "True"}
  - {type: Ready, status: "False"}
---
apiVersion: v1
kind: Pod
metadata: {name: pending}
status: {phase: Pending}
---
apiVersion: v1
kind: Pod
metadata: {name: ready}
status:
  podIP: 10.0.0.3
  conditions: [{type: Ready, status: "True"}]
)"));
  ASSERT_TRUE(snap);
  const auto& pods = snap->objects.pods;
  ASSERT_THAT(pods, SizeIs(4));
  EXPECT_EQ(pods[0].ip, "10.0.0.1");
  EXPECT_TRUE(pods[0].ready);  // no Ready condition: ready
  EXPECT_EQ(pods[1].ip, "fd00::1");
  EXPECT_FALSE(pods[1].ready);
  ASSERT_THAT(pods[1].container_ports, SizeIs(3));
  EXPECT_EQ(pods[1].container_ports[0].name, "http");
  EXPECT_EQ(pods[1].container_ports[2].port, 9100);
  EXPECT_EQ(pods[2].ip, "");
  EXPECT_EQ(pods[2].phase, "Pending");
  EXPECT_TRUE(pods[3].ready);
}

TEST(ConfigPod, BadAddressOrPort) {
  auto errors = LoadErrors(Yaml(R"(
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers: [{name: c, ports: [{containerPort: 0}]}]
status: {podIP: 300.1.1.1}
)"));
  EXPECT_THAT(
      errors,
      ElementsAre(
          "test.yaml:5: document 1: Pod/p: spec.containers[0].ports[0].containerPort: must be an "
          "integer between 1 and 65535, got \"0\"",
          "test.yaml:6: document 1: Pod/p: status.podIP: must be an IPv4 or IPv6 address, got "
          "\"300.1.1.1\""));
}

TEST(ConfigService, EndpointsAreTheReadyRoutablePodsOfItsSelector) {
  auto snap = LoadOk(kGateway + RouteTo("svc", 80) + Yaml(R"(
apiVersion: v1
kind: Service
metadata: {name: svc}
spec:
  selector: {app: srv}
  ports: [{port: 80, targetPort: 8000}]
---
apiVersion: v1
kind: Pod
metadata: {name: b-ready, labels: {app: srv, tier: x}}
status: {podIP: 127.0.0.3}
---
apiVersion: v1
kind: Pod
metadata: {name: a-ready, labels: {app: srv}}
status: {podIP: 127.0.0.2, conditions: [{type: Ready, status: "True"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: c-not-ready, labels: {app: srv}}
status: {podIP: 127.0.0.4, conditions: [{type: Ready, status: "False"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: d-no-ip, labels: {app: srv}}
status: {phase: Pending}
---
apiVersion: v1
kind: Pod
metadata: {name: e-failed, labels: {app: srv}}
status: {podIP: 127.0.0.6, phase: Failed}
---
apiVersion: v1
kind: Pod
metadata: {name: other-label, labels: {app: nope}}
status: {podIP: 127.0.0.7}
---
apiVersion: v1
kind: Pod
metadata: {name: other-ns, namespace: elsewhere, labels: {app: srv}}
status: {podIP: 127.0.0.8}
)"));
  ASSERT_TRUE(snap);
  const Backend& b = OnlyBackend(*snap);
  EXPECT_EQ(b.kind, BackendKind::kService);
  EXPECT_EQ(b.id, "default/svc");
  EXPECT_EQ(b.service_port, 80);
  EXPECT_THAT(EndpointIds(b), ElementsAre("127.0.0.2:8000", "127.0.0.3:8000"));
  EXPECT_EQ(b.endpoints[0].pod_name, "a-ready");
  EXPECT_EQ(b.endpoints[0].pod_namespace, "default");
  EXPECT_EQ(b.endpoints[0].ip, "127.0.0.2");
  EXPECT_EQ(b.endpoints[0].port, 8000);
  EXPECT_TRUE(b.endpoints[0].ready);
  EXPECT_EQ(b.endpoints[1].labels.at("tier"), "x");
  ASSERT_THAT(b.unavailable, SizeIs(3));
  EXPECT_EQ(b.unavailable[0].pod, "default/c-not-ready");
  EXPECT_EQ(b.unavailable[0].reason, "not ready");
  EXPECT_EQ(b.unavailable[1].pod, "default/d-no-ip");
  EXPECT_EQ(b.unavailable[1].reason, "no podIP");
  EXPECT_EQ(b.unavailable[2].reason, "phase Failed");
}

TEST(ConfigService, NamedTargetPortIsResolvedPerPod) {
  auto snap = LoadOk(kGateway + RouteTo("svc", 80) + Yaml(R"(
apiVersion: v1
kind: Service
metadata: {name: svc}
spec:
  selector: {app: srv}
  ports:
  - {name: web, port: 80, targetPort: http}
  - {name: metrics, port: 9090, targetPort: "9100"}
---
apiVersion: v1
kind: Pod
metadata: {name: a, labels: {app: srv}}
spec: {containers: [{name: c, ports: [{name: http, containerPort: 8000}]}]}
status: {podIP: 127.0.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: b, labels: {app: srv}}
spec: {containers: [{name: c, ports: [{name: http, containerPort: 8001}]}]}
status: {podIP: 127.0.0.3}
---
apiVersion: v1
kind: Pod
metadata: {name: c, labels: {app: srv}}
spec: {containers: [{name: c, ports: [{name: grpc, containerPort: 9000}]}]}
status: {podIP: 127.0.0.4}
)"));
  ASSERT_TRUE(snap);
  const Backend& b = OnlyBackend(*snap);
  EXPECT_THAT(EndpointIds(b), ElementsAre("127.0.0.2:8000", "127.0.0.3:8001"));
  ASSERT_THAT(b.unavailable, SizeIs(1));
  EXPECT_EQ(b.unavailable[0].pod, "default/c");
  EXPECT_EQ(b.unavailable[0].reason, "no container port named \"http\"");
  const Service& svc = snap->objects.services.at(0);
  EXPECT_EQ(svc.ports[0].target_port_name, "http");
  EXPECT_EQ(svc.ports[1].target_port, 9100);
}

TEST(ConfigService, WithoutSelectorWarnsAndHasNoEndpoints) {
  auto snap = LoadOk(kGateway + RouteTo("external", 443) +
                     "apiVersion: v1\nkind: Service\nmetadata: {name: external}\n"
                     "spec: {ports: [{port: 443}]}\n");
  ASSERT_TRUE(snap);
  EXPECT_TRUE(OnlyBackend(*snap).endpoints.empty());
  ASSERT_THAT(snap->warnings, SizeIs(2));
  EXPECT_THAT(snap->warnings[0], HasSubstr("test.yaml:23: document 3: Service/external: "
                                           "spec.selector: the Service has no selector, so it "
                                           "has no endpoints"));
  // No Pod at all in the configuration: one note rather than a warning per backend.
  EXPECT_THAT(snap->warnings[1], HasSubstr("no Pod objects in the configuration"));
}

TEST(ConfigService, PortProblems) {
  auto errors = LoadErrors(Yaml(R"(
apiVersion: v1
kind: Service
metadata: {name: svc}
spec:
  selector: {app: srv}
  ports:
  - {name: a, port: 80, targetPort: Bad_Name}
  - {port: 81}
  - {name: a, port: 80, protocol: UDP}
)"));
  EXPECT_THAT(
      errors,
      ElementsAre(
          "test.yaml:7: document 1: Service/svc: spec.ports[0].targetPort: must be a port number "
          "(1..65535) or a container port name, got \"Bad_Name\"",
          "test.yaml:8: document 1: Service/svc: spec.ports[1].name: is required when the Service "
          "has more than one port",
          "test.yaml:9: document 1: Service/svc: spec.ports[2].name: port name \"a\" is already "
          "used "
          "by spec.ports[0]",
          "test.yaml:9: document 1: Service/svc: spec.ports[2].port: port 80 is already defined by "
          "spec.ports[0]",
          "test.yaml:9: document 1: Service/svc: spec.ports[2].protocol: only TCP is supported, "
          "got "
          "\"UDP\""));
  EXPECT_EQ(
      OneError("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {selector: {a: b}}\n"),
      "test.yaml:4: document 1: Service/s: spec.ports: is required");
}

}  // namespace
}  // namespace infergate::config
