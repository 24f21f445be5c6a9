#!/usr/bin/env python3
"""Soak test with faults: one gateway, three simulated model servers (`infergate sim`) in
an InferencePool, a mirror backend (in this process, counting what it receives), and
mixed client traffic, while servers are killed and restarted, the configuration is
rewritten (every third time invalid) and clients cancel, read slowly or disconnect
mid-stream.

Checked from independent records: the client's own log (every request it sent), the
simulated servers' /metrics (vllm:request_success_total, read before each kill and at the
end), the mirror's count, and the gateway's /metrics (infergate_requests_total,
infergate_pool_picks_total; the gateway has no access log on this branch):
  - every request answered exactly once (one status line) with a status its kind allows;
  - no pick of a killed server once the gateway had time to notice (2 s after the kill)
    until it is back;
  - gateway RSS grows < 5% between the end of warm-up (first quarter) and the end;
  - the gateway's open descriptors return to their warm baseline once clients are idle;
  - the gateway never exits (and exits 0 on SIGTERM at the end).
Prints a summary and exits 1 when a check fails. scripts/soak.sh runs it.
"""
import argparse
import http.server
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time

ADDR_GW = "127.77.0.1"
ADDR_SIMS = ["127.77.0.2", "127.77.0.3", "127.77.0.4"]
ADDR_MIRROR = "127.77.0.9"
MODEL = "soak"


