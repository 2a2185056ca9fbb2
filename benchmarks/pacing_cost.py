#!/usr/bin/env python3
"""What the naive-client pacing costs: one room, N readers, one sender, M messages.

Runs an in-process server on a loopback port 0 and compares readers that sent
`stream on` with readers that did not (the default, paced). Reports deliveries/s
(readers x messages / seconds until the last reader has the last message).

    python3 benchmarks/pacing_cost.py --readers 100 --messages 200
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from tests.helpers import Peer, start_server

TIME_LIMIT = 120.0


def run(readers: int, messages: int, stream: bool, pace_ms: float) -> float:
    server = start_server(pace_interval=pace_ms / 1000.0)
    try:
        socks = []
        for i in range(readers):
            peer = Peer(server.address, stream=stream)
            peer.login(f"r{i}")
            socks.append(peer.sock)
        sender = Peer(server.address, stream=True)
        sender.login("sender")
        marker = b'"content":"m%d"' % (messages - 1)
        selector = selectors.DefaultSelector()
        for sock in socks:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ, bytearray())
        start = time.perf_counter()
        payload = b"".join(
            json.dumps({"request": "msg", "content": f"m{i}"}).encode() for i in range(messages)
        )
        sender.sock.sendall(payload)
        done = 0
        deadline = time.monotonic() + TIME_LIMIT
        while done < readers and time.monotonic() < deadline:
            for key, _ in selector.select(1.0):
                data = key.fileobj.recv(1 << 20)
                tail = key.data
                tail += data
                if marker in tail:
                    selector.unregister(key.fileobj)
                    done += 1
                else:
                    del tail[: max(0, len(tail) - 64)]
        elapsed = time.perf_counter() - start
        if done < readers:
            raise SystemExit(f"only {done}/{readers} readers got every message")
        for sock in socks:
            sock.close()
        sender.close()
        return readers * messages / elapsed
    finally:
        server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=100)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    cases = [
        ("streaming readers (sent `stream on`)", True, 50.0),
        ("paced readers (default), burst", False, 50.0),
        ("pacing off for everyone (--pace-ms 0)", False, 0.0),
    ]
    for label, stream, pace in cases:
        rates = sorted(run(args.readers, args.messages, stream, pace) for _ in range(args.runs))
        median = rates[len(rates) // 2]
        print(
            f"{label:42s} median {median / 1e3:8.1f} k deliveries/s "
            f"(min {rates[0] / 1e3:.1f} k, max {rates[-1] / 1e3:.1f} k)"
        )


if __name__ == "__main__":
    main()
