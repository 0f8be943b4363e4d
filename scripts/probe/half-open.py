#!/usr/bin/env python3
"""Half-open connection probe: how many half-sent requests can one client hold against a
mediaseal listener, and what does /healthz answer meanwhile?

Opens connections in steps (from --clients loopback addresses), each sending a request line and part of a header and then
nothing, and after every step times GET /healthz on a fresh connection. Prints one line per
step and a summary; measures, asserts nothing (tests assert, this reports).

    scripts/probe/half-open.py --url http://127.0.0.1:8080 --steps 64,256,1024 --clients 16
"""
import argparse
import socket
import statistics
import time
import urllib.parse


def healthz_ms(host, port, timeout, source="127.0.0.2"):
    start = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout,
                                      source_address=(source, 0)) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        ok = data.startswith(b"HTTP/1.1 200")
    except OSError:
        ok = False
    return (time.monotonic() - start) * 1000, ok


def open_half(host, port, source):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2)
    s.bind((source, 0))
    s.connect((host, port))
    s.sendall(b"POST /2010-04-01/Accounts.json HTTP/1.1\r\nHost: probe\r\nX-Slow: ")
    return s


def still_open(s):
    try:
        s.setblocking(False)
        data = s.recv(1)
        return data != b""  # b"" is the server's close
    except BlockingIOError:
        return True
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--steps", default="64,128,256,512,1024")
    ap.add_argument("--clients", type=int, default=1,
                    help="spread the half-open connections over this many loopback addresses "
                         "(127.0.1.x); /healthz is asked from 127.0.0.2")
    ap.add_argument("--hold", type=float, default=0.5, help="seconds to wait after each step")
    args = ap.parse_args()
    u = urllib.parse.urlparse(args.url)
    host, port = u.hostname, u.port or 80
    held = []
    base = [healthz_ms(host, port, 5)[0] for _ in range(5)]
    print(f"baseline /healthz: median {statistics.median(base):.1f} ms")
    for target in [int(x) for x in args.steps.split(",")]:
        refused = 0
        while len(held) < target:
            try:
                source = f"127.0.1.{1 + len(held) % args.clients}"
                held.append(open_half(host, port, source))
            except OSError:
                refused += 1
                if refused > 50:
                    break
        time.sleep(args.hold)
        alive = sum(1 for s in held if still_open(s))
        times = [healthz_ms(host, port, 5) for _ in range(5)]
        med = statistics.median(t for t, _ in times)
        oks = sum(1 for _, ok in times if ok)
        print(f"opened {len(held):5d}  still held by the server {alive:5d}  "
              f"/healthz median {med:7.1f} ms  ok {oks}/5")
    for s in held:
        s.close()


if __name__ == "__main__":
    main()
