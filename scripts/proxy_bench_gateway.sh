# Sourced by the proxy benchmarks (bench_proxy.sh, bench_proxy_instructions.sh,
# bench_proxy_syscalls.sh).

# proxy_bench_require BIN TOOL...: exits with a message unless BIN is executable and every
# TOOL is on the PATH (scripts/setup.sh installs them).
proxy_bench_require() {
  local bin=$1 tool
  shift
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "$tool missing: run scripts/setup.sh" >&2; exit 1; }
  done
  [ -x "$bin" ] || { echo "build first: $bin missing" >&2; exit 1; }
}

# proxy_bench_workdir NAME: makes the scratch directory $work (/tmp/infergate-NAME-*) and
# the array pids; on exit every process in pids is killed and $work removed.
proxy_bench_workdir() {
  work=$(mktemp -d "/tmp/infergate-$1-XXXXXX")
  pids=()
  trap proxy_bench_cleanup EXIT
}
proxy_bench_cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null
  rm -rf "$work"
}

# wait_port PORT: waits until ADDR:PORT accepts a connection, WAIT_TRIES (100) times 50 ms
# at most, else exits.
wait_port() {
  local _
  for _ in $(seq "${WAIT_TRIES:-100}"); do
    (exec 3<>"/dev/tcp/$ADDR/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "port $1 not up" >&2
  exit 1
}
# proxy_bench_gateway_yaml FILE ADDR GATEWAY_PORT UPSTREAM_PORT: writes the infergate
# config they share: one listener on ADDR:GATEWAY_PORT routing everything to a Service
# over one Pod at ADDR:UPSTREAM_PORT.
proxy_bench_gateway_yaml() {
  cat >"$1" <<YAML
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: bench, annotations: {infergate.io/bind-address: "$2"}}
spec: {gatewayClassName: x, listeners: [{name: http, protocol: HTTP, port: $3}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: all}
spec:
  parentRefs: [{name: bench, sectionName: http}]
  rules: [{backendRefs: [{name: up, port: 80}]}]
---
apiVersion: v1
kind: Service
metadata: {name: up}
spec: {selector: {app: up}, ports: [{port: 80, targetPort: $4}]}
---
apiVersion: v1
kind: Pod
metadata: {name: up-0, labels: {app: up}}
status: {podIP: $2}
YAML
}

# proxy_bench_nginx_confs DIR ADDR UPSTREAM_PORT PROXY_PORT: writes DIR/up.conf (an nginx
# upstream answering a 20-byte body on ADDR:UPSTREAM_PORT) and DIR/px.conf (nginx as a
# reverse proxy to it on ADDR:PROXY_PORT, one worker, no master, upstream keep-alive), each
# with its pid, logs and temp paths in DIR.
proxy_bench_nginx_confs() {
  local dir=$1 addr=$2 up=$3 px=$4
  temp_paths() { echo "client_body_temp_path $dir/$1-b; proxy_temp_path $dir/$1-p; fastcgi_temp_path $dir/$1-f; uwsgi_temp_path $dir/$1-u; scgi_temp_path $dir/$1-s;"; }
  cat >"$dir/up.conf" <<NGX
daemon off; worker_processes 1; pid $dir/up.pid; error_log $dir/up.err warn;
events { worker_connections 4096; }
http { access_log off; $(temp_paths up)
  server { listen $addr:$up; keepalive_requests 1000000;
    location / { return 200 'hello from upstream\n'; } } }
NGX
  cat >"$dir/px.conf" <<NGX
daemon off; master_process off; worker_processes 1; pid $dir/px.pid; error_log $dir/px.err warn;
events { worker_connections 4096; }
http { access_log off; $(temp_paths px)
  upstream up { server $addr:$up; keepalive 256; }
  server { listen $addr:$px; keepalive_requests 1000000;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
NGX
}
