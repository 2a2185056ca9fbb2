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
   allocator keeps a high-water mark; a leak would grow with every crowd);
6. one order per room: every reader of a room (observers, and chaos clients while they
   are in it) sees that room's soak messages in the same relative order (sequences are
   compared pairwise on the messages both saw). Two "choir" users, on different workers
   when there are several, send a burst each at the same moment every second, so that
   messages of one room reach two workers at once.

With --workers N (N >= 2) the server is a cluster: a redis-server on a free loopback port
(no persistence), N `ktnchat server --bus ...` processes each on its own port sharing it
and one SQLite file, the clients spread over them (client i on worker i mod N), one
observer per room on every worker and one probe per worker; invariants 2-6 hold across
workers (a message acknowledged on one worker reaches the observers on all of them), and
fds, threads and memory are checked for every worker process.

Loopback only; bounded in time and count; every process started is always stopped. Exit
status 0 only if every invariant held. `--json` writes the figures.

    python3 tools/soak.py --clients 1000 --seconds 600 --rounds 2   # the full run
    python3 tools/soak.py --clients 100 --seconds 30 --rounds 2 --memwatch DIR   # the CI run
    python3 tools/soak.py --workers 2 --clients 100 --seconds 30 --rounds 2   # two workers
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
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
REDIS_OPTIONS = ("--save", "", "--appendonly", "no", "--loglevel", "warning", "--dir")


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
    readers: List[Reader] = field(default_factory=list)  # chaos sessions that read
    order_violations: int = 0
    order_examples: List[str] = field(default_factory=list)

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
        self.order: List[Tuple[str, int]] = []  # every soak message, in arrival order

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
        else:
            if seq <= self.last_seq.get(sender, -1):
                self.ledger.violation(
                    f"{self.name} got {sender}#{seq} after #{self.last_seq[sender]}"
                )
            self.order.append((sender, seq))
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
    port: int,
    room: str,
    worker: int,
    ledger: Ledger,
    stop: asyncio.Event,
    got: Dict[str, List[Reader]],
    ready: asyncio.Future[None],
) -> None:
    """Stays in `room` on one worker and reads everything. The first worker's observers
    make the rooms; `ready` is set once this one is in its room."""
    reader, writer = await open_client(port)
    name = f"obs{room}" if worker == 0 else f"obs{room}{worker}"
    ledger.names_used.add(name)
    writer.write(request("stream", "on") + request("login", name))
    if room != "lobby":
        writer.write(request("create" if worker == 0 else "join", room))
    checker = Reader(name, ledger)
    got.setdefault(room, []).append(checker)
    ended = False
    try:
        async for obj in read_objects(reader):
            checker.check(obj)
            if not ready.done() and (
                (room == "lobby" and obj.get("username") == name)
                or (obj.get("event") == "joined" and obj.get("room") == room)
            ):
                ready.set_result(None)
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
        if not ready.done():
            ready.set_result(None)
        if not ended:
            ledger.violation(f"observer {name} stopped early (connection closed)")


def order_violations(ledger: Ledger, got: Dict[str, List[Reader]]) -> int:
    """One order per room: every pair of readers of a room saw the messages both saw in
    the same relative order. Each observer is compared with every other observer of its
    room, and with every chaos session (whose messages from other rooms are not in the
    observer's sequence, so only that room's are compared)."""
    bad = 0
    for room, observers in got.items():
        for index, reference in enumerate(observers):
            position = {message: at for at, message in enumerate(reference.order)}
            others = observers[index + 1 :] + (ledger.readers if index == 0 else [])
            for other in others:
                last = -1
                previous: Optional[Tuple[str, int]] = None
                for message in other.order:
                    at = position.get(message)
                    if at is None:
                        continue
                    if at < last:
                        bad += 1
                        if len(ledger.order_examples) < 20:
                            ledger.order_examples.append(
                                f"in {room}: {other.name} got {message} after {previous}, "
                                f"{reference.name} the other way round"
                            )
                        break  # one per pair is enough to say it
                    last, previous = at, message
    return bad


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
        if not slow:
            ledger.readers.append(checker)
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


CHOIR_BURST = 4  # messages each choir member sends at once, every CHOIR_EVERY seconds
CHOIR_EVERY = 1.0  # (4/s: below the flood limit of 5/s sustained, 10 at once)


