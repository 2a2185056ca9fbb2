#!/usr/bin/env python3
"""Storage adapters: messages stored per second, and what each costs the fan-out.

1. Raw adapter speed: `append_message` calls per second from one thread, and the time to
   read the last 50 messages of a room.
2. Fan-out through the real server: one room, N streaming readers, one sender, M messages;
   deliveries/s with each adapter behind the server, relative to memory.

MongoDB here is mongomock (an in-process imitation): its figures show the adapter's own
overhead and the storage worker's, not a MongoDB server's. Set KTNCHAT_BENCH_MONGO_URL to
include a real MongoDB.

    python3 benchmarks/storage_bench.py [--readers 50] [--messages 2000] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List

sys.path.insert(0, os.path.dirname(__file__))

from roomload import measure, median_and_spread

from ktnchat.storage import Storage, storage_from_url
from tests.helpers import start_server

Opener = Callable[[Path], Storage]


def openers() -> Dict[str, Opener]:
    found: Dict[str, Opener] = {
        "memory": lambda d: storage_from_url("memory://"),
        "sqlite (synchronous=normal)": lambda d: storage_from_url(f"sqlite:///{d / 'n.db'}"),
        "sqlite (synchronous=full)": lambda d: storage_from_url(
            f"sqlite:///{d / 'f.db'}?synchronous=full"
        ),
    }
    try:
        import mongomock

        from ktnchat.storage.mongodb import MongoStorage

        found["mongomock (not a real MongoDB)"] = lambda d: MongoStorage(
            mongomock.MongoClient(), "bench"
        )
    except ImportError:
        pass
    url = os.environ.get("KTNCHAT_BENCH_MONGO_URL")
    if url:
        found["mongodb (real server)"] = lambda d: storage_from_url(
            url.rstrip("/") + f"/ktnchat_bench_{os.getpid()}_{time.time_ns()}"
        )
    return found


def raw_appends(store: Storage, count: int) -> tuple[float, float]:
    start = time.perf_counter()
    for i in range(count):
        store.append_message("lobby", "bench", f"message number {i} " + "x" * 80, time.time())
    appends = count / (time.perf_counter() - start)
    start = time.perf_counter()
    reads = 200
    for _ in range(reads):
        store.recent_messages("lobby", 50)
    return appends, (time.perf_counter() - start) / reads * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=50)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--appends", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows: List[str] = []
    baseline = None
    for name, opener in openers().items():
        with tempfile.TemporaryDirectory() as tmp:
            appends, read_us, rates = [], [], []
            for run in range(args.runs):
                raw_dir = Path(tmp) / str(run)
                raw_dir.mkdir()
                store = opener(raw_dir)
                rate, micros = raw_appends(store, args.appends)
                store.close()
                appends.append(rate)
                read_us.append(micros)
                run_dir = Path(tmp) / f"s{run}"
                run_dir.mkdir()
                server = start_server(storage=opener(run_dir), pace_interval=0.0)
                try:
                    rates.append(measure(server, args.readers, args.messages))
                finally:
                    server.shutdown()
        a, a_lo, a_hi = median_and_spread(appends)
        r, _, _ = median_and_spread(read_us)
        f, f_lo, f_hi = median_and_spread(rates)
        baseline = baseline or f
        rows.append(
            f"| {name} | {a:,.0f} ({a_lo:,.0f}-{a_hi:,.0f}) | {r:,.0f} | "
            f"{f / 1e3:,.0f} k ({f_lo / 1e3:,.0f}-{f_hi / 1e3:,.0f} k) | {f / baseline:.0%} |"
        )
    print(
        f"readers={args.readers} messages={args.messages} appends={args.appends} "
        f"runs={args.runs} (median, min-max)"
    )
    print("| adapter | appends/s | read last 50 (us) | fan-out deliveries/s | vs memory |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
