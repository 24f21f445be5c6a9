#!/usr/bin/env bash
# Renders each kustomization under deploy/ and checks the result:
#   - `infergate check -f` accepts it (exit 0, "Configuration OK");
#   - the ClusterRole grants only get/list/watch, and patch/update on status subresources;
#   - the Deployment runs `serve --kubernetes` with the admin listener on every address,
#     probes on the admin port, and a termination grace period longer than preStop +
#     --shutdown-grace + --drain-timeout;
#   - the seed example resolves to its two listeners and routes.
# deploy/epp (the endpoint picker and its Envoy Gateway configuration) has its own check
# (tests/extproc, deploy_epp_kustomize); deploy/replicas builds on deploy/base and must
# also run a NATS server and give every replica --replica-sync.
# Usage: kustomize_check.sh INFERGATE_BIN SOURCE_DIR
set -euo pipefail
bin=$1
root=$2
if ! command -v kubectl >/dev/null; then
  echo "FAIL: kubectl is needed to render deploy/ (kubectl kustomize)"
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
expect() {  # expect FILE TEXT WHAT
  grep -qF -- "$2" "$1" || fail "$3: expected \"$2\""
}

count=0
while IFS= read -r k; do
  dir=$(dirname "$k")
  name=${dir#"$root"/}
  case "$name" in deploy/epp | deploy/epp/*) continue ;; esac
  out="$tmp/$(echo "$name" | tr / _)"
  if ! kubectl kustomize "$dir" >"$out.yaml" 2>"$out.err"; then
    cat "$out.err"
    fail "$name: kubectl kustomize failed"
    continue
  fi
  if ! "$bin" check -f "$out.yaml" >"$out.check" 2>&1; then
    cat "$out.check"
    fail "$name: infergate check rejected the rendered manifests"
    continue
  fi
  expect "$out.check" "Configuration OK" "$name"
  expect "$out.check" "skipped apps/v1/Deployment infergate: kind not used by infergate" "$name"
  # RBAC: read-only (get/list/watch) except patch/update on status subresources.
  bad=$(python3 - "$out.yaml" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
for doc in text.split("\n---\n"):
    if not re.search(r"^kind: (Cluster)?Role$", doc, re.M):
        continue
    for rule in doc.split("\n- apiGroups:")[1:]:
        def items(key):
            m = re.search(r"^  %s:\n((?:  - .*\n?)+)" % key, rule + "\n", re.M)
            return [l.strip()[2:].strip('"') for l in m.group(1).splitlines()] if m else []
        verbs, resources = set(items("verbs")), items("resources")
        if verbs <= {"get", "list", "watch"}:
            continue
        if verbs <= {"patch", "update"} and all(r.endswith("/status") for r in resources):
            continue
        print("verbs %s on %s" % (sorted(verbs), resources))
PY
)
  [ -z "$bad" ] || fail "$name: RBAC grants more than read access and status writes: $bad"
  expect "$out.yaml" "- --kubernetes" "$name"
  expect "$out.yaml" "- --admin-address=0.0.0.0:9901" "$name"
  expect "$out.yaml" "path: /readyz" "$name"
  expect "$out.yaml" "controllerName: infergate.io/gateway-controller" "$name"
  expect "$out.yaml" "kind: PodDisruptionBudget" "$name"
  expect "$out.yaml" "prometheus.io/scrape: \"true\"" "$name"
  grace=$(sed -n 's/.*--shutdown-grace=\([0-9]*\).*/\1/p' "$out.yaml")
  drain=$(sed -n 's/.*--drain-timeout=\([0-9]*\).*/\1/p' "$out.yaml")
  prestop=$(grep -A6 'preStop:' "$out.yaml" | grep -E '^ *- "?[0-9]+"?$' | grep -oE '[0-9]+' | head -1 || true)
  period=$(sed -n 's/.*terminationGracePeriodSeconds: \([0-9]*\).*/\1/p' "$out.yaml")
  if [ -z "$grace" ] || [ -z "$drain" ] || [ -z "$period" ] || [ -z "$prestop" ]; then
    fail "$name: shutdown values missing (grace '$grace' drain '$drain' preStop '$prestop' period '$period')"
  elif [ "$period" -le $((prestop + grace + drain)) ]; then
    fail "$name: terminationGracePeriodSeconds $period <= preStop $prestop + grace $grace + drain $drain"
  fi
  if [ "$name" = deploy/replicas ]; then
    expect "$out.yaml" "image: nats" "$name"
    expect "$out.yaml" "--replica-sync" "$name"
  fi
  count=$((count + 1))
done < <(find "$root/deploy" -name kustomization.yaml | sort)
[ "$count" -ge 2 ] || fail "expected at least 2 kustomizations under deploy/, rendered $count"

seed="$tmp/deploy_examples_seed.check"
if [ -f "$seed" ]; then
  expect "$seed" "listener http  0.0.0.0:8080  HTTP" "seed"
  expect "$seed" "listener llm-gw  0.0.0.0:8081  HTTP" "seed"
  expect "$seed" "backend Service default/qwq-dist-v1 port 8000  weight 1" "seed"
  expect "$seed" "backend InferencePool default/reasoning-pool  weight 1" "seed"
  expect "$seed" "request timeout 24h  body limit 20 MiB" "seed"
  expect "$seed" "InferencePool default/reasoning-pool  (inference.networking.k8s.io/v1)" "seed"
  expect "$seed" "skipped leaderworkerset.x-k8s.io/v1/LeaderWorkerSet" "seed"
  expect "$seed" "no Pod objects in the configuration" "seed"
else
  fail "deploy/examples/seed was not rendered"
fi

if [ "$failures" -gt 0 ]; then
  echo "deploy: $failures problem(s) in $count kustomization(s)"
  exit 1
fi
echo "deploy: $count kustomizations rendered and accepted by infergate check"