async def choir(ports: List[int], ledger: Ledger, deadline: float, first_seq: int) -> None:
    """Two lobby users, on different workers when there are several, that send a burst
    each at the same moment: messages of one room reaching two workers at once, which is
    what would show two workers delivering one room in different orders."""
    members = []
    for index, port in enumerate((ports * 2)[:2] if len(ports) == 1 else ports):
        name = f"choir{index}"
        ledger.names_used.add(name)
        reader, writer = await open_client(port)
        writer.write(request("stream", "on") + request("login", name))
        checker = Reader(name, ledger)
        ledger.readers.append(checker)
        pending: Dict[int, str] = {}
        task = asyncio.ensure_future(consume(reader, checker, pending, {"room": "lobby"}, ledger))
        members.append((name, writer, pending, task))
    seq = first_seq
    try:
        await asyncio.sleep(0.5)
        while time.monotonic() < deadline:
            for name, writer, pending, _ in members:
                for number in range(seq + 1, seq + 1 + CHOIR_BURST):
                    pending[number] = "lobby"
                    writer.write(request("msg", f"{MARK}{name}|{number}|lobby"))
                ledger.counts["sent"] += CHOIR_BURST
            seq += CHOIR_BURST
            await asyncio.sleep(CHOIR_EVERY)
        await asyncio.sleep(1.0)  # the last echoes
    finally:
        for _, writer, _, task in members:
            writer.close()
            task.cancel()


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


async def names_free(ports: List[int], names: Set[str]) -> List[str]:
    """Log in as each name once; the ones refused are still taken. A fresh connection
    every 15 names keeps each below the per-session request limit; in a cluster the
    connections take turns over the workers (a name is free cluster-wide or not at all)."""
    taken: List[str] = []
    ordered = sorted(names)
    for turn, start in enumerate(range(0, len(ordered), 15)):
        taken += await _names_free(ports[turn % len(ports)], ordered[start : start + 15])
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


