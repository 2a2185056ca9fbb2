#!/usr/bin/env python3
"""Chaos soak: many clients doing random valid and invalid things, invariants checked.

Starts `ktnchat server` as its own process and runs, for --seconds, --clients chaos
clients that log in and out, chat, change rooms, send private messages, moderate (one
admin), send garbage, vanish abruptly, and read slowly or not at all — while checking:

1. a probe client's `help` is answered within --probe-bound seconds, all the time;
2. observers (clients that stay in one room and always read) receive every message whose
   sender saw its echo (acknowledged), exactly once, and in order per sender;
3. no client ever receives a message twice or out of order from one sender;
4. afterwards, the server's open file descriptors, threads and resident memory are back
   within a margin of the baseline taken before the load, and every name used is free;
5. with --rounds N, the crowd comes N times with a quiet pause between; resident memory
   after the last crowd is no more than a small margin above that after the first (the
   allocator keeps a high-water mark; a leak would grow with every crowd).

Loopback only; bounded in time and count; the server process is always stopped. Exit
status 0 only if every invariant held. `--json` writes the figures.

    python3 tools/soak.py --clients 1000 --seconds 600 --rounds 2   # the full run
    python3 tools/soak.py --clients 100 --seconds 30 --rounds 2 --memwatch DIR   # the CI run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set, Tuple

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
ADMIN_SECRET = "soak-admin-secret-0123456789"
ROOMS = ["lobby", "alpha", "beta", "gamma"]
MARK = "soak|"
SOAK_STORAGE = "memory://?max_messages=500"
SETTLE_SECONDS = 12.0  # > the server's default --heap-trim-interval (10 s)
RSS_MARGIN_KIB = 20_000  # after the run, at most max(this, half the baseline) above it
RSS_ROUND_GROWTH_KIB = 8_000  # the last round may end at most this much above the first


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def proc_status(pid: int) -> Dict[str, int]:
    """Open fds, threads and resident KiB of a process (Linux /proc)."""
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    fields: Dict[str, int] = {"fds": fds}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("Threads:"):
                fields["threads"] = int(line.split()[1])
            elif line.startswith("VmRSS:"):
                fields["rss_kib"] = int(line.split()[1])
    return fields


class MemWatch:
    """The server's memory dumps (tools/memwatch.py), taken when the soak asks."""

    def __init__(self, pid: int, directory: Optional[str]) -> None:
        self.pid = pid
        self.directory = directory
        self.reports: List[Dict[str, Any]] = []

    async def take(self, moment: str) -> None:
        if self.directory is None:
            return
        path = os.path.join(self.directory, f"dump-{len(self.reports) + 1}.json")
        os.kill(self.pid, signal.SIGUSR1)
        deadline = time.monotonic() + 30
        while not os.path.exists(path) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # the observers keep reading meanwhile
        try:
            with open(path) as found:
                report = json.load(found)
        except OSError:
            report = {"error": "no dump within 30 s"}
        report["moment"] = moment
        self.reports.append(report)


def request(word: str, content: Any = None) -> bytes:
    return json.dumps({"request": word, "content": content}).encode()


@dataclass
class Ledger:
    """What was acknowledged and what each reader saw."""

    acked: Dict[str, List[Tuple[str, int]]] = field(default_factory=lambda: defaultdict(list))
    violations: List[str] = field(default_factory=list)
    counts: Dict[str, int] = field(default_factory=lambda: defaultdict(int))
    probe_rtts: List[float] = field(default_factory=list)
    names_used: Set[str] = field(default_factory=set)

    def violation(self, text: str) -> None:
        if len(self.violations) < 50:
            self.violations.append(text)


