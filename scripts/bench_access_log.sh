#!/usr/bin/env bash
# Access log cost on the proxy path: wrk against infergate in front of an nginx upstream,
# once without the access log and once with `--access-log FILE` (every request logged),
# alternating within each round so machine noise hits both alike. Reports medians and the
# ratio (logged / not logged) of throughput and per-CPU-second efficiency.
#   bash scripts/bench_access_log.sh            # 3 rounds of 5 s, 64 connections
#   DURATION=10 ROUNDS=5 bash scripts/bench_access_log.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/proxy_bench_gateway.sh
source scripts/proxy_bench_gateway.sh
BIN=${BIN:-build/infergate}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
WORKERS=${WORKERS:-1}
CONNS=${CONNS:-64}
ADDR=127.0.0.1
UP_PORT=${UP_PORT:-18190}; OFF_PORT=${OFF_PORT:-18191}; ON_PORT=${ON_PORT:-18192}

proxy_bench_require "$BIN" wrk nginx
proxy_bench_workdir accesslog

cat >"$work/up.conf" <<NGX
daemon off; worker_processes 1; pid $work/up.pid; error_log $work/up.err warn;
events { worker_connections 8192; }
http { access_log off; client_body_temp_path $work/b; proxy_temp_path $work/p;
  fastcgi_temp_path $work/f; uwsgi_temp_path $work/u; scgi_temp_path $work/s;
  server { listen $ADDR:$UP_PORT reuseport; keepalive_requests 1000000;
    location / { return 200 'hello from upstream\n'; } } }
NGX
nginx -p "$work" -c "$work/up.conf" -e "$work/up.err" &
pids+=($!)
proxy_bench_gateway_yaml "$work/off.yaml" "$ADDR" "$OFF_PORT" "$UP_PORT"
proxy_bench_gateway_yaml "$work/on.yaml" "$ADDR" "$ON_PORT" "$UP_PORT"
"$BIN" --log-level warn serve -f "$work/off.yaml" --workers "$WORKERS" --no-admin >/dev/null &
OFF_PID=$!
pids+=($OFF_PID)
"$BIN" --log-level warn serve -f "$work/on.yaml" --workers "$WORKERS" --no-admin \
  --access-log "$work/access.log" >/dev/null &
ON_PID=$!
pids+=($ON_PID)
wait_port $UP_PORT; wait_port $OFF_PORT; wait_port $ON_PORT

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run() {  # $1 port, $2 pid -> "rps requests cpu_ticks"
  local a b out
  a=$(ticks "$2")
  out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" "http://$ADDR:$1/" 2>&1)
  b=$(ticks "$2")
  echo "$(echo "$out" | awk '/Requests\/sec/{print $2}') $(echo "$out" | awk '/requests in/{print $1}') $((b - a))"
}
for p in $OFF_PORT $ON_PORT; do wrk -t1 -c8 -d1s "http://$ADDR:$p/" >/dev/null; done
hz=$(getconf CLK_TCK)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
rows=$work/rows
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then
    read -r orps on_ ot < <(run $OFF_PORT $OFF_PID); read -r lrps ln lt < <(run $ON_PORT $ON_PID)
  else
    read -r lrps ln lt < <(run $ON_PORT $ON_PID); read -r orps on_ ot < <(run $OFF_PORT $OFF_PID)
  fi
  oeff=$(awk -v n="$on_" -v t="$ot" -v hz="$hz" 'BEGIN { printf "%.0f", n / (t / hz) }')
  leff=$(awk -v n="$ln" -v t="$lt" -v hz="$hz" 'BEGIN { printf "%.0f", n / (t / hz) }')
  echo "$orps $oeff $lrps $leff" >>"$rows"
done
med() { awk -v c="$1" '{print $c}' "$rows" | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
read -r orps oeff lrps leff < <(for c in 1 2 3 4; do med "$c"; done | tr '\n' ' '; echo)
sleep 0.5
lines=$(wc -l <"$work/access.log")
echo "medians of $ROUNDS rounds of ${DURATION} s, $CONNS connections, $WORKERS worker(s);" \
  "load average $load_before before, $(cut -d' ' -f1-3 /proc/loadavg) after ($(nproc) cores)"
echo "| infergate | req/s | req per CPU-s |"
echo "|---|---|---|"
echo "| access log off | $orps | $oeff |"
echo "| access log to a file | $lrps | $leff |"
awk -v o="$orps" -v l="$lrps" -v oe="$oeff" -v le="$leff" -v n="$lines" 'BEGIN {
  printf("\nlogged / not logged: throughput %.3fx, requests per CPU-second %.3fx (%d lines written)\n", l/o, le/oe, n) }'
