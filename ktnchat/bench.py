# `ktnchat bench`: the fan-out load generator and runner (performance issue).
#
# Job: start `ktnchat server` as its own process, connect N clients to it (a bounded number
# of logins in flight), log them in (all in one room, the lobby), then have S senders send
# M messages each of ~100 bytes in one of three shapes:
#   open     every sender writes as fast as TCP back-pressure lets it;
#   bounded  every sender keeps at most W messages not yet seen by a designated receiver;
#   paced    S x M messages at a fixed total rate;
# or (`idle`) only connect, to weigh the server's memory per idle logged-in connection.
# `--transport ws` does the same over WebSocket: the server also listens with `--web-port`
# and the clients speak to `/ws` (wsproto for the handshake and their own frames; one KTN
# JSON object per text frame), counted by the same rules as over TCP.
# It reports deliveries/s (receivers x messages / seconds until every receiver has every
# message), end-to-end latency (send time embedded in the message text, read by a few
# probe receivers), the connect + login rate, the server's CPU seconds and resident memory
# (/proc/PID/stat and /proc/PID/status) and the generator's own CPU, as a table and JSON.
# `--suite` runs every row of the target table and writes a Markdown table.
#
# Rules:
# - Loopback only. Every loop is bounded in count and time (--time-limit per run, and a
#   stall limit when no message arrives), and the server process it starts is always
#   stopped (SIGTERM, then SIGKILL).
# - Every receiver must get every message: counts are checked; any loss, extra line,
#   disconnect or out-of-order message is reported as an error (and exit status 1).
# - The generator is asyncio with uvloop when it is installed (the `bench` extra), plain
#   asyncio otherwise. Clients are Protocol objects; a plain receiver only counts newlines
#   (the server sends one JSON object per line) or, over WebSocket, complete frames (one
#   object per frame, found with C-speed bytes searches, not a Python loop per frame);
#   only probe receivers parse lines.
# - Server and generator are pinned to different cores when the machine has two (Linux
#   sched_setaffinity); each run starts a fresh server.
from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from typing import (
    Any,
    Awaitable,
    Callable,
    Dict,
    List,
    Optional,
    Protocol,
    Sequence,
    Tuple,
    Union,
    cast,
)

from ktnchat.oslimits import raise_file_limit

HOST = "127.0.0.1"
SHAPES = ("open", "bounded", "paced", "idle")
TRANSPORTS = ("tcp", "ws")
WS_MAX_SIZE = 30_000  # ws: frames stay under 32 KiB, where the frame count is exact
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOGIN_TIMEOUT = 30.0  # seconds one client may take to connect and log in
SYNC_TIMEOUT = 30.0  # seconds for every client to see the sync message
STALL_SECONDS = 15.0  # no delivery for this long while waiting: stop and report the loss
SERVER_START_TIMEOUT = 30.0
SERVER_STOP_TIMEOUT = 15.0
OTHER_LOAD_WARNING = 10.0  # % of a core used by other processes that makes a run suspect
OPEN_BATCH = 16  # messages per write in the open shape
PAD = b"x" * 4096
# The message text, after `"content":"` (KTN) or `PRIVMSG #room :` (bench_compare's IRC).
PROBE_PATTERN = re.compile(rb'[":]b\|(\d+)\|(\d+)\|(\d+)\|')
DASH = "\u2013"  # en dash, for ranges in tables
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class BenchError(Exception):
    """A run could not be carried out (server did not start, logins failed, ...)."""


@dataclass(frozen=True)
class Workload:
    """What one run does."""

    clients: int = 100  # N: every client is a receiver; the first S also send
    senders: int = 10  # S
    messages: int = 1000  # M, per sender: S x M messages in all
    shape: str = "bounded"  # open | bounded | paced | idle
    window: int = 32  # W (bounded): unseen messages a sender may have
    rate: float = 100.0  # messages/s in all (paced)
    size: int = 100  # bytes of message text
    concurrency: int = 200  # logins in flight while connecting
    probes: int = 3  # receivers that parse lines for latency (the last one is designated)
    transport: str = "tcp"  # tcp | ws (WebSocket to the server's --web-port, path /ws)

    def describe(self) -> str:
        over = ", over WebSocket" if self.transport == "ws" else ""
        if self.shape == "idle":
            return f"idle, N={self.clients}{over}"
        text = f"{self.shape}, N={self.clients}, S={self.senders} x M={self.messages}"
        if self.shape == "bounded":
            text += f", W={self.window}"
        if self.shape == "paced":
            text += f", {self.rate:g} msg/s"
        return text + over


@dataclass(frozen=True)
class Options:
    """How runs are carried out."""

    io_threads: int = 1
    server_args: str = ""  # more `ktnchat server` options, e.g. "--workers 2 --bus ..."
    pin: bool = True  # server on one core, generator on another
    server_core: int = 0
    generator_core: int = 1
    time_limit: float = 120.0  # seconds for one run's send phase
    quiet_wait: float = 0.0  # seconds to wait, before each run, for other load to drop
    stall: float = STALL_SECONDS
    python: str = sys.executable


# -- the server process ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def can_pin(options: Options) -> bool:
    if not options.pin or not hasattr(os, "sched_setaffinity"):
        return False
    return {options.server_core, options.generator_core} <= os.sched_getaffinity(0)


