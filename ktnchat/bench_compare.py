# `ktnchat bench --compare` (issue 17): ktnchat side by side with two C chat servers,
# InspIRCd and ngIRCd, and a C relay of our own, on the rows, in one sitting.
#
# Job: for every row (bounded fan-out at N=100 and N=1000, idle memory at N=5000) and every
# server, start a fresh server on a free loopback port, run the row once with the same
# generator (ktnchat/bench.py's asyncio Protocol clients, Sender, Probe and measure_fanout),
# stop the server; alternate the servers run by run; report medians, the ratios ktnchat /
# each C server, deliveries/s and deliveries per server CPU-second (and its inverse, server
# CPU per delivery), and resident memory per idle connection (RSS delta / N).
#
# What is counted (the definition, for every server alike): lines of ~100 bytes of
# text; a delivery is one line received by a client other than its sender, so a line is
# (N-1) deliveries; deliveries/s = (N-1) x S x M / seconds from the first send until the
# last receiver has the last line; every receiver must get every line from the others
# (counted, checked, and any loss, excess, disconnect or misorder at the probes is an
# error). Bounded: each sender keeps at most W lines not yet seen by the designated
# receiver (the last client to join, never a sender).
#
# The servers and what their clients speak:
#   ktnchat   `ktnchat server` with its defaults except `--flood off` (bench.py's
#             ServerProcess; its `--pace-ms 0` is set back to the default here); KTN JSON
#             lines, each client says `stream on` and logs in (bench.py's Client). The
#             server echoes a line to its sender too (the protocol): the generator receives
#             and checks those echoes but does not count them as deliveries.
#   inspircd  /usr/sbin/inspircd --nofork with a config written to a temp dir: bound to
#   ngircd    127.0.0.1, no DNS or ident lookups, no TLS, flood limits / fakelag / penalties
#             off, connection limits that let 5,000 clients in from one address, PINGs
#             an hour apart. IRC: NICK/USER, wait for 001, JOIN #room, wait for the end of
#             NAMES; a line is `PRIVMSG #room :text`; PINGs are answered with PONG.
#   relay     benchmarks/relay/relay.c, compiled with gcc into the temp dir: every line a
#             client sends goes to every other client. Its clients speak the same lines as
#             the IRC clients (`PRIVMSG #room :text`, which it relays unchanged); logging
#             in is waiting for its greeting line.
# The IRC and relay servers do not echo a line to its sender; the generator credits each
# sender with its own lines when counting starts, so the same bookkeeping (every client
# N-1 senders' lines plus its own) and the same checks serve every server.
#
# Rules: loopback only; every server process is stopped at the end of its run, also on
# errors (SIGTERM, then SIGKILL); every wait is bounded (bench.py's login, sync, stall and
# time limits); server and generator are pinned to different cores when there are two.
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, cast

from ktnchat.bench import (
    DASH,
    HOST,
    LOGIN_TIMEOUT,
    PACKAGE_ROOT,
    SYNC_TIMEOUT,
    BenchError,
    Client,
    Options,
    Run,
    ServerProcess,
    Workload,
    can_pin,
    connect_pool,
    connect_weighed,
    event_loop_name,
    free_port,
    measure_fanout,
    request,
    run_once,
    run_pinned,
    save_report,
    summarize,
    wait_for_quiet,
)
from ktnchat.server.config import ServerConfig

