#!/usr/bin/env python3
"""Many concurrent SSE streams through one gateway, and the delay it adds per chunk.

Everything on the data path is C++ (bench/stream_load.cc, one thread per process): slow
streaming upstreams (`stream_load upstream`: every POST gets `--chunks` events, one every
`--interval-ms`, each stamped with the wall clock as it is written), the gateway in front
of them, and a client (`stream_load client`) that opens `--streams` streams, spread over
`--ramp` seconds, and takes each chunk's delay as its kernel receive timestamp minus the
upstream's stamp. This script only starts the processes, samples the gateway's RSS and
descriptors from /proc, and prints one JSON summary.

Two runs of the same client: straight to the upstreams (the baseline: upstream, loopback
and client) and through the gateway; the gateway's added delay is their difference at
each percentile. --route pool puts the upstreams behind an InferencePool (the inference
path: body parsing, scheduling, the response's model/usage scan); --route service behind
a Service (the plain proxy).

  scripts/bench_streams.py --streams 10000 --chunks 30 --interval-ms 1000 --ramp 15
  scripts/bench_streams.py --streams 200 --chunks 5 --interval-ms 100 --ramp 1 --check
Exits 1 when a stream failed or the gateway died (and, with --check, when a through-
gateway stream failed or the gateway's RSS passed --max-rss-mb).
"""
import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

GW_ADDR = "127.78.0.1"
UPSTREAM_ADDRS = ["127.78.0.2", "127.78.0.3"]


def free_port(addr):
    s = socket.socket()
    s.bind((addr, 0))
    p = s.getsockname()[1]
    s.close()
    return p


def gateway_config(gw_port, up_port, route):
    docs = [f"""apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, annotations: {{infergate.io/bind-address: {GW_ADDR}}}}}
spec:
  listeners: [{{name: web, protocol: HTTP, port: {gw_port}}}]"""]
    if route == "pool":
        docs.append("""apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [{group: inference.networking.x-k8s.io, kind: InferencePool, name: up}]""")
        docs.append(f"""apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferencePool
metadata: {{name: up}}
spec: {{selector: {{app: up}}, targetPortNumber: {up_port}}}""")
    else:
        docs.append("""apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [{name: up, port: 80}]""")
        docs.append(f"""apiVersion: v1
kind: Service
metadata: {{name: up}}
spec: {{selector: {{app: up}}, ports: [{{port: 80, targetPort: {up_port}}}]}}""")
    for i, a in enumerate(UPSTREAM_ADDRS):
        docs.append(f"""apiVersion: v1
kind: Pod
metadata: {{name: up-{i}, labels: {{app: up}}}}
status: {{podIP: {a}}}""")
    return "\n---\n".join(docs) + "\n"


