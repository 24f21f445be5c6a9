#!/usr/bin/env bash
# Proxy overhead benchmark: wrk against (1) an nginx upstream directly, (2) infergate in
# front of it, (3) nginx as a reverse proxy in front of it. Same machine, same run, so the
# numbers compare as ratios.
#   bash scripts/bench_proxy.sh            # defaults: 3 rounds of 5 s runs
#   DURATION=10 ROUNDS=5 WORKERS=1 bash scripts/bench_proxy.sh
# Each round runs the three paths back to back; the table shows medians over rounds, so a
# burst of noise on a shared machine hits one round of each path rather than one path.
# The proxies' CPU efficiency (requests per CPU-second of the proxy process, from
# /proc/PID/stat) is reported too: it is what throughput becomes when cores are scarce.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/proxy_bench_gateway.sh
source scripts/proxy_bench_gateway.sh
BIN=${BIN:-build/infergate}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
WORKERS=${WORKERS:-1}          # event loops / nginx workers of each proxy
LAT_CONNS=${LAT_CONNS:-1}      # connections for the latency runs
TPUT_CONNS=${TPUT_CONNS:-64}   # connections for the throughput runs
ADDR=127.0.0.1
UP_PORT=${UP_PORT:-18180}; IG_PORT=${IG_PORT:-18181}; NG_PORT=${NG_PORT:-18182}

proxy_bench_require "$BIN" wrk nginx
proxy_bench_workdir bench

nginx_conf() {  # $1 name, $2 server block
  cat >"$work/$1.conf" <<NGX
daemon off; worker_processes $3; pid $work/$1.pid; error_log $work/$1.err warn;
events { worker_connections 8192; }
http { access_log off; client_body_temp_path $work/$1-b; proxy_temp_path $work/$1-p;
  fastcgi_temp_path $work/$1-f; uwsgi_temp_path $work/$1-u; scgi_temp_path $work/$1-s;
  $2 }
NGX
  nginx -p "$work" -c "$work/$1.conf" -e "$work/$1.err" &
  pids+=($!)
}

# The upstream: a small fixed body.
nginx_conf upstream "server { listen $ADDR:$UP_PORT reuseport; keepalive_requests 1000000;
  location / { return 200 'hello from upstream\n'; } }" 1
# nginx as a reverse proxy with upstream keep-alive, as one would deploy it.
nginx_conf proxy "upstream up { server $ADDR:$UP_PORT; keepalive 256; }
  server { listen $ADDR:$NG_PORT reuseport; keepalive_requests 1000000;
  location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }" "$WORKERS"
proxy_bench_gateway_yaml "$work/gw.yaml" "$ADDR" "$IG_PORT" "$UP_PORT"
"$BIN" --log-level warn serve -f "$work/gw.yaml" --workers "$WORKERS" --no-admin >/dev/null &
IG_PID=$!
pids+=($IG_PID)
wait_port $UP_PORT; wait_port $NG_PORT; wait_port $IG_PORT
NG_PIDS=$(pgrep -P "$(cat "$work/proxy.pid")" | tr '\n' ' ')

# wrk --latency prints "50%  123.00us"; convert to microseconds.
to_us() { awk '{v=$1; if (v ~ /us$/) {sub(/us/,"",v); print v} else if (v ~ /ms$/) {sub(/ms/,"",v); print v*1000} else if (v ~ /s$/) {sub(/s/,"",v); print v*1000000} }'; }
ticks() { local t=0; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo $t; }
run() {  # $1 port, $2 conns -> "p50_us p99_us rps requests"
  local out; out=$(wrk -t1 -c"$2" -d"${DURATION}s" --latency "http://$ADDR:$1/" 2>&1)
  local p50 p99 rps n
  p50=$(echo "$out" | awk '$1=="50%"{print $2}' | to_us)
  p99=$(echo "$out" | awk '$1=="99%"{print $2}' | to_us)
  rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
  n=$(echo "$out" | awk '/requests in/{print $1}')
  echo "$p50 $p99 $rps $n"
}
# Warm up every path once.
for p in $UP_PORT $IG_PORT $NG_PORT; do wrk -t1 -c8 -d1s "http://$ADDR:$p/" >/dev/null; done

hz=$(getconf CLK_TCK)
rows=$work/rows
for r in $(seq "$ROUNDS"); do
  read -r d50 d99 drps _ < <(run $UP_PORT "$LAT_CONNS")
  read -r i50 i99 irps _ < <(run $IG_PORT "$LAT_CONNS")
  read -r n50 n99 nrps _ < <(run $NG_PORT "$LAT_CONNS")
  read -r _ _ dtp _ < <(run $UP_PORT "$TPUT_CONNS")
  a=$(ticks $IG_PID); read -r _ _ itp in_ < <(run $IG_PORT "$TPUT_CONNS"); b=$(ticks $IG_PID)
  ieff=$(awk -v n="$in_" -v t=$((b - a)) -v hz="$hz" 'BEGIN { printf "%.0f", n / (t / hz) }')
  # shellcheck disable=SC2086
  a=$(ticks $NG_PIDS); read -r _ _ ntp nn < <(run $NG_PORT "$TPUT_CONNS"); b=$(ticks $NG_PIDS)
  neff=$(awk -v n="$nn" -v t=$((b - a)) -v hz="$hz" 'BEGIN { printf "%.0f", n / (t / hz) }')
  echo "$d50 $d99 $drps $dtp $i50 $i99 $irps $itp $ieff $n50 $n99 $nrps $ntp $neff" >>"$rows"
done
# Median of column $1 over the rounds.
med() { awk -v c="$1" '{print $c}' "$rows" | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
read -r d50 d99 drps dtp i50 i99 irps itp ieff n50 n99 nrps ntp neff < <(
  for c in $(seq 14); do med "$c"; done | tr '\n' ' '
  echo)

echo "medians of $ROUNDS rounds of ${DURATION} s; $WORKERS worker(s) per proxy"
echo "| path | p50 (us) | p99 (us) | req/s at ${LAT_CONNS} conn | req/s at ${TPUT_CONNS} conns | req per proxy CPU-s |"
echo "|---|---|---|---|---|---|"
echo "| direct to upstream | $d50 | $d99 | $drps | $dtp | |"
echo "| infergate | $i50 | $i99 | $irps | $itp | $ieff |"
echo "| nginx reverse proxy | $n50 | $n99 | $nrps | $ntp | $neff |"
awk -v i50="$i50" -v d50="$d50" -v i99="$i99" -v d99="$d99" -v n50="$n50" -v n99="$n99" \
    -v itp="$itp" -v ntp="$ntp" -v ieff="$ieff" -v neff="$neff" 'BEGIN {
  printf("\ninfergate adds %.1f us p50 and %.1f us p99 over direct; nginx adds %.1f us p50 and %.1f us p99.\n", i50-d50, i99-d99, n50-d50, n99-d99);
  printf("infergate / nginx at %s conns: throughput %.2fx, requests per CPU-second %.2fx\n", "high", itp/ntp, ieff/neff) }'