async def run(args: argparse.Namespace, ports: List[int], pids: List[int]) -> Dict[str, Any]:
    """The soak against one server (one port) or a cluster (one port per worker)."""
    ledger = Ledger()
    rng = random.Random(args.seed)
    stop = asyncio.Event()
    got: Dict[str, List[Reader]] = {}
    loop = asyncio.get_running_loop()
    observers = []
    for worker, port in enumerate(ports):  # the first worker's observers make the rooms
        ready = [loop.create_future() for _ in ROOMS]
        observers += [
            asyncio.ensure_future(observer(port, room, worker, ledger, stop, got, done))
            for room, done in zip(ROOMS, ready)
        ]
        await asyncio.wait_for(asyncio.gather(*ready), 30)
    probe_seconds = args.seconds + 120 + args.rounds * SETTLE_SECONDS
    probers = [start_probe(port, probe_seconds) for port in ports]
    await asyncio.sleep(1.0)
    baseline = [proc_status(pid) for pid in pids]
    memwatch = MemWatch(pids[0], args.memwatch)
    await memwatch.take("baseline")
    rss_after_round: List[List[int]] = []
    for round_number in range(args.rounds):
        if round_number:
            # Quiet: the crowd has gone; give the server one memory trim, then measure.
            await asyncio.sleep(SETTLE_SECONDS)
            rss_after_round.append([proc_status(pid)["rss_kib"] for pid in pids])
            await memwatch.take(f"after round {round_number}")
        deadline = time.monotonic() + args.seconds / args.rounds
        clients = []
        for i in range(args.clients):
            clients.append(
                asyncio.ensure_future(
                    chaos_client(
                        i,
                        ports[i % len(ports)],
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
            admin(ports[0], deadline, random.Random(rng.random()), ledger)
        )
        choir_task = asyncio.ensure_future(
            choir(ports, ledger, deadline, first_seq=round_number * 10_000_000)
        )
        await asyncio.gather(*clients, admin_task, choir_task, return_exceptions=True)
    load_ended = time.monotonic()
    # Let every acknowledged message reach the observers, then stop them.
    await asyncio.sleep(2.0)
    stop.set()
    _closer_r, closer_w = await open_client(ports[-1])
    closer_w.write(request("stream", "on") + request("login", "soakcloser"))
    ledger.names_used.add("soakcloser")
    for room in ROOMS:
        closer_w.write(request("join", room) + request("msg", f"{MARK}end"))
        await asyncio.sleep(0.2)
    await asyncio.wait(observers, timeout=20)
    closer_w.close()
    for prober in probers:
        stop_probe(prober, ledger)
    # Each acknowledged message went to exactly one room (the one its sender was in when
    # the server stored it, which the sender may not know yet after a join or a kick), so
    # the observers of exactly one room must have it: every one of them, on every worker.
    missing = 0
    for messages in ledger.acked.values():
        for message in messages:
            holders = [
                room for room, readers in got.items() if any(message in r.seen for r in readers)
            ]
            if len(holders) != 1:
                missing += 1
                ledger.violation(f"acknowledged {message} seen by observers of {holders}")
                continue
            lacking = [r.name for r in got[holders[0]] if message not in r.seen]
            if lacking:
                missing += 1
                ledger.violation(f"acknowledged {message} not seen by {lacking}")
    ledger.order_violations = order_violations(ledger, got)
    if ledger.order_violations:
        # One line, so that it cannot crowd the other invariants out of the list.
        ledger.violation(
            f"order: {ledger.order_violations} pairs of readers saw a room's messages in "
            f"different orders, e.g. {ledger.order_examples[0]}"
        )
    await asyncio.sleep(3.0)  # the server notices the last closes
    taken = await names_free(ports, ledger.names_used)
    if taken:
        ledger.violation(f"{len(taken)} names still taken after the run, e.g. {taken[:5]}")
    # "After" is after the server's next memory trim (every 10 s by default).
    await asyncio.sleep(max(2.0, SETTLE_SECONDS - (time.monotonic() - load_ended)))
    after = [proc_status(pid) for pid in pids]
    rss_after_round.append([status["rss_kib"] for status in after])
    await memwatch.take("after")
    if not ledger.probe_rtts:
        ledger.violation("the probe measured nothing")
    rtts = sorted(ledger.probe_rtts) or [0.0]
    p99 = rtts[min(len(rtts) - 1, int(len(rtts) * 0.99))]
    if rtts[-1] > args.probe_bound:
        ledger.violation(f"probe answered in {rtts[-1]:.3f} s > bound {args.probe_bound} s")
    for worker, (before, now) in enumerate(zip(baseline, after)):
        who = "" if len(pids) == 1 else f"worker {worker}: "
        if now["fds"] > before["fds"] + 10:
            ledger.violation(f"{who}fds {before['fds']} -> {now['fds']}")
        if now["threads"] > before["threads"] + 2:
            ledger.violation(f"{who}threads {before['threads']} -> {now['threads']}")
        rss_margin = max(int(before["rss_kib"] * 0.5), RSS_MARGIN_KIB)
        if now["rss_kib"] > before["rss_kib"] + rss_margin:
            ledger.violation(f"{who}rss {before['rss_kib']} KiB -> {now['rss_kib']} KiB")
        # The allocator keeps a high-water mark after the first crowd; a second crowd like
        # it must not add to it, or something leaks.
        series = [rss[worker] for rss in rss_after_round]
        growth = series[-1] - series[0]
        if growth > RSS_ROUND_GROWTH_KIB:
            ledger.violation(f"{who}rss grew {growth} KiB over rounds: {series}")
    one = len(pids) == 1
    return {
        "clients": args.clients,
        "seconds": args.seconds,
        "workers": len(ports),
        "counts": dict(ledger.counts),
        "acknowledged_missing_at_observers": missing,
        "order_violations": ledger.order_violations,
        "order_examples": ledger.order_examples,
        "readers_compared": len(ledger.readers) + sum(len(r) for r in got.values()),
        "probe_rtt_ms": {
            "p50": rtts[len(rtts) // 2] * 1000,
            "p99": p99 * 1000,
            "max": rtts[-1] * 1000,
            "samples": len(rtts),
        },
        "baseline": baseline[0] if one else baseline,
        "after": after[0] if one else after,
        "rss_kib_after_each_round": [r[0] for r in rss_after_round] if one else rss_after_round,
        "memwatch": memwatch.reports,
        "violations": ledger.violations,
    }


def wait_listening(port: int, process: subprocess.Popen, what: str) -> None:  # type: ignore[type-arg]
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit(f"{what} did not start") from None
            time.sleep(0.05)


def stop_process(process: subprocess.Popen, signalled: bool = False) -> None:  # type: ignore[type-arg]
    """SIGTERM (once: a second one during the interpreter's exit would kill it), wait,
    then SIGKILL."""
    if not signalled and process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def start_redis(binary: str, directory: str) -> Tuple[subprocess.Popen, int]:  # type: ignore[type-arg]
    """redis-server on a free loopback port, without persistence."""
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", *REDIS_OPTIONS, directory],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(port, process, "redis-server")
    except BaseException:
        stop_process(process)
        raise
    return process, port


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
        "at the end; dumps go to DIR (with --workers: the first worker's)",
    )
    parser.add_argument("--probe-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--storage",
        default=SOAK_STORAGE,
        help="the server's store. The default keeps 500 messages per room, so that memory "
        "still resident after the run is not history the server keeps on purpose (the "
        "default store keeps 10,000 per room: ~16 MB after a full run). With --workers "
        "the default is a fresh SQLite file keeping 500 messages per room",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="2 or more: a cluster of this many server processes on a Redis bus (a fresh "
        "redis-server on a free loopback port) sharing one SQLite file, clients spread "
        "over them",
    )
    parser.add_argument("--redis-server", default="redis-server", help="the binary, --workers")
    parser.add_argument(
        "--server-tree",
        metavar="DIR",
        help="run the server(s) from the ktnchat package in DIR (e.g. another commit's: "
        "git archive HEAD ktnchat | tar -x -C DIR); not with --memwatch",
    )
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.server_tree and args.memwatch:
        parser.error("--server-tree and --memwatch do not go together")
    tree = os.path.abspath(args.server_tree or REPO)
    if args.probe_port:
        return probe_main(args.probe_port, 0.5, args.seconds)
    redis_binary = shutil.which(args.redis_server)
    if args.workers > 1 and redis_binary is None:
        parser.error(f"--workers {args.workers} needs {args.redis_server} (not found)")
    env = dict(os.environ, PYTHONPATH=tree, KTNCHAT_ADMIN_SECRET=ADMIN_SECRET)
    if args.memwatch:
        os.makedirs(args.memwatch, exist_ok=True)
        for old in os.listdir(args.memwatch):
            if old.startswith("dump-"):
                os.remove(os.path.join(args.memwatch, old))
        memwatch = os.path.join(os.path.dirname(os.path.abspath(__file__)), "memwatch.py")
        launcher = [memwatch, "--dir", args.memwatch, "--census", "--"]
    else:
        launcher = ["-m", "ktnchat", "server"]
    scratch = tempfile.TemporaryDirectory(prefix="ktnchat-soak-")
    redis: Optional[subprocess.Popen] = None  # type: ignore[type-arg]
    servers: List[subprocess.Popen] = []  # type: ignore[type-arg]
    logs = []
    ports: List[int] = []
    try:
        cluster: List[str] = []
        storage = args.storage
        if args.workers > 1:
            assert redis_binary is not None
            redis, redis_port = start_redis(redis_binary, scratch.name)
            cluster = ["--bus", f"redis://127.0.0.1:{redis_port}/0"]
            if storage == SOAK_STORAGE:
                storage = "sqlite:///" + os.path.join(scratch.name, "soak.db")
                cluster += ["--retention-messages", "500"]
        for worker in range(args.workers):
            port = free_port()
            log = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
            logs.append(log)
            servers.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        *(launcher if worker == 0 else ["-m", "ktnchat", "server"]),
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
                        storage,
                        *cluster,
                    ],
                    env=env,
                    cwd=tree,  # `python -m` puts the working directory first on the path
                    stdin=subprocess.DEVNULL,
                    stderr=log,
                )
            )
            ports.append(port)
        for worker, (port, server) in enumerate(zip(ports, servers)):
            wait_listening(port, server, f"server {worker}")
        pids = [server.pid for server in servers]
        result = asyncio.run(asyncio.wait_for(run(args, ports, pids), args.seconds + 300))
    finally:
        for server in servers:
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
        for server in servers:
            stop_process(server, signalled=True)
        if redis is not None:
            stop_process(redis)
        errs = []
        for log in logs:
            log.seek(0)
            errs.append(log.read().decode("utf-8", "replace"))
            log.close()
        scratch.cleanup()
    tracebacks = sum(err.count("Traceback") for err in errs)
    result["server_tracebacks"] = tracebacks
    codes = [server.returncode for server in servers]
    result["server_exit"] = codes[0] if len(codes) == 1 else codes
    if tracebacks:
        result["violations"].append(f"{tracebacks} traceback(s) in the server's log")
        first = next(err for err in errs if "Traceback" in err)
        at = first.index("Traceback")
        result["first_traceback"] = first[at : at + 3000]
    for worker, code in enumerate(codes):
        if code != 0:
            who = "server" if len(codes) == 1 else f"worker {worker}"
            result["violations"].append(f"{who} exited {code}")
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=2)
    return 1 if result["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
