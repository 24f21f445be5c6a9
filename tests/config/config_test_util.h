// Shared helpers for the config tests: load YAML text and get either the snapshot or the
// error lines.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/loader.h"

namespace infergate::config::testing {

// A raw-string YAML text without its leading newline, so the line after R"( is line 1.
inline std::string Yaml(std::string_view text) {
  if (!text.empty() && text.front() == '\n') text.remove_prefix(1);
  return std::string(text);
}

inline Result<std::shared_ptr<const ConfigSnapshot>> LoadText(
    const std::string& text, const std::string& name = "test.yaml") {
  LoadOptions options;
  options.log_notices = false;
  return LoadConfigFromString(text, name, options);
}

// The snapshot of a text that must load; nullptr (with a test failure) otherwise.
inline std::shared_ptr<const ConfigSnapshot> LoadOk(const std::string& text) {
  auto result = LoadText(text);
  if (!result.ok()) {
    ADD_FAILURE() << "load failed:\n" << result.error().message;
    return nullptr;
  }
  return *result;
}

// The error lines of a text that must not load.
inline std::vector<std::string> LoadErrors(const std::string& text) {
  auto result = LoadText(text);
  if (result.ok()) {
    ADD_FAILURE() << "load succeeded but errors were expected";
    return {};
  }
  std::vector<std::string> lines;
  const std::string& m = result.error().message;
  std::size_t start = 0;
  while (start < m.size()) {
    std::size_t end = m.find('\n', start);
    if (end == std::string::npos) end = m.size();
    lines.push_back(m.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

// The single error of a text that must fail with exactly one problem.
inline std::string OneError(const std::string& text) {
  auto errors = LoadErrors(text);
  if (errors.size() != 1) {
    std::string all;
    for (const auto& e : errors) all += e + "\n";
    ADD_FAILURE() << "expected one error, got " << errors.size() << ":\n" << all;
    return errors.empty() ? "" : errors.front();
  }
  return errors.front();
}

// A Gateway "gw" binding 127.0.0.1 with listeners http:8080 and llm:8081 (11 lines).
inline const std::string kGateway = Yaml(R"(
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: gw
  annotations:
    infergate.io/bind-address: 127.0.0.1
spec:
  listeners:
  - {name: http, protocol: HTTP, port: 8080}
  - {name: llm, protocol: HTTP, port: 8081}
---
)");

// Two ready Pods labelled app=srv (127.0.0.2, 127.0.0.3) with a container port "http"
// (8000), and a Service "svc" selecting them on port 80 -> 8000 (25 lines, 3 documents).
inline const std::string kServers = Yaml(R"(
apiVersion: v1
kind: Pod
metadata: {name: a, labels: {app: srv}}
spec:
  containers:
  - name: c
    ports: [{name: http, containerPort: 8000}]
status: {podIP: 127.0.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: b, labels: {app: srv}}
spec:
  containers:
  - name: c
    ports: [{name: http, containerPort: 8000}]
status: {podIP: 127.0.0.3}
---
apiVersion: v1
kind: Service
metadata: {name: svc}
spec:
  selector: {app: srv}
  ports: [{port: 80, targetPort: 8000}]
---
)");

// Endpoint ids of a backend, in order.
inline std::vector<std::string> EndpointIds(const Backend& b) {
  std::vector<std::string> ids;
  for (const auto& e : b.endpoints) ids.push_back(e.id);
  return ids;
}

}  // namespace infergate::config::testing
