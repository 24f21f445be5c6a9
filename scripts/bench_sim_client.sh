#!/usr/bin/env bash
# What the benchmark client adds to TTFT, and whether the simulator keeps its clock, at
# 1, 100 and 2,000 concurrent streams: `infergate sim` (tiny profile, real time) on a
# loopback address, and ig_sim_client_overhead (tests/sim/server/sim_client_overhead.cc)
# sending with the benchmark client's own code, then pairing each request with the
# engine's own timing of it.
#   bash scripts/bench_sim_client.sh          # after a build (build/)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BIN=$BUILD/infergate
TOOL=$BUILD/tests/sim/server/ig_sim_client_overhead
ADDR=${ADDR:-127.0.0.9}
PORT=${PORT:-18390}
[ -x "$BIN" ] && [ -x "$TOOL" ] || { echo "build first: $BIN / $TOOL missing" >&2; exit 1; }
ulimit -n 65536 2>/dev/null || true

"$BIN" --log-level warn sim --profile tiny --host "$ADDR" --port "$PORT" --model test-model &
sim=$!
trap 'kill $sim 2>/dev/null || true; wait 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/$ADDR/$PORT") 2>/dev/null && break; sleep 0.05; done

echo "== bursts: N requests at once under --max-concurrency N"
"$TOOL" --host "$ADDR" --port "$PORT" --model test-model 1 100 2000
echo
echo "== steady: 125 req/s, about 2,000 streams open at once"
"$TOOL" --host "$ADDR" --port "$PORT" --model test-model --rate 125 --requests 6000 2000
echo
echo "== the simulator's token lateness over the whole run (GET /sim/stats)"
curl -s "http://$ADDR:$PORT/sim/stats"
echo
