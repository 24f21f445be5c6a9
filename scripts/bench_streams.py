#!/usr/bin/env python3
"""Many concurrent SSE streams through one gateway.

Starts slow streaming upstreams (this script in --upstream mode: every response is an SSE
stream of `--chunks` chunks, one every `--interval` seconds, each carrying the upstream's
CLOCK_MONOTONIC send time), the gateway in front of them (an HTTPRoute to a Service of
those upstreams), and opens `--streams` concurrent streaming requests through the gateway
from client processes. For every chunk the client records receive time − send time (same
host, same clock). A second, smaller run of the same client straight against the
upstreams (--direct-streams, default as many) gives the delay the measurement
itself adds (Python event loops on a busy machine); the gateway's added delay is reported
as both and their difference at p50/p99. Also reports errors, the gateway's peak RSS and
descriptors.

  scripts/bench_streams.py --streams 9000 --interval 1 --chunks 20
"""
import argparse
import asyncio
import json
import multiprocessing
import os
import re
import socket
import statistics
import subprocess
import sys
import time

UPSTREAM_ADDRS = ["127.78.0.2", "127.78.0.3"]
GW_ADDR = "127.78.0.1"


def raise_nofile():
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def upstream_main(addr, port, chunks, interval):
    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                m = re.search(rb"(?i)content-length: *(\d+)", head)
                if m:
                    await reader.readexactly(int(m.group(1)))
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n")
                for i in range(chunks):
                    await asyncio.sleep(interval)
                    payload = b'data: {"t":%d,"i":%d}\n\n' % (time.monotonic_ns(), i)
                    writer.write(b"%x\r\n%s\r\n" % (len(payload), payload))
                    await writer.drain()
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, addr, port, backlog=65535)
    async with server:
        await server.serve_forever()


def run_upstream(addr, port, chunks, interval):
    raise_nofile()
    asyncio.run(upstream_main(addr, port, chunks, interval))