class Reader:
    """Reads newline-terminated JSON objects from a stream and checks per-sender order."""

    def __init__(self, name: str, ledger: Ledger) -> None:
        self.name = name
        self.ledger = ledger
        self.last_seq: Dict[str, int] = {}
        self.seen: Set[Tuple[str, int]] = set()

    def check(self, obj: Dict[str, Any]) -> Optional[Tuple[str, int, str]]:
        """For a soak message: (sender, seq, room); checks order and duplicates."""
        if obj.get("response") != "message" or obj.get("private") or obj.get("history"):
            return None  # earlier messages replayed to a paced client are not live ones
        text = obj.get("content")
        if not isinstance(text, str) or not text.startswith(MARK):
            return None
        try:
            _, sender, seq_text, room = text.split("|", 3)
            seq = int(seq_text)
        except ValueError:
            return None
        if (sender, seq) in self.seen:
            self.ledger.violation(f"{self.name} got {sender}#{seq} twice")
        elif seq <= self.last_seq.get(sender, -1):
            self.ledger.violation(f"{self.name} got {sender}#{seq} after #{self.last_seq[sender]}")
        self.seen.add((sender, seq))
        self.last_seq[sender] = max(seq, self.last_seq.get(sender, -1))
        return sender, seq, room


async def read_objects(reader: asyncio.StreamReader):  # type: ignore[no-untyped-def]
    while True:
        line = await reader.readline()
        if not line:
            return
        try:
            yield json.loads(line)
        except ValueError:
            continue


async def open_client(port: int) -> Tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)


async def observer(
    port: int, room: str, ledger: Ledger, stop: asyncio.Event, got: Dict[str, Set[Tuple[str, int]]]
) -> None:
    reader, writer = await open_client(port)
    name = f"obs{room}"
    ledger.names_used.add(name)
    writer.write(request("stream", "on") + request("login", name))
    if room != "lobby":
        writer.write(request("create", room))  # the observers make the rooms
    checker = Reader(name, ledger)
    got[room] = checker.seen
    ended = False
    try:
        async for obj in read_objects(reader):
            checker.check(obj)
            if obj.get("request") == "create" and "exists already" in str(obj.get("content")):
                writer.write(request("join", room))  # a server that ran a soak before
                continue
            if obj.get("response") == "error" or obj.get("event") in ("kicked", "muted"):
                ledger.violation(f"observer {name} got {obj}")
            if stop.is_set() and obj.get("content") == f"{MARK}end":
                ended = True
                break
    finally:
        writer.close()
        if not ended:
            ledger.violation(f"observer {name} stopped early (connection closed)")


PROBE_TIMEOUT = 30.0  # seconds the probe waits for one answer before it gives up


def probe_main(port: int, interval: float, seconds: float) -> int:
    """The probe, run in its own process (`--probe-port`) so that the load generator's own
    lag is not counted as the server's: a `help` every `interval` seconds, each round trip
    printed in seconds on its own line; "timeout" if an answer took PROBE_TIMEOUT."""
    deadline = time.monotonic() + seconds
    with socket.create_connection(("127.0.0.1", port), timeout=PROBE_TIMEOUT) as sock:
        sock.sendall(request("stream", "on"))
        pending = b""
        while time.monotonic() < deadline:
            sent = time.perf_counter()
            sock.sendall(request("help"))
            while b"Requests you can send" not in pending:
                try:
                    chunk = sock.recv(65536)
                except socket.timeout:
                    print("timeout", flush=True)
                    return 1
                if not chunk:
                    return 1
                pending += chunk
            print(f"{time.perf_counter() - sent:.6f}", flush=True)
            # Keep only what follows the answer's line.
            end = pending.find(b"\n", pending.find(b"Requests you can send"))
            pending = pending[end + 1 :] if end >= 0 else b""
            time.sleep(interval)
    return 0


