#!/usr/bin/env bash
# The seed's experiment on a simulated pool, end to end, on this machine:
#   - three QwQ-32B TP2xPP2 groups: `infergate sim` replicas on 127.0.0.2-4:8000 (the
#     leader Pods of examples/seed/pods.yaml), running SCALE times faster than real time;
#   - `infergate serve` with the seed's own objects (examples/seed): :8080 is the plain
#     HTTPRoute to the Service (round robin), :8081 the InferencePool (inference routing);
#   - nginx round robin to the same servers on :8082, as a second baseline;
#   - `infergate bench` with the seed's benchmark_serving flags against each port, then
#     the side-by-side comparison and an HTML report.
#
#   bash scripts/demo.sh                 # build, then the full run (300 prompts)
#   bash scripts/demo.sh --quick         # 24 prompts, for CI
#   options: --no-build  --prompts N  --scale X  --out DIR
#            --pp N   the pipeline size the gateway is told (default 2, as the seed's
#                     groups; 1 turns off the infergate policy's virtual-engine mirror)
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=1
PROMPTS=300
SCALE=40
OUT=""
PP=2
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) PROMPTS=24 ;;
    --no-build) BUILD=0 ;;
    --prompts) PROMPTS=$2; shift ;;
    --scale) SCALE=$2; shift ;;
    --out) OUT=$2; shift ;;
    --pp) PP=$2; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "demo: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[ "$BUILD" = 1 ] && bash scripts/build.sh
BIN=${BIN:-build/infergate}
[ -x "$BIN" ] || { echo "demo: $BIN not built" >&2; exit 1; }
OUT=${OUT:-results/demo-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

wait_port() {  # address port
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "demo: $1:$2 did not come up (logs in $OUT)" >&2
  exit 1
}

# The servers keep simulated time; the gateway scrapes every 50 ms of *simulated* time,
# i.e. 50/SCALE ms of wall time, so metric staleness is what it would be in the cluster.
SCRAPE=$(awk -v s="$SCALE" 'BEGIN { v = 0.05 / s; if (v < 0.002) v = 0.002; printf "%.4f", v }')
# Re-dispatch after 7 s of simulated time without a first token (serve's default, scaled).
REDIRECT=$(awk -v s="$SCALE" 'BEGIN { printf "%.4f", 7 / s }')

echo "demo: 3 simulated QwQ-32B TP2xPP2 groups at ${SCALE}x real time; $PROMPTS prompts per run"
"$BIN" --log-level warn sim --host 127.0.0.2 --port 8000 --replicas 3 \
  --profile qwq-32b-tp2pp2 --model /models/QwQ-32B --served-model-name qwq \
  --time-scale "$SCALE" >"$OUT/sim.log" 2>&1 &
pids+=($!)
# The groups run vLLM V0 with --pipeline-parallel-size 2 (examples/seed/model-server.yaml);
# the seed's objects stay as they are, so the gateway is told on its command line (an
# InferencePool can say it with the annotation infergate.io/pipeline-parallel-size).
"$BIN" --log-level warn serve -f examples/seed --admin-address 127.0.0.1:0 \
  --scrape-interval "$SCRAPE" --redirect-after "$REDIRECT" --pipeline-parallel-size "$PP" \
  >"$OUT/gateway.log" 2>&1 &
pids+=($!)
for a in 127.0.0.2 127.0.0.3 127.0.0.4; do wait_port $a 8000; done
wait_port 127.0.0.1 8080
wait_port 127.0.0.1 8081

# nginx as a plain round-robin reverse proxy to the same servers.
mkdir -p "$OUT/nginx"
cat >"$OUT/nginx/nginx.conf" <<NGX
daemon off; worker_processes 1; pid $OUT/nginx/nginx.pid; error_log $OUT/nginx/error.log warn;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path $OUT/nginx/b; proxy_temp_path $OUT/nginx/p;
  fastcgi_temp_path $OUT/nginx/f; uwsgi_temp_path $OUT/nginx/u; scgi_temp_path $OUT/nginx/s;
  upstream groups { server 127.0.0.2:8000; server 127.0.0.3:8000; server 127.0.0.4:8000;
                    keepalive 64; }
  server { listen 127.0.0.1:8082; client_max_body_size 20m;
    location / { proxy_pass http://groups; proxy_http_version 1.1;
      proxy_set_header Connection ""; proxy_buffering off; proxy_read_timeout 24h; } } }
NGX
nginx -p "$OUT/nginx" -c "$OUT/nginx/nginx.conf" -e "$OUT/nginx/error.log" &
pids+=($!)
wait_port 127.0.0.1 8082

run_bench() {  # name port
  echo "demo: benchmark_serving flags against :$2 ($1)"
  "$BIN" --log-level warn bench --backend vllm --model /models/QwQ-32B --served-model-name qwq \
    --trust-remote-code --dataset-name random --random-prefix-len 1000 \
    --random-input-len 4000 --random-output-len 3000 --random-range-ratio 0.2 \
    --num-prompts "$PROMPTS" --max-concurrency 30 --host 127.0.0.1 --port "$2" \
    --endpoint /v1/completions --time-scale "$SCALE" --disable-tqdm \
    --save-result --result-dir "$OUT" --result-filename "$1.json" | tee "$OUT/$1.txt"
}
run_bench plain-8080 8080
run_bench inference-8081 8081
run_bench nginx-8082 8082

# How many of the inference route's requests were re-dispatched (silent past the limit).
ADMIN=$(sed -n 's/^admin //p' "$OUT/gateway.log" | head -1)
if [ -n "$ADMIN" ] && exec 3<>"/dev/tcp/${ADMIN%:*}/${ADMIN##*:}"; then
  printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
  MOVED=$(awk '/^infergate_pool_redirects_total/ { s += $2 } END { print s + 0 }' <&3)
  exec 3>&-
  echo "demo: the inference route re-dispatched $MOVED requests still waiting for a first token"
fi

echo
echo "demo: side by side (ratios to the plain round-robin route)"
"$BIN" bench compare "$OUT/plain-8080.json" "$OUT/inference-8081.json" "$OUT/nginx-8082.json" \
  --html "$OUT/report.html" | tee "$OUT/compare.txt"
echo
echo "demo: results, logs and report.html in $OUT"
