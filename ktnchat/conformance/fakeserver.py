# A scripted fake KTN server for checking clients: one listening socket on a loopback port,
# one accepted client, every frame it sends recorded raw, responses sent as told.
#
# Rules:
# - Every wait has a deadline; a client that sends garbage or floods cannot hang or crash
#   it (frames are capped; past MAX_BYTES reading stops).
# - Sends are paced (`gap` seconds apart) so that "one object per segment" really is one
#   object per TCP segment for naive clients; framing experiments are explicit
#   (send_segments). By default each object ends in a newline, as ktnchat's server sends
#   it, so a client that reads lines can be checked at all; `bare` (no newline, as the
#   seed's skeleton servers send) has a check of its own.
# - close() stops the reader thread and closes both sockets; it is safe to call twice.
from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence

from ktnchat.protocol.errors import FrameTooLarge
from ktnchat.protocol.framing import FrameSplitter

MAX_BYTES = 4 * 1024 * 1024
MAX_FRAME = 1024 * 1024


@dataclass(frozen=True)
class Frame:
    """One JSON value the client sent: raw bytes, and the value (None if unparsable)."""

    raw: bytes
    value: Any
    parsed: bool


class FakeServer:
    """Listens on `host` port 0; `wait_connection()` accepts the client under test."""

    def __init__(self, host: str = "127.0.0.1", gap: float = 0.2) -> None:
        self.gap = gap
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, 0))
        self.listener.listen(4)
        self.host, self.port = self.listener.getsockname()[:2]
        self.conn: Optional[socket.socket] = None
        self.frames: List[Frame] = []
        self.eof: Optional[str] = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._reader: Optional[threading.Thread] = None
        self._last_send = 0.0

    def wait_connection(self, timeout: float) -> bool:
        """Accept the client (waiting at most `timeout`); True when connected."""
        if self.conn is not None:
            return True
        self.listener.settimeout(max(0.01, timeout))
        try:
            conn, _ = self.listener.accept()
        except (socket.timeout, OSError):
            return False
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn = conn
        self._reader = threading.Thread(target=self._read, name="fakeserver-reader", daemon=True)
        self._reader.start()
        return True

    def _read(self) -> None:
        assert self.conn is not None
        splitter = FrameSplitter(MAX_FRAME, 64)
        total = 0
        self.conn.settimeout(0.2)
        while not self._stop.is_set():
            try:
                data = self.conn.recv(65536)
            except socket.timeout:
                continue
            except OSError as exc:
                self._ended(f"connection error: {exc}")
                return
            if not data:
                self._ended("the client closed the connection")
                return
            total += len(data)
            if total > MAX_BYTES:
                self._ended(f"the client sent more than {MAX_BYTES} bytes; stopped reading")
                return
            splitter.feed(data)
            try:
                while True:
                    frame = splitter.next_frame()
                    if frame is None:
                        break
                    with self._cond:
                        self.frames.append(_frame(frame.data))
                        self._cond.notify_all()
            except FrameTooLarge:
                self._ended(f"the client sent one value larger than {MAX_FRAME} bytes")
                return

    def _ended(self, reason: str) -> None:
        with self._cond:
            self.eof = reason
            self._cond.notify_all()

    def wait_frame(self, index: int, deadline: float) -> Optional[Frame]:
        """Frame number `index` once it has arrived (None at the deadline or end)."""
        with self._cond:
            while len(self.frames) <= index:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.eof is not None:
                    return None
                self._cond.wait(min(remaining, 0.5))
            return self.frames[index]

    def send_segments(self, segments: Sequence[bytes], gap: Optional[float] = None) -> None:
        """Send each segment with its own send(), at least `gap` seconds apart.

        Raises:
            OSError: the client is gone.
        """
        if self.conn is None:
            raise OSError("no client connected")
        for segment in segments:
            wait = self._last_send + (self.gap if gap is None else gap) - time.monotonic()
            if wait > 0:
                time.sleep(wait)  # pacing so each segment travels alone
            self.conn.sendall(segment)
            self._last_send = time.monotonic()

    def send_values(self, values: Sequence[Any], mode: str = "each") -> None:
        """Send JSON values framed as `mode`: each (one segment each, ending in a newline,
        as ktnchat's server sends them) / bare (one segment each, no newline, as servers
        built on the seed's skeleton send them) / together / split / newline."""
        encoded = [json.dumps(v).encode("utf-8") for v in values]
        if mode == "each":
            self.send_segments([e + b"\n" for e in encoded])
        elif mode == "bare":
            self.send_segments(encoded)
        elif mode == "together":
            self.send_segments([b"".join(encoded)])
        elif mode == "split":
            self.send_segments(
                [part for e in encoded for part in (e[: len(e) // 2], e[len(e) // 2 :])]
            )
        elif mode == "newline":
            self.send_segments([e + b"\n" for e in encoded])
        else:
            raise ValueError(f"unknown framing mode {mode!r}")

    def close(self) -> None:
        self._stop.set()
        for sock in (self.conn, self.listener):
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(2.0)


def _frame(data: bytes) -> Frame:
    try:
        return Frame(data, json.loads(data.decode("utf-8")), True)
    except (ValueError, RecursionError):
        return Frame(data, None, False)