def start_probe(port: int, seconds: float) -> subprocess.Popen:  # type: ignore[type-arg]
    return subprocess.Popen(
        [
            sys.executable,
            os.path.abspath(__file__),
            *("--probe-port", str(port), "--seconds", str(seconds)),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )


def stop_probe(process: subprocess.Popen, ledger: Ledger) -> None:  # type: ignore[type-arg]
    process.terminate()
    try:
        out, _ = process.communicate(timeout=PROBE_TIMEOUT + 5)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate(timeout=10)
    for line in out.decode().split():
        if line == "timeout":
            ledger.violation(f"the probe got no answer within {PROBE_TIMEOUT} s")
        else:
            ledger.probe_rtts.append(float(line))


async def consume(
    reader: asyncio.StreamReader,
    checker: Reader,
    pending: Dict[int, str],
    where: Dict[str, str],
    ledger: Ledger,
) -> None:
    """Read a chaos client's stream: record acknowledgements, follow its room."""
    async for obj in read_objects(reader):
        found = checker.check(obj)
        if found and found[0] == checker.name and found[1] in pending:
            ledger.acked[pending.pop(found[1])].append((checker.name, found[1]))
            ledger.counts["acked"] += 1
        if obj.get("event") == "joined":
            where["room"] = str(obj.get("room"))
        if obj.get("response") == "error":
            ledger.counts["errors"] += 1


async def chaos_client(
    index: int, port: int, ledger: Ledger, deadline: float, rng: random.Random, first_seq: int = 0
) -> None:
    """One misbehaving, well-behaving, vanishing user, until the deadline. Its messages are
    numbered from `first_seq` (a later round goes on where an earlier one stopped)."""
    seq = first_seq
    while time.monotonic() < deadline:
        name = f"u{index}x{rng.randrange(3)}"
        ledger.names_used.add(name)
        try:
            reader, writer = await open_client(port)
        except OSError:
            ledger.counts["connect_failed"] += 1
            await asyncio.sleep(1)
            continue
        slow = rng.random() < 0.03
        if slow:
            writer.transport.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_RCVBUF, 4096
            )
        if rng.random() < 0.8:
            writer.write(request("stream", "on"))
        writer.write(request("login", name))
        checker = Reader(name, ledger)
        pending: Dict[int, str] = {}

        where = {"room": "lobby"}
        reading = (
            None
            if slow
            else asyncio.ensure_future(consume(reader, checker, pending, where, ledger))
        )
        session_end = min(deadline, time.monotonic() + rng.uniform(3, 30))
        try:
            while time.monotonic() < session_end:
                await asyncio.sleep(rng.uniform(0.2, 2.0))
                roll = rng.random()
                if roll < 0.45:
                    seq += 1
                    pending[seq] = where["room"]
                    writer.write(request("msg", f"{MARK}{name}|{seq}|{where['room']}"))
                    ledger.counts["sent"] += 1
                elif roll < 0.55:
                    writer.write(request("join", rng.choice(ROOMS[1:])))
                elif roll < 0.60:
                    writer.write(request("leave"))
                elif roll < 0.66:
                    writer.write(request("sendto", f"u{rng.randrange(1000)}x0 psst"))
                elif roll < 0.70:
                    writer.write(request("names"))
                elif roll < 0.73:
                    writer.write(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))))
                    ledger.counts["garbage"] += 1
                elif roll < 0.76:
                    writer.write(b'{"request": "msg", "content": ' + b"[" * 50)
                elif roll < 0.79:
                    writer.write(request(rng.choice(["kick", "ban", "remove", "gban"]), "u1x0"))
                elif roll < 0.81:
                    writer.write(request("history", rng.randrange(1, 50)))
                elif roll < 0.83:
                    writer.write(request("logout"))
                    writer.write(request("login", name))
                elif roll < 0.85:
                    break  # vanish: abrupt close below
                await writer.drain()
        except (ConnectionError, OSError):
            ledger.counts["dropped"] += 1
        finally:
            if rng.random() < 0.5:
                sock = writer.transport.get_extra_info("socket")
                if sock is not None:
                    try:
                        sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                    except OSError:
                        pass
            writer.close()
            if reading is not None:
                reading.cancel()
            ledger.counts["sessions"] += 1


async def admin(port: int, deadline: float, rng: random.Random, ledger: Ledger) -> None:
    reader, writer = await open_client(port)
    writer.write(request("stream", "on") + request("login", "soakadmin"))
    writer.write(request("admin", ADMIN_SECRET))
    ledger.names_used.add("soakadmin")

    async def drain() -> None:
        async for _ in read_objects(reader):
            pass

    task = asyncio.ensure_future(drain())
    while time.monotonic() < deadline:
        await asyncio.sleep(rng.uniform(0.5, 2.0))
        victim = f"u{rng.randrange(1000)}x{rng.randrange(3)}"
        action = rng.choice(["kick", "mute", "unmute", "ban", "unban", "remove", "purge"])
        content = str(rng.randrange(1, 100000)) if action == "remove" else victim
        writer.write(request(action, content))
        ledger.counts["moderation"] += 1
        await writer.drain()
    writer.close()
    task.cancel()


