#!/usr/bin/env bash
# Endpoint picker benchmark: a gRPC load client (build/tests/extproc/epp_load) plays
# Envoy's ext_proc filter against `infergate epp` serving a pool of model-server
# stand-ins (test_upstream, scraped every 50 ms like real servers), at 4 KB, 220 KB and
# 400 KB prompts. Reports the picker's CPU time per request (from /proc), the latency it
# adds (request headers sent → the last body chunk back, i.e. what Envoy waits before it
# can forward) and requests/s with the picker pinned to one core.
#   bash scripts/bench_epp.sh                      # defaults below
#   ENDPOINTS=8 REQUESTS=400 bash scripts/bench_epp.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/infergate}
LOAD=${LOAD:-build/tests/extproc/epp_load}
UPSTREAM=${UPSTREAM:-build/tests/support/test_upstream}
ENDPOINTS=${ENDPOINTS:-4}
REQUESTS=${REQUESTS:-300}
CONCURRENCY=${CONCURRENCY:-4}
CPU=${CPU:-0}            # the core the picker is pinned to
# The stand-ins report a small KV cache: with the gateway queue, the infergate profile
# holds prompts larger than it (late binding) and they would wait forever.
EPP_FLAGS=${EPP_FLAGS:---no-flow-control}
ADDR=127.0.0.1
for b in "$BIN" "$LOAD" "$UPSTREAM"; do [[ -x $b ]] || { echo "missing $b (build it)"; exit 1; }; done
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

port=""
{
  echo "apiVersion: inference.networking.x-k8s.io/v1alpha2"
  echo "kind: InferencePool"
  echo "metadata: {name: pool}"
  echo "spec: {selector: {app: llm}, targetPortNumber: PORT, extensionRef: {name: epp}}"
} >"$work/pool.yaml"
for i in $(seq 1 "$ENDPOINTS"); do
  addr="127.0.9.$i"
  "$UPSTREAM" --address "$addr" --port "${port:-0}" --name "s$i" --models base >"$work/up$i.out" &
  pids+=($!)
  for _ in $(seq 50); do grep -q listening "$work/up$i.out" && break; sleep 0.1; done
  port=${port:-$(sed -n 's/.*:\([0-9]*\)$/\1/p' "$work/up$i.out" | head -1)}
  printf -- "---\napiVersion: v1\nkind: Pod\nmetadata: {name: llm-%s, labels: {app: llm}}\nstatus: {podIP: %s}\n" \
    "$i" "$addr" >>"$work/pool.yaml"
done
sed -i "s/PORT/$port/" "$work/pool.yaml"

taskset -c "$CPU" "$BIN" --log-level warn epp -f "$work/pool.yaml" --workers 1 \
  --grpc-address $ADDR --grpc-port 0 --grpc-health-port 0 --metrics-address $ADDR:0 $EPP_FLAGS \
  >"$work/epp.out" &
EPP=$!
pids+=($EPP)
for _ in $(seq 100); do grep -q "^ext_proc" "$work/epp.out" && break; sleep 0.1; done
target=$(sed -n 's/^ext_proc //p' "$work/epp.out")
sleep 0.5
echo "# $(date -u +%FT%TZ) $(nproc) cores; picker pinned to core $CPU; $ENDPOINTS endpoints;" \
  "load average $(cut -d' ' -f1-3 /proc/loadavg)"
for bytes in 4096 225280 409600; do
  taskset -c "$(( (CPU + 1) % $(nproc) ))" "$LOAD" --target "$target" --pid "$EPP" \
    --prompt-bytes "$bytes" --requests "$REQUESTS" --concurrency "$CONCURRENCY"
done
# Requests/s on one core at 4 KB: more streams in flight.
taskset -c "$(( (CPU + 1) % $(nproc) ))" "$LOAD" --target "$target" --pid "$EPP" \
  --prompt-bytes 4096 --requests $((REQUESTS * 4)) --concurrency 16
echo "# load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
