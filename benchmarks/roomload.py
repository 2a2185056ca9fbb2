"""One room, N readers, one sender: the shared measurement of the small benchmarks.

`measure(server, readers, messages, stream)` logs in N reading clients and one sender on a
running server, sends M messages at once, and returns deliveries/s (readers x messages /
seconds until every reader has the last message). Loopback only; bounded in time.
"""

from __future__ import annotations

import json
import os
import selectors
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from ktnchat.server import ChatServer
from tests.helpers import Peer

TIME_LIMIT = 120.0


def measure(server: ChatServer, readers: int, messages: int, stream: bool = True) -> float:
    peers = []
    try:
        for i in range(readers):
            peer = Peer(server.address, stream=stream)
            peer.login(f"r{i}")
            peers.append(peer)
        sender = Peer(server.address, stream=True)
        peers.append(sender)
        sender.login("sender")
        marker = b'"content":"m%d"' % (messages - 1)
        selector = selectors.DefaultSelector()
        for peer in peers[:readers]:
            peer.sock.setblocking(False)
            selector.register(peer.sock, selectors.EVENT_READ, bytearray())
        payload = b"".join(
            json.dumps({"request": "msg", "content": f"m{i}"}).encode() for i in range(messages)
        )
        start = time.perf_counter()
        sender.sock.sendall(payload)
        done = 0
        deadline = time.monotonic() + TIME_LIMIT
        while done < readers and time.monotonic() < deadline:
            for key, _ in selector.select(1.0):
                tail = key.data
                tail += key.fileobj.recv(1 << 20)
                if marker in tail:
                    selector.unregister(key.fileobj)
                    done += 1
                else:
                    del tail[: max(0, len(tail) - 64)]
        elapsed = time.perf_counter() - start
        selector.close()
        if done < readers:
            raise SystemExit(f"only {done}/{readers} readers got every message")
        return readers * messages / elapsed
    finally:
        for peer in peers:
            peer.close()


def median_and_spread(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    return ordered[len(ordered) // 2], ordered[0], ordered[-1]
