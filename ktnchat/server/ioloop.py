# An I/O thread: one selector loop over its share of the connections.
#
# Rules:
# - Each loop owns its connections; every touch of a connection happens on its thread.
#   Other threads hand work over with post(fn), which wakes the loop through a socketpair.
# - One pass: wait (until the next timer), read what is readable (handling each request
#   at once), run posted work, then flush each connection with new output once, so
#   broadcasts that arrive in the same pass leave in one write (coalescing). Room
#   broadcasts wait in `fanout` (ktnchat/server/fanout.py) until then, grouped, so a
#   reader gets a pass's messages to its room in one append.
# - Closing is never recursive: close_later() defers a close to the end of the pass.
# - Housekeeping (timeouts, lingering closes) runs once a second, O(connections).
# - A loop sees its server only through LoopHost (below), which ChatServer satisfies:
#   imports go one way, server -> ioloop -> connection.
# - With metrics on, the loop's thread owns `counts` (ktnchat/metrics.py): plain integers
#   its connections and its passes add to, read by a scrape. None with metrics off.
from __future__ import annotations

import heapq
import itertools
import logging
import selectors
import socket
import threading
import time
from typing import Callable, Dict, List, Optional, Protocol, Set, Tuple

from ktnchat.logs import log_fields
from ktnchat.metrics import Counters, Registry
from ktnchat.server.connection import READ, Connection, ServerRole
from ktnchat.server.fanout import Broadcaster, PendingFanout

log = logging.getLogger("ktnchat.server")

HOUSEKEEPING_SECONDS = 1.0
# (sock, peer, loop, server, now, host) -> a connection: TCP, or the web listener's.
ConnectionFactory = Callable[[socket.socket, str, "IOLoop", "LoopHost", float, str], Connection]


class LoopHost(ServerRole, Protocol):
    """What a loop uses of the server, besides what its connections use."""

    metrics: Optional[Registry]

    broadcaster: Broadcaster

    def connection_closed(self, conn: Connection, reason: str) -> None: ...

    def loop_crashed(self, loop: IOLoop) -> None: ...


