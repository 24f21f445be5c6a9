#!/usr/bin/env bash
# Stalling metrics benchmark: three simulated llama.cpp servers whose /metrics pages stall
# for every long prefill (~3 s, longer than the gateway's 2 s staleness bound), behind a
# FailClose InferencePool, and the same servers behind a plain round-robin Service route.
# Runs `infergate bench` through both, in the same run, and prints failures and the
# routed/round-robin ratios.
#   bash scripts/bench_slow_metrics.sh
#   PROMPTS=72 CONCURRENCY=16 INPUT=1500 bash scripts/bench_slow_metrics.sh
#   GW_BIN=/path/to/older/infergate bash scripts/bench_slow_metrics.sh   # another gateway
# Addresses 127.0.21.1-3 (servers) and 127.0.21.10 (gateway), port $PORT: not the demo's.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/infergate}
GW_BIN=${GW_BIN:-$BIN}  # the gateway (e.g. another build's, to compare)
PROMPTS=${PROMPTS:-72}
CONCURRENCY=${CONCURRENCY:-16}
INPUT=${INPUT:-1500}
OUTPUT=${OUTPUT:-32}
PORT=${PORT:-18210}
SEED=${SEED:-1}
RATE=${RATE:-inf}  # requests per second (Poisson); inf: as fast as the concurrency allows
RANGE=${RANGE:-0.2}  # prompt lengths uniform in [RANGE·INPUT, INPUT] (vLLM 0.7 semantics)
PROFILE=examples/slow-metrics/llamacpp-cpu.yaml
work=$(mktemp -d /tmp/ig-slow-metrics.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

for i in 1 2 3; do
  "$BIN" --log-level warn sim --profile "$PROFILE" --engine-api llamacpp \
    --metrics-in-engine-loop --model tiny-chat --host 127.0.21.$i --port "$PORT" \
    --seed "$i" >"$work/sim$i.log" 2>&1 &
  pids+=($!)
done
cat >"$work/config.yaml" <<YAML
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: gw
  annotations:
    infergate.io/bind-address: "127.0.21.10"
spec:
  gatewayClassName: infergate
  listeners:
  - name: llm
    protocol: HTTP
    port: $PORT
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: llm
spec:
  parentRefs:
  - name: gw
  rules:
  - matches:
    - headers:
      - name: x-route
        value: rr
    backendRefs:
    - name: llm
      port: $PORT
  - backendRefs:
    - group: inference.networking.x-k8s.io
      kind: InferencePool
      name: pool
---
apiVersion: v1
kind: Service
metadata:
  name: llm
spec:
  selector:
    app: llm
  ports:
  - port: $PORT
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferencePool
metadata:
  name: pool
spec:
  selector:
    app: llm
  targetPortNumber: $PORT
  extensionRef:
    name: epp
    failureMode: FailClose
YAML
for i in 1 2 3; do
  printf -- '---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: llm-%s\n  labels:\n    app: llm\nstatus:\n  podIP: 127.0.21.%s\n' "$i" "$i" >>"$work/config.yaml"
done
"$GW_BIN" --log-level warn serve -f "$work/config.yaml" --admin-address 127.0.21.10:$((PORT + 1)) \
  >"$work/gateway.log" 2>&1 &
pids+=($!)
sleep 2

run() {  # $1 name, $2 route header value
  "$BIN" --log-level warn bench --base-url "http://127.0.21.10:$PORT" --header "x-route=$2" \
    --model tiny-chat --dataset-name random --random-input-len "$INPUT" \
    --random-output-len "$OUTPUT" --random-range-ratio "$RANGE" --num-prompts "$PROMPTS" \
    --max-concurrency "$CONCURRENCY" --request-rate "$RATE" --seed "$SEED" --ignore-eos --disable-tqdm \
    --save-result --result-dir "$work" --result-filename "$1.json" >"$work/$1.txt"
}
run routed pool
run round_robin rr
curl -s "http://127.0.21.10:$((PORT + 1))/metrics" >"$work/gateway_metrics.txt"

python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
r = json.load(open(f"{w}/routed.json")); b = json.load(open(f"{w}/round_robin.json"))
def row(k):
    return f"| {k} | {r[k]:.1f} | {b[k]:.1f} | {r[k] / b[k]:.2f}x |"
print(f"| | routed (FailClose pool) | round-robin | ratio |")
print("|---|---|---|---|")
def failed(j):
    return j.get("failed", sum(1 for e in j.get("errors", []) if e))
print(f"| completed / failed | {r['completed']} / {failed(r)} | {b['completed']} / {failed(b)} | |")
for k in ["mean_ttft_ms", "median_ttft_ms", "p99_ttft_ms", "mean_e2el_ms", "output_throughput"]:
    print(row(k))
late = sum(float(l.split()[-1]) for l in open(f"{w}/gateway_metrics.txt")
           if l.startswith("infergate_pool_endpoint_scrape_failures_total") and 'reason="timeout"' in l)
print(f"\nlate scrapes (timeout): {late:.0f}")
PY
