#!/usr/bin/env python3
"""What a client that stops reading costs everyone else in its room.

Runs the one-room measurement (benchmarks/roomload.py: N streaming readers, one sender,
M messages) on a fresh server, alternately without and with K extra members that log
in, then never read (small receive buffers), and reports the throughput drop. The
stalled members are dropped at the outbox cap, as they should be; the others must not
notice. Server and load share one process here, so compare the two columns, not the
absolute figures with other benchmarks.

    python3 benchmarks/stalled_reader.py --readers 50 --messages 3000 --runs 5
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from typing import List

sys.path.insert(0, os.path.dirname(__file__))

from roomload import measure, median_and_spread

from tests.helpers import start_server


def stalled_members(address: tuple, count: int) -> List[socket.socket]:
    """Members that log in and never read another byte."""
    members = []
    for i in range(count):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(address)
        sock.sendall(
            b'{"request":"stream","content":"on"}'
            + b'{"request":"login","content":"stalled%d"}' % i
        )
        members.append(sock)
    return members


def run(readers: int, messages: int, stalled: int) -> float:
    server = start_server(pace_interval=0.0, max_outbox_bytes=256 * 1024)
    held: List[socket.socket] = []
    try:
        held = stalled_members(server.address, stalled)
        return measure(server, readers, messages)
    finally:
        for sock in held:
            sock.close()
        server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=50)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--stalled", type=int, default=1)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    without, with_stalled = [], []
    for _ in range(args.runs):  # alternate, so drift hits both columns alike
        without.append(run(args.readers, args.messages, 0))
        with_stalled.append(run(args.readers, args.messages, args.stalled))
    base, base_lo, base_hi = median_and_spread(without)
    slow, slow_lo, slow_hi = median_and_spread(with_stalled)
    print(
        f"readers={args.readers} messages={args.messages} stalled={args.stalled} "
        f"runs={args.runs} (median, min-max)"
    )
    print(
        f"without a stalled member: {base / 1e3:,.0f} k deliveries/s "
        f"({base_lo / 1e3:,.0f}-{base_hi / 1e3:,.0f} k)"
    )
    print(
        f"with {args.stalled} stalled:        {slow / 1e3:,.0f} k deliveries/s "
        f"({slow_lo / 1e3:,.0f}-{slow_hi / 1e3:,.0f} k)"
    )
    print(f"change: {100 * (slow - base) / base:+.1f}%")


if __name__ == "__main__":
    main()
