#!/usr/bin/env python3
"""Soak test with faults: one gateway, three simulated model servers (`infergate sim`) in
an InferencePool, a mirror backend (in this process, counting what it receives), and
mixed client traffic, while servers are killed and restarted, the configuration is
rewritten (every third time invalid) and clients cancel, read slowly or disconnect
mid-stream.

Checked from three independent records joined by request id (each request carries an
x-request-id, which the gateway's access log records): the client's own log (client.jsonl
in the work directory), the gateway's access log (--access-log), and the simulated
servers' /metrics (vllm:request_success_total by finish reason, read before each kill and
at the end), with the mirror's count and the gateway's /metrics alongside:
  - every request answered exactly once (one status line; one access-log line with the
    same status) with a status its kind allows;
  - no pick of a killed server once the gateway had time to notice (2 s after the kill)
    until it is back (the pick counters, and each access-log line's tried endpoints);
  - servers finished at least the clients' complete 200s, finished + aborted at most the
    gateway's dispatches, and aborted at least 90% of the streams clients cut;
  - gateway RSS: the median of the last quarter within 5% of the second quarter's;
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


def read_access_log(path):
    """The gateway's access log: one JSON object per request."""
    lines = []
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    a = json.loads(line)
                    # Only what the checks read: a 30-minute run has ~10^6 lines.
                    lines.append({k: a[k] for k in ("request_id", "status", "tried", "time",
                                                    "queue_wait_s") if k in a})
    except OSError:
        pass
    return lines


def parse_utc(text):
    """The access log's "time" (UTC, milliseconds) as seconds since the epoch."""
    import datetime
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def check_access_log(rows, access, kills, sim_port):
    """Joins the client's log with the gateway's access log by request id (x-request-id).
    Every request the client sent has exactly one access-log line, with the status the
    client saw (a client that left mid-stream saw the head; the line then says what the
    gateway relayed, or 499 when nothing was). No request picked a killed server from
    two seconds after the kill until its restart."""
    failures = []
    by_id = {}
    for a in access:
        by_id.setdefault(a.get("request_id", ""), []).append(a)
    missing, duplicated, mismatched = [], [], []
    complete_200 = 0
    for (t0, t1, kind, statuses, outcome, rid) in rows:
        lines = by_id.get(rid, [])
        if outcome.startswith("os-error") and not lines:
            continue  # never reached the gateway
        if not lines:
            missing.append((rid, kind, outcome))
            continue
        if len(lines) > 1:
            duplicated.append((rid, [a["status"] for a in lines]))
        a = lines[0]
        if statuses and statuses[0] != a["status"]:
            mismatched.append((rid, kind, statuses, a["status"]))
        if statuses == [200] and outcome == "complete" and kind not in ("cancel", "disconnect"):
            complete_200 += 1
    if missing:
        failures.append("%d requests have no access-log line: %s" % (len(missing), missing[:5]))
    if duplicated:
        failures.append("%d requests have several access-log lines: %s" %
                        (len(duplicated), duplicated[:5]))
    if mismatched:
        failures.append("%d requests: the client's status differs from the access log's: %s" %
                        (len(mismatched), mismatched[:5]))
    dead_picks = []
    dispatched = 0
    for a in access:
        tried = a.get("tried", [])
        if tried:
            dispatched += 1
        if not tried or "time" not in a:
            continue
        picked_at = parse_utc(a["time"]) + max(0.0, a.get("queue_wait_s", 0.0))
        for (addr, t_kill, t_restart, _, _) in kills:
            dead = "%s:%d" % (addr, sim_port)
            if t_kill + 2.0 <= picked_at <= t_restart - 0.5 and dead in tried:
                dead_picks.append((a.get("request_id"), dead, round(picked_at - t_kill, 2)))
    if dead_picks:
        failures.append("%d requests tried a server after its death was detected: %s" %
                        (len(dead_picks), dead_picks[:5]))
    return {"failures": failures, "access_lines": len(access), "client_complete_200": complete_200,
            "dispatched": dispatched, "dead_picks": len(dead_picks)}