class ServerProcess:
    """`ktnchat server` as a child process on a free loopback port; stop() always stops it."""

    def __init__(
        self, options: Options, max_connections: int, core: Optional[int], web: bool = False
    ) -> None:
        self.port = free_port()
        # With `web`, also the web listener (HTTP + WebSocket). The bench's WebSocket clients
        # send the Origin of a page this listener served, so no --web-origin is needed.
        self.web_port: Optional[int] = free_port() if web else None
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (PACKAGE_ROOT, env.get("PYTHONPATH", "")) if p
        )
        argv = [
            options.python,
            "-m",
            "ktnchat",
            "server",
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--pace-ms",
            "0",
            "--flood",
            "off",
            "--log-level",
            "WARNING",
            "--max-connections",
            str(max_connections),
            "--io-threads",
            str(options.io_threads),
            *(["--web-port", str(self.web_port)] if self.web_port is not None else []),
            *shlex.split(options.server_args),
        ]
        self._launch(argv, core, "the server", env=env)

    def _launch(
        self,
        argv: Sequence[str],
        core: Optional[int],
        what: str,
        env: Optional[Dict[str, str]] = None,
        cwd: Optional[str] = None,
        output_tail: Optional[int] = None,
    ) -> None:
        """Start `argv` (pinned to `core`; output to self.log) and wait, bounded, until
        self.port and self.web_port (if any) accept connections."""
        preexec: Optional[Callable[[], None]] = None
        self.pinned_to = core
        if core is not None:
            server_core = core

            def preexec() -> None:
                os.sched_setaffinity(0, {server_core})

        self.proc = subprocess.Popen(
            list(argv),
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            preexec_fn=preexec,
        )
        self.pid = self.proc.pid
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                self.stop()
                output = self.output()
                if output_tail is not None:
                    output = output[-output_tail:]
                raise BenchError(f"{what} exited at start: {output}")
            try:
                for port in (self.port, self.web_port):
                    if port is not None:
                        socket.create_connection((HOST, port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    self.close()
                    raise BenchError(f"{what} did not start listening") from None
                time.sleep(0.05)

    def cpu_times(self) -> Optional[Tuple[float, float]]:
        """User and system CPU seconds of the server (every thread), from /proc/PID/stat."""
        try:
            with open(f"/proc/{self.pid}/stat", encoding="ascii") as handle:
                stat = handle.read()
        except OSError:
            return None
        fields = stat[stat.rindex(")") + 2 :].split()  # fields 3.. of proc(5)
        return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS  # utime, stime

    def cpus_allowed(self) -> Optional[str]:
        """The CPUs the server may run on (Cpus_allowed_list), to show the pinning took."""
        return self._status_field("Cpus_allowed_list:")

    def rss_kib(self) -> Optional[int]:
        """Resident memory of the server process, from VmRSS in /proc/PID/status."""
        value = self._status_field("VmRSS:")
        return None if value is None else int(value.split()[0])

    def _status_field(self, name: str) -> Optional[str]:
        try:
            with open(f"/proc/{self.pid}/status", encoding="ascii") as handle:
                for line in handle:
                    if line.startswith(name):
                        return line[len(name) :].strip()
        except OSError:
            return None
        return None

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace").strip()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(SERVER_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(SERVER_STOP_TIMEOUT)

    def close(self) -> None:
        self.stop()
        self.log.close()


# -- the clients -----------------------------------------------------------------------------


def request(word: str, content: str) -> bytes:
    return json.dumps({"request": word, "content": content}).encode() + b"\n"


class Client(asyncio.Protocol):
    """One logged-in chat client. Until the sync message it reads lines (login, join
    notices); from then on it only counts lines, and a probe also parses them."""

    def __init__(self, run: Run, index: int) -> None:
        self.run = run
        self.index = index
        self.transport: Optional[asyncio.Transport] = None
        loop = asyncio.get_running_loop()
        self.logged_in: asyncio.Future[None] = loop.create_future()
        self.synced: asyncio.Future[None] = loop.create_future()
        self.buffer = bytearray()
        self.counting = False
        self.count = 0  # lines after the sync message
        self.expected = 0
        self.done = False
        self.lost = False
        self.probe: Optional[Probe] = None
        self.write_paused = False
        self.resumed: Optional[asyncio.Future[None]] = None
        self.closed_by_us = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        name = "warmup" if self.index < 0 else f"u{self.index}"
        self.transport.write(request("stream", "on") + request("login", name))

    def data_received(self, data: bytes) -> None:
        if self.counting:
            if self.probe is not None:
                self.probe.feed(data)
            self.count += data.count(b"\n")
            if self.count >= self.expected and not self.done:
                self.run.finished(self)
        else:
            self._setup(data)

    def _setup(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if not self.logged_in.done():
            if b'"response":"history"' in buffer:
                self.logged_in.set_result(None)
            elif b'"response":"error"' in buffer:
                text = buffer.decode("utf-8", "replace").strip()
                self.logged_in.set_exception(BenchError(f"login refused: {text[-300:]}"))
                return
            else:
                return
        marker = self.run.sync_marker
        if marker is not None:
            at = buffer.find(marker)
            if at >= 0:
                end = buffer.find(b"\n", at)
                if end >= 0:
                    rest = bytes(buffer[end + 1 :])
                    self.buffer = bytearray()
                    self.counting = True
                    self.synced.set_result(None)
                    if rest:
                        self.data_received(rest)
                    return
        del buffer[: buffer.rfind(b"\n") + 1]  # complete lines without the marker: done

    def write_lines(self, lines: Sequence[bytes]) -> None:
        """Send requests, each one JSON line."""
        if self.transport is not None:
            self.transport.write(b"".join(lines))

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.resumed is not None and not self.resumed.done():
            self.resumed.set_result(None)

    async def writable(self) -> None:
        """Wait (bounded by the caller) until the transport takes writes again."""
        if self.write_paused:
            self.resumed = asyncio.get_running_loop().create_future()
            await self.resumed

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.lost = True
        if not self.logged_in.done():
            self.logged_in.set_exception(BenchError(f"client {self.index}: closed at login"))
        if not self.run.closing and not self.closed_by_us:
            self.run.disconnects += 1
            if self.run.disconnects <= 5:  # the first few; the count comes at the end
                self.run.errors.append(
                    f"client {self.index} disconnected ({exc or 'closed by the server'}) "
                    f"after {self.count} of {self.expected} messages"
                )
            if self.counting and not self.done:
                self.run.finished(self)
        if self.resumed is not None and not self.resumed.done():
            self.resumed.set_result(None)

    def close(self) -> None:
        self.closed_by_us = True
        if self.transport is not None:
            self.transport.abort()


class WebClient(Client):
    """A Client over WebSocket (`--transport ws`): wsproto's client side does the upgrade
    (GET /ws with the Origin of a page the listener served) and frames (masks) what we
    send, one request per text frame. Received frames are split by hand: during setup one
    by one; once counting, a plain receiver counts complete frames with bytes searches:
    every object is JSON ending in "}" and every server frame is a final unmasked text
    frame starting 0x81, a pair that cannot occur inside an ASCII payload (the server
    encodes with ensure_ascii) nor inside a header whose length is below 0x7D81, so each
    '}\x81' is one frame boundary. Only the last frame of a read is parsed, to see
    whether it is complete. Any other frame (a close, say) is reported as an error."""

    def __init__(self, run: Run, index: int) -> None:
        super().__init__(run, index)
        from wsproto import ConnectionType, WSConnection  # the `web` extra
        from wsproto.events import Message

        self.ws = WSConnection(ConnectionType.CLIENT)
        self.message = Message
        self.opened = False  # the upgrade was accepted
        self.left = 0  # counting: bytes still to come of the frame begun in the last read
        self.head = b""  # counting: the start of a frame whose header was cut by a read
        self.broken = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        from wsproto.events import Request as Upgrade

        self.transport = cast(asyncio.Transport, transport)
        host, port = self.transport.get_extra_info("peername")[:2]
        origin = f"http://{host}:{port}".encode("ascii")
        upgrade = Upgrade(host=f"{host}:{port}", target="/ws", extra_headers=[(b"origin", origin)])
        self.transport.write(self.ws.send(upgrade))

    def write_lines(self, lines: Sequence[bytes]) -> None:
        if self.transport is not None and self.opened:
            send, message = self.ws.send, self.message
            self.transport.write(
                b"".join(send(message(data=line.rstrip(b"\n").decode("utf-8"))) for line in lines)
            )

    def data_received(self, data: bytes) -> None:
        if not self.counting:
            self._setup(data)
            return
        if self.probe is not None:
            self.probe.feed(data)
        if self.left or self.head:
            data = self._finish_frame(data)
        if not data:
            return
        if data[0] != 0x81:  # from here a read begins with a frame
            self._broken(data[0])
            return
        size = len(data)
        frames = 1 + data.count(b"}\x81")  # frames begun in this read
        last = data.rfind(b"}\x81") + 1  # where the last of them begins (0: the first)
        length = data[last + 1] & 0x7F if last + 1 < size else 127
        end: Optional[int]
        if length < 126:
            end = last + 2 + length
        elif length == 126 and last + 4 <= size:
            end = last + 4 + (data[last + 2] << 8 | data[last + 3])
        else:  # a 64-bit length, or a header cut by the read
            end = frame_end(data, last)
        if end is None:  # keep the cut header for the next read
            self.head = data[last:]
            frames -= 1
        elif end > size:
            self.left = end - size
            frames -= 1
        elif end < size:
            self._broken(data[end])
        self._counted(frames)

    def _finish_frame(self, data: bytes) -> bytes:
        """The part of a read after the frame an earlier read began (b"" if none)."""
        if self.head:  # with the cut header in front, the read begins with a frame
            data, self.head = self.head + data, b""
            return data
        left = self.left
        if left > len(data):  # all of it is inside that frame
            self.left = left - len(data)
            return b""
        self.left = 0
        self._counted(1)  # that frame is complete
        return data[left:]

    def _counted(self, frames: int) -> None:
        self.count += frames
        if self.count >= self.expected and not self.done:
            self.run.finished(self)

    def _broken(self, first: int) -> None:
        if not self.broken:
            self.broken = True
            self.run.errors.append(
                f"client {self.index}: unexpected WebSocket frame (first byte 0x{first:02x}) "
                f"after {self.count} of {self.expected} messages"
            )

    def _setup(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if not self.opened:
            from wsproto.events import AcceptConnection, RejectConnection

            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            self.ws.receive_data(bytes(buffer[: end + 4]))  # only the HTTP answer
            del buffer[: end + 4]
            for event in self.ws.events():
                if isinstance(event, AcceptConnection):
                    self.opened = True
                elif isinstance(event, RejectConnection) and not self.logged_in.done():
                    self.logged_in.set_exception(
                        BenchError(f"WebSocket upgrade refused: HTTP {event.status_code}")
                    )
            if not self.opened:
                return
            name = "warmup" if self.index < 0 else f"u{self.index}"
            self.write_lines([request("stream", "on"), request("login", name)])
        marker = self.run.sync_marker
        at = 0
        while True:
            stop = frame_end(buffer, at)
            if stop is None or stop > len(buffer):
                break
            payload = bytes(buffer[at + header_size(buffer, at) : stop])
            first, at = buffer[at], stop
            if first != 0x81:  # a close (or a fragment, which this server never sends)
                continue
            if not self.logged_in.done():
                if b'"response":"history"' in payload:
                    self.logged_in.set_result(None)
                elif b'"response":"error"' in payload:
                    text = payload.decode("utf-8", "replace")
                    self.logged_in.set_exception(BenchError(f"login refused: {text[-300:]}"))
                    return
            elif marker is not None and marker in payload:
                rest = bytes(buffer[at:])
                self.buffer = bytearray()
                self.counting = True
                self.synced.set_result(None)
                if rest:
                    self.data_received(rest)
                return
        del buffer[:at]


def header_size(data: Union[bytes, bytearray], at: int) -> int:
    """The header length of the (unmasked) frame beginning at `at`."""
    length = data[at + 1] & 0x7F
    return 2 if length < 126 else 4 if length == 126 else 10


def frame_end(data: Union[bytes, bytearray], at: int) -> Optional[int]:
    """Where the unmasked WebSocket frame beginning at `at` ends (maybe past the data), or
    None if its header is not all there."""
    if at + 2 > len(data):
        return None
    length = data[at + 1] & 0x7F
    if length < 126:
        return at + 2 + length
    head = 4 if length == 126 else 10
    if at + head > len(data):
        return None
    return at + head + int.from_bytes(data[at + 2 : at + head], "big")


class Probe:
    """Parses one receiver's lines: latency of each message, order per sender, and (for the
    designated receiver of the bounded shape) how far each sender's messages have got."""

    def __init__(self, run: Run, designated: bool) -> None:
        self.run = run
        self.designated = designated
        self.tail = b""
        self.latencies: List[int] = []  # nanoseconds
        self.next_seq = [0] * run.workload.senders
        self.order_errors = 0
        # What ends an object: a line over TCP; over WebSocket a frame's JSON ends in "}",
        # which no message pattern contains, so a read cut there has only whole matches.
        self.end_byte = b"}" if run.workload.transport == "ws" else b"\n"

    def feed(self, data: bytes) -> None:
        now = time.perf_counter_ns()
        if self.tail:
            data = self.tail + data
        end = data.rfind(self.end_byte) + 1
        self.tail = data[end:]
        latencies = self.latencies
        next_seq = self.next_seq
        for match in PROBE_PATTERN.finditer(data, 0, end):
            sender, seq, sent = int(match[1]), int(match[2]), int(match[3])
            latencies.append(now - sent)
            if seq != next_seq[sender]:
                self.order_errors += 1
            next_seq[sender] = seq + 1
        if self.designated and self.run.bounded:
            for writer in self.run.senders:
                writer.seen = next_seq[writer.index]
                writer.pump()


class Sender:
    """Writes one client's share of the messages: "b|SENDER|SEQ|SEND_NS|xxx..." texts."""

    def __init__(self, client: Client, index: int, workload: Workload) -> None:
        self.client = client
        self.index = index
        self.total = workload.messages
        self.size = workload.size
        self.window = workload.window
        self.sent = 0
        self.seen = 0  # bounded: messages the designated receiver has seen

    def send(self, count: int) -> None:
        count = min(count, self.total - self.sent)
        if count <= 0 or self.client.transport is None or self.client.lost:
            return
        now = time.perf_counter_ns()
        size = self.size
        parts = []
        for seq in range(self.sent, self.sent + count):
            head = b"b|%d|%d|%d|" % (self.index, seq, now)
            parts.append(
                b'{"request":"msg","content":"%s%s"}\n' % (head, PAD[: max(0, size - len(head))])
            )
        self.sent += count
        self.client.write_lines(parts)

    def pump(self) -> None:
        """Bounded shape: top the window up."""
        self.send(self.seen + self.window - self.sent)

    @property
    def finished(self) -> bool:
        return self.sent >= self.total


class Run:
    """The state of one run against one server."""

    def __init__(self, workload: Workload) -> None:
        self.workload = workload
        self.bounded = workload.shape == "bounded"
        self.sync_marker: Optional[bytes] = None
        self.closing = False
        self.errors: List[str] = []
        self.clients: List[Client] = []
        self.senders: List[Sender] = []
        self.remaining = 0
        self.disconnects = 0
        self.last_done_ns = 0
        self.all_done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def finished(self, client: Client) -> None:
        client.done = True
        self.last_done_ns = time.perf_counter_ns()
        self.remaining -= 1
        if self.remaining <= 0 and not self.all_done.done():
            self.all_done.set_result(None)

    def received(self) -> int:
        return sum(client.count for client in self.clients)


async def connect(run: Run, port: int, index: int) -> Client:
    loop = asyncio.get_running_loop()
    kind = WebClient if run.workload.transport == "ws" else Client
    _transport, client = await asyncio.wait_for(
        loop.create_connection(lambda: kind(run, index), HOST, port), LOGIN_TIMEOUT
    )
    try:
        await asyncio.wait_for(client.logged_in, LOGIN_TIMEOUT)
    except BaseException:
        client.close()
        raise
    return client


async def connect_all(run: Run, port: Union[int, Sequence[int]]) -> None:
    """Connect and log in N clients, at most `concurrency` in flight. Given several ports
    (one per server process of a cluster), client i goes to ports[i % len(ports)]."""
    ports = [port] if isinstance(port, int) else list(port)
    await connect_pool(run, lambda index: connect(run, ports[index % len(ports)], index))


async def connect_pool(run: Run, connect_one: Callable[[int], Awaitable[Client]]) -> None:
    """Run `connect_one(i)` for the N clients, at most `concurrency` in flight; the
    clients made, in index order, become run.clients (also when one fails)."""
    count = run.workload.clients
    slots: List[Optional[Client]] = [None] * count
    next_index = iter(range(count))

    async def worker() -> None:
        for index in next_index:
            slots[index] = await connect_one(index)

    workers = [
        asyncio.ensure_future(worker()) for _ in range(max(1, min(run.workload.concurrency, count)))
    ]
    try:
        await asyncio.gather(*workers)
    finally:
        for task in workers:
            task.cancel()
        run.clients = [client for client in slots if client is not None]


async def wait_delivered(run: Run, deadline: float, stall: float) -> None:
    """Until every receiver is done, the deadline passes, or nothing arrives for `stall` s."""
    last_total = -1
    last_change = time.monotonic()
    while not run.all_done.done():
        await asyncio.wait([run.all_done], timeout=0.25)
        now = time.monotonic()
        total = run.received()
        if total != last_total:
            last_total, last_change = total, now
        elif now - last_change > stall:
            run.errors.append(f"stalled: nothing arrived for {stall:g} s")
            return
        if now > deadline:
            run.errors.append("time limit reached before every message arrived")
            return


async def send_open(run: Run, deadline: float) -> None:
    async def one(sender: Sender) -> None:
        while not sender.finished and not sender.client.lost and time.monotonic() < deadline:
            if sender.client.write_paused:
                await asyncio.wait_for(sender.client.writable(), deadline - time.monotonic())
            sender.send(OPEN_BATCH)
            await asyncio.sleep(0)

    await asyncio.gather(*(one(sender) for sender in run.senders))


async def send_paced(run: Run, deadline: float) -> None:
    loop = asyncio.get_running_loop()
    senders = run.senders
    total = len(senders) * run.workload.messages
    rate = run.workload.rate
    start = loop.time()
    sent = 0
    while sent < total and time.monotonic() < deadline:
        due = min(total, int((loop.time() - start) * rate) + 1)
        counts = [0] * len(senders)
        for number in range(sent, due):
            counts[number % len(senders)] += 1
        for sender, count in zip(senders, counts):
            if count:
                sender.send(count)
        sent = max(sent, due)
        if sent < total:
            await asyncio.sleep(max(0.0, start + sent / rate - loop.time()))


def percentile(ordered: Sequence[int], fraction: float) -> float:
    """Nearest-rank percentile of sorted nanoseconds, in milliseconds."""
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, int(fraction * len(ordered) + 0.999999) - 1))
    return ordered[rank] / 1e6


def machine_busy_seconds() -> Optional[float]:
    """CPU seconds every process on the machine has used (user, nice, system), /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            fields = handle.readline().split()
    except OSError:
        return None
    return (int(fields[1]) + int(fields[2]) + int(fields[3])) / CLOCK_TICKS


def cpu_now() -> float:
    times = os.times()
    return times.user + times.system


async def generate(workload: Workload, server: ServerProcess, options: Options) -> Dict[str, Any]:
    """One run against a started server; returns its figures."""
    run = Run(workload)
    result: Dict[str, Any] = {}
    port = server.web_port if server.web_port is not None else server.port
    try:
        result.update(
            await connect_weighed(
                run,
                server,
                lambda: connect(run, port, -1),
                lambda: connect_all(run, port),
                lambda: asyncio.sleep(0.5),
            )
        )
        if workload.shape != "idle":
            await measure_fanout(run, server, options, result)
        return result
    finally:
        run.closing = True
        for client in run.clients:
            client.close()
        result["errors"] = run.errors


async def connect_weighed(
    run: Run,
    server: ServerProcess,
    warm_up: Callable[[], Awaitable[Any]],
    connect_everyone: Callable[[], Awaitable[None]],
    settle_idle: Callable[[], Awaitable[Any]],
) -> Dict[str, Any]:
    """The start of every run (ours and bench_compare's line clients): warm the server up
    (first-use imports and allocations) with one client that then leaves, weigh it,
    connect every client (timed, with both sides' CPU), let an idle run settle, and
    weigh it again. Returns those figures; pinning problems go to run.errors."""
    result: Dict[str, Any] = {}
    warm = await warm_up()
    warm.close()
    await asyncio.sleep(0.2)
    rss_before = server.rss_kib()
    result["server_cpus"] = server.cpus_allowed()
    if server.pinned_to is not None and result["server_cpus"] != str(server.pinned_to):
        run.errors.append(f"the server is not pinned: CPUs {result['server_cpus']}")
    if hasattr(os, "sched_getaffinity"):
        result["generator_cpus"] = ",".join(map(str, sorted(os.sched_getaffinity(0))))
    server_cpu = server.cpu_times()
    generator_cpu = cpu_now()
    started = time.perf_counter()
    await connect_everyone()
    connect_seconds = time.perf_counter() - started
    result["connect_seconds"] = connect_seconds
    result["connect_login_per_s"] = run.workload.clients / connect_seconds
    result["connect_generator_cpu_pct"] = 100 * (cpu_now() - generator_cpu) / connect_seconds
    server_cpu_after = server.cpu_times()
    if server_cpu is not None and server_cpu_after is not None:
        spent = sum(server_cpu_after) - sum(server_cpu)
        result["connect_server_cpu_pct"] = 100 * spent / connect_seconds
    if run.workload.shape == "idle":
        await settle_idle()
    rss_after = server.rss_kib()
    result["server_rss_before_kib"] = rss_before
    result["server_rss_after_kib"] = rss_after
    if rss_before is not None and rss_after is not None:
        result["rss_per_connection_kib"] = (rss_after - rss_before) / run.workload.clients
    return result


class CpuSource(Protocol):
    """What measure_fanout weighs: a ServerProcess, or several processes of a cluster."""

    def cpu_times(self) -> Optional[Tuple[float, float]]: ...


async def measure_fanout(
    run: Run, server: CpuSource, options: Options, result: Dict[str, Any]
) -> None:
    workload = run.workload
    clients = run.clients
    # Sync: once a client sees this message, everything before it (join notices) is read.
    run.sync_marker = b'"content":"sync|%d"' % os.getpid()
    assert clients[0].transport is not None
    clients[0].write_lines([request("msg", f"sync|{os.getpid()}")])
    await asyncio.wait_for(asyncio.gather(*(c.synced for c in clients)), SYNC_TIMEOUT)

    total_messages = workload.senders * workload.messages
    for client in clients:
        client.expected = total_messages
    run.remaining = len(clients)
    run.senders = [Sender(clients[i], i, workload) for i in range(workload.senders)]
    probe_indices = sorted(
        {
            len(clients) - 1 - round(k * (len(clients) - 1) / max(1, workload.probes - 1))
            for k in range(max(1, workload.probes))
        }
    )
    probes = []
    for index in probe_indices:
        probe = Probe(run, designated=index == len(clients) - 1)
        clients[index].probe = probe
        probes.append(probe)

    deadline = time.monotonic() + options.time_limit
    cpu_server_0 = server.cpu_times()
    busy_0 = machine_busy_seconds()
    cpu_generator_0 = cpu_now()
    start_ns = time.perf_counter_ns()
    run.last_done_ns = start_ns
    sending: Optional[asyncio.Future[None]] = None
    if workload.shape == "open":
        sending = asyncio.ensure_future(send_open(run, deadline))
    elif workload.shape == "paced":
        sending = asyncio.ensure_future(send_paced(run, deadline))
    else:
        for sender in run.senders:
            sender.pump()
    try:
        await wait_delivered(run, deadline, options.stall)
    finally:
        if sending is not None:
            if not sending.done():
                sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
    cpu_server_1 = server.cpu_times()
    busy_1 = machine_busy_seconds()
    cpu_generator_1 = cpu_now()
    seconds = max(1e-9, (run.last_done_ns - start_ns) / 1e9)
    wall = (time.perf_counter_ns() - start_ns) / 1e9

    received = run.received()
    expected = len(clients) * total_messages
    if run.disconnects:
        run.errors.append(f"{run.disconnects} clients disconnected during the run")
    if received < expected:
        short = sum(1 for c in clients if c.count < c.expected)
        run.errors.append(
            f"lost: {expected - received} of {expected} deliveries ({short} receivers short)"
        )
    over = [c for c in clients if c.count > c.expected]
    if over:
        run.errors.append(f"{len(over)} receivers got extra lines (e.g. {over[0].count})")
    order_errors = sum(p.order_errors for p in probes)
    if order_errors:
        run.errors.append(f"{order_errors} messages out of order at the probes")

    latencies = sorted(ns for probe in probes for ns in probe.latencies)
    result.update(
        receivers=len(clients),
        messages=total_messages,
        deliveries=received,
        expected_deliveries=expected,
        seconds=seconds,
        deliveries_per_s=received / seconds,
        # The other definition (issue 17's table, `bench --compare`): a line received by a
        # client other than its sender; every sender here is one of the N clients and
        # gets its own line back (the KTN protocol's echo), so S x M fewer.
        deliveries_to_others=max(0, received - total_messages),
        deliveries_to_others_per_s=max(0, received - total_messages) / seconds,
        latency_samples=len(latencies),
        latency_p50_ms=percentile(latencies, 0.50),
        latency_p99_ms=percentile(latencies, 0.99),
        latency_max_ms=percentile(latencies, 1.0),
        generator_cpu_s=cpu_generator_1 - cpu_generator_0,
        generator_cpu_pct=100.0 * (cpu_generator_1 - cpu_generator_0) / wall,
    )
    if cpu_server_0 is not None and cpu_server_1 is not None:
        result["server_cpu_user_s"] = cpu_server_1[0] - cpu_server_0[0]
        result["server_cpu_system_s"] = cpu_server_1[1] - cpu_server_0[1]
        result["server_cpu_s"] = result["server_cpu_user_s"] + result["server_cpu_system_s"]
        result["server_cpu_pct"] = 100.0 * result["server_cpu_s"] / wall
        if result["server_cpu_s"] > 0:
            # What one fully busy core would sustain, were the server CPU-bound: a figure
            # that other load on the machine disturbs less than deliveries/s.
            result["deliveries_per_server_cpu_s"] = received / result["server_cpu_s"]
            result["deliveries_to_others_per_server_cpu_s"] = (
                result["deliveries_to_others"] / result["server_cpu_s"]
            )
        if busy_0 is not None and busy_1 is not None:
            # Other processes' CPU: a benchmark sharing the machine is not a clean figure.
            other = (busy_1 - busy_0) - result["server_cpu_s"] - result["generator_cpu_s"]
            result["other_cpu_pct"] = max(0.0, 100.0 * other / wall)
            if result["other_cpu_pct"] > OTHER_LOAD_WARNING:
                result["warnings"] = [
                    f"other processes used {result['other_cpu_pct']:.0f}% of a core "
                    "during the send phase: figures are disturbed"
                ]


# -- runs, summaries and output ----------------------------------------------------------------


def uvloop_module() -> Any:
    try:
        return importlib.import_module("uvloop")
    except ImportError:
        return None


def event_loop_name() -> str:
    module = uvloop_module()
    return f"uvloop {module.__version__}" if module is not None else "asyncio"


def new_event_loop() -> asyncio.AbstractEventLoop:
    module = uvloop_module()
    if module is not None:
        loop: asyncio.AbstractEventLoop = module.new_event_loop()
        return loop
    return asyncio.new_event_loop()


def run_once(workload: Workload, options: Options) -> Dict[str, Any]:
    """Start a server, run the workload once against it, stop the server."""
    if workload.shape not in SHAPES:
        raise BenchError(f"unknown shape {workload.shape!r}")
    if workload.shape != "idle" and not 0 < workload.senders <= workload.clients:
        raise BenchError("need 1 <= senders <= clients")
    if workload.transport not in TRANSPORTS:
        raise BenchError(f"unknown transport {workload.transport!r}")
    if workload.transport == "ws" and workload.size > WS_MAX_SIZE:
        raise BenchError(f"--transport ws needs --size <= {WS_MAX_SIZE}")
    result, lines = run_pinned(
        workload,
        options,
        lambda core: ServerProcess(
            options, max(20_000, workload.clients + 100), core, web=workload.transport == "ws"
        ),
        lambda server: generate(workload, server, options),
    )
    dropped = sum(1 for line in lines if "dropped" in line)
    if dropped:
        result["errors"].append(f"the server dropped {dropped} slow clients")
    return result


def run_pinned(
    workload: Workload,
    options: Options,
    start: Callable[[Optional[int]], ServerProcess],
    run: Callable[[ServerProcess], Awaitable[Dict[str, Any]]],
) -> Tuple[Dict[str, Any], List[str]]:
    """Pin this process to the generator's core, start a server (`start(core)`, pinned to
    the other core), run the generator `run(server)` on a fresh event loop, stop the
    server. Returns the result (with the server's last log lines, and an error if it
    exited during the run) and every line the server logged. A failed start raises."""
    raise_file_limit(workload.clients + 256)
    pinned = can_pin(options)
    affinity = os.sched_getaffinity(0) if pinned else None
    if pinned:
        os.sched_setaffinity(0, {options.generator_core})
    try:
        server = start(options.server_core if pinned else None)
        try:
            loop = new_event_loop()
            try:
                result = loop.run_until_complete(run(server))
            except (BenchError, OSError, asyncio.TimeoutError) as exc:
                result = {"errors": [f"run failed: {type(exc).__name__}: {exc}"]}
            finally:
                try:
                    loop.run_until_complete(asyncio.sleep(0.05))  # let aborted sockets close
                finally:
                    loop.close()
        finally:
            status = server.proc.poll()
            server.stop()
            log = server.output()
            server.close()
    finally:
        if affinity is not None:
            os.sched_setaffinity(0, affinity)
    if status is not None:
        result.setdefault("errors", []).append(f"the server exited during the run ({status})")
    lines = log.splitlines() if log else []
    if lines:
        result["server_log"] = lines[-5:]
    return result, lines


METRICS = (
    # key, label, scale, unit, decimals
    ("deliveries_per_s", "deliveries/s", 1e-3, "k/s", 0),
    ("deliveries_per_server_cpu_s", "deliveries per server CPU-s", 1e-3, "k", 0),
    ("deliveries_to_others_per_s", "  to others than the sender (/s)", 1e-3, "k/s", 0),
    ("deliveries_to_others_per_server_cpu_s", "  to others, per server CPU-s", 1e-3, "k", 0),
    ("latency_p50_ms", "latency p50", 1.0, "ms", 2),
    ("latency_p99_ms", "latency p99", 1.0, "ms", 2),
    ("connect_login_per_s", "connect + login rate", 1.0, "/s", 0),
    ("connect_server_cpu_pct", "  server CPU while connecting", 1.0, "%", 0),
    ("connect_generator_cpu_pct", "  generator CPU while connecting", 1.0, "%", 0),
    ("rss_per_connection_kib", "server RSS per connection", 1.0, "KiB", 2),
    ("server_cpu_s", "server CPU (send phase)", 1.0, "s", 2),
    ("server_cpu_system_s", "  of which system (kernel)", 1.0, "s", 2),
    ("server_cpu_pct", "server CPU of its core", 1.0, "%", 0),
    ("generator_cpu_s", "generator CPU (send phase)", 1.0, "s", 2),
    ("generator_cpu_pct", "generator CPU of its core", 1.0, "%", 0),
    ("other_cpu_pct", "other processes' CPU", 1.0, "% of a core", 0),
    ("seconds", "send phase", 1.0, "s", 2),
)


def summarize(runs: List[Dict[str, Any]]) -> Dict[str, Dict[str, float]]:
    """Median, min and max of every numeric figure present in every run."""
    summary: Dict[str, Dict[str, float]] = {}
    keys = [key for key in runs[0] if isinstance(runs[0][key], (int, float))] if runs else []
    for key in keys:
        values = sorted(float(run[key]) for run in runs if isinstance(run.get(key), (int, float)))
        if len(values) == len(runs):
            summary[key] = {
                "median": values[len(values) // 2]
                if len(values) % 2
                else (values[len(values) // 2 - 1] + values[len(values) // 2]) / 2,
                "min": values[0],
                "max": values[-1],
            }
    return summary


def format_figure(stats: Dict[str, float], scale: float, unit: str, decimals: int) -> str:
    def number(value: float) -> str:
        return f"{value * scale:,.{decimals}f}"

    return f"{number(stats['median'])} {unit} ({number(stats['min'])}{DASH}{number(stats['max'])})"


def environment(options: Options) -> Dict[str, Any]:
    pinned = can_pin(options)
    return {
        "python": sys.version.split()[0],
        "event_loop": event_loop_name(),
        "cpus": os.cpu_count(),
        "server_core": options.server_core if pinned else None,
        "generator_core": options.generator_core if pinned else None,
        "io_threads": options.io_threads,
    }


def wait_for_quiet(limit: float) -> Optional[float]:
    """Up to `limit` seconds: until other processes use less than OTHER_LOAD_WARNING % of a
    core over one second. Returns the seconds waited (None if not asked to wait)."""
    if limit <= 0:
        return None
    started = time.monotonic()
    while time.monotonic() - started < limit:
        before = machine_busy_seconds()
        time.sleep(1.0)
        after = machine_busy_seconds()
        if before is None or after is None or (after - before) * 100 < OTHER_LOAD_WARNING:
            break
    return time.monotonic() - started


def run_workload(workload: Workload, options: Options, runs: int) -> Dict[str, Any]:
    """`runs` runs of one workload, each against a fresh server, and their summary."""
    results = []
    for _ in range(runs):
        waited = wait_for_quiet(options.quiet_wait)
        result = run_once(workload, options)
        if waited is not None:
            result["quiet_wait_s"] = waited
        results.append(result)
    errors = [f"run {i + 1}: {e}" for i, r in enumerate(results) for e in r.get("errors", [])]
    return {
        "workload": asdict(workload),
        "description": workload.describe(),
        "environment": environment(options),
        "runs": results,
        "summary": summarize(results),
        "errors": errors,
        "warnings": [
            f"run {i + 1}: {w}" for i, r in enumerate(results) for w in r.get("warnings", [])
        ],
    }


def table(report: Dict[str, Any]) -> str:
    env = report["environment"]
    lines = [
        f"ktnchat bench: {report['description']}; {len(report['runs'])} run(s); "
        f"{env['event_loop']}; server on CPU {env['server_core']}, "
        f"generator on CPU {env['generator_core']}; io-threads {env['io_threads']}",
        f"{'figure':<34} median (min{DASH}max)",
    ]
    for key, label, scale, unit, decimals in METRICS:
        stats = report["summary"].get(key)
        if stats is not None:
            lines.append(f"{label:<34} {format_figure(stats, scale, unit, decimals)}")
    lines.append("errors: " + ("; ".join(report["errors"]) if report["errors"] else "none"))
    if report["warnings"]:
        lines.append("warnings: " + "; ".join(report["warnings"]))
    return "\n".join(lines)


# -- the suite: every row of the target table ----------------------------------------


@dataclass(frozen=True)
class Row:
    name: str
    workload: Workload
    metric: str  # the figure the target is about
    target: Optional[float]  # None: reported, no target
    at_least: bool = True  # target is a floor (else a ceiling)
    scale: float = 1.0
    unit: str = ""
    decimals: int = 0


SUITE: Tuple[Row, ...] = (
    Row(
        "open (full speed), N=100",
        Workload(clients=100, senders=10, messages=4000, shape="open"),
        "deliveries_per_s",
        None,
        scale=1e-6,
        unit="M/s",
        decimals=2,
    ),
    Row(
        "bounded, N=100",
        Workload(clients=100, senders=10, messages=4000, shape="bounded", window=32),
        "deliveries_per_s",
        2.0e6,
        scale=1e-6,
        unit="M/s",
        decimals=2,
    ),
    Row(
        "bounded, N=1000",
        Workload(clients=1000, senders=10, messages=1000, shape="bounded", window=32),
        "deliveries_per_s",
        0.8e6,
        scale=1e-6,
        unit="M/s",
        decimals=2,
    ),
    # Issue 17's rows (its table and `ktnchat bench --compare`): its window, its line
    # counts, and a delivery is a line received by a client other than its sender.
    Row(
        "bounded, N=100, 10 x 3,000, W=20 (per server CPU-s, to others)",
        Workload(clients=100, senders=10, messages=3000, shape="bounded", window=20),
        "deliveries_to_others_per_server_cpu_s",
        None,
        scale=1e-6,
        unit="M",
        decimals=2,
    ),
    Row(
        "bounded, N=1000, 10 x 300, W=2 (per server CPU-s, to others)",
        Workload(clients=1000, senders=10, messages=300, shape="bounded", window=2),
        "deliveries_to_others_per_server_cpu_s",
        None,
        scale=1e-6,
        unit="M",
        decimals=2,
    ),
    Row(
        "paced 100 msg/s, N=1000 (p99 latency)",
        Workload(clients=1000, senders=10, messages=50, shape="paced", rate=100.0),
        "latency_p99_ms",
        40.0,
        at_least=False,
        unit="ms",
        decimals=1,
    ),
    Row(
        "resident memory per idle connection, N=1000",
        Workload(clients=1000, shape="idle"),
        "rss_per_connection_kib",
        None,
        at_least=False,
        unit="KiB",
        decimals=2,
    ),
    Row(
        "resident memory per idle connection, N=5000",
        Workload(clients=5000, shape="idle"),
        "rss_per_connection_kib",
        8.0,
        at_least=False,
        unit="KiB",
        decimals=2,
    ),
    Row(
        "connect + login rate (N=5000, 200 in flight)",
        Workload(clients=5000, shape="idle"),
        "connect_login_per_s",
        5000.0,
        unit="/s",
    ),
)


def run_suite(
    options: Options, runs: int, quick: float = 1.0, transport: str = "tcp"
) -> Dict[str, Any]:
    """Every row, `runs` runs each; rows with the same workload share their runs."""
    reports: Dict[Workload, Dict[str, Any]] = {}
    rows = []
    for row in SUITE:
        workload = replace(row.workload, transport=transport)
        if quick != 1.0 and workload.shape != "idle":
            workload = replace(workload, messages=max(1, int(workload.messages * quick)))
        if workload not in reports:
            print(f"suite: {workload.describe()} x {runs} ...", file=sys.stderr, flush=True)
            reports[workload] = run_workload(workload, options, runs)
        report = reports[workload]
        stats = report["summary"].get(row.metric)
        met: Optional[bool] = None
        if stats is not None and row.target is not None:
            value = stats["median"]
            met = value >= row.target if row.at_least else value <= row.target
        rows.append(
            {
                "name": row.name,
                "workload": report["description"],
                "metric": row.metric,
                "target": row.target,
                "at_least": row.at_least,
                "median": None if stats is None else stats["median"],
                "min": None if stats is None else stats["min"],
                "max": None if stats is None else stats["max"],
                "met": met,
                "generator_cpu_pct": report["summary"].get("generator_cpu_pct", {}).get("median"),
                "server_cpu_pct": report["summary"].get("server_cpu_pct", {}).get("median"),
                "other_cpu_pct": report["summary"].get("other_cpu_pct", {}).get("max"),
                "per_server_cpu_s": report["summary"]
                .get("deliveries_per_server_cpu_s", {})
                .get("median"),
                "errors": report["errors"],
                "warnings": report["warnings"],
            }
        )
    return {
        "environment": environment(options),
        "runs_per_row": runs,
        "rows": rows,
        "reports": list(reports.values()),
    }


def suite_markdown(suite: Dict[str, Any]) -> str:
    """The suite as Markdown; CPU columns are medians in % of one core (send phase), "other
    load" the most CPU other processes on the machine used during a run."""
    env = suite["environment"]
    lines = [
        f"{suite['runs_per_row']} runs per row, medians (min{DASH}max); {env['event_loop']}; "
        f"server on CPU {env['server_core']}, generator on CPU {env['generator_core']}; "
        f"io-threads {env['io_threads']}; Python {env['python']}.",
        "",
        f"| workload | figure | target | median (min{DASH}max) | met "
        "| server CPU | generator CPU | other load (max) | deliveries per server CPU-s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    by_name = {row.name: row for row in SUITE}
    for entry in suite["rows"]:
        row = by_name[entry["name"]]
        if entry["median"] is None:
            figure = "failed"
        else:
            figure = format_figure(entry, row.scale, row.unit, row.decimals)
        target = "—"
        if row.target is not None:
            sign = "≥" if row.at_least else "≤"
            target = f"{sign} {row.target * row.scale:,.{row.decimals}f} {row.unit}"
        met = {True: "yes", False: "**no**", None: "—"}[entry["met"]]
        if entry["errors"]:
            met += " (errors: " + "; ".join(entry["errors"][:3]) + ")"

        per_cpu = "—"
        if entry["per_server_cpu_s"] is not None:
            per_cpu = f"{entry['per_server_cpu_s'] / 1e6:.2f} M"

        def pct(value: Optional[float]) -> str:
            return "—" if value is None else f"{value:.0f}%"

        lines.append(
            f"| {entry['name']} | {entry['workload']} | {target} | {figure} | {met} | "
            f"{pct(entry['server_cpu_pct'])} | {pct(entry['generator_cpu_pct'])} | "
            f"{pct(entry['other_cpu_pct'])} | {per_cpu} |"
        )
    return "\n".join(lines) + "\n"


# -- command line --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    defaults = Workload()
    parser = argparse.ArgumentParser(
        prog="ktnchat bench",
        description="Fan-out benchmark: start a ktnchat server, connect N clients to one "
        "room, have S senders send M messages each, and report deliveries/s, latency, "
        "connect rate, server CPU and memory. Loopback only.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--clients", type=int, default=defaults.clients, help="N receivers")
    parser.add_argument("--senders", type=int, default=defaults.senders, help="S senders")
    parser.add_argument(
        "--messages", type=int, default=defaults.messages, help="M messages per sender"
    )
    parser.add_argument("--shape", choices=SHAPES, default=defaults.shape)
    parser.add_argument(
        "--window", type=int, default=defaults.window, help="bounded: unseen messages/sender"
    )
    parser.add_argument("--rate", type=float, default=defaults.rate, help="paced: msg/s total")
    parser.add_argument("--size", type=int, default=defaults.size, help="bytes of text")
    parser.add_argument(
        "--concurrency", type=int, default=defaults.concurrency, help="logins in flight"
    )
    parser.add_argument(
        "--probes", type=int, default=defaults.probes, help="receivers measuring latency"
    )
    parser.add_argument(
        "--transport",
        choices=TRANSPORTS,
        default=defaults.transport,
        help="how clients connect: raw TCP, or WebSocket to the server's --web-port (/ws)",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs (each on a fresh server)")
    parser.add_argument("--io-threads", type=int, default=1, help="the server's I/O threads")
    parser.add_argument(
        "--server-args",
        default="",
        help='more ktnchat server options, e.g. "--workers 2 --bus redis://127.0.0.1:6379/0 '
        '--storage sqlite:///bench.db" (server CPU then counts the supervisor only)',
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin to cores")
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per run")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=0.0,
        help="before each run, wait up to this many seconds for other load on the machine "
        "to drop (a shared machine disturbs the figures)",
    )
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON ('-': stdout)")
    parser.add_argument("--suite", action="store_true", help="run every row of the targets")
    parser.add_argument(
        "--markdown", metavar="PATH", help="--suite: also write the Markdown table here"
    )
    parser.add_argument(
        "--quick",
        type=float,
        default=1.0,
        help="--suite: scale every row's message count (e.g. 0.1 for a dry run)",
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="issue 17: the rows against ktnchat, InspIRCd, ngIRCd and a C relay; every "
        "other option is then ktnchat/bench_compare.py's (ktnchat bench --compare --help)",
    )
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    rest = list(sys.argv[1:] if argv is None else argv)
    if "--compare" in rest:  # issue 17: a sitting of its own, with its own options
        from ktnchat.bench_compare import main as compare_main

        return compare_main([arg for arg in rest if arg != "--compare"])
    args = build_parser().parse_args(argv)
    options = Options(
        io_threads=args.io_threads,
        server_args=args.server_args,
        pin=not args.no_pin,
        time_limit=args.time_limit,
        quiet_wait=max(0.0, args.quiet_wait),
    )
    runs = max(1, args.runs)
    if args.suite:
        report = run_suite(options, runs, args.quick, args.transport)
        text = suite_markdown(report)
        print(text, end="")
        save_report(report, None, text, args.markdown)
        errors = any(row["errors"] for row in report["rows"])
    else:
        workload = Workload(
            clients=args.clients,
            senders=args.senders,
            messages=args.messages,
            shape=args.shape,
            window=max(1, args.window),
            rate=args.rate,
            size=args.size,
            concurrency=args.concurrency,
            probes=args.probes,
            transport=args.transport,
        )
        try:
            report = run_workload(workload, options, runs)
        except BenchError as exc:
            print(f"ktnchat bench: {exc}", file=sys.stderr)
            return 2
        print(table(report))
        errors = bool(report["errors"])
    save_report(report, args.json)
    return 1 if errors else 0


def save_report(
    report: Dict[str, Any],
    json_path: Optional[str],
    text: str = "",
    markdown_path: Optional[str] = None,
) -> None:
    """Write the tables (`text`) and the whole report as JSON where the options asked
    (a JSON path of "-": standard output). Shared by every benchmark's main()."""
    if markdown_path:
        with open(markdown_path, "w", encoding="utf-8") as handle:
            handle.write(text)
    if json_path:
        data = json.dumps(report, indent=2, default=str) + "\n"
        if json_path == "-":
            sys.stdout.write(data)
        else:
            with open(json_path, "w", encoding="utf-8") as handle:
                handle.write(data)


if __name__ == "__main__":
    raise SystemExit(main())
