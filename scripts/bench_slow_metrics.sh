#!/usr/bin/env bash
# Stalling metrics benchmark: three simulated llama.cpp servers whose /metrics pages stall
# for every batch of prompt chunks (~2 s, far beyond the scrape timeout: the page is made in
# the loop that runs the model), behind a FailClose InferencePool, and the same servers
# behind a plain round-robin Service route. Requests arrive on their own (Poisson, open
# loop: a closed loop sends each new request just as some server ends a step, which answers
# its late page and hides the failures), with prompts of 200 to 3,000 tokens, at about 75%
# of what the servers take. For each seed it runs `infergate bench` through both routes and
# prints failures and the routed/round-robin TTFT ratios, then their mean over the seeds.
#   bash scripts/bench_slow_metrics.sh
#   SEEDS="1 2 3 4 5" PROMPTS=80 RATE=1.2 bash scripts/bench_slow_metrics.sh
#   GW_BIN=/path/to/older/infergate bash scripts/bench_slow_metrics.sh   # another gateway
# Addresses 127.0.21.1-3 (servers) and 127.0.21.10 (gateway), port $PORT: not the demo's.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/infergate}
GW_BIN=${GW_BIN:-$BIN}  # the gateway (e.g. another build's, to compare)
PROMPTS=${PROMPTS:-60}
RATE=${RATE:-1.2}  # requests per second (Poisson)
CONCURRENCY=${CONCURRENCY:-$PROMPTS}  # no cap: open loop
INPUT=${INPUT:-1600}
RANGE=${RANGE:-0.875}  # prompt lengths uniform in [(1-RANGE)·INPUT, (1+RANGE)·INPUT]: 200-3,000
OUTPUT=${OUTPUT:-24}
PORT=${PORT:-18210}
SEEDS=${SEEDS:-1 2 3}
PROFILE=${PROFILE:-examples/slow-metrics/llamacpp-cpu-batched.yaml}
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

run() {  # $1 name, $2 route header value, $3 seed
  "$BIN" --log-level warn bench --base-url "http://127.0.21.10:$PORT" --header "x-route=$2" \
    --model tiny-chat --dataset-name random --random-input-len "$INPUT" \
    --random-output-len "$OUTPUT" --random-range-ratio "$RANGE" \
    --random-length-semantics current --num-prompts "$PROMPTS" \
    --max-concurrency "$CONCURRENCY" --request-rate "$RATE" --seed "$3" --ignore-eos \
    --disable-tqdm --save-result --result-dir "$work" --result-filename "$1.json" >"$work/$1.txt"
}
for seed in $SEEDS; do
  run "routed_$seed" pool "$seed"
  run "round_robin_$seed" rr "$seed"
done
curl -s "http://127.0.21.10:$((PORT + 1))/metrics" >"$work/gateway_metrics.txt"

python3 - "$work" "$PROMPTS" $SEEDS <<'PY'
import json, sys
w, prompts, seeds = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def failed(j):
    return prompts - j["completed"]
print("| seed | failed routed / rr | mean TTFT routed / rr (ms) | ratio | P99 TTFT routed / rr (ms) | ratio |")
print("|---|---|---|---|---|---|")
mean_ratios, p99_ratios, fails = [], [], 0
for s in seeds:
    r = json.load(open(f"{w}/routed_{s}.json")); b = json.load(open(f"{w}/round_robin_{s}.json"))
    m, p = r["mean_ttft_ms"] / b["mean_ttft_ms"], r["p99_ttft_ms"] / b["p99_ttft_ms"]
    mean_ratios.append(m); p99_ratios.append(p); fails += failed(r) + failed(b)
    print(f"| {s} | {failed(r)} / {failed(b)} | {r['mean_ttft_ms']:.0f} / {b['mean_ttft_ms']:.0f} | "
          f"{m:.3f}x | {r['p99_ttft_ms']:.0f} / {b['p99_ttft_ms']:.0f} | {p:.3f}x |")
n = len(seeds)
print(f"\nmean over {n} seeds: mean TTFT {sum(mean_ratios) / n:.3f}x, "
      f"P99 TTFT {sum(p99_ratios) / n:.3f}x round-robin; failed requests {fails}")
late = sum(float(l.split()[-1]) for l in open(f"{w}/gateway_metrics.txt")
           if l.startswith("infergate_pool_endpoint_scrape_failures_total") and 'reason="timeout"' in l)
print(f"late scrapes (timeout): {late:.0f}")
PY
