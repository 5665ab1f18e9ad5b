#!/usr/bin/env python3
"""Idle TLS keep-alive connections for bench/proxy_compare.sh workload (i).

  tls_hold.py --target IP:PORT --connections N [--http]

Opens N TLS connections to the proxy (full handshakes, no certificate check: the bench's
certificate is self-signed), sends "GET / HTTP/1.1" on each and reads its whole response, then
prints "result ready held=H failed=F seconds=S" and holds them, idle, until SIGTERM. Then it
prints "result done held=H failed=F dropped=D": D counts the connections the proxy closed,
reset or wrote to while they were idle. The output matches `proxy_peer hold` (bench/proxy_peer.cpp),
whose place it takes for TLS; --http is accepted for that reason (every connection makes a
request).
"""
import argparse
import resource
import select
import signal
import socket
import ssl
import sys
import time


def read_response(s):
    """Reads one response with a Content-Length body; False if it did not come whole."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            return False
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        return False
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = s.recv(4096)
        if not chunk:
            return False
        body += chunk
    return True


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--connections", type=int, required=True)
    parser.add_argument("--http", action="store_true")
    args = parser.parse_args()
    host, port = args.target.rsplit(":", 1)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    held, failed = [], 0
    start = time.monotonic()
    for _ in range(args.connections):
        try:
            raw = socket.create_connection((host, int(port)), timeout=10)
            s = ctx.wrap_socket(raw, server_hostname="bench.lbd.test")
            s.sendall(b"GET / HTTP/1.1\r\nHost: bench.lbd.test\r\n\r\n")
            if read_response(s):
                s.setblocking(False)
                held.append(s)
            else:
                failed += 1
                s.close()
        except OSError as e:
            failed += 1
            print(f"tls_hold: connect/handshake/request failed: {e}", file=sys.stderr)
    print(f"result ready held={len(held)} failed={failed} seconds={time.monotonic() - start:.3f}", flush=True)

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    while not stop:
        signal.pause()
    # A connection with anything to read (bytes, FIN, reset) was disturbed while idle.
    poller = select.poll()
    for s in held:
        poller.register(s.fileno(), select.POLLIN)
    dropped = len(poller.poll(0))
    print(f"result done held={len(held)} failed={failed} dropped={dropped}", flush=True)


if __name__ == "__main__":
    main()
