# One TCP connection to a chat server: a socket plus a receiver thread around the lenient
# decoder.
#
# Rules:
# - `send(word, content, **extra)` (a 2017 envelope plus extra keys) and `send_object(obj)`
#   (any request object, such as the 2014 edition's) write one request per `sendall`, no
#   delimiter; they never raise (a failed send shuts the socket so the receiver reports
#   the loss).
# - Every decoded event, then exactly one ConnectionLost when the server closes or resets
#   the connection, goes to the `on_event` callback, called from the receiver thread.
# - `close()` is the clean local shutdown: half-close, wait briefly (bounded) for the
#   server's end, close, join the thread; no ConnectionLost is reported after it.
from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Union

from ktnchat.protocol.codec import encode_json, encode_request
from ktnchat.protocol.lenient import ServerEvent, ServerStreamDecoder

_RECV_BYTES = 65536
_CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class ConnectionLost:
    """The server closed or reset the connection (`reason` says which)."""

    reason: str


ClientEvent = Union[ServerEvent, ConnectionLost]
EventCallback = Callable[[ClientEvent], None]


class Connection:
    """A connected socket with its receiver thread. Create with `Connection.open`."""

    def __init__(self, sock: socket.socket, on_event: EventCallback) -> None:
        self._sock = sock
        self._on_event = on_event
        self._decoder = ServerStreamDecoder()
        self._decoder_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._closing = threading.Event()
        self._ended = threading.Event()
        self._thread = threading.Thread(target=self._receive, name="ktnchat-receiver", daemon=True)

    @classmethod
    def open(
        cls, host: str, port: int, on_event: EventCallback, timeout: float = _CONNECT_TIMEOUT
    ) -> Connection:
        """Connect and start receiving.

        Raises:
            OSError: the connection could not be made (refused, unreachable, timeout).
        """
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.settimeout(None)
        conn = cls(sock, on_event)
        conn._thread.start()
        return conn

    @property
    def alive(self) -> bool:
        """True until the connection ended or was closed."""
        return not self._ended.is_set() and not self._closing.is_set()

    def expect_names(self) -> None:
        """Call before sending `names`: the next plain info is read as a names list."""
        with self._decoder_lock:
            self._decoder.expect_names()

    def send(self, word: str, content: Any = None, **extra: Any) -> bool:
        """Send one request, extra keys after the envelope's two. Returns False if the
        connection is gone."""
        return self._write(encode_request(word, content, **extra))

    def send_object(self, request: Dict[str, Any]) -> bool:
        """Send one request object as it is. Returns False if the connection is gone."""
        return self._write(encode_json(request).encode("ascii"))

    def _write(self, data: bytes) -> bool:
        with self._send_lock:
            if not self.alive:
                return False
            try:
                self._sock.sendall(data)
            except OSError:
                self._shutdown(socket.SHUT_RDWR)
                return False
        return True

    def close(self, linger: float = 0.5) -> None:
        """Close cleanly: half-close, wait up to `linger` s for the server's end, close."""
        if self._closing.is_set():
            return
        self._closing.set()
        self._shutdown(socket.SHUT_WR)
        self._ended.wait(linger)
        self._shutdown(socket.SHUT_RDWR)
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(2.0)
        try:
            self._sock.close()
        except OSError:
            pass

    def wait_ended(self, timeout: float) -> bool:
        """Wait (bounded) until the receiver has seen the end of the stream."""
        return self._ended.wait(timeout)

    def _shutdown(self, how: int) -> None:
        try:
            self._sock.shutdown(how)
        except OSError:
            pass

    def _receive(self) -> None:
        reason: Optional[str] = None
        try:
            while True:  # ends at EOF, on a socket error or on close()
                try:
                    data = self._sock.recv(_RECV_BYTES)
                except OSError as exc:
                    reason = f"connection error: {exc.strerror or exc}"
                    break
                if not data:
                    reason = "the server closed the connection"
                    break
                with self._decoder_lock:
                    events = self._decoder.feed(data)
                for event in events:
                    self._on_event(event)
            with self._decoder_lock:
                leftovers = self._decoder.close()
            for event in leftovers:
                self._on_event(event)
        finally:
            self._ended.set()
            if not self._closing.is_set():
                self._on_event(ConnectionLost(reason or "connection ended"))