SERVERS = ("ktnchat", "inspircd", "ngircd", "relay")
LABELS = {"ktnchat": "ktnchat", "inspircd": "InspIRCd", "ngircd": "ngIRCd", "relay": "C relay"}
RELAY_SOURCE = os.path.join(PACKAGE_ROOT, "benchmarks", "relay", "relay.c")
ROOM = b"#room"
MSG_PREFIX = b'{"request":"msg","content":"'  # what bench.py's Sender writes, around the text
MSG_SUFFIX = b'"}\n'
LINE_MARK = b"PRIVMSG " + ROOM + b" :"  # in every relayed line, IRC's and the relay's
RELAY_GREETING = b"hello relay\r\n"
# Numerics that mean a login or JOIN failed (nick in use or invalid, channel refused, ...).
# Logins in flight while connecting (bench.py's default is 200): ngIRCd listens with a
# backlog of 10 and accepts one connection per pass of its main loop, so more connections
# in flight overflow its accept queue and wait for the kernel's SYN-ACK retries (1, 2, 4,
# ... s), past the login timeout at N=1000. Only the connect phase is affected.
LOGINS_IN_FLIGHT = {"ngircd": 8}
IRC_FAILURE = re.compile(rb"^:\S+ (4(?:03|05|32|33|36|37|51|65|71|73|74|75)) .*$", re.M)


@dataclass(frozen=True)
class CompareRow:
    key: str
    title: str  # the words
    workload: Workload


def rows_for(size: str) -> Tuple[CompareRow, ...]:
    """The issue's rows at full size, `quick` (fewer lines and clients), or `tiny` (a
    smoke test of the harness: the figures mean nothing)."""
    full = {"full": 1, "quick": 0, "tiny": -1}[size]
    m1, m2, idle = {1: (3000, 300, 5000), 0: (1000, 100, 1000), -1: (10, 6, 20)}[full]
    n1, n2, s = (100, 1000, 10) if full >= 0 else (5, 6, 2)
    w1, w2 = (20, 2) if full >= 0 else (4, 2)
    return (
        CompareRow(
            "1",
            f"bounded, {n1:,} clients in one room, {s} senders x {m1:,} lines, each sender "
            f"at most {w1} lines in flight",
            Workload(clients=n1, senders=s, messages=m1, shape="bounded", window=w1),
        ),
        CompareRow(
            "2",
            f"bounded, {n2:,} clients, {s} senders x {m2:,} lines, at most {w2} in flight each",
            Workload(clients=n2, senders=s, messages=m2, shape="bounded", window=w2),
        ),
        CompareRow(
            "3",
            f"idle memory per connection, {idle:,} clients",
            Workload(clients=idle, shape="idle"),
        ),
    )


# -- the C servers -------------------------------------------------------------------------


def find_binary(name: str) -> Optional[str]:
    found = shutil.which(name)
    if found is None and os.access(f"/usr/sbin/{name}", os.X_OK):
        found = f"/usr/sbin/{name}"
    return found


def inspircd_config(port: int, workdir: str) -> str:
    """InspIRCd 3: one listener, one connect class without flood limits for anyone."""
    return f"""\
<server name="bench.local" description="ktnchat bench --compare" network="bench">
<admin name="bench" nick="bench" email="bench@localhost">
<bind address="{HOST}" port="{port}" type="clients">
<connect name="bench" allow="*" timeout="60" pingfreq="3600" maxchans="20"
         resolvehostnames="no" useident="no"
         fakelag="no" threshold="1000000000" commandrate="4294967295"
         softsendq="1073741824" hardsendq="1073741824" recvq="1073741824"
         localmax="1000000" globalmax="1000000" limit="1000000" maxconnwarn="no">
<dns server="127.0.0.1" timeout="1">
<performance softlimit="100000" somaxconn="4096">
<channels users="20" opers="60">
<log method="file" type="CONFIG STARTUP" level="default" target="{workdir}/inspircd.log">
"""


def ngircd_config(port: int) -> str:
    """ngIRCd 26: one listener; penalties off (MaxPenaltyTime = 0), no connection limits."""
    return f"""\
[Global]
Name = bench.local
Info = ktnchat bench --compare
AdminInfo1 = bench
AdminInfo2 = bench
AdminEMail = bench@localhost
Listen = {HOST}
Ports = {port}
MotdPhrase = bench
[Limits]
MaxConnections = 0
MaxConnectionsIP = 0
MaxJoins = 0
MaxNickLength = 30
MaxPenaltyTime = 0
PingTimeout = 3600
PongTimeout = 3600
[Options]
DNS = no
Ident = no
PAM = no
"""


