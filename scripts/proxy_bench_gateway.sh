# Sourced by the proxy benchmarks (bench_proxy.sh, bench_proxy_instructions.sh).
# proxy_bench_gateway_yaml FILE ADDR GATEWAY_PORT UPSTREAM_PORT: writes the infergate
# config they share: one listener on ADDR:GATEWAY_PORT routing everything to a Service
# over one Pod at ADDR:UPSTREAM_PORT.
proxy_bench_gateway_yaml() {
  cat >"$1" <<YAML
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: bench, annotations: {infergate.io/bind-address: "$2"}}
spec: {gatewayClassName: x, listeners: [{name: http, protocol: HTTP, port: $3}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: all}
spec:
  parentRefs: [{name: bench, sectionName: http}]
  rules: [{backendRefs: [{name: up, port: 80}]}]
---
apiVersion: v1
kind: Service
metadata: {name: up}
spec: {selector: {app: up}, ports: [{port: 80, targetPort: $4}]}
---
apiVersion: v1
kind: Pod
metadata: {name: up-0, labels: {app: up}}
status: {podIP: $2}
YAML
}
