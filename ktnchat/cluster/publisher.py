# The bus publisher: PUBLISH pipelines on one Redis connection of its own, written without
# waiting for their replies.
#
# Rules:
# - send() writes a whole pipeline and returns; it does not wait for Redis. Replies are
#   read later without blocking (before each send, and on confirm()) and confirm the
#   oldest pipeline first: Redis answers one connection's commands in order.
# - A pipeline is confirmed once Redis has answered every command in it. When the
#   connection fails (an error, end of file, an error reply, a write that cannot finish
#   within the timeout), every pipeline not yet confirmed is handed back as lost
#   (PublishFailed.lost) and the connection is dropped; the next send() connects again.
#   Whoever sent them decides what lost means (ClusterLink: the rooms are announced once
#   Redis is back, and the store still has every message).
# - Not thread-safe: the caller serialises every call (ClusterLink's send lock).
# - The socket is non-blocking once connected (redis-py does the handshake: AUTH, SELECT,
#   TLS); a write that finds the socket buffer full waits for room with poll(), bounded by
#   the timeout, so a stalled Redis costs the sender at most that long.
# - Replies to PUBLISH are one line each (":<n>" or "-<error>"), so counting lines is
#   parsing them.
from __future__ import annotations

import select
import sys
import time
from collections import deque
from typing import Any, Callable, Deque, Generic, List, Optional, Sequence, Tuple, Type, TypeVar

T = TypeVar("T")

Command = Tuple[str, str, str]  # ("PUBLISH", channel, data)


def _would_block() -> Tuple[Type[BaseException], ...]:
    """What a non-blocking socket raises for "not now": a TLS socket has two more. `ssl`
    is not imported here (it costs a server ~1 MB of memory); a TLS connection means
    redis-py imported it already."""
    ssl = sys.modules.get("ssl")
    if ssl is None:
        return (BlockingIOError,)
    return (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


_READ_SIZE = 65536


class PublishFailed(Exception):
    """The connection failed; `lost` are the tokens of every pipeline not confirmed."""

    def __init__(self, reason: str, lost: Sequence[Any]) -> None:
        super().__init__(reason)
        self.lost = list(lost)


class Publisher(Generic[T]):
    """Pipelines of PUBLISH on one connection, confirmed as Redis answers them."""

    def __init__(self, make_connection: Callable[[], Any], timeout: float) -> None:
        self._make_connection = make_connection  # -> an unconnected redis-py Connection
        self.timeout = timeout
        self._conn: Any = None
        self._sock: Any = None
        self._would_block: Tuple[Type[BaseException], ...] = (BlockingIOError,)
        self._partial = b""  # the start of a reply line not yet complete
        # (commands not yet answered, token, when sent), oldest first
        self._waiting: Deque[List[Any]] = deque()

    @property
    def unconfirmed(self) -> int:
        """Pipelines sent and not yet answered in full."""
        return len(self._waiting)

    def send(self, commands: List[Command], token: T) -> List[Tuple[T, float]]:
        """Write one pipeline; returns the pipelines confirmed meanwhile, each with the
        seconds it waited for its replies.

        Raises:
            PublishFailed: the connection failed (this pipeline's token is among the lost).
            redis.RedisError: connecting failed (nothing was sent, nothing was waiting).
        """
        try:
            confirmed = self.confirm()
            if self._sock is None:
                self._connect()
        except PublishFailed as failed:  # dead or unusable before writing: lost too
            failed.lost.append(token)
            raise
        conn = self._conn
        data = b"".join(conn.pack_commands(commands))
        self._waiting.append([len(commands), token, time.monotonic()])
        try:
            self._write(data)
        except OSError as exc:
            raise self._failed(f"writing to Redis failed: {exc}") from exc
        return confirmed

    def confirm(self) -> List[Tuple[T, float]]:
        """Read what Redis has answered so far (never waits).

        Raises:
            PublishFailed: the connection failed.
        """
        sock = self._sock
        if sock is None:
            return []
        chunks = []
        try:
            while True:
                chunk = sock.recv(_READ_SIZE)
                if not chunk:
                    raise self._failed("Redis closed the connection")
                chunks.append(chunk)
                if len(chunk) < _READ_SIZE:
                    break
        except self._would_block:
            pass
        except OSError as exc:
            raise self._failed(f"reading from Redis failed: {exc}") from exc
        if not chunks:
            return []
        lines = (self._partial + b"".join(chunks)).split(b"\r\n")
        self._partial = lines.pop()
        error = next((line for line in lines if line[:1] == b"-"), None)
        if error is not None:
            text = error[1:200].decode("utf-8", "replace")
            raise self._failed(f"Redis refused a PUBLISH: {text}")
        return self._answered(len(lines))

    def close(self) -> List[T]:
        """Drop the connection; returns the tokens of pipelines never confirmed."""
        lost = [entry[1] for entry in self._waiting]
        self._waiting.clear()
        self._partial = b""
        conn, self._conn, self._sock = self._conn, None, None
        if conn is not None:
            try:
                conn.disconnect()
            except Exception:
                pass
        return lost

    # -- inside ---------------------------------------------------------------------------

    def _connect(self) -> None:
        conn = self._make_connection()
        conn.connect()  # redis-py's handshake (AUTH, SELECT, TLS); RedisError on failure
        sock = getattr(conn, "_sock", None)
        if sock is None:
            conn.disconnect()
            raise PublishFailed("the Redis connection has no socket", [])
        sock.setblocking(False)
        self._conn, self._sock = conn, sock
        self._would_block = _would_block()

    def _write(self, data: bytes) -> None:
        sock = self._sock
        view = memoryview(data)
        deadline: Optional[float] = None
        while view:
            try:
                sent = sock.send(view)
            except self._would_block:
                sent = 0
            if sent:
                view = view[sent:]
                continue
            now = time.monotonic()
            if deadline is None:
                deadline = now + self.timeout
            if now >= deadline:
                raise OSError(f"Redis did not take a pipeline within {self.timeout} s")
            poller = select.poll()
            poller.register(sock.fileno(), select.POLLOUT)
            poller.poll(max(1, int((deadline - now) * 1000)))

    def _answered(self, replies: int) -> List[Tuple[T, float]]:
        confirmed: List[Tuple[T, float]] = []
        waiting = self._waiting
        now = time.monotonic()
        while replies and waiting:
            head = waiting[0]
            used = min(replies, head[0])
            head[0] -= used
            replies -= used
            if head[0] == 0:
                waiting.popleft()
                confirmed.append((head[1], now - head[2]))
        return confirmed

    def _failed(self, reason: str) -> PublishFailed:
        return PublishFailed(reason, self.close())


__all__ = ["Command", "PublishFailed", "Publisher"]