class ExternalServer(ServerProcess):
    """A C server as a child process: ServerProcess's CPU, memory and stop, another start."""

    def __init__(self, argv: Sequence[str], port: int, core: Optional[int], cwd: str) -> None:
        self.port = port
        self.web_port = None
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self._launch(argv, core, argv[0], cwd=cwd, output_tail=500)


@dataclass
class Prepared:
    """What one sitting found and built: the temp dir, binaries, versions, what is skipped."""

    workdir: str
    binaries: Dict[str, str]
    versions: Dict[str, str]
    skipped: Dict[str, str]  # server -> why


def version_of(argv: Sequence[str]) -> str:
    try:
        done = subprocess.run(list(argv), capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    text = (done.stdout or done.stderr).decode("utf-8", "replace").strip()
    return text.splitlines()[0] if text else "unknown"


def prepare(servers: Sequence[str], workdir: str) -> Prepared:
    """Find the C servers and build the relay; a server that cannot run is skipped, with
    the reason."""
    prepared = Prepared(workdir, {}, {"ktnchat": "ktnchat (this tree)"}, {})
    for name in ("inspircd", "ngircd"):
        if name not in servers:
            continue
        binary = find_binary(name)
        if binary is None:
            prepared.skipped[name] = f"{name} is not installed (Debian package `{name}`)"
            continue
        prepared.binaries[name] = binary
        prepared.versions[name] = version_of([binary, "--version"])
    if "relay" in servers:
        gcc = shutil.which("gcc") or shutil.which("cc")
        if gcc is None:
            prepared.skipped["relay"] = "no C compiler (gcc) to build the relay"
        elif not os.path.exists(RELAY_SOURCE):
            prepared.skipped["relay"] = f"the relay's source is missing: {RELAY_SOURCE}"
        else:
            binary = os.path.join(workdir, "relay")
            build = subprocess.run(
                [gcc, "-O2", "-o", binary, RELAY_SOURCE],
                capture_output=True,
                timeout=120,
                check=False,
            )
            if build.returncode != 0:
                error = build.stderr.decode("utf-8", "replace")[-500:]
                prepared.skipped["relay"] = f"the relay did not compile: {error}"
            else:
                prepared.binaries["relay"] = binary
                prepared.versions["relay"] = (
                    f"benchmarks/relay/relay.c, {version_of([gcc, '--version'])} -O2"
                )
    return prepared


def start_server(name: str, prepared: Prepared, core: Optional[int]) -> ExternalServer:
    port = free_port()
    rundir = tempfile.mkdtemp(prefix=f"{name}-", dir=prepared.workdir)
    binary = prepared.binaries[name]
    if name == "inspircd":
        config = os.path.join(rundir, "inspircd.conf")
        with open(config, "w", encoding="ascii") as handle:
            handle.write(inspircd_config(port, rundir))
        argv = [binary, f"--config={config}", "--nofork", "--nopid", "--runasroot"]
    elif name == "ngircd":
        config = os.path.join(rundir, "ngircd.conf")
        with open(config, "w", encoding="ascii") as handle:
            handle.write(ngircd_config(port))
        argv = [binary, "--nodaemon", "--config", config]
    else:
        argv = [binary, str(port)]
    return ExternalServer(argv, port, core, rundir)


# -- the line clients (IRC and relay) ------------------------------------------------------

WELCOME, NAMES, SYNCING = range(3)


class LineClient(Client):
    """A bench.py Client that speaks IRC (`irc`) or the relay's raw lines (`relay`).

    Logging in: IRC sends NICK/USER, waits for 001, sends JOIN #room and waits for the end
    of NAMES; the relay waits for its greeting. Then, like the KTN client, it reads until
    the sync line and from then on counts: `PRIVMSG #room :` once per relayed line, over
    complete lines only (a line cut by a read is completed by the next). Any other line
    (PING, a stale JOIN notice) is looked at on its own: PING is answered with PONG, ERROR
    is reported. What bench.py's Sender writes (KTN `msg` requests) is sent as
    `PRIVMSG #room :text`, the same text."""

    def __init__(self, run: Run, index: int, dialect: str) -> None:
        super().__init__(run, index)
        self.dialect = dialect
        self.nick = b"warmup" if index < 0 else b"u%d" % index
        self.stage = WELCOME
        self.welcome = b" 001 %s " % self.nick if dialect == "irc" else RELAY_GREETING
        self.names_end = b" 366 %s %s " % (self.nick, ROOM)
        self.sync_text = b"sync|%d" % os.getpid()  # bench.measure_fanout's sync content
        self.sync_line = LINE_MARK + self.sync_text + b"\r\n"
        self.tail = b""  # counting: an incomplete line from the last read
        self.other_lines = 0  # counting: lines that were not relayed lines

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        if self.dialect == "irc":
            nick = self.nick
            self.transport.write(b"NICK %s\r\nUSER %s 0 * :%s\r\n" % (nick, nick, nick))

    def write_lines(self, lines: Sequence[bytes]) -> None:
        if self.transport is None:
            return
        out = []
        for line in lines:
            if line.startswith(MSG_PREFIX) and line.endswith(MSG_SUFFIX):
                text = line[len(MSG_PREFIX) : -len(MSG_SUFFIX)]
            else:  # another request, e.g. the sync message (json.dumps, with spaces)
                text = str(json.loads(line)["content"]).encode("utf-8")
                if text == self.sync_text and not self.counting:
                    self._start_counting()  # its own line never comes back to it
            out.append(LINE_MARK + text + b"\r\n")
        self.transport.write(b"".join(out))

    def _start_counting(self) -> None:
        complete = self.buffer.rfind(b"\n") + 1
        self.tail = bytes(self.buffer[complete:])
        self.buffer = bytearray()
        self.counting = True
        if 0 <= self.index < self.run.workload.senders:
            self.count = self.run.workload.messages  # its own lines: never sent back to it
        if not self.synced.done():
            self.synced.set_result(None)

    def data_received(self, data: bytes) -> None:
        if not self.counting:
            self._setup(data)
            return
        if self.probe is not None:
            self.probe.feed(data)
        end = data.rfind(b"\n") + 1
        start = 0
        if self.tail:
            first = data.find(b"\n")
            if first < 0:
                self.tail += data
                return
            line = self.tail + data[: first + 1]
            self.tail = b""
            self._count(line, 0, len(line))
            start = first + 1
        if end > start:
            self._count(data, start, end)
        if end < len(data):
            self.tail = data[max(start, end) :]

    def _count(self, data: bytes, start: int, end: int) -> None:
        found = data.count(LINE_MARK, start, end)
        if data.count(b"\n", start, end) != found:
            self._other(data[start:end])
        if found:
            self.count += found
            if self.count >= self.expected and not self.done:
                self.run.finished(self)

    def _other(self, chunk: bytes) -> None:
        for line in chunk.split(b"\n"):
            if not line or LINE_MARK in line:
                continue
            self.other_lines += 1
            self._control(line + b"\n", 0, len(line) + 1)

    def _control(self, buffer: bytes | bytearray, start: int, end: int) -> None:
        """PING, ERROR and (before login) a refusal, in the complete lines buffer[start:end]."""
        at = buffer.find(b"PING ", start, end)
        while at >= 0:
            if at == 0 or buffer[at - 1] == 0x0A:
                stop = buffer.index(b"\n", at)
                token = bytes(buffer[at + 5 : stop]).rstrip(b"\r")
                if self.transport is not None:
                    self.transport.write(b"PONG " + token + b"\r\n")
            at = buffer.find(b"PING ", at + 1, end)
        at = buffer.find(b"ERROR ", start, end)
        if at >= 0 and (at == 0 or buffer[at - 1] == 0x0A):
            stop = buffer.find(b"\n", at)
            text = bytes(buffer[at:stop]).decode("utf-8", "replace").strip()
            self._fail(f"client {self.index}: {text}")
        if not self.logged_in.done():
            refused = IRC_FAILURE.search(bytes(buffer[start:end]))
            if refused:
                self._fail(f"client {self.index}: {refused[0].decode('utf-8', 'replace')}")

    def _fail(self, text: str) -> None:
        if not self.logged_in.done():
            self.logged_in.set_exception(BenchError(f"login refused: {text}"))
        elif len(self.run.errors) < 20:
            self.run.errors.append(text)

    def _setup(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        complete = buffer.rfind(b"\n") + 1
        at = 0
        while True:
            mark = (self.welcome, self.names_end, self.sync_line)[self.stage]
            found = buffer.find(mark, at, complete)
            if found < 0:
                break
            at = buffer.index(b"\n", found) + 1
            if self.stage == WELCOME and self.dialect == "irc":
                assert self.transport is not None
                self.transport.write(b"JOIN %s\r\n" % ROOM)
                self.stage = NAMES
            elif self.stage in (WELCOME, NAMES):
                self.stage = SYNCING
                if not self.logged_in.done():
                    self.logged_in.set_result(None)
            else:  # the sync line: everything before it is read
                self._control(buffer, 0, at)
                rest = bytes(buffer[at:])
                del buffer[:]
                self._start_counting()
                if rest:
                    self.data_received(rest)
                return
        self._control(buffer, 0, complete)
        del buffer[:complete]


async def connect_line(run: Run, port: int, index: int, dialect: str) -> LineClient:
    loop = asyncio.get_running_loop()
    _transport, client = await asyncio.wait_for(
        loop.create_connection(lambda: LineClient(run, index, dialect), HOST, port),
        LOGIN_TIMEOUT,
    )
    try:
        await asyncio.wait_for(client.logged_in, LOGIN_TIMEOUT)
    except asyncio.TimeoutError:
        client.close()
        raise BenchError(f"client {index}: not logged in after {LOGIN_TIMEOUT:g} s") from None
    except BaseException:
        client.close()
        raise
    return client


async def connect_all_lines(run: Run, port: int, dialect: str) -> None:
    """bench.connect_all for line clients: N logins, at most `concurrency` in flight."""
    await connect_pool(run, lambda index: connect_line(run, port, index, dialect))


async def generate_lines(
    workload: Workload, server: ServerProcess, options: Options, dialect: str
) -> Dict[str, Any]:
    """bench.generate for line clients: warm up, weigh the server, connect, then either
    weigh it again (idle) or measure the fan-out with bench.measure_fanout."""
    run = Run(workload)
    result: Dict[str, Any] = {}

    async def settle_idle() -> None:
        # IRC tells every member of a channel about every JOIN: wait until all of it is
        # read (a sync line after the last JOIN), so that idle means idle.
        run.clients[0].write_lines([request("msg", f"sync|{os.getpid()}")])
        await asyncio.wait_for(asyncio.gather(*(c.synced for c in run.clients)), SYNC_TIMEOUT)
        await asyncio.sleep(0.5)

    try:
        result.update(
            await connect_weighed(
                run,
                server,
                lambda: connect_line(run, server.port, -1, dialect),
                lambda: connect_all_lines(run, server.port, dialect),
                settle_idle,
            )
        )
        if workload.shape != "idle":
            await measure_fanout(run, server, options, result)
        return result
    finally:
        run.closing = True
        for client in run.clients:
            client.close()
        result["other_lines"] = sum(cast(LineClient, c).other_lines for c in run.clients)
        result["errors"] = run.errors


def run_line_server(
    name: str, workload: Workload, options: Options, prepared: Prepared
) -> Dict[str, Any]:
    """bench.run_once for a C server: start it pinned, run the workload, stop it."""
    dialect = "relay" if name == "relay" else "irc"
    try:
        result, _ = run_pinned(
            workload,
            options,
            lambda core: start_server(name, prepared, core),
            lambda server: generate_lines(workload, server, options, dialect),
        )
    except BenchError as exc:  # the server did not start
        return {"errors": [f"run failed: {exc}"]}
    return result


def run_ktnchat(workload: Workload, options: Options) -> Dict[str, Any]:
    """bench.run_once with the server's defaults but `--flood off`: bench.py starts it with
    `--pace-ms 0 --flood off`; the pacing default goes back on (it only applies to clients
    that have not said `stream on`, which these all have)."""
    pace = f"--pace-ms {ServerConfig().pace_interval * 1000:g}"
    options = replace(options, server_args=f"{pace} {options.server_args}".strip())
    try:
        return run_once(workload, options)
    except BenchError as exc:
        return {"errors": [f"run failed: {exc}"]}


def normalise(result: Dict[str, Any], workload: Workload) -> None:
    """The issue's figures from one fan-out run: deliveries to clients other than the
    sender. bench.py counts every client's S x M lines: for ktnchat S x M of them are the
    senders' own echoes, for the others the credit given to each sender for its own."""
    if workload.shape == "idle" or "deliveries" not in result:
        return
    own = workload.senders * workload.messages
    others = result["deliveries"] - own
    result["deliveries_to_others"] = others
    result["expected_to_others"] = result["expected_deliveries"] - own
    result["others_per_s"] = others / result["seconds"]
    cpu = result.get("server_cpu_s")
    if cpu:
        result["others_per_server_cpu_s"] = others / cpu
        result["server_cpu_ns_per_delivery"] = 1e9 * cpu / max(1, others)


# -- one sitting -----------------------------------------------------------------------------


def run_compare(
    rows: Sequence[CompareRow],
    servers: Sequence[str],
    runs: int,
    options: Options,
    log: Callable[[str], None] = lambda text: print(text, file=sys.stderr, flush=True),
) -> Dict[str, Any]:
    """Every row, `runs` runs per server, the servers alternating run by run (each round
    starts one server later, so that none is always first)."""
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="ktnchat-compare-") as workdir:
        prepared = prepare(servers, workdir)
        active = [name for name in servers if name not in prepared.skipped]
        for name, why in prepared.skipped.items():
            log(f"compare: skipping {LABELS[name]}: {why}")
        cells: Dict[str, Dict[str, List[Dict[str, Any]]]] = {}
        for row in rows:
            cells[row.key] = {name: [] for name in active}
            for round_ in range(runs):
                order = active[round_ % len(active) :] + active[: round_ % len(active)]
                for name in order:
                    waited = wait_for_quiet(options.quiet_wait)
                    if name == "ktnchat":
                        result = run_ktnchat(row.workload, options)
                    else:
                        workload = row.workload
                        if name in LOGINS_IN_FLIGHT:
                            workload = replace(workload, concurrency=LOGINS_IN_FLIGHT[name])
                        result = run_line_server(name, workload, options, prepared)
                        result["logins_in_flight"] = workload.concurrency
                    if waited is not None:
                        result["quiet_wait_s"] = waited
                    normalise(result, row.workload)
                    cells[row.key][name].append(result)
                    log(
                        f"compare: row {row.key} run {round_ + 1}/{runs} {LABELS[name]}: "
                        f"{one_line(result, row.workload)}"
                    )
    report_rows = []
    for row in rows:
        entries = {}
        for name, results in cells[row.key].items():
            errors = [f"run {i + 1}: {e}" for i, r in enumerate(results) for e in r["errors"]]
            entries[name] = {"runs": results, "summary": summarize(results), "errors": errors}
        report_rows.append(
            {
                "key": row.key,
                "title": row.title,
                "workload": row.workload.describe(),
                "servers": entries,
            }
        )
    return {
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started)),
        "minutes": (time.time() - started) / 60,
        "runs_per_server": runs,
        "servers": active,
        "skipped": prepared.skipped,
        "versions": prepared.versions,
        "environment": {
            "python": sys.version.split()[0],
            "event_loop": event_loop_name(),
            "cpus": os.cpu_count(),
            "pinned": can_pin(options),
            "server_core": options.server_core if can_pin(options) else None,
            "generator_core": options.generator_core if can_pin(options) else None,
        },
        "rows": report_rows,
    }


