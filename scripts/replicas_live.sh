#!/usr/bin/env bash
# Live replica sync: the demo's servers and workload (scripts/demo.sh) behind R
# `infergate serve` replicas that share their routing events over a real nats-server, with
# the clients spread over the replicas by an nginx in front (random per connection, as an
# L4 balancer would). Runs the plain round-robin route (:8080) and the inference route
# (:8081) through it and prints their ratios; optionally kills NATS mid-run and starts it
# again. Addresses: servers on 127.0.9.2-4:8000, replicas on 127.0.10.<k>, the balancer on
# 127.0.10.100 (not the demo's 127.0.0.2-4:8000). Each replica's access log (endpoint, queue
# wait, time to first byte, re-dispatches per request) is $OUT/access-<k>.jsonl.
#
#   scripts/replicas_live.sh [--replicas R] [--no-sync] [--no-queue-order] [--prompts N]
#                            [--scale S] [--kill-nats-after SECONDS] [--probe N]
#                            [--idle K] [--out DIR]
# (--no-queue-order: sync without the pool-wide release order, serve --no-replica-queue-order;
# --probe N: instead of the benchmark, N one-token completions one at a time through
# replica 1, then how long after each dispatch replica 2 had it: the idle sync delay;
# --idle K: the last K replicas run, scrape and sync but get no clients: the CPU and
# scrape load of R replicas with the routing of R-K)
set -euo pipefail
cd "$(dirname "$0")/.."

REPLICAS=2
SYNC=1
QUEUE_ORDER=1
PROMPTS=300
SCALE=40
KILL_AFTER=0
PROBE=0
IDLE=0
OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --replicas) REPLICAS=$2; shift ;;
    --no-sync) SYNC=0 ;;
    --no-queue-order) QUEUE_ORDER=0 ;;
    --prompts) PROMPTS=$2; shift ;;
    --scale) SCALE=$2; shift ;;
    --kill-nats-after) KILL_AFTER=$2; shift ;;
    --probe) PROBE=$2; shift ;;
    --idle) IDLE=$2; shift ;;
    --out) OUT=$2; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "replicas_live: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[ "$PROBE" = 0 ] || { [ "$REPLICAS" -ge 2 ] && [ "$SYNC" = 1 ]; } ||
  { echo "replicas_live: --probe needs 2 or more replicas with sync" >&2; exit 2; }
