#!/usr/bin/env python3
"""The proxy part of bench/run (stdlib only): `iap-token proxy` against a direct connection to the same
HTTPS service on 127.0.0.1, both measured in this run.

    proxy.py measure BIN KEY CERT CERT_KEY ENV_JSON   prints markdown rows (and details on stderr)
    proxy.py serve CERT CERT_KEY                      the service: prints its port, serves until killed

The service (its own process, HTTP/1.1 keep-alive over TLS): GET /small answers 2 bytes, GET
/big?bytes=N streams N bytes with a Content-Length. Measured:
- added latency: 2000 sequential GET /small on one keep-alive connection, direct (HTTPS) and through the
  proxy (HTTP to the proxy, which keeps its own TLS connection): p50 and p90 of each, and the difference;
- throughput: one 512 MiB download, direct and through the proxy;
- memory: the proxy's peak RSS (VmHWM) after 64 concurrent keep-alive clients made 20 requests each.
"""

import http.client
import json
import os
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

AUD = "123456789012-benchaudience.apps.googleusercontent.com"
BIG = 512 << 20
CHUNK = 1 << 20


def serve(cert: str, key: str) -> None:
    payload = bytes(range(256)) * (CHUNK // 256)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Head and body are separate writes: without this, Nagle meets delayed ACKs (40 ms each).
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_GET(self) -> None:
            if self.path.startswith("/big"):
                size = int(self.path.split("bytes=")[1])
                self.send_response(200)
                self.send_header("Content-Length", str(size))
                self.end_headers()
                left = size
                while left > 0:
                    n = min(left, CHUNK)
                    self.wfile.write(payload[:n])
                    left -= n
            else:
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print(server.server_address[1], flush=True)
    server.serve_forever()


def timed_gets(connection: http.client.HTTPConnection, count: int) -> list:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        connection.request("GET", "/small")
        answer = connection.getresponse()
        answer.read()
        times.append(time.perf_counter() - start)
        assert answer.status == 200, answer.status
    return times


def download(connection: http.client.HTTPConnection) -> float:
    """One large download on a connection of its own, closed after."""
    start = time.perf_counter()
    connection.request("GET", f"/big?bytes={BIG}")
    answer = connection.getresponse()
    got = 0
    while True:
        data = answer.read(CHUNK)
        if not data:
            break
        got += len(data)
    assert got == BIG, got
    rate = BIG / (time.perf_counter() - start) / 1e6
    connection.close()
    return rate


def percentile(values: list, p: float) -> float:
    return sorted(values)[int(len(values) * p)]


def measure(binary: str, key: str, cert: str, cert_key: str, env_json: str) -> None:
    env = json.loads(env_json)
    service = subprocess.Popen([sys.executable, __file__, "serve", cert, cert_key], stdout=subprocess.PIPE, text=True)
    proxy = None
    try:
        port = int(service.stdout.readline())
        url = f"https://127.0.0.1:{port}"
        proxy = subprocess.Popen(
            [binary, "proxy", "--url", url, "--audience", AUD, "--service-account-key", key, "--ca-file", cert],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
        )
        local = proxy.stdout.readline().strip()
        assert local.startswith("http://127.0.0.1:"), local
        proxy_port = int(local.rsplit(":", 1)[1])
        context = ssl.create_default_context(cafile=cert)

        def direct() -> http.client.HTTPConnection:
            return http.client.HTTPSConnection("127.0.0.1", port, context=context)

        def through() -> http.client.HTTPConnection:
            return http.client.HTTPConnection("127.0.0.1", proxy_port)

        # Latency: warm both connections, then alternate blocks so drift hits both alike.
        d, p = direct(), through()
        timed_gets(d, 100)
        timed_gets(p, 100)
        direct_times, proxy_times = [], []
        for _ in range(10):
            direct_times += timed_gets(d, 200)
            proxy_times += timed_gets(p, 200)
        d50, d90 = percentile(direct_times, 0.5) * 1e3, percentile(direct_times, 0.9) * 1e3
        p50, p90 = percentile(proxy_times, 0.5) * 1e3, percentile(proxy_times, 0.9) * 1e3
        added = p50 - d50

        # Throughput: one large download each way, twice, the better of each.
        direct_rate = max(download(direct()), download(direct()))
        proxy_rate = max(download(through()), download(through()))

        d.close()
        p.close()
        time.sleep(0.5)  # the proxy notices the closed connections within its 200 ms poll step

        # Memory with 64 concurrent keep-alive clients.
        barrier = threading.Barrier(64)

        def client() -> None:
            connection = through()
            timed_gets(connection, 1)
            barrier.wait()
            timed_gets(connection, 20)
            barrier.wait()
            connection.close()

        threads = [threading.Thread(target=client) for _ in range(64)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with open(f"/proc/{proxy.pid}/status") as status:
            peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

        print(f"direct p50 {d50:.3f} ms p90 {d90:.3f} ms; proxy p50 {p50:.3f} ms p90 {p90:.3f} ms "
              f"(median of {statistics.median(proxy_times) * 1e3:.3f}); {direct_rate:.0f} vs {proxy_rate:.0f} MB/s; "
              f"peak RSS {peak_kb} KB", file=sys.stderr)
        print(f"| proxy: added latency of a small GET, p50 (2000 on one keep-alive connection) | +{added:.3f} ms "
              f"({p50:.3f} vs {d50:.3f} ms direct; p90 {p90:.3f} vs {d90:.3f}) | ≤ 1 ms | {'yes' if added <= 1 else '**no**'} |")
        print(f"| proxy: throughput of a {BIG >> 20} MiB download | {proxy_rate:.0f} MB/s vs {direct_rate:.0f} MB/s direct "
              f"({proxy_rate / direct_rate:.2f}x) | ≥ 0.5x | {'yes' if proxy_rate / direct_rate >= 0.5 else '**no**'} |")
        print(f"| proxy: peak RSS after 64 concurrent keep-alive clients and the downloads | {peak_kb:,} KB | < 50 MB | "
              f"{'yes' if peak_kb < 50 * 1024 else '**no**'} |")
    finally:
        if proxy is not None:
            proxy.terminate()
            proxy.wait(timeout=15)
        service.kill()
        service.wait()


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3])
    else:
        measure(*sys.argv[2:7])
