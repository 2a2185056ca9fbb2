# The harness of the client tests: the real client as a subprocess (plain mode, stdin and
# stdout piped) and a scripted fake server that answers each request word as told and
# records the raw request frames. Real sockets on 127.0.0.1 port 0, real threads; every
# wait is on a condition with a bounded timeout; stop()/kill() end every thread and process.
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Union

from ktnchat.protocol.framing import FrameSplitter

REPO = Path(__file__).resolve().parents[2]
WAIT = 10.0  # seconds: the most any single expectation waits
SERVE_SECONDS = 60.0  # a fake server stops serving after this, whatever happens


def short(value: object) -> str:
    text = repr(value)
    return text if len(text) < 400 else text[:200] + " ... " + text[-100:]


def wait_on(
    cond: threading.Condition, predicate: Callable[[], bool], what: Union[str, Callable[[], str]]
) -> None:
    with cond:
        if not cond.wait_for(predicate, timeout=WAIT):
            raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")


def accepted(
    listener: socket.socket, stop: threading.Event, deadline: float
) -> Iterator[socket.socket]:
    """The test servers' accept loop: connections as they come (the listener times out
    every 50 ms), until `stop` is set or the deadline passes; each with a 50 ms timeout
    and TCP_NODELAY."""
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            conn, _ = listener.accept()
        except socket.timeout:
            continue
        conn.settimeout(0.05)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        yield conn


def frames_received(
    conn: socket.socket,
    stop: threading.Event,
    deadline: float,
    on_eof: Optional[Callable[[], None]] = None,
) -> Iterator[bytes]:
    """The test servers' read loop: each whole JSON object (raw bytes) `conn` sends, until
    `stop`, the deadline, an error or the client's close (`on_eof` is then called)."""
    splitter = FrameSplitter()
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            data = conn.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            return
        if not data:
            if on_eof is not None:
                on_eof()
            return
        splitter.feed(data)
        for _ in range(len(data)):  # at most one frame per byte received
            frame = splitter.next_frame()
            if frame is None:
                break
            yield frame.data


class Close:
    """Fake-server action: close the connection."""


class Chunks:
    """Fake-server action: send these byte strings as separate segments (TCP_NODELAY,
    20 ms apart: pacing only, nothing relies on it)."""

    def __init__(self, *parts: bytes) -> None:
        self.parts = parts


Action = Union[bytes, Chunks, Close]
Script = Dict[str, Sequence[Action]]


