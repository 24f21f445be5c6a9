#!/usr/bin/env bash
# Tests deploy/grafana/infergate.json for real: Debian's prometheus scrapes a running
# gateway and two `infergate sim` servers under load, then every panel's PromQL is
# evaluated through Prometheus' HTTP API. Fails on any query that errors or returns no
# finite value (each panel is meant to have data under this load).
#   bash scripts/dashboard_check.sh [BIN] [LOAD_SECONDS]     (ctest: grafana_dashboard_check)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
BIN=$(realpath "${1:-$root/build/infergate}")
LOAD_SECONDS=${2:-40}
DASHBOARD=${DASHBOARD:-$root/deploy/grafana/infergate.json}
# shellcheck source=scripts/observe_stack.sh
source "$here/observe_stack.sh"
stack_require "$BIN" prometheus python3
stack_workdir dashboard
stack_start "$BIN"

prom_port=$(free_port 127.0.0.1)
cat >"$work/prometheus.yml" <<YAML
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
- job_name: infergate
  static_configs: [{targets: ["$ADDR:$ADMIN_PORT"]}]
- job_name: vllm
  static_configs: [{targets: ["${SIM_ADDRS[0]}:$SIM_PORT", "${SIM_ADDRS[1]}:$SIM_PORT"]}]
YAML
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" --log.level=warn >"$work/prom.out" 2>&1 &
pids+=($!)
for _ in $(seq 200); do
  curl -fs "http://127.0.0.1:$prom_port/-/ready" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "http://127.0.0.1:$prom_port/-/ready" >/dev/null || { cat "$work/prom.out" >&2; exit 1; }

stack_load "$LOAD_SECONDS"
echo "load for ${LOAD_SECONDS}s against $ADDR:$GW_PORT; prometheus on 127.0.0.1:$prom_port"
sleep "$LOAD_SECONDS"

python3 - "$DASHBOARD" "http://127.0.0.1:$prom_port" <<'PY'
import json, math, sys, urllib.parse, urllib.request
dashboard, prom = sys.argv[1], sys.argv[2]
d = json.load(open(dashboard))
panels = []
def walk(ps):
    for p in ps:
        panels.append(p)
        walk(p.get("panels", []))
walk(d["panels"])
# Grafana's built-in interval, as it would be at this scrape interval.
subst = {"$__rate_interval": "15s", "$__interval": "5s", "$__range": "1m"}
failures, checked = [], 0
for p in panels:
    for t in p.get("targets", []):
        expr = t["expr"]
        for k, v in subst.items():
            expr = expr.replace(k, v)
        q = urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(prom + "/api/v1/query?" + q, timeout=10) as r:
                res = json.load(r)
        except Exception as e:
            body = getattr(e, "read", lambda: b"")().decode(errors="replace")
            failures.append(f"{p['title']!r} {t['refId']}: query failed: {e} {body}")
            continue
        checked += 1
        values = [float(s["value"][1]) for s in res["data"]["result"]]
        finite = [v for v in values if math.isfinite(v)]
        if res.get("status") != "success":
            failures.append(f"{p['title']!r} {t['refId']}: {res}")
        elif not finite:
            failures.append(f"{p['title']!r} {t['refId']}: no data ({len(values)} series) for {expr}")
        else:
            print(f"ok  {p['title']} [{t['refId']}]: {len(finite)} series")
print(f"{checked} queries checked, {len(failures)} failed")
for f in failures:
    print("FAIL", f)
sys.exit(1 if failures or checked == 0 else 0)
PY