def one_request(port, kind, rng, request_id="", timeout=60):
    """Sends one request of `kind` tagged with `request_id` (x-request-id, which the
    gateway's access log records); returns (statuses, outcome, data)."""
    stream = kind in ("stream", "cancel", "slow", "disconnect")
    chat = rng.random() < 0.5
    path = "/v1/chat/completions" if chat else "/v1/completions"
    body = {"model": MODEL, "max_tokens": rng.randint(2, 24), "stream": stream}
    if kind in ("cancel", "disconnect"):
        body.update(max_tokens=900, ignore_eos=True)  # still generating when cut
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
    rid = f"x-request-id: {request_id}\r\n" if request_id else ""
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{rid}"
            f"Content-Length: {len(raw)}\r\nConnection: close\r\n\r\n").encode()
    s = socket.create_connection((ADDR_GW, port), timeout=timeout)
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
    # 100-400 KB prompts: past the tiny profile's context, so its server answers 400.
    "large": {200, 400, 429, 500, 502, 503, 504},
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
    ap.add_argument("--malloc-conf", default="",
                    help="MALLOC_CONF for the gateway (jemalloc), e.g. dirty_decay_ms:0 so RSS "
                         "follows live memory rather than pages kept for reuse")
    ap.add_argument("--think", type=float, default=0.0,
                    help="seconds each client waits between requests (0: none)")
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
                              "--time-scale", "20", "--seed", str(i), "--metrics-version", "v1"],
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
    access_path = os.path.join(work, "access.log")
    gw = subprocess.Popen([args.bin, "--log-level", "warn", "serve", "-f", cfg_path, "--workers", "2",
                           "--admin-address", f"{ADDR_GW}:{admin_port}", "--reload-interval", "0.5",
                           "--scrape-interval", "0.05", "--access-log", access_path],
                          stdout=open(os.path.join(work, "gateway.out"), "w"), stderr=subprocess.STDOUT,
                          env=dict(os.environ, **({"MALLOC_CONF": args.malloc_conf}
                                                  if args.malloc_conf else {})))
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
        n = 0
        while not stop.is_set():
            kind = r.choice(KINDS)
            n += 1
            rid = "soak-%d-%d" % (seed, n)
            t0 = time.time()
            try:
                statuses, outcome, _ = one_request(GW_PORT, kind, r, rid)
            except OSError as e:
                statuses, outcome = [], "os-error: %s" % e
            log.add((t0, time.time(), kind, statuses, outcome, rid))
            if args.think > 0:
                time.sleep(args.think)

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
    rss_samples = []
    server_counts = {"finished": 0.0, "aborted": 0.0}

    def read_server_counts(i):
        """Adds server i's finished and aborted requests (vLLM v1's counters)."""
        try:
            text = http_get(ADDR_SIMS[i], sim_port, "/metrics")
        except OSError:
            return
        aborted = metric_sum(text, "vllm:request_success_total", 'finished_reason="abort"')
        server_counts["finished"] += metric_sum(text, "vllm:request_success_total") - aborted
        server_counts["aborted"] += aborted
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
            read_server_counts(i)
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
        read_server_counts(i)
    gw_metrics = http_get(ADDR_GW, admin_port, "/metrics")
    gw_requests = metric_sum(gw_metrics, "infergate_requests_total")
    fd_end = fds()

    # --- checks
    rows = log.rows
    by_kind = {}
    bad_status = []
    unanswered = []
    with open(os.path.join(work, "client.jsonl"), "w") as f:
        for (t0, t1, kind, statuses, outcome, rid) in rows:
            f.write(json.dumps({"id": rid, "t0": t0, "t1": t1, "kind": kind, "statuses": statuses,
                                "outcome": outcome}) + "\n")
    for (t0, t1, kind, statuses, outcome, rid) in rows:
        by_kind.setdefault(kind, [0, 0])
        by_kind[kind][0] += 1
        if len(statuses) == 1 and statuses[0] in ALLOWED[kind]:
            by_kind[kind][1] += 1
        elif len(statuses) == 0 and outcome == "cancelled":
            by_kind[kind][1] += 1  # cancelled before the head: nothing to answer
        elif len(statuses) == 0:
            unanswered.append((kind, outcome, rid))
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
    access = read_access_log(access_path)
    access_checks = check_access_log(rows, access, kills, sim_port)
    failures.extend(access_checks.pop("failures"))
    # The servers' own counts: every request a client saw complete with 200 was finished by
    # a server, and no server finished more than the gateway dispatched.
    server_finished, server_aborted = server_counts["finished"], server_counts["aborted"]
    if server_finished < access_checks["client_complete_200"]:
        failures.append("servers finished %d requests, clients saw %d complete" %
                        (server_finished, access_checks["client_complete_200"]))
    if server_finished + server_aborted > access_checks["dispatched"]:
        failures.append("servers finished or aborted %d requests, the gateway dispatched %d" %
                        (server_finished + server_aborted, access_checks["dispatched"]))
    # A client that leaves mid-stream must stop its generation: the cut streams ask for
    # 900 tokens (~0.5 s at this time scale) and leave after the first event, so a server
    # aborts nearly every one (the rest: cut on a server killed before its count was read).
    cut = sum(1 for r in rows if r[2] in ("cancel", "disconnect") and r[3] == [200] and
              r[4] == "cancelled")
    if server_aborted < 0.9 * cut:
        failures.append("servers aborted %d requests for %d streams their clients cut: the "
                        "cancel did not reach them" % (server_aborted, cut))
    # RSS under the same traffic, after warm-up (the second quarter of the run) and at the
    # end (the last quarter), each the median of its one-second samples: allocator arenas
    # and bounded caches fill during the first quarter; a leak keeps climbing after it.
    with open(os.path.join(work, "rss.csv"), "w") as f:
        for (t, r) in rss_samples:
            f.write("%.1f,%d\n" % (t - start, r))
    loaded = rss_samples[:-1]

    def median_between(a, b):
        xs = sorted(r for (t, r) in loaded if start + a * args.duration <= t < start + b * args.duration)
        return xs[len(xs) // 2] if xs else rss_samples[-1][1]

    rss_warm = median_between(0.25, 0.5)
    rss_end = median_between(0.75, 1.01)
    rss_idle = rss_samples[-1][1]
    growth = (rss_end - rss_warm) / rss_warm
    if growth >= 0.05:
        failures.append("RSS grew %.1f%% after warm-up (median %d -> %d kB)" %
                        (100 * growth, rss_warm, rss_end))
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
        "servers_aborted_requests": server_aborted,
        "client_cut_streams": cut,
        "gateway_requests_total": gw_requests,
        "mirror_received": Mirror.count,
        "rss_kb_after_warmup": rss_warm,
        "rss_kb_end": rss_end,
        "rss_kb_idle_after": rss_idle,
        "rss_kb_peak": max(r for (t, r) in rss_samples),
        "rss_growth_pct": round(100 * growth, 2),
        "fds_baseline": fd_base,
        "fds_final": fd_end,
        "gateway_exit": code,
        "workdir": work,
        "access_lines": access_checks["access_lines"],
        "access_dispatched": access_checks["dispatched"],
        "failures": failures,
    }
    print(json.dumps(summary, indent=1))
    return 1 if failures else 0


FD_BASE = [0]

if __name__ == "__main__":
    sys.exit(main())