class FakeServer:
    """Accepts connections one after another; answers each request word per `script`;
    records every request frame as raw bytes and counts the closes the client made."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.frames: List[bytes] = []  # raw request frames, all connections
        self.connections = 0
        self.closed_by_client = 0
        self.cond = threading.Condition()
        self._stop = threading.Event()
        self._conn: Optional[socket.socket] = None
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def requests(self) -> List[Dict[str, Any]]:
        with self.cond:
            return [json.loads(frame) for frame in self.frames]

    def wait_for(self, predicate: Callable[[], bool], what: str) -> None:
        wait_on(self.cond, predicate, lambda: f"{what}; frames {self.frames!r}")

    def wait_frames(self, count: int) -> List[bytes]:
        wait_on(
            self.cond,
            lambda: len(self.frames) >= count,
            lambda: f"{count} requests in {self.frames!r}",
        )
        with self.cond:
            return list(self.frames)

    def push(self, data: bytes) -> None:
        """Send unsolicited bytes to the connected client."""
        self.wait_for(lambda: self._conn is not None, "a connection")
        assert self._conn is not None
        self._conn.sendall(data)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(WAIT)
        self._listener.close()
        assert not self._thread.is_alive()

    def _run(self) -> None:
        deadline = time.monotonic() + SERVE_SECONDS
        for conn in accepted(self._listener, self._stop, deadline):
            with conn:
                with self.cond:
                    self.connections += 1
                    self._conn = conn
                    self.cond.notify_all()
                self._serve(conn, deadline)
                with self.cond:
                    self._conn = None

    def _closed_by_client(self) -> None:
        with self.cond:
            self.closed_by_client += 1
            self.cond.notify_all()

    def _serve(self, conn: socket.socket, deadline: float) -> None:
        for frame in frames_received(conn, self._stop, deadline, self._closed_by_client):
            with self.cond:
                self.frames.append(frame)
                self.cond.notify_all()
            for action in self.script.get(json.loads(frame).get("request"), ()):
                if isinstance(action, Close):
                    conn.close()
                    return
                parts = action.parts if isinstance(action, Chunks) else (action,)
                for part in parts:
                    conn.sendall(part)
                    if isinstance(action, Chunks):
                        self._stop.wait(0.02)


class ClientProcess:
    """`python -m ktnchat.client --plain [ARGS] 127.0.0.1 PORT` with piped stdin/stdout.

    `exact_output`: wait_exit() also fails if anything was printed beyond the lines that
    expect() consumed (the tests that check every printed line)."""

    def __init__(self, port: int, *args: str, exact_output: bool = False) -> None:
        env = dict(os.environ, TZ="UTC", PYTHONPATH=str(REPO), PYTHONIOENCODING="utf-8")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ktnchat.client", "--plain", *args, "127.0.0.1", str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=str(REPO),
            env=env,
        )
        self.exact_output = exact_output
        self.lines: List[str] = []
        self.cursor = 0  # lines before this were consumed by expect()
        self.raw = bytearray()
        self.stderr = bytearray()
        self.cond = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            with self.cond:
                self.raw += raw
                self.lines.append(raw.decode("utf-8").rstrip("\n"))
                self.cond.notify_all()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        data = self.proc.stderr.read()
        with self.cond:
            self.stderr += data

    # -- input --------------------------------------------------------------------------

    def type(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode("utf-8") + b"\n")
        self.proc.stdin.flush()

    def end_input(self) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    # -- output -------------------------------------------------------------------------

    def wait_line(self, line: str) -> None:
        """Wait until `line` has been printed (anywhere in the output)."""
        wait_on(self.cond, lambda: line in self.lines, lambda: f"line {line!r} in {self.lines!r}")

    def wait_lines(self, lines: Sequence[str]) -> None:
        """Wait until `lines` appear in this order (other lines may come between)."""

        def present() -> bool:
            pos = 0
            for got in self.lines:
                if pos < len(lines) and got == lines[pos]:
                    pos += 1
            return pos == len(lines)

        wait_on(self.cond, present, lambda: f"lines {list(lines)!r} in {self.lines!r}")

    def wait_match(self, pattern: str) -> str:
        """Wait until a printed line matches the regular expression `pattern` (whole line);
        the first such line."""
        regex = re.compile(pattern)

        def found() -> bool:
            return any(regex.fullmatch(line) for line in self.lines)

        wait_on(self.cond, found, lambda: f"a line matching {pattern!r} in {self.lines!r}")
        with self.cond:
            return next(line for line in self.lines if regex.fullmatch(line))

    def expect(self, *expected: str) -> None:
        """The next printed lines are exactly `expected` (bounded wait for each)."""
        for line in expected:
            with self.cond:
                if not self.cond.wait_for(lambda: len(self.lines) > self.cursor, WAIT):
                    raise AssertionError(
                        f"no line printed within {WAIT}s; expected {short(line)}; "
                        f"printed so far: {short(self.lines)}"
                    )
                got = self.lines[self.cursor]
                self.cursor += 1
            assert got == line, f"printed {short(got)}, expected {short(line)}"

    def run(self, line: str, *expected: str) -> None:
        """Type `line`; the next printed lines are exactly `expected`."""
        self.type(line)
        self.expect(*expected)

    # -- the end ------------------------------------------------------------------------

    def finish(self) -> int:
        """End the input and wait for the exit."""
        self.end_input()
        return self.wait_exit()

    def wait_exit(self) -> int:
        code = self.proc.wait(WAIT)
        for reader in self._readers:
            reader.join(WAIT)
        assert b"Traceback" not in self.stderr, self.stderr.decode()
        if self.exact_output:
            assert self.lines[self.cursor :] == [], f"unexpected output: {short(self.lines)}"
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(WAIT)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
