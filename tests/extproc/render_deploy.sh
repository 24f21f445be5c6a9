#!/usr/bin/env bash
# Renders deploy/epp and deploy/epp/envoy-gateway with kubectl kustomize and checks what
# Envoy and GIE's users rely on: the picker's ports, its probes, the pool's
# endpointPickerRef, and the ext_proc processing mode.
set -euo pipefail
root="$1"
command -v kubectl >/dev/null || { echo "kubectl not found (scripts/setup.sh installs it)"; exit 1; }
epp="$(kubectl kustomize "$root/deploy/epp")"
eg="$(kubectl kustomize "$root/deploy/epp/envoy-gateway")"
need() {
  grep -qF -- "$2" <<<"$1" || { echo "missing in rendered output: $2"; exit 1; }
}
need "$epp" "containerPort: 9002"
need "$epp" "containerPort: 9003"
need "$epp" "containerPort: 9090"
need "$epp" "service: readiness"
need "$epp" "service: liveness"
need "$epp" "kind: InferencePool"
need "$epp" "endpointPickerRef:"
need "$epp" "name: infergate-epp"
need "$epp" "kind: RoleBinding"
need "$epp" "image: ghcr.io/infergate/infergate:latest"
need "$eg" "kind: EnvoyExtensionPolicy"
need "$eg" "body: FullDuplexStreamed"
need "$eg" "port: 9002"
need "$eg" "- envoy.lb"
echo "deploy/epp renders"