[ "$IDLE" -lt "$REPLICAS" ] || { echo "replicas_live: --idle must leave a replica for the clients" >&2; exit 2; }
BIN=${BIN:-build/infergate}
NATS=${NATS:-$(command -v nats-server || echo /usr/sbin/nats-server)}
[ -x "$BIN" ] || { echo "replicas_live: $BIN not built" >&2; exit 1; }
OUT=${OUT:-results/replicas-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

pids=()
nats_pid=""
cleanup() {
  for p in "${pids[@]}" $nats_pid; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

wait_port() {  # address port
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "replicas_live: $1:$2 did not come up (logs in $OUT)" >&2
  exit 1
}
metrics() {  # admin address:port
  exec 3<>"/dev/tcp/${1%:*}/${1##*:}" && printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3 && cat <&3
  exec 3>&-
}

# Peers' dispatches in a replica's metrics (file): how long after them they reached its
# ledger (real time, and on the servers' clock, where the routing sees it: S times longer).
sync_delay() {
  awk -v s="$SCALE" -F'[ {}]' '
    /^infergate_replica_sync_dispatch_delay_seconds_bucket/ {
      le = $0; sub(/.*le="/, "", le); sub(/".*/, "", le); n_b++; b_le[n_b] = le; b_c[n_b] = $NF }
    /^infergate_replica_sync_dispatch_delay_seconds_sum/ { sum = $NF }
    /^infergate_replica_sync_dispatch_delay_seconds_count/ { n = $NF }
    function q(f,  i) { for (i = 1; i <= n_b; i++) if (b_c[i] >= f * n) return b_le[i]; return "+Inf" }
    END { if (n > 0) printf "  peers\47 dispatches applied after %.2f ms on average (%.0f ms on the servers\47 clock), median <= %s s, P90 <= %s s; %d dispatches\n", 1e3 * sum / n, 1e3 * s * sum / n, q(0.5), q(0.9), n }' \
    "$1" || true
}

NATS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start_nats() {
  "$NATS" -a 127.0.0.1 -p "$NATS_PORT" >>"$OUT/nats.log" 2>&1 &
  nats_pid=$!
  wait_port 127.0.0.1 "$NATS_PORT"
}
[ "$SYNC" = 1 ] && start_nats

SCRAPE=$(awk -v s="$SCALE" 'BEGIN { v = 0.05 / s; if (v < 0.002) v = 0.002; printf "%.4f", v }')
REDIRECT=$(awk -v s="$SCALE" 'BEGIN { printf "%.4f", 7 / s }')
# The replicas' flush interval (serve's default 2 ms) on the servers' clock, as the scrape
# and redirect intervals are: unscaled, at 40x it would batch 80 simulated ms of news.
FLUSH=$(awk -v s="$SCALE" 'BEGIN { printf "%.4f", 2 / s }')
"$BIN" --log-level warn sim --host 127.0.9.2 --port 8000 --replicas 3 \
  --profile qwq-32b-tp2pp2 --model /models/QwQ-32B --served-model-name qwq \
  --time-scale "$SCALE" >"$OUT/sim.log" 2>&1 &
pids+=($!)
for a in 127.0.9.2 127.0.9.3 127.0.9.4; do wait_port $a 8000; done

upstream_plain=""
upstream_inference=""
for k in $(seq "$REPLICAS"); do
  addr=127.0.10.$k
  cfg="$OUT/config-$k"
  mkdir -p "$cfg"
  cp examples/seed/*.yaml "$cfg/"
  sed -i "s/bind-address: 127.0.0.1/bind-address: $addr/" "$cfg/gateway.yaml"
  sed -i 's/127\.0\.0\.\([234]\)\b/127.0.9.\1/g' "$cfg/pods.yaml"
  sync_flags=()
  [ "$SYNC" = 1 ] && sync_flags=(--replica-sync "nats://127.0.0.1:$NATS_PORT" --replica-id "gw-$k"
    --replica-sync-flush "$FLUSH")
  [ "$SYNC" = 1 ] && [ "$QUEUE_ORDER" = 0 ] && sync_flags+=(--no-replica-queue-order)
  "$BIN" --log-level info serve -f "$cfg" --admin-address "$addr:0" --scrape-interval "$SCRAPE" \
    --redirect-after "$REDIRECT" --pipeline-parallel-size 2 "${sync_flags[@]}" \
    --access-log "$OUT/access-$k.jsonl" >"$OUT/gateway-$k.log" 2>&1 &
  pids+=($!)
  wait_port "$addr" 8080
  wait_port "$addr" 8081
  [ "$k" -gt $((REPLICAS - IDLE)) ] && continue  # runs, but no clients
  upstream_plain+="server $addr:8080; "
  upstream_inference+="server $addr:8081; "
done

mkdir -p "$OUT/nginx"
cat >"$OUT/nginx/nginx.conf" <<NGX
daemon off; worker_processes 1; pid $OUT/nginx/nginx.pid; error_log $OUT/nginx/error.log warn;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path $OUT/nginx/b; proxy_temp_path $OUT/nginx/p;
  fastcgi_temp_path $OUT/nginx/f; uwsgi_temp_path $OUT/nginx/u; scgi_temp_path $OUT/nginx/s;
  upstream plain { random; $upstream_plain }
  upstream inference { random; $upstream_inference }
  server { listen 127.0.10.100:8080; client_max_body_size 20m;
    location / { proxy_pass http://plain; proxy_http_version 1.1;
      proxy_buffering off; proxy_read_timeout 24h; } }
  server { listen 127.0.10.100:8081; client_max_body_size 20m;
    location / { proxy_pass http://inference; proxy_http_version 1.1;
      proxy_buffering off; proxy_read_timeout 24h; } } }
NGX
nginx -p "$OUT/nginx" -c "$OUT/nginx/nginx.conf" -e "$OUT/nginx/error.log" &
pids+=($!)
wait_port 127.0.10.100 8080
wait_port 127.0.10.100 8081

run_bench() {  # name port
  "$BIN" --log-level warn bench --backend vllm --model /models/QwQ-32B --served-model-name qwq \
    --trust-remote-code --dataset-name random --random-prefix-len 1000 \
    --random-input-len 4000 --random-output-len 3000 --random-range-ratio 0.2 \
    --num-prompts "$PROMPTS" --max-concurrency 30 --host 127.0.10.100 --port "$2" \
    --endpoint /v1/completions --time-scale "$SCALE" --disable-tqdm \
    --save-result --result-dir "$OUT" --result-filename "$1.json" >"$OUT/$1.txt"
}
if [ "$PROBE" != 0 ]; then
  "$BIN" --log-level warn bench --backend vllm --model /models/QwQ-32B --served-model-name qwq \
    --trust-remote-code --dataset-name random --random-input-len 200 --random-output-len 1 \
    --num-prompts "$PROBE" --max-concurrency 1 --host 127.0.10.1 --port 8081 \
    --endpoint /v1/completions \
    --time-scale "$SCALE" --disable-tqdm >"$OUT/probe.txt"
  sleep 0.2
  admin=$(sed -n 's/^admin //p' "$OUT/gateway-2.log" | head -1)
  metrics "$admin" | grep -E '^infergate_replica_sync' >"$OUT/metrics-2.txt" || true
  echo "replicas_live: $PROBE one-token completions through replica 1; replica 2:"
  sync_delay "$OUT/metrics-2.txt"
  exit 0
fi
echo "replicas_live: $REPLICAS replicas ($IDLE without clients), sync $SYNC, queue order $QUEUE_ORDER, $PROMPTS prompts at ${SCALE}x; results in $OUT"
run_bench plain 8080
if [ "$SYNC" = 1 ] && [ "$KILL_AFTER" != 0 ]; then
  ( sleep "$KILL_AFTER"; kill "$nats_pid"; echo "NATS killed at +${KILL_AFTER}s" >>"$OUT/events.log"
    sleep 3; "$NATS" -a 127.0.0.1 -p "$NATS_PORT" >>"$OUT/nats.log" 2>&1 & echo $! >"$OUT/nats2.pid"
    echo "NATS restarted at +$((KILL_AFTER + 3))s" >>"$OUT/events.log" ) &
fi
run_bench inference 8081
[ -f "$OUT/nats2.pid" ] && pids+=("$(cat "$OUT/nats2.pid")")
"$BIN" bench compare "$OUT/plain.json" "$OUT/inference.json" | tee "$OUT/compare.txt"
for k in $(seq "$REPLICAS"); do
  admin=$(sed -n 's/^admin //p' "$OUT/gateway-$k.log" | head -1)
  metrics "$admin" | grep -E '^infergate_replica_sync|^infergate_pool_requests_total' \
    >"$OUT/metrics-$k.txt" || true
  echo "replica $k:"; grep -E 'connected|per_request|peer_state_age|dropped|invalid|received|queue_order' \
    "$OUT/metrics-$k.txt" | sed 's/^/  /' || true
  sync_delay "$OUT/metrics-$k.txt"
done
grep -h "replica sync" "$OUT"/gateway-*.log | sort | uniq -c || true
