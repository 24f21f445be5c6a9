#!/usr/bin/env bash
# The access log's CPU cost per request, free of machine noise: user-space instructions
# counted by valgrind's callgrind for infergate without and with `--access-log FILE`, in
# front of the same nginx upstream, loaded by wrk (counted after a warm-up). The kernel's share (the writer's write(2)) is not counted:
# scripts/bench_access_log.sh measures wall-clock throughput and CPU time.
#   bash scripts/bench_access_log_instructions.sh
#   BINS="old/infergate build/infergate" bash scripts/bench_access_log_instructions.sh
#   KEEP=DIR bash scripts/bench_access_log_instructions.sh   # keeps the profiles
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/proxy_bench_gateway.sh
source scripts/proxy_bench_gateway.sh
BINS=${BINS:-${BIN:-build/infergate}}
ADDR=127.0.0.1
UP_PORT=${UP_PORT:-18380}; IG_PORT=${IG_PORT:-18381}
WAIT_TRIES=600  # a server under valgrind starts slowly
for b in $BINS; do proxy_bench_require "$b" valgrind wrk nginx; done
proxy_bench_workdir accessinstr

proxy_bench_nginx_confs "$work" "$ADDR" "$UP_PORT" 18383
proxy_bench_gateway_yaml "$work/gw.yaml" "$ADDR" "$IG_PORT" "$UP_PORT"
nginx -p "$work" -c "$work/up.conf" -e "$work/up.err" &
pids+=($!)
wait_port $UP_PORT

measure() {  # name command...
  local name=$1; shift
  # Counting starts after a warm-up: start-up and first connections are left out.
  valgrind --tool=callgrind --instr-atstart=no \
    --callgrind-out-file="${KEEP:-$work}/$name.cg" "$@" >/dev/null 2>"$work/$name.vg" &
  local pid=$!
  pids+=($pid)
  wait_port "$IG_PORT"
  wrk -t1 -c16 -d2s "http://$ADDR:$IG_PORT/" >/dev/null
  callgrind_control -i on "$pid" >/dev/null && sleep 1
  local n
  n=$(wrk -t1 -c16 -d"${DURATION:-6}s" "http://$ADDR:$IG_PORT/" | awk '/requests in/{print $1}')
  callgrind_control -i off "$pid" >/dev/null
  kill "$pid"; wait "$pid" 2>/dev/null || true
  local total; total=$(awk '/^totals:/{print $2}' "${KEEP:-$work}/$name.cg")
  echo "$name $n $total" | awk '{printf "%-14s %8d requests  %6.0f instructions per request\n", $1, $2, $3 / $2}'
}
echo "# $(date -u +%FT%TZ) load average $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"
i=0
for b in $BINS; do
  i=$((i + 1))
  measure "bin$i-log-off" "$b" --log-level warn serve -f "$work/gw.yaml" --workers 1 --no-admin
  measure "bin$i-log-on" "$b" --log-level warn serve -f "$work/gw.yaml" --workers 1 --no-admin \
    --access-log "$work/access$i.log"
done
echo "# bin1..: $BINS"