async def client_main(addr, port, n, ramp, chunks, out_q):
    delays = []
    errors = []
    done = 0
    sem_start = time.monotonic()

    async def one(k):
        nonlocal done
        await asyncio.sleep(ramp * k / max(n, 1))
        try:
            reader, writer = await asyncio.open_connection(addr, port)
            body = b'{"model":"m","stream":true}'
            writer.write(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                errors.append(head[:40].decode("latin-1"))
                writer.close()
                return
            got = 0
            buf = b""
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                now = time.monotonic_ns()
                buf += data
                for m in re.finditer(rb'"t":(\d+)', buf):
                    delays.append((now - int(m.group(1))) / 1e6)
                    got += 1
                cut = buf.rfind(b"\n\n")
                if cut >= 0:
                    buf = buf[cut + 2:]
                if b"0\r\n\r\n" in data[-5:] or got >= chunks:
                    break
            writer.close()
            if got != chunks:
                errors.append("stream ended after %d of %d chunks" % (got, chunks))
            else:
                done += 1
        except Exception as e:  # counted, reported
            errors.append(repr(e)[:80])

    await asyncio.gather(*(one(k) for k in range(n)))
    out_q.put({"delays": delays, "errors": errors, "done": done,
               "seconds": time.monotonic() - sem_start})


def run_client(addr, port, n, ramp, chunks, out_q):
    raise_nofile()
    asyncio.run(client_main(addr, port, n, ramp, chunks, out_q))


def clients(addr_port_list, n, procs, ramp, chunks):
    q = multiprocessing.Queue()
    ps = []
    for i in range(procs):
        addr, port = addr_port_list[i % len(addr_port_list)]
        share = n // procs + (1 if i < n % procs else 0)
        p = multiprocessing.Process(target=run_client, args=(addr, port, share, ramp, chunks, q))
        p.start()
        ps.append(p)
    results = [q.get() for _ in ps]
    for p in ps:
        p.join()
    out = {"delays": [], "errors": [], "done": 0}
    for r in results:
        out["delays"] += r["delays"]
        out["errors"] += r["errors"]
        out["done"] += r["done"]
    return out


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def free_port(addr):
    s = socket.socket()
    s.bind((addr, 0))
    p = s.getsockname()[1]
    s.close()
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, default=9000)
    ap.add_argument("--direct-streams", type=int, default=0)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--chunks", type=int, default=20)
    ap.add_argument("--ramp", type=float, default=15.0, help="seconds over which streams open")
    ap.add_argument("--client-procs", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2, help="gateway event loops")
    ap.add_argument("--bin", default="build/infergate")
    args = ap.parse_args()
    raise_nofile()
    work = subprocess.check_output(["mktemp", "-d"]).decode().strip()
    up_port = free_port(UPSTREAM_ADDRS[0])
    ups = [multiprocessing.Process(target=run_upstream, args=(a, up_port, args.chunks, args.interval),
                                   daemon=True) for a in UPSTREAM_ADDRS]
    for p in ups:
        p.start()
    gw_port = free_port(GW_ADDR)
    cfg = f"""apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, annotations: {{infergate.io/bind-address: {GW_ADDR}}}}}
spec:
  listeners: [{{name: web, protocol: HTTP, port: {gw_port}}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: r}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - backendRefs: [{{name: up, port: 80}}]
    timeouts: {{request: 0s}}
---
apiVersion: v1
kind: Service
metadata: {{name: up}}
spec: {{selector: {{app: up}}, ports: [{{port: 80, targetPort: {up_port}}}]}}
"""
    for i, a in enumerate(UPSTREAM_ADDRS):
        cfg += f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: up-{i}, labels: {{app: up}}}}\nstatus: {{podIP: {a}}}\n"
    with open(os.path.join(work, "config.yaml"), "w") as f:
        f.write(cfg)
    gw_log = open(os.path.join(work, "gateway.out"), "w")
    gw = subprocess.Popen([args.bin, "--log-level", "info", "serve", "-f", os.path.join(work, "config.yaml"),
                           "--workers", str(args.workers), "--no-admin"],
                          stdout=gw_log, stderr=subprocess.STDOUT)
    for _ in range(100):
        try:
            socket.create_connection((GW_ADDR, gw_port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    peak = {"rss_kb": 0, "fds": 0}
    stop = [False]

    def sample():
        while not stop[0]:
            try:
                with open(f"/proc/{gw.pid}/status") as f:
                    rss = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
                peak["rss_kb"] = max(peak["rss_kb"], rss)
                peak["fds"] = max(peak["fds"], len(os.listdir(f"/proc/{gw.pid}/fd")))
            except (OSError, AttributeError):
                pass
            time.sleep(0.5)

    import threading
    t = threading.Thread(target=sample, daemon=True)
    t.start()
    via = clients([(GW_ADDR, gw_port)], args.streams, args.client_procs, args.ramp, args.chunks)
    direct_n = args.direct_streams or args.streams
    direct = clients([(a, up_port) for a in UPSTREAM_ADDRS], direct_n, args.client_procs,
                     args.ramp * direct_n / args.streams, args.chunks)
    stop[0] = True
    t.join()
    alive = gw.poll() is None
    gw.terminate()
    gw.wait(timeout=30)
    for p in ups:
        p.terminate()
    with open(os.path.join(work, "gateway.out")) as f:
        gw_lines = [l.strip() for l in f if "limit" in l][:3]
    res = {
        "streams": args.streams,
        "chunks_per_stream": args.chunks,
        "interval_s": args.interval,
        "completed_streams": via["done"],
        "errors": len(via["errors"]),
        "error_samples": via["errors"][:5],
        "gateway_peak_rss_mb": round(peak["rss_kb"] / 1024, 1),
        "gateway_peak_fds": peak["fds"],
        "gateway_alive_at_end": alive,
        "gateway_fd_limit_log": gw_lines,
        "via_gateway_delay_ms": {"p50": round(pct(via["delays"], 50), 2),
                                 "p99": round(pct(via["delays"], 99), 2),
                                 "chunks": len(via["delays"])},
        "direct_delay_ms": {"streams": direct_n, "p50": round(pct(direct["delays"], 50), 2),
                            "p99": round(pct(direct["delays"], 99), 2),
                            "errors": len(direct["errors"])},
    }
    res["added_by_gateway_ms"] = {
        "p50": round(res["via_gateway_delay_ms"]["p50"] - res["direct_delay_ms"]["p50"], 2),
        "p99": round(res["via_gateway_delay_ms"]["p99"] - res["direct_delay_ms"]["p99"], 2)}
    print(json.dumps(res, indent=1))
    return 0 if (via["done"] == args.streams and alive) else 1


if __name__ == "__main__":
    sys.exit(main())
