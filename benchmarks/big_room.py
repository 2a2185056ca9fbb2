#!/usr/bin/env python3
"""A room of 10,000: join time and fan-out with N members in one room.

Starts `ktnchat server` as its own process (pacing and flood control off, WARNING logs),
connects N clients that log in (all land in the lobby), and reports:
- connect + login rate while the room fills, and the login time of the last 100 joiners
  (a join must not cost O(N): no join notices above --announce-max-members);
- `names` round trip with N members;
- fan-out: one sender sends M messages; deliveries/s until every member has the last one.

    python3 benchmarks/big_room.py --clients 10000 --messages 20

Loopback only; every wait bounded; the server process is always stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import selectors
import signal
import socket
import subprocess
import sys
import time
from typing import List

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
TIME_LIMIT = 300.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(port: int, clients: int) -> subprocess.Popen:  # type: ignore[type-arg]
    env = dict(os.environ, PYTHONPATH=REPO)
    argv = [
        sys.executable,
        "-m",
        "ktnchat",
        "server",
        "--port",
        str(port),
        "--pace-ms",
        "0",
        "--flood",
        "off",
        "--log-level",
        "WARNING",
        "--max-connections",
        str(clients + 100),
    ]
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("server did not start")


def request(word: str, content: object = None) -> bytes:
    return json.dumps({"request": word, "content": content}).encode()


def wait_for(sock: socket.socket, marker: bytes, deadline: float) -> bytes:
    data = b""
    sock.settimeout(max(0.1, deadline - time.monotonic()))
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("connection closed early")
        data += chunk
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=20)
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    port = free_port()
    server = start_server(port, args.clients)
    socks: List[socket.socket] = []
    try:
        deadline = time.monotonic() + TIME_LIMIT
        started = time.perf_counter()
        first_logins: List[float] = []
        last_logins: List[float] = []
        batch = 200  # logins in flight at once (bounded concurrency)
        for first in range(0, args.clients, batch):
            group = []
            for i in range(first, min(first + batch, args.clients)):
                sock = socket.create_connection(("127.0.0.1", port), timeout=30)
                sock.sendall(request("stream", "on") + request("login", f"user{i}"))
                group.append((sock, time.perf_counter()))
            for sock, sent in group:
                wait_for(sock, b'"response":"history"', deadline)
                took = time.perf_counter() - sent
                if len(socks) < 100:
                    first_logins.append(took)
                if len(socks) >= args.clients - 100:
                    last_logins.append(took)
                socks.append(sock)
        fill = time.perf_counter() - started
        probe = socks[0]
        sent = time.perf_counter()
        probe.sendall(request("names"))
        wait_for(probe, b'"names":[', deadline)
        names_ms = (time.perf_counter() - sent) * 1000
        for sock in socks:
            sock.setblocking(False)
            try:
                while sock.recv(1 << 20):
                    pass
            except BlockingIOError:
                pass
        selector = selectors.DefaultSelector()
        for sock in socks:
            selector.register(sock, selectors.EVENT_READ, bytearray())
        marker = b'"content":"m%d"' % (args.messages - 1)
        sender = socks[-1]
        payload = b"".join(request("msg", f"m{i}") for i in range(args.messages))
        started = time.perf_counter()
        sender.setblocking(True)
        sender.sendall(payload)
        sender.setblocking(False)
        done = 0
        while done < len(socks) and time.monotonic() < deadline:
            for key, _ in selector.select(1.0):
                tail = key.data
                try:
                    tail += key.fileobj.recv(1 << 20)
                except BlockingIOError:
                    continue
                if marker in tail:
                    selector.unregister(key.fileobj)
                    done += 1
                else:
                    del tail[: max(0, len(tail) - 64)]
        fanout = time.perf_counter() - started
        if done < len(socks):
            raise SystemExit(f"only {done}/{len(socks)} members got every message")
        first_logins.sort()
        last_logins.sort()
        print(f"members: {len(socks)}")
        print(f"connect + login, {len(socks)} clients: {fill:.1f} s = {len(socks) / fill:,.0f}/s")
        for label, times in (("first", first_logins), ("last", last_logins)):
            print(
                f"login time of the {label} 100 joiners (200 logins in flight): median "
                f"{times[len(times) // 2] * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms"
            )
        print(f"names round trip with {len(socks)} members: {names_ms:.1f} ms")
        deliveries = len(socks) * args.messages
        print(
            f"fan-out: {args.messages} messages to {len(socks)} members in {fanout:.2f} s = "
            f"{deliveries / fanout / 1e3:,.0f} k deliveries/s"
        )
    finally:
        for sock in socks:
            sock.close()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)


if __name__ == "__main__":
    main()
