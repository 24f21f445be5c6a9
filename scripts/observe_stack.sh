# Sourced by the observability checks (live_page_check.sh, dashboard_check.sh): a running
# stack on this machine's loopback: `infergate sim` model servers, infergate in front of
# them (an InferencePool, a Service route and the admin listener) and steady load.
# Addresses are 127.77.x.y picked from the PID, ports are free ones, so parallel runs and
# the demo (127.0.0.2-4:8000) never collide.

# stack_require BIN TOOL...: exits unless BIN is executable and every TOOL is on the PATH.
stack_require() {
  local bin=$1 tool
  shift
  [ -x "$bin" ] || { echo "build first: $bin missing" >&2; exit 1; }
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "$tool missing: run scripts/setup.sh" >&2; exit 1; }
  done
}

# stack_workdir NAME: makes $work and the array pids; on exit every process in pids is
# stopped and $work removed (unless KEEP_WORK=1).
stack_workdir() {
  work=$(mktemp -d "/tmp/infergate-$1-XXXXXX")
  pids=()
  trap stack_cleanup EXIT
}
stack_cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null
  # Chromium's helper processes are not this shell's children and may still write to the
  # profile in $work: end whatever names this run's (unique) work directory, and never let
  # the clean-up decide the check's exit status.
  pkill -f -- "$work/" 2>/dev/null || true
  [ "${KEEP_WORK:-0}" = 1 ] && return 0
  rm -rf "$work" 2>/dev/null || { sleep 1; rm -rf "$work" 2>/dev/null || true; }
}

# free_port ADDR: a TCP port free on ADDR now.
free_port() {
  python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1],0)); print(s.getsockname()[1])' "$1"
}

# wait_for_line FILE TEXT [TRIES]: waits (50 ms steps, 200 by default) until FILE has a
# line containing TEXT, and prints that line.
wait_for_line() {
  local _
  for _ in $(seq "${3:-200}"); do
    if grep -q -- "$2" "$1" 2>/dev/null; then grep -m1 -- "$2" "$1"; return 0; fi
    sleep 0.05
  done
  echo "timed out waiting for '$2' in $1" >&2
  cat "$1" >&2 || true
  exit 1
}

# stack_start BIN [SERVE_ARGS...]: starts two sim replicas (model "tiny", 4x faster than
# the wall clock) and infergate; sets ADDR, SIM_ADDRS, SIM_PORT, GW_PORT, ADMIN_PORT.
stack_start() {
  local bin=$1
  shift
  local base=$(( ($$ % 200) + 20 ))
  ADDR=127.77.$base.1
  SIM_ADDRS=(127.77.$base.11 127.77.$base.12)
  SIM_PORT=$(free_port "${SIM_ADDRS[0]}")
  "$bin" sim --profile tiny --host "${SIM_ADDRS[0]}" --port "$SIM_PORT" --replicas 2 \
    --time-scale 4 >"$work/sim.out" 2>"$work/sim.err" &
  pids+=($!)
  wait_for_line "$work/sim.out" "${SIM_ADDRS[1]}" >/dev/null
  mkdir -p "$work/config"
  cat >"$work/config/gateway.yaml" <<YAML
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, annotations: {infergate.io/bind-address: "$ADDR"}}
spec: {gatewayClassName: x, listeners: [{name: llm, protocol: HTTP, port: 0}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: llm}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /v1}}]
    backendRefs: [{group: inference.networking.x-k8s.io, kind: InferencePool, name: pool}]
  - matches: [{path: {type: PathPrefix, value: /spare}}]
    backendRefs: [{group: inference.networking.x-k8s.io, kind: InferencePool, name: spare}]
  - backendRefs: [{name: plain, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: plain}
spec: {selector: {role: plain}, ports: [{port: 80, targetPort: $SIM_PORT}]}
---
apiVersion: v1
kind: Pod
metadata: {name: plain-0, labels: {role: plain}}
status: {podIP: ${SIM_ADDRS[0]}}
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferencePool
metadata: {name: pool}
spec: {selector: {app: llm}, targetPortNumber: $SIM_PORT, extensionRef: {name: epp}}
---
# A pool whose selector matches no Pod: its requests are dropped (503, no endpoints).
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferencePool
metadata: {name: spare}
spec: {selector: {app: none}, targetPortNumber: $SIM_PORT, extensionRef: {name: epp}}
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: {name: chat}
spec: {modelName: chat, criticality: Critical, poolRef: {name: pool}, targetModels: [{name: tiny}]}
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: {name: batch}
spec: {modelName: batch, criticality: Sheddable, poolRef: {name: pool}, targetModels: [{name: tiny}]}
---
apiVersion: v1
kind: Pod
metadata: {name: llm-0, labels: {app: llm}}
status: {podIP: ${SIM_ADDRS[0]}}
---
apiVersion: v1
kind: Pod
metadata: {name: llm-1, labels: {app: llm}}
status: {podIP: ${SIM_ADDRS[1]}}
YAML
  "$bin" --log-level warn serve -f "$work/config" --workers 1 --admin-address "$ADDR:0" \
    --scrape-interval 0.05 "$@" >"$work/gw.out" 2>"$work/gw.err" &
  pids+=($!)
  local line
  line=$(wait_for_line "$work/gw.out" "listening default/gw/llm")
  GW_PORT=${line##*:}
  line=$(wait_for_line "$work/gw.out" "admin ")
  ADMIN_PORT=${line##*:}
}

# stack_load SECONDS: background load for SECONDS: streaming and plain completions of
# models chat and batch (8 concurrent clients), a few requests for a model nobody serves,
# a few to the pool without endpoints and a few on the Service route.
stack_load() {
  python3 - "$ADDR" "$GW_PORT" "$1" >"$work/load.out" 2>&1 <<'PY' &
import http.client, json, sys, threading, time
addr, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
end = time.time() + seconds
def client(i):
    n = 0
    while time.time() < end:
        n += 1
        model = "chat" if (i + n) % 3 else "batch"
        if n % 17 == 0:
            model = "not-served-%d" % n
        body = {"model": model, "prompt": "shared system prompt " * 8 + "question %d.%d" % (i, n),
                "max_tokens": 16 + (n * 7) % 48, "stream": n % 2 == 0}
        try:
            c = http.client.HTTPConnection(addr, port, timeout=30)
            if n % 23 == 0:
                c.request("GET", "/health")
            elif n % 19 == 0:
                c.request("POST", "/spare/v1/completions", json.dumps(body),
                          {"content-type": "application/json"})
            else:
                c.request("POST", "/v1/completions", json.dumps(body),
                          {"content-type": "application/json"})
            c.getresponse().read()
            c.close()
        except Exception as e:
            print("client", i, "error", e, flush=True)
            time.sleep(0.1)
threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
for t in threads: t.start()
for t in threads: t.join()
PY
  pids+=($!)
}
