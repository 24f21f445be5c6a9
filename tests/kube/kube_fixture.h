// Shared by the Kubernetes tests: a fake API server with every type the provider watches,
// a kubeconfig for it, and objects in the shape the API server holds them.
#pragma once

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/kube/fake_apiserver.h"

namespace infergate::testing {

inline void RegisterWatchedTypes(FakeApiServer& api) {
  api.AddType("gateway.networking.k8s.io/v1", "GatewayClass", "gatewayclasses", false);
  api.AddType("gateway.networking.k8s.io/v1", "Gateway", "gateways");
  api.AddType("gateway.networking.k8s.io/v1", "HTTPRoute", "httproutes");
  api.AddType("v1", "Service", "services");
  api.AddType("discovery.k8s.io/v1", "EndpointSlice", "endpointslices");
  api.AddType("v1", "Pod", "pods");
  api.AddType("inference.networking.k8s.io/v1", "InferencePool", "inferencepools");
  api.AddType("inference.networking.x-k8s.io/v1alpha2", "InferencePool", "inferencepools");
  api.AddType("llm-d.ai/v1alpha2", "InferenceObjective", "inferenceobjectives");
  api.AddType("inference.networking.x-k8s.io/v1alpha2", "InferenceModel", "inferencemodels");
  // InferenceModelRewrites, the older InferenceObjectives and the Envoy Gateway policies
  // are left unregistered: the provider must live with APIs that are not served (404).
}

inline std::string WriteKubeconfig(const std::string& dir, const std::string& server,
                                   const std::string& token) {
  std::string path = dir + "/kubeconfig";
  std::ofstream(path) << "apiVersion: v1\nkind: Config\ncurrent-context: test\n"
                         "contexts:\n- name: test\n  context: {cluster: fake, user: tester}\n"
                         "clusters:\n- name: fake\n  cluster: {server: \""
                      << server << "\"}\nusers:\n- name: tester\n  user: {token: \"" << token
                      << "\"}\n";
  return path;
}

inline nlohmann::json GatewayClassObject() {
  return nlohmann::json::parse(
      R"({"apiVersion":"gateway.networking.k8s.io/v1","kind":"GatewayClass",
    "metadata":{"name":"infergate"},"spec":{"controllerName":"infergate.io/gateway-controller"}})");
}

inline nlohmann::json GatewayObject(const std::string& bind_address) {
  auto gw = nlohmann::json::parse(R"({"apiVersion":"gateway.networking.k8s.io/v1","kind":"Gateway",
    "metadata":{"name":"gw","annotations":{}},"spec":{"gatewayClassName":"infergate",
    "listeners":[{"name":"web","port":0,"protocol":"HTTP"}]}})");
  gw["metadata"]["annotations"]["infergate.io/bind-address"] = bind_address;
  return gw;
}

inline nlohmann::json PoolObject(int port) {
  auto pool = nlohmann::json::parse(R"({"apiVersion":"inference.networking.k8s.io/v1",
    "kind":"InferencePool","metadata":{"name":"pool","annotations":{
    "infergate.io/scheduling-profile":"round-robin"}},
    "spec":{"selector":{"matchLabels":{"app":"sim"}},"targetPorts":[]}})");
  pool["spec"]["targetPorts"].push_back({{"number", port}});
  return pool;
}

inline nlohmann::json RouteObject(const std::string& name, const std::string& pool,
                                  const std::string& path = "/") {
  auto r = nlohmann::json::parse(R"({"apiVersion":"gateway.networking.k8s.io/v1","kind":"HTTPRoute",
    "metadata":{},"spec":{"parentRefs":[{"name":"gw"}],"rules":[{"matches":[{"path":{
    "type":"PathPrefix"}}],"backendRefs":[{"group":"inference.networking.k8s.io",
    "kind":"InferencePool"}]}]}})");
  r["metadata"]["name"] = name;
  r["spec"]["rules"][0]["matches"][0]["path"]["value"] = path;
  r["spec"]["rules"][0]["backendRefs"][0]["name"] = pool;
  return r;
}

inline nlohmann::json PodObject(const std::string& name, const std::string& ip, bool ready,
                                int port) {
  auto pod = nlohmann::json::parse(R"({"apiVersion":"v1","kind":"Pod",
    "metadata":{"labels":{"app":"sim"}},"spec":{"containers":[{"name":"vllm","image":"x",
    "ports":[]}]},"status":{"phase":"Running","conditions":[{"type":"Ready"}]}})");
  pod["metadata"]["name"] = name;
  pod["spec"]["containers"][0]["ports"].push_back({{"containerPort", port}});
  pod["status"]["podIP"] = ip;
  pod["status"]["conditions"][0]["status"] = ready ? "True" : "False";
  return pod;
}

// The condition of `type` in a status.parents[i] or status entry, or null.
inline nlohmann::json Condition(const nlohmann::json& conditions, const std::string& type) {
  if (!conditions.is_array()) return nullptr;
  for (const auto& c : conditions) {
    if (c.value("type", "") == type) return c;
  }
  return nullptr;
}

}  // namespace infergate::testing