def one_line(result: Dict[str, Any], workload: Workload) -> str:
    if result.get("errors"):
        return "errors: " + "; ".join(result["errors"][:3])
    if workload.shape == "idle":
        return f"{result.get('rss_per_connection_kib', float('nan')):.2f} KiB per connection"
    return (
        f"{result['others_per_s'] / 1e3:,.0f} k/s, "
        f"{result.get('others_per_server_cpu_s', float('nan')) / 1e3:,.0f} k per server CPU-s, "
        f"server {result.get('server_cpu_pct', float('nan')):.0f}%, "
        f"generator {result.get('generator_cpu_pct', float('nan')):.0f}%, "
        f"other load {result.get('other_cpu_pct', float('nan')):.0f}%"
    )


# -- output ------------------------------------------------------------------------------------


def _stat(entry: Dict[str, Any], key: str, which: str = "median") -> Optional[float]:
    stats = entry["summary"].get(key)
    return None if stats is None else float(stats[which])


def _figure(entry: Dict[str, Any], key: str, scale: float, unit: str, decimals: int) -> str:
    stats = entry["summary"].get(key)
    if stats is None:
        return "—"

    def number(value: float) -> str:
        return f"{value * scale:,.{decimals}f}"

    return f"{number(stats['median'])} {unit} ({number(stats['min'])}{DASH}{number(stats['max'])})"


