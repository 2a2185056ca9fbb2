#!/usr/bin/env python3
"""What the Redis bus costs (issue 14): CPU-seconds of every server-side process per 1 M
deliveries, and Redis commands and bytes per message as workers and rooms grow.

Part `cpu`: the bounded fan-out rows of `ktnchat bench` (one room, every client says
`stream on`, `--flood off`, `--pace-ms 0`, lines of ~100 bytes) against four servers:

    memory   one process, no bus, memory://
    sqlite   one process, no bus, sqlite:///FILE
    bus1     one process on a Redis bus, SQLite (a cluster of one worker)
    bus2     two processes on one Redis, one SQLite file; clients alternate between them

A delivery is one line received by one client other than its sender (N-1 per message).
CPU is utime + stime from /proc/PID/stat of every worker process and of redis-server, over
the send phase only. Runs alternate between the servers (memory, sqlite, bus1, bus2,
memory, ...), so a slow spell of the host hits all of them; medians with min-max.

Part `redis`: W separate worker processes (1, 2, 4, 8) on one Redis, R rooms, each room's
members on only k of the workers (m members on each), one sender per room sending M
messages (at most --room-window unacknowledged). Counted by Redis itself: `INFO
commandstats` and `INFO stats` (total_net_input_bytes, total_net_output_bytes) after
CONFIG RESETSTAT; what the idle cluster does on its own (heartbeats) is measured over
--idle-seconds just before and subtracted. Reported per stored message.

Rules: loopback only; every count and wait is bounded (--time-limit per run, a stall
limit); every process started (workers, redis-server) is stopped at the end of its run,
also on errors and Ctrl-C. No new dependency: Redis is spoken to in RESP over a socket.

    python3 benchmarks/cluster_cost.py --part cpu --runs 5 --json /tmp/cpu.json
    python3 benchmarks/cluster_cost.py --part redis --json /tmp/redis.json
    python3 benchmarks/cluster_cost.py --part cpu --quick 0.1 --runs 1   # a dry run
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from ktnchat import bench
from ktnchat.oslimits import raise_file_limit

HOST = "127.0.0.1"
REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
DASH = "\u2013"
REDIS_OPTIONS = ("--save", "", "--appendonly", "no", "--loglevel", "warning", "--dir")


# -- processes ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int) -> Tuple[float, float]:
    """utime and stime of a process (all its threads), /proc/PID/stat; (0, 0) if gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            stat = handle.read()
    except OSError:
        return 0.0, 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS


def thread_cpu_seconds(pid: int) -> Dict[int, float]:
    """utime + stime of each thread of a process, /proc/PID/task/TID/stat."""
    seconds: Dict[int, float] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return seconds
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", encoding="ascii") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        seconds[int(tid)] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return seconds


