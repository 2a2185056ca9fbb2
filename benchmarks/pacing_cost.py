#!/usr/bin/env python3
"""What the naive-client pacing costs: one room, N readers, one sender, M messages.

Runs an in-process server on a loopback port 0 and compares readers that sent
`stream on` with readers that did not (the default, paced). Reports deliveries/s
(readers x messages / seconds until the last reader has the last message).

    python3 benchmarks/pacing_cost.py --readers 100 --messages 200
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

from roomload import measure, median_and_spread

from tests.helpers import start_server


def run(readers: int, messages: int, stream: bool, pace_ms: float) -> float:
    server = start_server(pace_interval=pace_ms / 1000.0)
    try:
        return measure(server, readers, messages, stream)
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
        rates = [run(args.readers, args.messages, stream, pace) for _ in range(args.runs)]
        median, low, high = median_and_spread(rates)
        print(
            f"{label:42s} median {median / 1e3:8.1f} k deliveries/s "
            f"(min {low / 1e3:.1f} k, max {high / 1e3:.1f} k)"
        )


if __name__ == "__main__":
    main()