def _pct(value: Optional[float]) -> str:
    return "—" if value is None else f"{value:.0f}%"


def markdown(report: Dict[str, Any]) -> str:
    """The sitting as Markdown: one table of figures, one of ratios."""
    env = report["environment"]
    pinned = (
        f"server on CPU {env['server_core']}, generator on CPU {env['generator_core']}"
        if env["pinned"]
        else "not pinned"
    )
    lines = [
        f"{report['runs_per_server']} runs per server and row, servers alternating; medians "
        f"(min{DASH}max); {env['event_loop']}; {pinned}; Python {env['python']}; "
        f"started {report['started']}, {report['minutes']:.0f} min.",
        "",
        "| row | server | deliveries/s | deliveries per server CPU-s | server CPU per delivery "
        "| server CPU | generator CPU | other load (max) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    idle_lines = [
        "",
        "| row | server | RSS per idle connection (delta / N) | connect + login/s |",
        "|---|---|---|---|",
    ]
    for row in report["rows"]:
        for name, entry in row["servers"].items():
            label = LABELS[name] + (" (**errors**)" if entry["errors"] else "")
            if (
                "rss_per_connection_kib" in entry["summary"]
                and "others_per_s" not in entry["summary"]
            ):
                idle_lines.append(
                    f"| {row['key']}: {row['workload']} | {label} | "
                    f"{_figure(entry, 'rss_per_connection_kib', 1.0, 'KiB', 2)} | "
                    f"{_figure(entry, 'connect_login_per_s', 1.0, '/s', 0)} |"
                )
                continue
            lines.append(
                f"| {row['key']}: {row['workload']} | {label} | "
                f"{_figure(entry, 'others_per_s', 1e-3, 'k', 0)} | "
                f"{_figure(entry, 'others_per_server_cpu_s', 1e-3, 'k', 0)} | "
                f"{_figure(entry, 'server_cpu_ns_per_delivery', 1.0, 'ns', 0)} | "
                f"{_pct(_stat(entry, 'server_cpu_pct'))} | "
                f"{_pct(_stat(entry, 'generator_cpu_pct'))} | "
                f"{_pct(_stat(entry, 'other_cpu_pct', 'max'))} |"
            )
    lines += idle_lines
    lines += ["", ratio_table(report)]
    skipped = report["skipped"]
    if skipped:
        lines += ["", "Skipped: " + "; ".join(f"{LABELS[k]}: {v}" for k, v in skipped.items())]
    errors = [
        f"row {row['key']} {LABELS[name]}: {error}"
        for row in report["rows"]
        for name, entry in row["servers"].items()
        for error in entry["errors"]
    ]
    lines += ["", "Errors: " + ("; ".join(errors[:20]) if errors else "none") + "."]
    lines += [
        "",
        "Versions: " + "; ".join(f"{LABELS[k]}: {v}" for k, v in report["versions"].items()),
    ]
    return "\n".join(lines) + "\n"


