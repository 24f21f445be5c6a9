#!/usr/bin/env bash
# Kernel work per proxied request, for infergate and for nginx as a reverse proxy in front
# of the same nginx upstream, under the same wrk load (64 connections): syscalls, recvs
# that found nothing (EAGAIN), epoll_ctl calls and context switches per request (counted
# by perf's tracepoints, which barely perturb the run, unlike strace), and user / system
# CPU time per request (from /proc). Each proxy runs ROUNDS times, alternating.
#   bash scripts/bench_proxy_syscalls.sh          # after a build; needs perf (setup.sh)
#   ROUNDS=3 DURATION=5 bash scripts/bench_proxy_syscalls.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/proxy_bench_gateway.sh
source scripts/proxy_bench_gateway.sh
BIN=${BIN:-build/infergate}
DURATION=${DURATION:-4}
ROUNDS=${ROUNDS:-2}
ADDR=127.0.0.1
UP_PORT=${UP_PORT:-18380}; IG_PORT=${IG_PORT:-18381}; NG_PORT=${NG_PORT:-18382}
proxy_bench_require "$BIN" perf wrk nginx
proxy_bench_workdir sys

proxy_bench_nginx_confs "$work" "$ADDR" "$UP_PORT" "$NG_PORT"
proxy_bench_gateway_yaml "$work/gw.yaml" "$ADDR" "$IG_PORT" "$UP_PORT"
nginx -p "$work" -c "$work/up.conf" -e "$work/up.err" &
pids+=($!)
nginx -p "$work" -c "$work/px.conf" -e "$work/px.err" &
NG_PID=$!
pids+=("$NG_PID")
"$BIN" --log-level warn serve -f "$work/gw.yaml" --workers 1 --no-admin >/dev/null &
IG_PID=$!
pids+=("$IG_PID")
wait_port "$UP_PORT"; wait_port "$NG_PORT"; wait_port "$IG_PORT"
# infergate's event loop is its last thread; the others sleep.
IG_LOOP=/proc/$IG_PID/task/$(ls "/proc/$IG_PID/task" | sort -n | tail -1)
for p in $IG_PORT $NG_PORT; do wrk -t1 -c8 -d1s "http://$ADDR:$p/" >/dev/null; done

measure() {  # name pid stat-path port -> one row
  local name=$1 pid=$2 stat=$3 port=$4 n u0 s0 u1 s1
  read -r u0 s0 < <(awk '{print $14, $15}' "$stat")
  perf stat -x, -p "$pid" -o "$work/$name.perf" \
    -e raw_syscalls:sys_enter \
    -e raw_syscalls:sys_exit --filter 'ret == -11' \
    -e raw_syscalls:sys_enter --filter 'id == 233' \
    -e context-switches -- sleep "$DURATION" &
  local sp=$!
  n=$(wrk -t1 -c64 -d"${DURATION}s" "http://$ADDR:$port/" | awk '/requests in/{print $1}')
  wait $sp
  read -r u1 s1 < <(awk '{print $14, $15}' "$stat")
  awk -F, -v name="$name" -v n="$n" -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v hz="$(getconf CLK_TCK)" '
    !/^#/ && NF > 2 { v[++i] = $1 }
    END { printf "| %s | %d | %.2f | %.2f | %.2f | %.3f | %.2f | %.2f |\n", name, n, v[1] / n, v[2] / n,
          v[3] / n, v[4] / n, u / hz * 1e6 / n, s / hz * 1e6 / n }' "$work/$name.perf"
}
echo "64 connections, ${DURATION} s per run, $ROUNDS rounds"
echo "| proxy | requests | syscalls/req | EAGAIN/req | epoll_ctl/req | context switches/req | user µs/req | sys µs/req |"
echo "|---|---|---|---|---|---|---|---|"
for _ in $(seq "$ROUNDS"); do
  measure infergate "$IG_PID" "$IG_LOOP/stat" "$IG_PORT"
  measure nginx "$NG_PID" "/proc/$NG_PID/stat" "$NG_PORT"
done