def free_port(addr):
    s = socket.socket()
    s.bind((addr, 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Mirror(http.server.BaseHTTPRequestHandler):
    count = 0
    lock = threading.Lock()

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        with Mirror.lock:
            Mirror.count += 1
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_GET = do_POST

    def log_message(self, *a):
        pass


def config(sim_port, mirror_port, weight_note):
    docs = [f"""apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, annotations: {{infergate.io/bind-address: {ADDR_GW}}}}}
spec:
  listeners: [{{name: llm, protocol: HTTP, port: {GW_PORT}}}]""",
            f"""apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: r, annotations: {{note: "{weight_note}"}}}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - backendRefs: [{{group: inference.networking.x-k8s.io, kind: InferencePool, name: pool}}]
    filters:
    - type: RequestMirror
      requestMirror:
        backendRef: {{name: mirror, port: 80}}
        percent: 10""",
            f"""apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferencePool
metadata: {{name: pool}}
spec: {{selector: {{app: llm}}, targetPortNumber: {sim_port}}}""",
            f"""apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: {{name: {MODEL}}}
spec: {{modelName: {MODEL}, poolRef: {{name: pool}}}}""",
            f"""apiVersion: v1
kind: Service
metadata: {{name: mirror}}
spec: {{selector: {{app: mirror}}, ports: [{{port: 80, targetPort: {mirror_port}}}]}}""",
            f"""apiVersion: v1
kind: Pod
metadata: {{name: mirror-0, labels: {{app: mirror}}}}
status: {{podIP: {ADDR_MIRROR}}}"""]
    for i, a in enumerate(ADDR_SIMS):
        docs.append(f"""apiVersion: v1
kind: Pod
metadata: {{name: llm-{i}, labels: {{app: llm}}}}
status: {{podIP: {a}}}""")
    return "\n---\n".join(docs) + "\n"


GW_PORT = 0


def http_get(addr, port, path, timeout=5):
    s = socket.create_connection((addr, port), timeout=timeout)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    out = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
    s.close()
    return out.decode("latin-1")


def metric_sum(text, name, label_filter=""):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and label_filter in line:
            try:
                total += float(line.rsplit(" ", 1)[1])
            except ValueError:
                pass
    return total


class Log:
    def __init__(self):
        self.lock = threading.Lock()
        self.rows = []

    def add(self, row):
        with self.lock:
            self.rows.append(row)


def one_request(port, kind, rng):
    """Sends one request of `kind`; returns (statuses, outcome)."""
    stream = kind in ("stream", "cancel", "slow", "disconnect")
    chat = rng.random() < 0.5
    path = "/v1/chat/completions" if chat else "/v1/completions"
    body = {"model": MODEL, "max_tokens": rng.randint(2, 24), "stream": stream}
    text = "soak %d " % rng.randint(0, 1 << 30)
    if kind == "large":
        text += "x" * rng.randint(100_000, 400_000)
    if chat:
        body["messages"] = [{"role": "user", "content": text}]
    else:
        body["prompt"] = text
    raw = json.dumps(body).encode()
    if kind == "bad_json":
        raw = b'{"model": "soak", "prompt": '
    elif kind == "unknown_model":
        raw = raw.replace(b'"soak"', b'"no-such-model"', 1)
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(raw)}\r\nConnection: close\r\n\r\n").encode()
    s = socket.create_connection((ADDR_GW, port), timeout=60)
    s.sendall(head + raw)
    data = b""
    outcome = "complete"
    while True:
        try:
            d = s.recv(4096 if kind == "slow" else 65536)
        except socket.timeout:
            outcome = "client-timeout"
            break
        except ConnectionResetError:
            outcome = "reset"
            break
        if not d:
            break
        data += d
        if kind in ("cancel", "disconnect") and b"data:" in data:
            outcome = "cancelled"
            if kind == "disconnect":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            break
        if kind == "slow":
            time.sleep(0.05)
    s.close()
    statuses = [int(m) for m in re.findall(rb"HTTP/1\.1 (\d{3}) ", data[:200])]
    # A status line can only be at the start; count every occurrence at a line start.
    statuses = [int(m) for m in re.findall(rb"(?:^|\r\n\r\n)HTTP/1\.1 (\d{3}) ", data)] or statuses
    return statuses, outcome, data


ALLOWED = {
    "normal": {200, 429, 500, 502, 503, 504},
    "stream": {200, 429, 500, 502, 503, 504},
    "cancel": {200, 429, 500, 502, 503, 504},
    "disconnect": {200, 429, 500, 502, 503, 504},
    "slow": {200, 429, 500, 502, 503, 504},
    "large": {200, 429, 500, 502, 503, 504},
    "bad_json": {400},
    "unknown_model": {404},
}
KINDS = (["normal"] * 6 + ["stream"] * 6 + ["cancel"] * 2 + ["disconnect"] * 1 + ["slow"] * 1 +
         ["large"] * 1 + ["bad_json"] * 1 + ["unknown_model"] * 1)


def main():
    global GW_PORT
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=1800)
    ap.add_argument("--bin", default="build/infergate")
    ap.add_argument("--clients", type=int, default=12)
    ap.add_argument("--kill-every", type=float, default=20)
    ap.add_argument("--reload-every", type=float, default=15)
    ap.add_argument("--workdir", default="")
    args = ap.parse_args()
    work = args.workdir or subprocess.check_output(["mktemp", "-d"]).decode().strip()
    rng = random.Random(1)
    procs = []

    mirror_port = free_port(ADDR_MIRROR)
    mirror = http.server.ThreadingHTTPServer((ADDR_MIRROR, mirror_port), Mirror)
    threading.Thread(target=mirror.serve_forever, daemon=True).start()

    sim_port = free_port(ADDR_SIMS[0])
    sims = {}

    def start_sim(i):
        p = subprocess.Popen([args.bin, "--log-level", "error", "sim", "--host", ADDR_SIMS[i],
                              "--port", str(sim_port), "--profile", "tiny", "--model", MODEL,
                              "--time-scale", "20", "--seed", str(i)],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = p.stdout.readline()
        if "listening" not in line:
            raise SystemExit("sim %d did not start: %r" % (i, line))
        sims[i] = p

    for i in range(len(ADDR_SIMS)):
        start_sim(i)

    GW_PORT = free_port(ADDR_GW)
    admin_port = free_port(ADDR_GW)
    cfg_path = os.path.join(work, "config.yaml")
    with open(cfg_path, "w") as f:
        f.write(config(sim_port, mirror_port, "v0"))
    gw = subprocess.Popen([args.bin, "--log-level", "warn", "serve", "-f", cfg_path, "--workers", "2",
                           "--admin-address", f"{ADDR_GW}:{admin_port}", "--reload-interval", "0.5",
                           "--scrape-interval", "0.05"],
                          stdout=open(os.path.join(work, "gateway.out"), "w"), stderr=subprocess.STDOUT)
    for _ in range(100):
        try:
            socket.create_connection((ADDR_GW, GW_PORT), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    time.sleep(1)

    def rss_kb():
        with open(f"/proc/{gw.pid}/status") as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))

    def fds():
        return len(os.listdir(f"/proc/{gw.pid}/fd"))

    def picks(endpoint_addr):
        return metric_sum(http_get(ADDR_GW, admin_port, "/metrics"), "infergate_pool_picks_total",
                          endpoint_addr)

    log = Log()
    stop = threading.Event()

    def client(seed):
        r = random.Random(seed)
        while not stop.is_set():
            kind = r.choice(KINDS)
            t0 = time.time()
            try:
                statuses, outcome, _ = one_request(GW_PORT, kind, r)
            except OSError as e:
                statuses, outcome = [], "connect-error: %s" % e
            log.add((t0, time.time(), kind, statuses, outcome))

    # A burst as wide as the client pool, then the descriptor baseline while idle (the
    # upstream keep-alive connections it leaves are part of the baseline).
    burst = [threading.Thread(target=lambda s=i: one_request(GW_PORT, "normal", random.Random(s)))
             for i in range(args.clients)]
    for t in burst:
        t.start()
    for t in burst:
        t.join()
    time.sleep(2)
    FD_BASE[0] = fds()
    threads = [threading.Thread(target=client, args=(100 + i,), daemon=True) for i in range(args.clients)]
    for t in threads:
        t.start()
    start = time.time()
    end = start + args.duration
    warm_end = start + args.duration / 4
    rss_samples = []
    server_finished = 0.0
    kills = []  # (addr, t_kill, t_restart, picks_at_detect, picks_at_restart)
    reloads = {"valid": 0, "invalid": 0}
    next_kill = start + args.kill_every
    next_reload = start + args.reload_every / 2
    reload_n = 0
    failures = []
    while time.time() < end:
        now = time.time()
        rss_samples.append((now, rss_kb()))
        if gw.poll() is not None:
            failures.append("gateway exited with %s during the run" % gw.returncode)
            break
        if now >= next_kill:
            i = rng.randrange(len(ADDR_SIMS))
            try:
                server_finished += metric_sum(http_get(ADDR_SIMS[i], sim_port, "/metrics"),
                                              "vllm:request_success_total")
            except OSError:
                pass
            sims[i].kill()
            sims[i].wait()
            t_kill = time.time()
            time.sleep(2.0)  # detection: failed connects and scrapes
            p_detect = picks(ADDR_SIMS[i])
            time.sleep(3.0)
            p_restart = picks(ADDR_SIMS[i])
            start_sim(i)
            kills.append((ADDR_SIMS[i], t_kill, time.time(), p_detect, p_restart))
            next_kill = time.time() + args.kill_every
        if now >= next_reload:
            reload_n += 1
            with open(cfg_path + ".tmp", "w") as f:
                if reload_n % 3 == 0:
                    f.write("apiVersion: v1\nkind: [this is not valid\n")
                    reloads["invalid"] += 1
                else:
                    f.write(config(sim_port, mirror_port, "v%d" % reload_n))
                    reloads["valid"] += 1
            os.replace(cfg_path + ".tmp", cfg_path)
            next_reload = now + args.reload_every
        time.sleep(1.0)
    # Leave a valid configuration, stop traffic, let connections idle out.
    with open(cfg_path, "w") as f:
        f.write(config(sim_port, mirror_port, "final"))
    stop.set()
    for t in threads:
        t.join(timeout=90)
    time.sleep(3)
    rss_samples.append((time.time(), rss_kb()))
    for i in sims:
        try:
            server_finished += metric_sum(http_get(ADDR_SIMS[i], sim_port, "/metrics"),
                                          "vllm:request_success_total")
        except OSError:
            pass
    gw_metrics = http_get(ADDR_GW, admin_port, "/metrics")
    gw_requests = metric_sum(gw_metrics, "infergate_requests_total")
    fd_end = fds()

    # --- checks
    rows = log.rows
    by_kind = {}
    bad_status = []
    unanswered = []
    for (t0, t1, kind, statuses, outcome) in rows:
        by_kind.setdefault(kind, [0, 0])
        by_kind[kind][0] += 1
        if len(statuses) == 1 and statuses[0] in ALLOWED[kind]:
            by_kind[kind][1] += 1
        elif len(statuses) == 0 and outcome == "cancelled":
            by_kind[kind][1] += 1  # cancelled before the head: nothing to answer
        elif len(statuses) == 0:
            unanswered.append((kind, outcome))
        else:
            bad_status.append((kind, statuses, outcome))
    if unanswered:
        failures.append("%d requests got no status: %s" % (len(unanswered), unanswered[:5]))
    if bad_status:
        failures.append("%d requests got an unexpected status: %s" % (len(bad_status), bad_status[:5]))
    for (addr, t_kill, t_restart, p_detect, p_restart) in kills:
        if p_restart > p_detect:
            failures.append("%s got %d picks between detection and restart" %
                            (addr, p_restart - p_detect))
    warm = [r for (t, r) in rss_samples if t >= warm_end]
    rss_warm = warm[0] if warm else rss_samples[-1][1]
    rss_end = rss_samples[-1][1]
    growth = (rss_end - rss_warm) / rss_warm
    if growth >= 0.05:
        failures.append("RSS grew %.1f%% after warm-up (%d -> %d kB)" % (100 * growth, rss_warm, rss_end))
    fd_base = FD_BASE[0]
    if fd_end > fd_base + 8:
        failures.append("open descriptors %d at the end, %d at warm baseline" % (fd_end, fd_base))
    gw.send_signal(signal.SIGTERM)
    try:
        code = gw.wait(timeout=40)
    except subprocess.TimeoutExpired:
        gw.kill()
        code = "hung"
    if code != 0:
        failures.append("gateway exit code %s after SIGTERM" % code)
    for p in sims.values():
        p.kill()
    mirror.shutdown()

    statuses_all = {}
    for r in rows:
        for s in r[3]:
            statuses_all[s] = statuses_all.get(s, 0) + 1
    ok200 = sum(1 for r in rows if r[3] == [200] and r[4] == "complete" and r[2] not in ("cancel", "disconnect"))
    summary = {
        "duration_s": round(time.time() - start, 1),
        "requests": len(rows),
        "by_kind_sent_answered": by_kind,
        "statuses": statuses_all,
        "kills": len(kills),
        "reloads": reloads,
        "client_complete_200": ok200,
        "servers_finished_requests": server_finished,
        "gateway_requests_total": gw_requests,
        "mirror_received": Mirror.count,
        "rss_kb_warm_end": rss_warm,
        "rss_kb_final": rss_end,
        "rss_growth_pct": round(100 * growth, 2),
        "fds_baseline": fd_base,
        "fds_final": fd_end,
        "gateway_exit": code,
        "failures": failures,
    }
    print(json.dumps(summary, indent=1))
    return 1 if failures else 0


FD_BASE = [0]

if __name__ == "__main__":
    sys.exit(main())