def ratio_table(report: Dict[str, Any]) -> str:
    others = [name for name in report["servers"] if name != "ktnchat"]
    if "ktnchat" not in report["servers"] or not others:
        return "(no ratios: ktnchat and at least one other server are needed)"
    head = " | ".join(f"ktnchat / {LABELS[name]}" for name in others)
    lines = [f"| row | figure (medians) | {head} |", "|---|---|" + "---|" * len(others)]
    figures = (
        ("others_per_s", "deliveries/s (higher: ktnchat ahead)"),
        ("others_per_server_cpu_s", "deliveries per server CPU-s (higher: ktnchat ahead)"),
        ("rss_per_connection_kib", "RSS per idle connection (lower: ktnchat ahead)"),
    )
    for row in report["rows"]:
        servers = row["servers"]
        for key, label in figures:
            if key == "rss_per_connection_kib" and "others_per_s" in servers["ktnchat"]["summary"]:
                continue
            mine = _stat(servers["ktnchat"], key)
            if mine is None:
                continue
            cells = []
            for name in others:
                theirs = _stat(servers[name], key)
                cells.append("—" if theirs is None or not theirs else f"{mine / theirs:.2f}")
            lines.append(f"| {row['key']} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- command line -----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ktnchat bench --compare",
        description="Issue 17's rows against ktnchat, InspIRCd, ngIRCd and a C relay, in one "
        "sitting, alternating, with the ratios. Loopback only; every server is started "
        "and stopped by the bench.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--quick",
        action="store_true",
        help="reduced size: 1,000 / 100 lines per sender, idle N=1000, 3 runs",
    )
    size.add_argument(
        "--tiny",
        action="store_true",
        help="a smoke test of the harness (a handful of clients and lines; figures mean nothing)",
    )
    parser.add_argument("--runs", type=int, help="runs per server and row (5; --quick 3; --tiny 1)")
    parser.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help="comma-separated, from " + ", ".join(SERVERS),
    )
    parser.add_argument("--rows", default="1,2,3", help="comma-separated row numbers")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to cores")
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per run")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=0.0,
        help="before each run, wait up to this many seconds for other load to drop",
    )
    parser.add_argument("--json", metavar="PATH", help="write every run's figures as JSON")
    parser.add_argument("--markdown", metavar="PATH", help="also write the tables here")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    size = "tiny" if args.tiny else "quick" if args.quick else "full"
    runs = max(1, args.runs if args.runs is not None else {"full": 5, "quick": 3, "tiny": 1}[size])
    servers = [name.strip() for name in args.servers.split(",") if name.strip()]
    unknown = [name for name in servers if name not in SERVERS]
    if unknown or not servers:
        print(f"ktnchat bench --compare: unknown servers {unknown}", file=sys.stderr)
        return 2
    wanted = {key.strip() for key in args.rows.split(",")}
    rows = [row for row in rows_for(size) if row.key in wanted]
    if not rows:
        print(f"ktnchat bench --compare: no such rows {args.rows!r}", file=sys.stderr)
        return 2
    options = Options(
        pin=not args.no_pin, time_limit=args.time_limit, quiet_wait=max(0.0, args.quiet_wait)
    )
    previous = signal.getsignal(signal.SIGTERM)
    # SIGTERM ends the sitting like Ctrl-C does: the finally blocks stop every server.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        report = run_compare(rows, servers, runs, options)
    finally:
        signal.signal(signal.SIGTERM, previous)
    text = markdown(report)
    print(text, end="")
    save_report(report, args.json, text, args.markdown)
    if not report["servers"]:
        return 2
    failed = any(entry["errors"] for row in report["rows"] for entry in row["servers"].values())
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
