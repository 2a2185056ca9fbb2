#!/usr/bin/env python3
"""What counting costs the fan-out: metrics on against metrics off (issue 16).

1. `--part bench`: the fan-out benchmark (`ktnchat bench`, bounded, N=100 by default),
   one run at a time, alternating (in a rotating order) `--metrics off`, on (the
   default) and, with
   `--baseline-tree DIR`, a copy of an older commit's ktnchat (e.g. one without metrics:
   `mkdir -p /tmp/base && git archive HEAD ktnchat | tar -x -C /tmp/base`). Reports
   deliveries/s and the server's CPU-seconds per million deliveries (user + system, from
   /proc), medians with min-max. On a shared machine the CPU figure is the steadier one.
2. `--part hotpath`: the counting hooks alone, in this process. A real ChatServer (memory
   store, N streaming readers on real loopback sockets) has its sender's connection fed
   `msg` requests as raw bytes on its I/O loop (Connection.received: decoding, the
   service, the store, the fan-out to every reader), in blocks timed with the loop
   thread's own CPU clock, switching counting off and on in turn within the one server.
   Not included: the selector, recv() and send() (the bench row has them; the number of
   passes and writes is the same either way, and each costs one increment).
3. `--part instructions`: the same path under valgrind's callgrind, counting
   instructions instead of time, so other processes on the machine cannot disturb it.
4. `--part server-instructions`: the bench row itself (M = 100 and 1000 per sender) with
   its server process under callgrind: the whole server's instructions per message.

    python3 benchmarks/metrics_cost.py --part all --runs 10 [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
DASH = "\u2013"  # en dash, for ranges in tables
sys.path.insert(0, str(ROOT))

from ktnchat.server import ChatServer, ServerConfig  # noqa: E402
from ktnchat.service import ChatService  # noqa: E402
from ktnchat.storage import storage_from_url  # noqa: E402
from tests.helpers import NO_FLOOD, Peer  # noqa: E402


def spread(values: List[float], scale: float = 1.0, digits: int = 3) -> str:
    if not values:
        return "-"
    med = statistics.median(values) * scale
    low, high = min(values) * scale, max(values) * scale
    return f"{med:.{digits}f} ({low:.{digits}f}{DASH}{high:.{digits}f})"


# -- 1. the fan-out benchmark, alternating ------------------------------------------------


def bench_once(tree: Path, bench_args: List[str], server_args: str) -> Dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "run.json"
        command = [
            sys.executable,
            "-m",
            "ktnchat",
            "bench",
            *bench_args,
            "--runs",
            "1",
            "--json",
            str(out),
        ]
        if server_args:
            command += ["--server-args", server_args]
        done = subprocess.run(command, cwd=tree, capture_output=True, text=True, timeout=600)
        if not out.exists():
            raise RuntimeError(f"bench failed ({done.returncode}): {done.stderr[-2000:]}")
        report = json.loads(out.read_text())
    run: Dict[str, Any] = report["runs"][0]
    run["errors"] = report.get("errors", []) + run.get("errors", [])
    return run


def part_bench(args: argparse.Namespace) -> Dict[str, Any]:
    bench_args = shlex.split(args.bench_args)
    arms = [("off", ROOT, "--metrics off"), ("on", ROOT, "")]
    if args.baseline_tree:
        arms.append(("baseline", Path(args.baseline_tree), ""))
    results: Dict[str, List[Dict[str, Any]]] = {name: [] for name, _, _ in arms}
    for round_ in range(args.runs):
        # The order rotates each round, so no arm always runs first (or after another).
        shift = round_ % len(arms)
        for name, tree, server_args in arms[shift:] + arms[:shift]:
            run = bench_once(tree, bench_args, server_args)
            results[name].append(run)
            print(
                f"round {round_ + 1} {name:8} {run['deliveries_per_s'] / 1e3:8,.0f} k/s "
                f"server CPU {run['server_cpu_s']:.2f} s "
                f"({1e6 * run['server_cpu_s'] / run['deliveries']:.3f} s per 1 M deliveries) "
                f"other load {run.get('other_cpu_pct', 0):.0f}%"
                + (f" ERRORS {run['errors']}" if run["errors"] else ""),
                flush=True,
            )
    summary: Dict[str, Any] = {}
    for name, runs in results.items():
        per_million = [1e6 * r["server_cpu_s"] / r["deliveries"] for r in runs]
        user = [1e6 * r["server_cpu_user_s"] / r["deliveries"] for r in runs]
        summary[name] = {
            "runs": len(runs),
            "deliveries_per_s": [r["deliveries_per_s"] for r in runs],
            "server_cpu_s_per_million": per_million,
            "server_user_s_per_million": user,
            "other_cpu_pct_max": max(r.get("other_cpu_pct", 0.0) for r in runs),
            "errors": sum(len(r["errors"]) for r in runs),
        }
    print()
    print("| server | runs | deliveries/s | server CPU-s per 1 M deliveries | of which user |")
    print("|---|---|---|---|---|")
    for name, s in summary.items():
        rate = spread(s["deliveries_per_s"], 1e-3, 0)
        cpu, user = spread(s["server_cpu_s_per_million"]), spread(s["server_user_s_per_million"])
        print(f"| metrics {name} | {s['runs']} | {rate} k | {cpu} | {user} |")
    if "on" in summary and "off" in summary:
        on = statistics.median(summary["on"]["server_cpu_s_per_million"])
        off = statistics.median(summary["off"]["server_cpu_s_per_million"])
        rate_on = statistics.median(summary["on"]["deliveries_per_s"])
        rate_off = statistics.median(summary["off"]["deliveries_per_s"])
        print(
            f"\non vs off: CPU per delivery {100 * (on / off - 1):+.1f}%, "
            f"deliveries/s {100 * (rate_on / rate_off - 1):+.1f}% (medians)"
        )
        # Each round ran off and on back to back: their ratio cancels the slow drift of a
        # shared machine's load, which moves single runs by tens of percent.
        for what, key in (
            ("CPU per delivery", "server_cpu_s_per_million"),
            ("deliveries/s", "deliveries_per_s"),
        ):
            ratios = sorted(b / a for a, b in zip(summary["off"][key], summary["on"][key]) if a > 0)
            quart = (ratios[len(ratios) // 4], ratios[(3 * len(ratios)) // 4])
            print(
                f"paired on/off, {what}: median {100 * (statistics.median(ratios) - 1):+.1f}% "
                f"(quartiles {100 * (quart[0] - 1):+.1f}% to {100 * (quart[1] - 1):+.1f}%)"
            )
            summary[f"paired_ratio_{key}"] = ratios
    return summary


# -- 2. and 3. the hooks alone -------------------------------------------------------------


class HotPath:
    """A server in this process (memory store, metrics on) with N streaming readers on
    loopback; feed() hands the first reader's connection `msg` requests as raw bytes, on
    its I/O loop, through Connection.received: decoding, the service, the store and the
    fan-out to every reader, as for bytes read from its socket. Readers' outboxes are
    emptied after each batch (nothing is flushed while it runs)."""

    BATCH = 50  # requests per received() call

    def __init__(self, readers: int, size: int, metrics: bool = True) -> None:
        config = ServerConfig(host="127.0.0.1", port=0, pace_interval=0.0, metrics=metrics)
        config = replace(config, max_outbox_bytes=1 << 30, read_pause_bytes=1 << 30)
        self.server = ChatServer(ChatService(storage_from_url("memory://"), NO_FLOOD), config)
        self.server.start()
        self.peers: List[Peer] = []
        for n in range(readers):
            peer = Peer(self.server.address, stream=True)
            self.peers.append(peer)
            peer.login(f"r{n}")
        sender = self.server.service.presence.holder("r0")
        assert sender is not None and sender.transport is not None
        self.conn = sender.transport
        self.loop = self.conn.loop
        request = json.dumps({"request": "msg", "content": "x" * size}).encode()
        self.batch = request * self.BATCH
        self.registry, self.counts = self.server.metrics, self.loop.counts

    def switch(self, on: bool) -> None:
        """Counting on or off, as --metrics off leaves it: every hook sees None."""
        server = self.server
        server.metrics = server.service.metrics = self.registry if on else None
        self.loop.counts = self.counts if on else None

    def feed(self, messages: int) -> float:
        """On the loop: `messages` requests; the loop thread's CPU seconds for them."""
        done: queue.Queue[float] = queue.Queue()

        def job() -> None:
            spent = 0.0
            for _ in range(max(0, messages) // self.BATCH):
                start = time.thread_time()
                self.conn.received(self.batch, time.monotonic())
                spent += time.thread_time() - start
                for each in self.loop.connections:
                    each.outbox.frames.clear()
                    each.outbox.queued_bytes = 0
            done.put(spent)

        self.loop.post(job)
        return done.get(timeout=3600)

    def close(self) -> None:
        for peer in self.peers:
            peer.close()
        self.server.shutdown()


def part_hotpath(args: argparse.Namespace) -> Dict[str, Any]:
    """Blocks of B messages, counting switched off and on in turn (one server, so both
    see the same sockets and heap), each timed with the loop thread's CPU clock."""
    hot = HotPath(args.readers, args.size)
    results: Dict[str, List[float]] = {"off": [], "on": []}
    try:
        for index in range(args.hot_runs + 1):
            for name in ("off", "on") if index % 2 else ("on", "off"):
                hot.switch(name == "on")
                spent = hot.feed(args.messages)
                if index:  # the first round warms up
                    results[name].append(1e6 * spent / args.messages)
        hot.switch(True)
    finally:
        hot.close()
    off, on = statistics.median(results["off"]), statistics.median(results["on"])
    print(f"| hot path, N={args.readers}, blocks of {args.messages} | blocks | µs per message |")
    print("|---|---|---|")
    for name, values in results.items():
        print(f"| metrics {name} | {len(values)} | {spread(values, 1, 2)} |")
    # Interference from other processes only ever adds time: the fastest blocks are the
    # least disturbed, so compare the low ends too.
    low = {name: sorted(values) for name, values in results.items()}
    tenth = {name: values[len(values) // 10] for name, values in low.items()}
    fastest = 100 * (low["on"][0] / low["off"][0] - 1)
    tenths = 100 * (tenth["on"] / tenth["off"] - 1)
    print(
        f"\nfastest block: off {low['off'][0]:.2f}, on {low['on'][0]:.2f} µs ({fastest:+.1f}%); "
        f"10th percentile: off {tenth['off']:.2f}, on {tenth['on']:.2f} µs ({tenths:+.1f}%)"
    )
    pairs = sorted(b - a for a, b in zip(results["off"], results["on"]))
    print(
        f"on - off: {on - off:+.2f} µs per message ({100 * (on / off - 1):+.1f}%); "
        f"paired differences, median {statistics.median(pairs):+.2f} µs "
        f"(quartiles {pairs[len(pairs) // 4]:+.2f} to {pairs[3 * len(pairs) // 4]:+.2f})"
    )
    return {"per_message_us": results, "readers": args.readers, "block": args.messages}


def part_instructions(args: argparse.Namespace) -> Dict[str, Any]:
    """The same path under valgrind's callgrind, which counts instructions, not time: a
    figure other processes cannot disturb. A child process per (metrics, messages): the
    instructions per message are the difference between M and 0 messages, over M."""
    counts: Dict[str, Dict[int, int]] = {"off": {}, "on": {}}
    for name in ("off", "on"):
        for messages in (0, args.instructions_messages):
            command = [
                "valgrind",
                "--tool=callgrind",
                "--callgrind-out-file=/dev/null",
                sys.executable,
                __file__,
                "--child",
                name,
                str(messages),
                "--readers",
                str(args.readers),
                "--size",
                str(args.size),
            ]
            done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
            found = [line for line in done.stderr.splitlines() if "Collected :" in line]
            if done.returncode != 0 or not found:
                raise RuntimeError(f"callgrind run failed: {done.stderr[-2000:]}")
            counts[name][messages] = int(found[-1].split(":")[-1].strip())
            print(f"callgrind metrics {name:3} {messages:6} messages: {counts[name][messages]:,}")
    m = args.instructions_messages
    per = {name: (c[m] - c[0]) / m for name, c in counts.items()}
    print(
        f"\ninstructions per message (decode, service, store, fan-out to {args.readers}): "
        f"off {per['off']:,.0f}, on {per['on']:,.0f}: {per['on'] - per['off']:+,.0f} "
        f"({100 * (per['on'] / per['off'] - 1):+.2f}%)"
    )
    return {"totals": counts, "per_message": per, "messages": m, "readers": args.readers}


def part_server_instructions(args: argparse.Namespace) -> Dict[str, Any]:
    """The bench row itself with its server under callgrind (a wrapper script as the
    server's interpreter): M = 100 and M = 1000 per sender, metrics off and on; the
    difference between the two M is 9,000 messages (S = 10)."""
    from ktnchat.bench import Options, Workload, run_once

    with tempfile.TemporaryDirectory() as scratch:
        wrapper = Path(scratch) / "python"
        wrapper.write_text(
            "#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file=/dev/null "
            f'--log-file={scratch}/log.%p {sys.executable} "$@"\n'
        )
        wrapper.chmod(0o755)
        totals: Dict[str, Dict[int, int]] = {"off": {}, "on": {}}
        for _ in range(args.server_instructions_runs):
            for name in ("off", "on"):
                for messages in (100, 1000):
                    for old in Path(scratch).glob("log.*"):
                        old.unlink()
                    options = Options(
                        server_args="--metrics off" if name == "off" else "",
                        python=str(wrapper),
                        time_limit=1800.0,
                        stall=300.0,
                    )
                    run = run_once(Workload(clients=args.readers, messages=messages), options)
                    if run.get("errors"):
                        raise RuntimeError(f"bench run failed: {run['errors']}")
                    found = 0
                    for log in Path(scratch).glob("log.*"):
                        lines = [x for x in log.read_text().splitlines() if "Collected :" in x]
                        found += int(lines[-1].split(":")[-1]) if lines else 0
                    key = messages
                    totals[name][key] = totals[name].get(key, 0) + found
                    print(f"server under callgrind, metrics {name:3}, M={messages}: {found:,}")
    runs = args.server_instructions_runs
    per = {n: (t[1000] - t[100]) / (runs * 10 * 900) for n, t in totals.items()}
    print(
        f"\nserver instructions per message (bench row, N={args.readers}): off "
        f"{per['off']:,.0f}, on {per['on']:,.0f}: {per['on'] - per['off']:+,.0f} "
        f"({100 * (per['on'] / per['off'] - 1):+.2f}%)"
    )
    return {"totals": totals, "per_message": per, "runs": runs}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--part",
        choices=["bench", "hotpath", "instructions", "server-instructions", "both", "all"],
        default="both",
    )
    parser.add_argument(
        "--server-instructions-runs", type=int, default=2, help="repeats of that part"
    )
    parser.add_argument("--runs", type=int, default=6, help="bench rounds (one run per arm)")
    parser.add_argument(
        "--bench-args",
        default="--shape bounded --clients 100 --messages 4000",
        help="the row to run (ktnchat bench options)",
    )
    parser.add_argument("--baseline-tree", default="", help="also run this copy's server")
    parser.add_argument("--hot-runs", type=int, default=40, help="hot path block pairs")
    parser.add_argument("--readers", type=int, default=100)
    parser.add_argument("--messages", type=int, default=1000, help="per hot path block")
    parser.add_argument("--size", type=int, default=100, help="bytes of message text")
    parser.add_argument(
        "--instructions-messages", type=int, default=10000, help="messages per callgrind run"
    )
    parser.add_argument("--json", default="", help="write the figures here")
    parser.add_argument("--child", nargs=2, metavar=("ON_OFF", "MESSAGES"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:  # one callgrind run of part 3
        hot = HotPath(args.readers, args.size, metrics=args.child[0] == "on")
        try:
            hot.feed(int(args.child[1]))
        finally:
            hot.close()
        return 0
    out: Dict[str, Any] = {"host": os.uname().nodename, "cpus": os.cpu_count()}
    if args.part in ("hotpath", "both", "all"):
        out["hotpath"] = part_hotpath(args)
    if args.part in ("instructions", "all"):
        out["instructions"] = part_instructions(args)
    if args.part in ("server-instructions", "all"):
        out["server_instructions"] = part_server_instructions(args)
    if args.part in ("bench", "both", "all"):
        out["bench"] = part_bench(args)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "metrics-cost"
    raise SystemExit(main())