def wait_listening(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise bench.BenchError(f"{what} exited at start ({proc.returncode})")
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise bench.BenchError(f"{what} did not start listening") from None
            time.sleep(0.05)


def stop_process(proc: subprocess.Popen[bytes], signalled: bool = False) -> None:
    """SIGTERM (once: a second one during the interpreter's exit would kill it), wait,
    then SIGKILL."""
    if not signalled and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(STOP_TIMEOUT)


class Redis:
    """redis-server on a free loopback port, no persistence, spoken to in RESP."""

    def __init__(self, directory: str, binary: str) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", HOST, *REDIS_OPTIONS, directory],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.pid = self.proc.pid
        self.sock: Optional[socket.socket] = None
        try:
            wait_listening(self.port, self.proc, "redis-server")
            self.sock = socket.create_connection((HOST, self.port), timeout=10)
            self.reader = self.sock.makefile("rb")
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def command(self, *args: str) -> Any:
        assert self.sock is not None
        parts = [b"*%d\r\n" % len(args)]
        for arg in args:
            data = arg.encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self.sock.sendall(b"".join(parts))
        return self._reply()

    def _reply(self) -> Any:
        line = self.reader.readline()
        kind, rest = line[:1], line[1:].rstrip(b"\r\n")
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise bench.BenchError(f"redis: {rest.decode()}")
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            data = self.reader.read(size + 2)
            return data[:-2].decode()
        if kind == b"*":
            return [self._reply() for _ in range(int(rest))]
        raise bench.BenchError(f"redis: unexpected reply {line[:50]!r}")

    def info(self, section: str) -> Dict[str, str]:
        text = self.command("INFO", section)
        fields = {}
        for line in str(text).splitlines():
            if ":" in line and not line.startswith("#"):
                name, _, value = line.partition(":")
                fields[name] = value
        return fields

    def counters(self) -> Dict[str, float]:
        """Calls per command (cmdstat_*) and the net byte counters, since CONFIG RESETSTAT.
        The bytes are read first so that the commandstats reply is not in them."""
        stats = self.info("stats")
        found: Dict[str, float] = {
            "bytes_in": float(stats["total_net_input_bytes"]),
            "bytes_out": float(stats["total_net_output_bytes"]),
        }
        for name, value in self.info("commandstats").items():
            command = name[len("cmdstat_") :]
            if command.split("|")[0] in ("info", "config"):  # this script's own
                continue
            calls = dict(part.split("=", 1) for part in value.split(","))
            found["cmd:" + command] = float(calls["calls"])
        return found

    def reset(self) -> None:
        self.command("CONFIG", "RESETSTAT")

    def stop(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        stop_process(self.proc)


@dataclass(frozen=True)
class Setup:
    name: str
    label: str
    workers: int  # server processes
    bus: bool
    storage: str  # memory | sqlite


SETUPS = {
    "memory": Setup("memory", "1 process, no bus, memory://", 1, False, "memory"),
    "sqlite": Setup("sqlite", "1 process, no bus, SQLite", 1, False, "sqlite"),
    "bus1": Setup("bus1", "1 worker, Redis bus, SQLite", 1, True, "sqlite"),
    "bus2": Setup("bus2", "2 workers, Redis bus, SQLite", 2, True, "sqlite"),
}


class Cluster:
    """The server side of one run: the worker processes and (with a bus) redis-server,
    each on its own loopback port. stop() stops every one of them."""

    def __init__(
        self, setup: Setup, directory: str, redis_binary: str, tree: str = REPO, extra: str = ""
    ) -> None:
        self.setup = setup
        self.tree = os.path.abspath(tree)
        self.redis: Optional[Redis] = None
        self.procs: List[subprocess.Popen[bytes]] = []
        self.logs: List[Any] = []
        self.ports: List[int] = []
        self.thread_snapshots: List[Dict[Tuple[int, int], float]] = []
        try:
            self._start(directory, redis_binary, extra)
        except BaseException:
            self.stop()
            raise

    def _start(self, directory: str, redis_binary: str, extra: str) -> None:
        setup = self.setup
        if setup.bus:
            self.redis = Redis(directory, redis_binary)
        storage = "memory://"
        if setup.storage == "sqlite":
            storage = "sqlite:///" + os.path.join(directory, "chat.db")
        env = dict(os.environ)
        # The servers run the ktnchat package of `tree` (this repo, or a copy of another
        # commit's): first on the path, and the working directory (`-m` puts it first).
        env["PYTHONPATH"] = os.pathsep.join(p for p in (self.tree, env.get("PYTHONPATH", "")) if p)
        for index in range(setup.workers):
            port = free_port()
            argv = [sys.executable, "-m", "ktnchat", "server", "--host", HOST]
            argv += ["--port", str(port), "--pace-ms", "0", "--flood", "off"]
            argv += ["--log-level", "WARNING", "--max-connections", "20000"]
            argv += ["--storage", storage]
            if self.redis is not None:
                argv += ["--bus", self.redis.url]
            argv += extra.split()
            log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
            self.logs.append(log)
            env["KTNCHAT_WORKER_INDEX"] = str(index)
            self.procs.append(
                subprocess.Popen(
                    argv,
                    env=env,
                    cwd=self.tree,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            self.ports.append(port)
        for index, (port, proc) in enumerate(zip(self.ports, self.procs)):
            try:
                wait_listening(port, proc, f"worker {index}")
            except bench.BenchError as exc:
                raise bench.BenchError(f"{exc}: {self.output(index)[-500:]}") from None

    @property
    def pids(self) -> List[int]:
        pids = [proc.pid for proc in self.procs]
        if self.redis is not None:
            pids.append(self.redis.pid)
        return pids

    def cpu_times(self) -> Optional[Tuple[float, float]]:
        """User and system seconds of every server-side process together. Each call also
        keeps every thread's CPU seconds (for --per-thread: the last two calls bracket the
        send phase)."""
        user = system = 0.0
        for pid in self.pids:
            u, s = cpu_seconds(pid)
            user += u
            system += s
        self.thread_snapshots.append(
            {
                (index, tid): cpu
                for index, pid in enumerate(self.pids)
                for tid, cpu in thread_cpu_seconds(pid).items()
            }
        )
        return user, system

    def thread_names(self) -> Dict[Tuple[int, int], str]:
        """(process index, thread id) -> the Python thread's name, by `py-spy dump`
        (Python 3.11 gives its threads no OS names); empty without py-spy."""
        names: Dict[Tuple[int, int], str] = {}
        spy = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")
        if not os.path.exists(spy):
            return names
        for index, proc in enumerate(self.procs):
            try:
                dump = subprocess.run(
                    [spy, "dump", "--pid", str(proc.pid)],
                    capture_output=True,
                    text=True,
                    timeout=20,
                ).stdout
            except (OSError, subprocess.SubprocessError):
                continue
            for match in re.finditer(r'Thread (\d+|0x[0-9A-Fa-f]+) \([^)]*\): "([^"]*)"', dump):
                tid = int(match.group(1), 0)
                names[(index, tid)] = match.group(2)
        if self.redis is not None:
            names[(len(self.procs), self.redis.pid)] = "redis-server"
        return names

    def cpu_each(self) -> List[float]:
        return [sum(cpu_seconds(pid)) for pid in self.pids]

    def output(self, index: int) -> str:
        log = self.logs[index]
        log.seek(0)
        return str(log.read().decode("utf-8", "replace"))

    def died(self) -> List[str]:
        return [
            f"worker {i} exited ({p.returncode})"
            for i, p in enumerate(self.procs)
            if p.poll() is not None
        ]

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            stop_process(proc, signalled=True)
        if self.redis is not None:
            self.redis.stop()
        for log in self.logs:
            log.close()
        self.logs = []


# -- part cpu: CPU-seconds per 1 M deliveries ------------------------------------------------


ROWS = {
    "N=100": bench.Workload(clients=100, senders=10, messages=3000, shape="bounded", window=20),
    "N=1000": bench.Workload(clients=1000, senders=10, messages=300, shape="bounded", window=2),
}


async def fanout(
    workload: bench.Workload, cluster: Cluster, options: bench.Options
) -> Dict[str, Any]:
    run = bench.Run(workload)
    result: Dict[str, Any] = {}
    try:
        await bench.connect_all(run, cluster.ports)
        await bench.measure_fanout(run, cluster, options, result)
    finally:
        run.closing = True
        for client in run.clients:
            client.close()
        result["errors"] = run.errors
    return result


@dataclass(frozen=True)
class RunOptions:
    bench: bench.Options
    tree: str = REPO
    server_args: str = ""
    per_thread: bool = False


def cpu_run(
    setup: Setup, workload: bench.Workload, run_options: RunOptions, redis_binary: str
) -> Dict[str, Any]:
    options = run_options.bench
    raise_file_limit(workload.clients + 256)
    with tempfile.TemporaryDirectory(prefix="ktnchat-cost-") as directory:
        cluster = Cluster(setup, directory, redis_binary, run_options.tree, run_options.server_args)
        try:
            loop = bench.new_event_loop()
            names: Dict[Tuple[int, int], str] = {}
            try:
                each_0 = cluster.cpu_each()
                result = loop.run_until_complete(fanout(workload, cluster, options))
                each_1 = cluster.cpu_each()
                if run_options.per_thread:
                    names = cluster.thread_names()
            except (bench.BenchError, OSError, asyncio.TimeoutError) as exc:
                result = {"errors": [f"run failed: {type(exc).__name__}: {exc}"]}
                each_0 = each_1 = []
            finally:
                try:
                    loop.run_until_complete(asyncio.sleep(0.05))
                finally:
                    loop.close()
            result["errors"] += cluster.died()
            if run_options.per_thread and len(cluster.thread_snapshots) >= 2:
                before, after = cluster.thread_snapshots[-2:]
                per_thread: Dict[str, float] = {}
                for key, cpu in after.items():
                    label = f"worker {key[0]}: " + names.get(key, f"thread {key[1]}")
                    if key[0] == len(cluster.procs):
                        label = "redis-server"
                    spent = cpu - before.get(key, 0.0)
                    per_thread[label] = per_thread.get(label, 0.0) + spent
                result["cpu_s_per_thread"] = per_thread
            logs = [cluster.output(i) for i in range(len(cluster.procs))]
        finally:
            cluster.stop()
    tracebacks = sum(log.count("Traceback") for log in logs)
    if tracebacks:
        result["errors"].append(f"{tracebacks} traceback(s) in the workers' logs")
    if "deliveries" in result:
        # Every client also gets its own messages back; those are not deliveries here.
        own = workload.senders * workload.messages
        deliveries = result["deliveries"] - own
        result["deliveries_to_others"] = deliveries
        result["cpu_s_per_m_deliveries"] = result["server_cpu_s"] / deliveries * 1e6
        result["deliveries_to_others_per_s"] = deliveries / result["seconds"]
        # Whole-process CPU over the whole run (connecting included), per process.
        result["cpu_s_whole_run_each"] = [b - a for a, b in zip(each_0, each_1)]
    return result


def median_min_max(values: Sequence[float]) -> Dict[str, float]:
    ordered = sorted(values)
    n = len(ordered)
    mid = ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2
    return {"median": mid, "min": ordered[0], "max": ordered[-1], "n": n}


def part_cpu(args: argparse.Namespace, redis_binary: str) -> Dict[str, Any]:
    options = RunOptions(
        bench.Options(pin=False, time_limit=args.time_limit),
        args.server_tree,
        args.server_args,
        args.per_thread,
    )
    setups = [SETUPS[name] for name in args.setups.split(",")]
    rows = {}
    for name in args.rows.split(","):
        workload = ROWS[name]
        if args.quick != 1.0:
            workload = replace(workload, messages=max(1, int(workload.messages * args.quick)))
        rows[name] = workload
    runs: Dict[str, Dict[str, List[Dict[str, Any]]]] = {
        row: {s.name: [] for s in setups} for row in rows
    }
    for number in range(args.runs):
        for row, workload in rows.items():
            for setup in setups:
                print(
                    f"cpu: run {number + 1}/{args.runs}, {row}, {setup.name} ...",
                    file=sys.stderr,
                    flush=True,
                )
                result = cpu_run(setup, workload, options, redis_binary)
                runs[row][setup.name].append(result)
                if result["errors"]:
                    print(f"  errors: {result['errors'][:3]}", file=sys.stderr, flush=True)
                elif "cpu_s_per_m_deliveries" in result:
                    print(
                        f"  {result['cpu_s_per_m_deliveries']:.3f} CPU-s per M deliveries, "
                        f"{result['deliveries_to_others_per_s'] / 1e3:,.0f} k/s, "
                        f"other load {result.get('other_cpu_pct', 0):.0f}%",
                        file=sys.stderr,
                        flush=True,
                    )
                    deliveries = result["deliveries_to_others"]
                    for label, spent in sorted(result.get("cpu_s_per_thread", {}).items()):
                        if spent > 0:
                            per_m = spent / deliveries * 1e6
                            print(f"    {label}: {per_m:.3f} CPU-s per M", file=sys.stderr)
    summary: Dict[str, Dict[str, Any]] = {}
    for row, by_setup in runs.items():
        summary[row] = {}
        for name, results in by_setup.items():
            good = [r for r in results if not r["errors"] and "cpu_s_per_m_deliveries" in r]
            entry: Dict[str, Any] = {"runs": len(results), "good_runs": len(good)}
            for key in (
                "cpu_s_per_m_deliveries",
                "deliveries_to_others_per_s",
                "other_cpu_pct",
                "generator_cpu_pct",
                "latency_p99_ms",
            ):
                values = [float(r[key]) for r in good if key in r]
                if values:
                    entry[key] = median_min_max(values)
            summary[row][name] = entry
    return {
        "rows": {row: asdict(w) for row, w in rows.items()},
        "setups": {s.name: asdict(s) for s in setups},
        "runs": runs,
        "summary": summary,
    }


def cpu_markdown(report: Dict[str, Any]) -> str:
    lines = [
        f"| row | server | CPU-s per 1 M deliveries, median (min{DASH}max) | vs memory, "
        f"no bus | vs SQLite, no bus | deliveries/s (wall) | other load, median (max) | runs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row, by_setup in report["summary"].items():
        base = by_setup.get("memory", {}).get("cpu_s_per_m_deliveries")
        base_sqlite = by_setup.get("sqlite", {}).get("cpu_s_per_m_deliveries")
        for name, entry in by_setup.items():
            cost = entry.get("cpu_s_per_m_deliveries")
            if cost is None:
                lines.append(f"| {row} | {SETUPS[name].label} | failed | | | | | {entry['runs']} |")
                continue
            ratios = []
            for reference in (base, base_sqlite):
                ratios.append(
                    "—"
                    if reference is None or reference["median"] <= 0  # below a clock tick
                    else f"{cost['median'] / reference['median']:.2f}x "
                    f"({cost['min'] / reference['median']:.2f}{DASH}"
                    f"{cost['max'] / reference['median']:.2f})"
                )
            ratio = " | ".join(ratios)
            rate = entry["deliveries_to_others_per_s"]
            other = entry.get("other_cpu_pct", {"median": 0.0, "max": 0.0})
            lines.append(
                f"| {row} | {SETUPS[name].label} | {cost['median']:.3f} "
                f"({cost['min']:.3f}{DASH}{cost['max']:.3f}) | {ratio} | "
                f"{rate['median'] / 1e3:,.0f} k/s ({rate['min'] / 1e3:,.0f}{DASH}"
                f"{rate['max'] / 1e3:,.0f}) | {other['median']:.0f}% ({other['max']:.0f}%) | "
                f"{entry['good_runs']}/{entry['runs']} |"
            )
    return "\n".join(lines) + "\n"


# -- part redis: Redis commands and bytes per message ----------------------------------------


MARK = b'"content":"c|'


class Member:
    """One room member on one worker: counts the room's benchmark lines it receives."""

    def __init__(self, name: str, room: str, port: int) -> None:
        self.name = name
        self.room = room
        self.port = port
        self.count = 0
        self.expected = 0
        self.reader: Optional[asyncio.StreamReader] = None
        self.writer: Optional[asyncio.StreamWriter] = None

    async def join(self, create: bool) -> None:
        self.reader, self.writer = await asyncio.open_connection(HOST, self.port, limit=1 << 22)
        self.writer.write(bench.request("stream", "on") + bench.request("login", self.name))
        self.writer.write(bench.request("create" if create else "join", self.room))
        while True:
            line = await self.reader.readline()
            if not line:
                raise bench.BenchError(f"{self.name}: closed while joining")
            if b'"event":"joined"' in line and b'"room":"%s"' % self.room.encode() in line:
                return
            if b'"response":"error"' in line:
                raise bench.BenchError(f"{self.name}: {line[:200]!r}")

    async def read(self, done: asyncio.Event, sender: Optional[RoomSender]) -> None:
        assert self.reader is not None
        own = b'"sender":"%s"' % self.name.encode()
        while self.count < self.expected:
            line = await self.reader.readline()
            if not line:
                raise bench.BenchError(f"{self.name}: closed after {self.count} lines")
            if MARK in line:
                self.count += 1
                if sender is not None and own in line:
                    sender.echoed += 1
                    sender.pump()
        done.set()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class RoomSender:
    def __init__(self, member: Member, total: int, window: int, size: int) -> None:
        self.member = member
        self.total = total
        self.window = window
        self.size = size
        self.sent = 0
        self.echoed = 0

    def pump(self) -> None:
        assert self.member.writer is not None
        parts = []
        while self.sent < self.total and self.sent - self.echoed < self.window:
            head = f"c|{self.member.name}|{self.sent}|"
            text = head + "x" * max(0, self.size - len(head))
            parts.append(bench.request("msg", text))
            self.sent += 1
        if parts:
            self.member.writer.write(b"".join(parts))


@dataclass(frozen=True)
class RoomsCase:
    workers: int  # W
    rooms: int  # R
    hosts: int  # k: workers holding members of each room
    members: int  # m: members of each room on each of its k workers
    messages: int  # M per room


def room_layout(case: RoomsCase, ports: List[int]) -> List[List[Member]]:
    """Room r's members are on workers r, r+1, ..., r+k-1 (mod W): with k < W, some
    workers hold no member of a given room."""
    layout = []
    for r in range(case.rooms):
        members = []
        for j in range(case.hosts):
            worker = (r + j) % case.workers
            for i in range(case.members):
                members.append(Member(f"r{r}w{worker}m{i}", f"room{r}", ports[worker]))
        layout.append(members)
    return layout


async def rooms_load(
    case: RoomsCase, cluster: Cluster, window: int, idle: float, limit: float, size: int
) -> Dict[str, Any]:
    redis = cluster.redis
    assert redis is not None
    layout = room_layout(case, cluster.ports)
    everyone = [m for members in layout for m in members]
    gate = asyncio.Semaphore(100)

    async def join(member: Member, create: bool) -> None:
        async with gate:
            await asyncio.wait_for(member.join(create), 30)

    result: Dict[str, Any] = {"case": asdict(case), "errors": []}
    readers: List[asyncio.Future[None]] = []
    try:
        await asyncio.gather(*(join(members[0], True) for members in layout))
        await asyncio.gather(*(join(m, False) for members in layout for m in members[1:]))
        await asyncio.sleep(1.0)
        redis.reset()
        t0 = time.monotonic()
        await asyncio.sleep(idle)
        idle_counts = redis.counters()
        idle_seconds = time.monotonic() - t0
        senders = [RoomSender(members[0], case.messages, window, size) for members in layout]
        done = asyncio.Event()
        for member in everyone:
            member.expected = case.messages
        redis.reset()
        cpu_0 = cluster.cpu_each()
        started = time.monotonic()
        for members, sender in zip(layout, senders):
            for member in members:
                feeds = sender if member is members[0] else None
                readers.append(asyncio.ensure_future(member.read(done, feeds)))
        for sender in senders:
            sender.pump()
        finished, _ = await asyncio.wait(readers, timeout=limit)
        seconds = time.monotonic() - started
        counts = redis.counters()
        cpu_1 = cluster.cpu_each()
        for task in finished:
            if task.exception() is not None:
                result["errors"].append(str(task.exception()))
        short = [m for m in everyone if m.count < m.expected]
        if short:
            result["errors"].append(f"{len(short)} members short of their room's messages")
    finally:
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        for member in everyone:
            member.close()
    messages = case.rooms * case.messages
    net: Dict[str, float] = {}
    for key, value in counts.items():
        idle_rate = idle_counts.get(key, 0.0) / idle_seconds
        net[key] = max(0.0, value - idle_rate * seconds)
    commands = {k[4:]: v / messages for k, v in sorted(net.items()) if k.startswith("cmd:")}
    cpu = [b - a for a, b in zip(cpu_0, cpu_1)]
    result.update(
        messages=messages,
        seconds=seconds,
        deliveries=sum(m.count for m in everyone) - messages,
        commands_per_message={k: round(v, 3) for k, v in commands.items() if v >= 0.0005},
        all_commands_per_message=sum(commands.values()),
        bytes_in_per_message=net.get("bytes_in", 0.0) / messages,
        bytes_out_per_message=net.get("bytes_out", 0.0) / messages,
        idle_commands_per_s={
            k[4:]: v / idle_seconds for k, v in idle_counts.items() if k.startswith("cmd:")
        },
        cpu_s_workers=sum(cpu[: case.workers]),
        cpu_s_redis=cpu[-1] if cpu else 0.0,
        worker_cpu_ms_per_message=1e3 * sum(cpu[: case.workers]) / messages,
        redis_cpu_us_per_message=1e6 * (cpu[-1] if cpu else 0.0) / messages,
    )
    return result


def rooms_run(args: argparse.Namespace, case: RoomsCase, redis_binary: str) -> Dict[str, Any]:
    raise_file_limit(case.rooms * case.hosts * case.members + 256)
    setup = Setup(f"w{case.workers}", f"{case.workers} workers", case.workers, True, "sqlite")
    with tempfile.TemporaryDirectory(prefix="ktnchat-cost-") as directory:
        cluster = Cluster(setup, directory, redis_binary, args.server_tree)
        try:
            loop = bench.new_event_loop()
            try:
                result = loop.run_until_complete(
                    rooms_load(
                        case,
                        cluster,
                        args.room_window,
                        args.idle_seconds,
                        args.time_limit,
                        args.size,
                    )
                )
            except (bench.BenchError, OSError, asyncio.TimeoutError) as exc:
                result = {"case": asdict(case), "errors": [f"run failed: {exc!r}"]}
            finally:
                loop.close()
            result["errors"] += cluster.died()
        finally:
            cluster.stop()
    return result


def rooms_cases(args: argparse.Namespace) -> List[RoomsCase]:
    cases = []
    for workers in (int(w) for w in args.workers.split(",")):
        for rooms in (int(r) for r in args.rooms.split(",")):
            hosts_options = sorted({1, 2, workers} & set(range(1, workers + 1)))
            for hosts in hosts_options:
                messages = max(1, args.room_messages // rooms)
                cases.append(RoomsCase(workers, rooms, hosts, args.members, messages))
    return cases


def part_redis(args: argparse.Namespace, redis_binary: str) -> Dict[str, Any]:
    results = []
    for case in rooms_cases(args):
        print(f"redis: {case} ...", file=sys.stderr, flush=True)
        result = rooms_run(args, case, redis_binary)
        results.append(result)
        if result["errors"]:
            print(f"  errors: {result['errors'][:3]}", file=sys.stderr, flush=True)
        else:
            print(
                f"  {result['all_commands_per_message']:.2f} commands/msg "
                f"{result['commands_per_message']}, in {result['bytes_in_per_message']:.0f} B, "
                f"out {result['bytes_out_per_message']:.0f} B per message",
                file=sys.stderr,
                flush=True,
            )
    return {"cases": results}


def redis_markdown(report: Dict[str, Any]) -> str:
    lines = [
        "| workers W | rooms R | workers with members k | messages | Redis commands per "
        "message | bytes in / out per message | worker CPU per message | Redis CPU per "
        "message |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for result in report["cases"]:
        case = result["case"]
        if result["errors"] or "commands_per_message" not in result:
            lines.append(
                f"| {case['workers']} | {case['rooms']} | {case['hosts']} | — | failed: "
                f"{'; '.join(result['errors'][:2])} | | | |"
            )
            continue
        commands = ", ".join(
            f"{name.upper()} {value:.2f}"
            for name, value in result["commands_per_message"].items()
            if value >= 0.005  # not the odd reconnect (HELLO) or health check (PING)
        )
        lines.append(
            f"| {case['workers']} | {case['rooms']} | {case['hosts']} | {result['messages']} | "
            f"{result['all_commands_per_message']:.2f} ({commands}) | "
            f"{result['bytes_in_per_message']:,.0f} / {result['bytes_out_per_message']:,.0f} | "
            f"{result['worker_cpu_ms_per_message']:.3f} ms | "
            f"{result['redis_cpu_us_per_message']:.0f} µs |"
        )
    return "\n".join(lines) + "\n"


# -- command line ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog="Parts: cpu (CPU-s per 1 M deliveries, 4 servers x 2 rows) and redis (Redis "
        "commands and bytes per message over workers x rooms x workers-with-members).",
    )
    parser.add_argument("--part", choices=("cpu", "redis", "both"), default="both")
    parser.add_argument("--runs", type=int, default=5, help="cpu: runs of each server")
    parser.add_argument("--rows", default="N=100,N=1000", help="cpu: rows, of " + ",".join(ROWS))
    parser.add_argument("--setups", default=",".join(SETUPS), help="cpu: servers to compare")
    parser.add_argument(
        "--quick", type=float, default=1.0, help="cpu: scale the message counts (dry runs)"
    )
    parser.add_argument("--workers", default="1,2,4,8", help="redis: worker counts")
    parser.add_argument("--rooms", default="1,10,100", help="redis: room counts")
    parser.add_argument("--members", type=int, default=2, help="redis: members per worker")
    parser.add_argument(
        "--room-messages", type=int, default=2000, help="redis: messages in all (over rooms)"
    )
    parser.add_argument(
        "--room-window", type=int, default=10, help="redis: unechoed messages per sender"
    )
    parser.add_argument("--idle-seconds", type=float, default=2.0, help="redis: idle baseline")
    parser.add_argument("--size", type=int, default=100, help="redis: bytes of message text")
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per run")
    parser.add_argument("--redis-server", default="redis-server", help="the redis-server binary")
    parser.add_argument(
        "--server-tree",
        default=REPO,
        metavar="DIR",
        help="run the servers from the ktnchat package in DIR, e.g. another commit's: "
        "mkdir /tmp/base && git archive HEAD ktnchat | tar -x -C /tmp/base",
    )
    parser.add_argument(
        "--server-args",
        default="",
        help='cpu: more options for every server process, e.g. "--worker-threads 1"',
    )
    parser.add_argument(
        "--per-thread",
        action="store_true",
        help="cpu: also report each server thread's CPU over the send phase (names by py-spy)",
    )
    parser.add_argument("--json", metavar="PATH", help="write every figure as JSON here")
    parser.add_argument("--markdown", metavar="PATH", help="write the tables as Markdown here")
    return parser


def code_state(tree: str) -> Dict[str, str]:
    """The commit measured, and uncommitted changes to the server and cluster code."""
    if os.path.abspath(tree) != os.path.abspath(REPO):
        return {"server_tree": tree, "at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}

    def git(*args: str) -> str:
        try:
            done = subprocess.run(
                ["git", "-C", REPO, *args], capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return "?"
        return done.stdout.strip()

    return {
        "commit": git("log", "-1", "--format=%h"),
        "uncommitted": git("status", "--short", "ktnchat/cluster", "ktnchat/server"),
        "at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    redis_binary = shutil.which(args.redis_server)
    if redis_binary is None:
        print(f"cluster_cost: {args.redis_server} not found", file=sys.stderr)
        return 2
    report: Dict[str, Any] = {
        "code_at_start": code_state(args.server_tree),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "event_loop": bench.event_loop_name(),
        "redis": subprocess.run(
            [redis_binary, "--version"], capture_output=True, text=True, check=False
        ).stdout.strip(),
    }
    text = ""
    errors = False
    if args.part in ("cpu", "both"):
        report["cpu"] = part_cpu(args, redis_binary)
        text += cpu_markdown(report["cpu"]) + "\n"
        errors |= any(
            r["errors"] for row in report["cpu"]["runs"].values() for rs in row.values() for r in rs
        )
    if args.part in ("redis", "both"):
        report["redis"] = part_redis(args, redis_binary)
        text += redis_markdown(report["redis"])
        errors |= any(r["errors"] for r in report["redis"]["cases"])
    report["code_at_end"] = code_state(args.server_tree)
    print(text, end="")
    bench.save_report(report, args.json, text, args.markdown)
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