async def names_free(port: int, names: Set[str]) -> List[str]:
    """Log in as each name once; the ones refused are still taken. A fresh connection
    every 15 names keeps each below the per-session request limit."""
    taken: List[str] = []
    ordered = sorted(names)
    for start in range(0, len(ordered), 15):
        taken += await _names_free(port, ordered[start : start + 15])
    return taken


async def _names_free(port: int, names: List[str]) -> List[str]:
    taken: List[str] = []
    reader, writer = await open_client(port)
    writer.write(request("stream", "on"))
    for name in names:
        writer.write(request("login", name))
        while True:
            line = await asyncio.wait_for(reader.readline(), 10)
            if b'"request":"login"' in line and b'"response":"error"' in line:
                if b"banned" not in line:
                    taken.append(name)
                break
            if b'"username":"' + name.encode() + b'"' in line and b"Login successful" in line:
                writer.write(request("logout"))
                break
    writer.close()
    return taken


async def run(args: argparse.Namespace, port: int, pid: int) -> Dict[str, Any]:
    ledger = Ledger()
    rng = random.Random(args.seed)
    stop = asyncio.Event()
    got: Dict[str, Set[Tuple[str, int]]] = {}
    observers = [asyncio.ensure_future(observer(port, room, ledger, stop, got)) for room in ROOMS]
    prober = start_probe(port, args.seconds + 120 + args.rounds * SETTLE_SECONDS)
    await asyncio.sleep(1.0)
    baseline = proc_status(pid)
    memwatch = MemWatch(pid, args.memwatch)
    await memwatch.take("baseline")
    rss_after_round: List[int] = []
    for round_number in range(args.rounds):
        if round_number:
            # Quiet: the crowd has gone; give the server one memory trim, then measure.
            await asyncio.sleep(SETTLE_SECONDS)
            rss_after_round.append(proc_status(pid)["rss_kib"])
            await memwatch.take(f"after round {round_number}")
        deadline = time.monotonic() + args.seconds / args.rounds
        clients = []
        for i in range(args.clients):
            clients.append(
                asyncio.ensure_future(
                    chaos_client(
                        i,
                        port,
                        ledger,
                        deadline,
                        random.Random(rng.random()),
                        first_seq=round_number * 10_000_000,
                    )
                )
            )
            if i % 50 == 49:
                await asyncio.sleep(0.05)
        admin_task = asyncio.ensure_future(
            admin(port, deadline, random.Random(rng.random()), ledger)
        )
        await asyncio.gather(*clients, admin_task, return_exceptions=True)
    load_ended = time.monotonic()
    # Let every acknowledged message reach the observers, then stop them.
    await asyncio.sleep(2.0)
    stop.set()
    _closer_r, closer_w = await open_client(port)
    closer_w.write(request("stream", "on") + request("login", "soakcloser"))
    ledger.names_used.add("soakcloser")
    for room in ROOMS:
        closer_w.write(request("join", room) + request("msg", f"{MARK}end"))
        await asyncio.sleep(0.2)
    await asyncio.wait(observers, timeout=20)
    closer_w.close()
    stop_probe(prober, ledger)
    # Each acknowledged message went to exactly one room (the one its sender was in when
    # the server stored it, which the sender may not know yet after a join or a kick), so
    # exactly one room's observer must have it.
    missing = 0
    for messages in ledger.acked.values():
        for message in messages:
            holders = [room for room, seen in got.items() if message in seen]
            if len(holders) != 1:
                missing += 1
                ledger.violation(f"acknowledged {message} seen by observers of {holders}")
    await asyncio.sleep(3.0)  # the server notices the last closes
    taken = await names_free(port, ledger.names_used)
    if taken:
        ledger.violation(f"{len(taken)} names still taken after the run, e.g. {taken[:5]}")
    # "After" is after the server's next memory trim (every 10 s by default).
    await asyncio.sleep(max(2.0, SETTLE_SECONDS - (time.monotonic() - load_ended)))
    after = proc_status(pid)
    rss_after_round.append(after["rss_kib"])
    await memwatch.take("after")
    if not ledger.probe_rtts:
        ledger.violation("the probe measured nothing")
    rtts = sorted(ledger.probe_rtts) or [0.0]
    p99 = rtts[min(len(rtts) - 1, int(len(rtts) * 0.99))]
    if rtts[-1] > args.probe_bound:
        ledger.violation(f"probe answered in {rtts[-1]:.3f} s > bound {args.probe_bound} s")
    if after["fds"] > baseline["fds"] + 10:
        ledger.violation(f"fds {baseline['fds']} -> {after['fds']}")
    if after["threads"] > baseline["threads"] + 2:
        ledger.violation(f"threads {baseline['threads']} -> {after['threads']}")
    rss_margin = max(int(baseline["rss_kib"] * 0.5), RSS_MARGIN_KIB)
    if after["rss_kib"] > baseline["rss_kib"] + rss_margin:
        ledger.violation(f"rss {baseline['rss_kib']} KiB -> {after['rss_kib']} KiB")
    # The allocator keeps a high-water mark after the first crowd; a second crowd like it
    # must not add to it, or something leaks.
    growth = rss_after_round[-1] - rss_after_round[0]
    if growth > RSS_ROUND_GROWTH_KIB:
        ledger.violation(f"rss grew {growth} KiB over rounds: {rss_after_round}")
    return {
        "clients": args.clients,
        "seconds": args.seconds,
        "counts": dict(ledger.counts),
        "acknowledged_missing_at_observers": missing,
        "probe_rtt_ms": {
            "p50": rtts[len(rtts) // 2] * 1000,
            "p99": p99 * 1000,
            "max": rtts[-1] * 1000,
            "samples": len(rtts),
        },
        "baseline": baseline,
        "after": after,
        "rss_kib_after_each_round": rss_after_round,
        "memwatch": memwatch.reports,
        "violations": ledger.violations,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--probe-bound", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="split --seconds into this many crowds with a quiet pause between; resident "
        "memory after each is recorded, and must not grow from the first to the last",
    )
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument(
        "--memwatch",
        metavar="DIR",
        help="run the server under tools/memwatch.py and record its memory breakdown "
        "(mappings, pymalloc arenas, cyclic garbage) at the baseline, after each round and "
        "at the end; dumps go to DIR",
    )
    parser.add_argument("--probe-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--storage",
        default=SOAK_STORAGE,
        help="the server's store. The default keeps 500 messages per room, so that memory "
        "still resident after the run is not history the server keeps on purpose (the "
        "default store keeps 10,000 per room: ~16 MB after a full run)",
    )
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.probe_port:
        return probe_main(args.probe_port, 0.5, args.seconds)
    port = free_port()
    env = dict(os.environ, PYTHONPATH=REPO, KTNCHAT_ADMIN_SECRET=ADMIN_SECRET)
    if args.memwatch:
        os.makedirs(args.memwatch, exist_ok=True)
        for old in os.listdir(args.memwatch):
            if old.startswith("dump-"):
                os.remove(os.path.join(args.memwatch, old))
        memwatch = os.path.join(os.path.dirname(os.path.abspath(__file__)), "memwatch.py")
        launcher = [memwatch, "--dir", args.memwatch, "--census", "--"]
    else:
        launcher = ["-m", "ktnchat", "server"]
    server = subprocess.Popen(
        [
            sys.executable,
            *launcher,
            "--port",
            str(port),
            "--log-level",
            "WARNING",
            "--max-outbox-bytes",
            "262144",
            "--send-buffer-bytes",
            "65536",
            "--frame-timeout",
            "5",
            "--max-connections",
            "20000",
            "--storage",
            args.storage,
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("server did not start") from None
                time.sleep(0.05)
        result = asyncio.run(asyncio.wait_for(run(args, port, server.pid), args.seconds + 300))
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            _, err = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            _, err = server.communicate(timeout=10)
    tracebacks = err.decode("utf-8", "replace").count("Traceback")
    result["server_tracebacks"] = tracebacks
    result["server_exit"] = server.returncode
    if tracebacks:
        result["violations"].append(f"{tracebacks} traceback(s) in the server's log")
    if server.returncode != 0:
        result["violations"].append(f"server exited {server.returncode}")
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=2)
    return 1 if result["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
