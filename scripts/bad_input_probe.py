#!/usr/bin/env python3
"""Sends each class of malformed client input to an HTTP server over raw sockets and
prints, per case, the status(es) answered and what happened to the connection (closed by
the server, or still open and serving: a follow-up request on it is answered).

  scripts/bad_input_probe.py HOST PORT [--path /v1/completions] [--markdown NAME]

Used by scripts/bad_input_table.sh to compare infergate with nginx (docs/hardening.md)."""
import argparse
import re
import socket
import time

BODY = b'{"model":"qwq","prompt":"hello","max_tokens":4}'


def cases(path):
    p = path.encode()
    post = lambda body, extra=b"": (b"POST " + p + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                    + extra + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    return [
        ("valid request", post(BODY), 0),
        ("CL + TE (smuggling)", b"POST " + p + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 0),
        ("TE + CL (smuggling)", b"POST " + p + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 0),
        ("duplicate CL, different", b"POST " + p + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 0),
        ("duplicate CL, same", b"POST " + p + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd", 0),
        ("TE not chunked (gzip)", b"POST " + p + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nabcd", 0),
        ("bad chunk size", b"POST " + p + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 0),
        ("chunk size overflow", b"POST " + p + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\nabc\r\n0\r\n\r\n", 0),
        ("valid chunked body", b"POST " + p + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
         + hex(len(BODY))[2:].encode() + b"\r\n" + BODY + b"\r\n0\r\n\r\n", 0),
        ("obsolete line folding", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  folded\r\n\r\n", 0),
        ("NUL in header value", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 0),
        ("NUL in target", b"GET /heal\x00thz HTTP/1.1\r\nHost: x\r\n\r\n", 0),
        ("absolute-form target", b"GET http://x/healthz HTTP/1.1\r\nHost: y\r\n\r\n", 0),
        ("request line 20 KB", b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 0),
        ("header 70 KB", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"h" * 70000 + b"\r\n\r\n", 0),
        ("body over limit (CL)", post(b"x" * (5 * 1024 * 1024)), 0),
        ("body over limit (chunked)", b"POST " + p + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
         + (b"100000\r\n" + b"x" * 0x100000 + b"\r\n") * 5 + b"0\r\n\r\n", 0),
        ("Expect: 100-continue", post(BODY, b"Expect: 100-continue\r\n"), 0),
        ("Expect: 100-continue, body over limit", b"POST " + p + b" HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 99999999\r\n\r\n", 0),
        ("Expect: other", b"POST " + p + b" HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\nContent-Length: 0\r\n\r\n", 0),
        ("pipelined (3 requests)", post(BODY) * 3, 0),
        ("slowloris head (stalls)", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: ", 1),
        ("HTTP/1.0 without Host", b"GET /healthz HTTP/1.0\r\n\r\n", 0),
        ("HTTP/1.1 without Host", b"GET /healthz HTTP/1.1\r\n\r\n", 0),
        ("garbage", b"NOT HTTP AT ALL\r\n\r\n", 0),
        ("invalid JSON", post(b'{"model":'), 0),
        ("empty body", post(b""), 0),
        ("JSON not an object", post(b"[1,2]"), 0),
        ("missing model", post(b'{"prompt":"x"}'), 0),
        ("wrong type (model: 1)", post(b'{"model":1,"prompt":"x"}'), 0),
        ("wrong type (stream: \"yes\")", post(b'{"model":"qwq","prompt":"x","stream":"yes"}'), 0),
        ("unknown model", post(b'{"model":"no-such-model","prompt":"x"}'), 0),
    ]


def exchange(host, port, data, stall, timeout):
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        s.sendall(data)
    except OSError:
        pass
    out = b""
    closed = False
    deadline = time.time() + timeout
    s.settimeout(0.3)
    # Read until closed or quiet for a while (after something arrived).
    quiet = 0
    while time.time() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            if out and not stall:
                quiet += 1
                if quiet >= 3:
                    break
            continue
        except OSError:
            closed = True
            break
        if not chunk:
            closed = True
            break
        quiet = 0
        out += chunk
    alive = None
    if not closed:
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            s.settimeout(2)
            more = s.recv(65536)
            alive = more.startswith(b"HTTP/1.1 ")
        except OSError:
            alive = False
    s.close()
    statuses = [int(m) for m in re.findall(rb"HTTP/1\.[01] (\d{3})", out)]
    conn = "closed" if closed else ("open" if alive else "stuck")
    return statuses, conn, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--path", default="/v1/completions")
    ap.add_argument("--timeout", type=float, default=8)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    for name, data, stall in cases(args.path):
        if args.only and args.only not in name:
            continue
        statuses, conn, out = exchange(args.host, args.port, data, stall, args.timeout)
        err = b'"error"' in out
        print("%s\t%s\t%s\t%s" % (name, ",".join(map(str, statuses)) or "-", conn,
                                  "json-error" if err else ""))


if __name__ == "__main__":
    main()
