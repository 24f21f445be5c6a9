#!/usr/bin/env bash
# CPU cost per proxied request, free of machine noise: user-space instructions counted by
# valgrind's callgrind, for infergate and for nginx as a reverse proxy, each in front of
# the same nginx upstream (a small fixed body) and loaded by wrk for the same time. The
# count includes start-up, spread over all requests (a few hundred instructions here).
#   bash scripts/bench_proxy_instructions.sh        # after a build
#   KEEP=DIR bash scripts/bench_proxy_instructions.sh   # keeps the profiles for callgrind_annotate
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/proxy_bench_gateway.sh
source scripts/proxy_bench_gateway.sh
BIN=${BIN:-build/infergate}
ADDR=127.0.0.1
UP_PORT=${UP_PORT:-18280}; IG_PORT=${IG_PORT:-18281}; NG_PORT=${NG_PORT:-18283}
WAIT_TRIES=400  # a server under valgrind starts slowly
proxy_bench_require "$BIN" valgrind wrk nginx
proxy_bench_workdir instr

proxy_bench_nginx_confs "$work" "$ADDR" "$UP_PORT" "$NG_PORT"
proxy_bench_gateway_yaml "$work/gw.yaml" "$ADDR" "$IG_PORT" "$UP_PORT"
nginx -p "$work" -c "$work/up.conf" -e "$work/up.err" &
pids+=($!)
wait_port $UP_PORT

measure() {  # name port command...
  local name=$1 port=$2; shift 2
  valgrind --tool=callgrind --callgrind-out-file="${KEEP:-$work}/$name.cg" "$@" >/dev/null 2>"$work/$name.vg" &
  local pid=$!
  pids+=($pid)
  wait_port "$port"
  local n=0 r
  for d in 2 5; do
    r=$(wrk -t1 -c16 -d${d}s "http://$ADDR:$port/" | awk '/requests in/{print $1}')
    n=$((n + r))
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
  local total; total=$(awk '/^totals:/{print $2}' "${KEEP:-$work}/$name.cg")
  echo "$name $n $total" | awk '{printf "%-10s %8d requests  %6.0f instructions per request\n", $1, $2, $3 / $2}'
}
measure infergate $IG_PORT "$BIN" --log-level warn serve -f "$work/gw.yaml" --workers 1 --no-admin
measure nginx $NG_PORT nginx -p "$work" -c "$work/px.conf" -e "$work/px.err"