def run_client(tool, target, streams, ramp, timeout):
    out = subprocess.run([tool, "client", "--target", target, "--streams", str(streams),
                          "--ramp-s", str(ramp), "--timeout-s", str(timeout)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise SystemExit("stream_load client failed: %s %s" % (out.stdout, out.stderr))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, default=10000)
    ap.add_argument("--chunks", type=int, default=30)
    ap.add_argument("--interval-ms", type=int, default=1000)
    ap.add_argument("--ramp", type=float, default=15.0, help="seconds over which streams open")
    ap.add_argument("--route", choices=["pool", "service"], default="pool")
    ap.add_argument("--workers", type=int, default=2, help="gateway event loops")
    ap.add_argument("--bin", default="build/infergate")
    ap.add_argument("--tool", default="build/bench/stream_load")
    ap.add_argument("--skip-direct", action="store_true")
    ap.add_argument("--check", action="store_true", help="exit 1 on any failed stream")
    ap.add_argument("--max-rss-mb", type=float, default=1024)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench_streams.")
    up_port = free_port(UPSTREAM_ADDRS[0])
    upstream = subprocess.Popen(
        [args.tool, "upstream", "--chunks", str(args.chunks), "--interval-ms",
         str(args.interval_ms)] + sum((["--listen", f"{a}:{up_port}"] for a in UPSTREAM_ADDRS), []),
        stdout=subprocess.PIPE, text=True)
    for _ in UPSTREAM_ADDRS:
        if "listening" not in upstream.stdout.readline():
            raise SystemExit("stream_load upstream did not start")
    gw_port = free_port(GW_ADDR)
    cfg = os.path.join(work, "config.yaml")
    with open(cfg, "w") as f:
        f.write(gateway_config(gw_port, up_port, args.route))
    gw_out = os.path.join(work, "gateway.out")
    gw = subprocess.Popen([args.bin, "--log-level", "info", "serve", "-f", cfg, "--workers",
                           str(args.workers), "--no-admin", "--reload-interval", "0"],
                          stdout=open(gw_out, "w"), stderr=subprocess.STDOUT)
    for _ in range(100):
        try:
            socket.create_connection((GW_ADDR, gw_port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    time.sleep(1.0)  # the pool's first scrapes

    def status():
        with open(f"/proc/{gw.pid}/status") as f:
            text = f.read()
        return (int(re.search(r"VmRSS:\s+(\d+)", text).group(1)),
                len(os.listdir(f"/proc/{gw.pid}/fd")))

    def cpu_seconds():
        with open(f"/proc/{gw.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    base_rss, base_fds = status()
    cpu_before = cpu_seconds()
    peak = {"rss_kb": 0, "fds": 0}
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            try:
                rss, fds = status()
                peak["rss_kb"] = max(peak["rss_kb"], rss)
                peak["fds"] = max(peak["fds"], fds)
            except (OSError, AttributeError):
                pass
            stop.wait(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    load = os.getloadavg()
    timeout = args.ramp + args.chunks * args.interval_ms / 1000 * 3 + 30
    via = run_client(args.tool, f"{GW_ADDR}:{gw_port}", args.streams, args.ramp, timeout)
    stop.set()
    sampler.join()
    cpu_via = cpu_seconds() - cpu_before
    time.sleep(2)
    after_rss, after_fds = status()
    direct = None
    if not args.skip_direct:
        # The same number of streams, half to each upstream address, in one client.
        direct = run_client(args.tool, f"{UPSTREAM_ADDRS[0]}:{up_port}", args.streams, args.ramp,
                            timeout)
    alive = gw.poll() is None
    gw.terminate()
    try:
        gw.wait(timeout=30)
    except subprocess.TimeoutExpired:
        gw.kill()
    upstream.terminate()
    upstream.wait(timeout=10)
    with open(gw_out) as f:
        limit_lines = [l.strip() for l in f if "open-file limit" in l]
    res = {
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_average_at_start": [round(x, 2) for x in load],
        "route": args.route,
        "streams": args.streams,
        "chunks_per_stream": args.chunks,
        "interval_ms": args.interval_ms,
        "via_gateway": via,
        "direct": direct,
        "gateway_rss_mb": {"idle": round(base_rss / 1024, 1), "peak": round(peak["rss_kb"] / 1024, 1),
                           "after": round(after_rss / 1024, 1)},
        "gateway_fds": {"idle": base_fds, "peak": peak["fds"], "after": after_fds},
        "gateway_cpu_s": round(cpu_via, 2),
        "gateway_cpu_us_per_chunk": round(1e6 * cpu_via / max(1, via["chunks"]), 2),
        "gateway_alive": alive,
        "gateway_fd_limit_log": limit_lines,
    }
    if direct:
        res["added_by_gateway_ms"] = {
            k: round(via["delay_ms"][k] - direct["delay_ms"][k], 3) for k in ("p50", "p90", "p99")}
    print(json.dumps(res, indent=1))
    ok = alive and via["failed"] == 0 and via["completed"] == args.streams
    if args.check and peak["rss_kb"] / 1024 > args.max_rss_mb:
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
