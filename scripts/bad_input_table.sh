#!/usr/bin/env bash
# Compares infergate's answers to malformed client input with nginx's: nginx (Debian's,
# as a reverse proxy with the limits infergate uses: 4 MiB bodies, 8 KiB request lines)
# and infergate (an InferencePool route to the test upstream standing in for a model
# server with model "qwq") each get every case of scripts/bad_input_probe.py, and a
# markdown table (case | nginx | infergate) is printed. Needs build/ (infergate and
# tests/support/test_upstream). Binds 127.0.0.1 on free ports; stops what it starts.
#   scripts/bad_input_table.sh > /tmp/table.md
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
up=$(free_port); px=$(free_port); model=$(free_port)

cat >"$work/nginx.conf" <<NGX
daemon off; worker_processes 1; pid $work/nginx.pid; error_log $work/nginx.err warn;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $work/b; proxy_temp_path $work/p;
  fastcgi_temp_path $work/f; uwsgi_temp_path $work/u; scgi_temp_path $work/s;
  client_header_timeout 3s; client_body_timeout 3s; client_max_body_size 4m;
  client_body_buffer_size 8m;
  server { listen 127.0.0.1:$up; location / { return 200 'up\n'; } }
  server { listen 127.0.0.1:$px;
    location / { proxy_pass http://127.0.0.1:$up; proxy_http_version 1.1;
                 proxy_set_header Connection ""; } } }
NGX
/usr/sbin/nginx -p "$work" -c "$work/nginx.conf" -e "$work/nginx.err" &
pids+=($!)

"$BUILD_DIR/tests/support/test_upstream" --address 127.0.0.1 --port "$model" --name s0 \
  --models qwq >/dev/null &
pids+=($!)
cat >"$work/config.yaml" <<YAML
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, annotations: {infergate.io/bind-address: 127.0.0.1}}
spec:
  listeners: [{name: llm, protocol: HTTP, port: 0}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [{group: inference.networking.x-k8s.io, kind: InferencePool, name: pool}]
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferencePool
metadata: {name: pool}
spec: {selector: {app: llm}, targetPortNumber: $model}
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: {name: qwq}
spec: {modelName: qwq, poolRef: {name: pool}}
---
apiVersion: v1
kind: Pod
metadata: {name: llm-0, labels: {app: llm}}
status: {podIP: 127.0.0.1}
YAML
"$BUILD_DIR/infergate" --log-level error serve -f "$work/config.yaml" --workers 2 \
  --no-admin --read-timeout 3 --idle-timeout 3 >"$work/gw.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q "listening default/gw/llm" "$work/gw.out" 2>/dev/null && break; sleep 0.1; done
gw=$(grep -o "listening default/gw/llm.*" "$work/gw.out" | grep -o '[0-9]*$')
sleep 1

python3 scripts/bad_input_probe.py 127.0.0.1 "$px" --timeout 5 >"$work/nginx.tsv"
python3 scripts/bad_input_probe.py 127.0.0.1 "$gw" --timeout 5 >"$work/infergate.tsv"
echo "| case | nginx $(/usr/sbin/nginx -v 2>&1 | sed 's/.*nginx\///') | infergate |"
echo "|---|---|---|"
paste "$work/nginx.tsv" "$work/infergate.tsv" | awk -F'\t' '{
  n = $2 " " $3 ($4 != "" ? " " $4 : ""); g = $6 " " $7 ($8 != "" ? " " $8 : "");
  printf "| %s | %s | %s |\n", $1, n, g }'