class IOLoop:
    """A thread running a selector over the connections it owns."""

    def __init__(self, server: LoopHost, index: int) -> None:
        self.server = server
        self.index = index
        self.selector = selectors.DefaultSelector()
        self.connections: Set[Connection] = set()
        self.dirty: Set[Connection] = set()
        self.fanout = PendingFanout(self, server.broadcaster)
        self._to_close: Dict[Connection, str] = {}
        self._timers: List[Tuple[float, int, Connection]] = []
        self._timer_seq = itertools.count()
        self._posted: List[Callable[[], None]] = []
        self._posted_lock = threading.Lock()
        self._wake_pending = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.selector.register(self._wake_r, READ, None)
        self._stopping = False
        self._next_housekeeping = 0.0
        self.thread = threading.Thread(target=self._run, name=f"ktnchat-io-{index}", daemon=True)
        self.thread_id: Optional[int] = None
        self.counts: Optional[Counters] = None  # this thread's, set when it starts
        # Unwritten output of this loop's connections, found by housekeeping (each second):
        # the total and the most one connection has (the slowest reader), in bytes.
        self.backlog_bytes = 0
        self.backlog_most = 0

    # -- thread-safe entry points ---------------------------------------------------------

    def start(self) -> None:
        self.thread.start()

    def post(self, work: Callable[[], None]) -> None:
        """Run `work` on this loop's thread soon (safe from any thread)."""
        with self._posted_lock:
            self._posted.append(work)
            wake = not self._wake_pending
            self._wake_pending = True
        if wake:
            try:
                self._wake_w.send(b"\0")
            except (BlockingIOError, OSError):
                pass  # a wake-up is already pending, or the loop is gone

    def stop(self) -> None:
        def request_stop() -> None:
            self._stopping = True

        self.post(request_stop)

    # -- loop-thread API -------------------------------------------------------------------

    def adopt(
        self,
        sock: socket.socket,
        peer: str,
        host: str = "",
        make: Optional[ConnectionFactory] = None,
    ) -> None:
        """Take ownership of an accepted socket (loop thread only); `make` builds the
        connection (a plain TCP Connection by default)."""
        now = time.monotonic()
        conn = (make or Connection)(sock, peer, self, self.server, now, host)
        self.connections.add(conn)
        try:
            self.selector.register(sock, READ, conn)
        except (OSError, ValueError) as exc:
            log.info("%s: could not register: %s", peer, exc)
            self.close(conn, "registration failed")
            return
        log.debug(
            "%s: connected (loop %d, %d connections)",
            peer,
            self.index,
            len(self.connections),
            extra=log_fields("connect", conn=conn.session.id, peer=peer),
        )

    def set_interest(self, conn: Connection, old: int, new: int) -> None:
        """Change what the selector watches for `conn` (0: nothing, while paused)."""
        if not old:
            self.selector.register(conn.sock, new, conn)
        elif not new:
            self.selector.unregister(conn.sock)
        else:
            self.selector.modify(conn.sock, new, conn)

    def wake_at(self, when: float, conn: Connection) -> None:
        heapq.heappush(self._timers, (when, next(self._timer_seq), conn))

    def close_later(self, conn: Connection, reason: str) -> None:
        self._to_close.setdefault(conn, reason)

    def close(self, conn: Connection, reason: str) -> None:
        """Close now: unregister, close the socket, log the user out, tell the room."""
        if conn.closed:
            return
        conn.closed = True
        self.connections.discard(conn)
        self.dirty.discard(conn)
        if conn.mask:
            try:
                self.selector.unregister(conn.sock)
            except (KeyError, ValueError, OSError):
                pass
        try:
            conn.sock.close()
        except OSError:
            pass
        counts = self.counts
        if counts is not None and conn.edition_label:
            counts.count_connection(conn.edition_label, conn.transport, opened=False)
        log.debug(
            "%s: disconnected: %s",
            conn.peer,
            reason,
            extra=log_fields(
                "disconnect", conn=conn.session.id, user=conn.session.username, peer=conn.peer
            ),
        )
        self.server.connection_closed(conn, reason)

    # -- the loop --------------------------------------------------------------------------

    def _run(self) -> None:
        self.thread_id = threading.get_ident()
        metrics = self.server.metrics
        if metrics is not None:
            self.counts = metrics.counters()
        try:
            while not self._stopping:
                self._pass()
        except Exception:  # a bug: log it loudly, then let the server notice
            log.exception("I/O loop %d crashed", self.index)
            self.server.loop_crashed(self)
        finally:
            self._close_all()

    def _pass(self) -> None:
        now = time.monotonic()
        timeout = HOUSEKEEPING_SECONDS
        if self._timers:
            timeout = min(timeout, max(0.0, self._timers[0][0] - now))
        if self.dirty or self._to_close or self.fanout.groups:
            timeout = 0.0
        events = self.selector.select(timeout)
        now = time.monotonic()
        for key, mask in events:
            conn = key.data
            if conn is None:
                self._drain_wake()
                continue
            if isinstance(conn, Connection):
                if mask & READ and not conn.closed:
                    conn.on_readable(now)
                if mask & ~READ and not conn.closed:
                    self.dirty.add(conn)
            else:
                conn(now)  # the listener's accept callback
        self._run_posted()
        timers = self._timers
        while timers and timers[0][0] <= now:
            _, _, conn = heapq.heappop(timers)
            if not conn.closed:
                self.dirty.add(conn)
        self._flush(now)
        if now >= self._next_housekeeping:
            self._next_housekeeping = now + HOUSEKEEPING_SECONDS
            self._housekeeping(now)
        counts = self.counts
        if counts is not None:
            counts.loop_pass.observe(time.monotonic() - now)

    def _flush(self, now: float) -> None:
        for _ in range(100):  # a close can add output elsewhere; settle, bounded
            self.fanout.settle()
            if self._to_close:
                doomed, self._to_close = self._to_close, {}
                for conn, reason in doomed.items():
                    self.close(conn, reason)
            if not self.dirty and not self.fanout.groups:
                return
            batch, self.dirty = self.dirty, set()
            for conn in batch:
                conn.flush(now)

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _run_posted(self) -> None:
        with self._posted_lock:
            work, self._posted = self._posted, []
            self._wake_pending = False
        for item in work:
            item()

    def _housekeeping(self, now: float) -> None:
        config = self.server.config
        total = most = 0
        for conn in list(self.connections):
            queued = conn.outbox.queued_bytes
            total += queued
            if queued > most:
                most = queued
            if conn.closing_since is not None:
                if now - conn.closing_since > config.close_linger:
                    self.close(conn, "closed after error (reply not read)")
            elif (
                config.login_timeout
                and not conn.session.logged_in
                and now - conn.opened_at > config.login_timeout
            ):
                conn.send(
                    self.server.encode_reply(
                        conn,
                        self.server.service.error(
                            f"No login within {config.login_timeout:g} seconds; closing"
                        ),
                    )
                )
                conn.close_after_flush(now, "login timeout")
            elif (
                config.frame_timeout
                and conn.partial_since is not None
                and now - conn.partial_since > config.frame_timeout
            ):
                conn.send(
                    self.server.encode_reply(
                        conn,
                        self.server.service.error(
                            f"Request incomplete for {config.frame_timeout:g} seconds; closing"
                        ),
                    )
                )
                conn.close_after_flush(now, "request incomplete too long")
            elif config.idle_timeout and now - conn.last_request > config.idle_timeout:
                conn.send(
                    self.server.encode_reply(
                        conn,
                        self.server.service.error(
                            f"Idle for {config.idle_timeout:g} seconds; closing"
                        ),
                    )
                )
                conn.close_after_flush(now, "idle timeout")
        self.backlog_bytes, self.backlog_most = total, most

    def _close_all(self) -> None:
        """On stop: tell every client, flush what the kernel takes at once, close."""
        notice = self.server.service.shutdown_notice()
        now = time.monotonic()
        self.fanout.settle()
        for conn in list(self.connections):
            conn.outbox.stream()
            conn.send(self.server.encode_reply(conn, notice))
            conn.farewell()
            conn.flush(now)
            self.close(conn, "server shutting down")
        self._run_posted()
        self.selector.close()
        self._wake_r.close()
        self._wake_w.close()
