# One client connection, owned by exactly one IOLoop thread.
#
# Rules:
# - Only the owning loop calls these methods; other threads reach a connection through
#   IOLoop.post(). So a connection's socket, decoder and outbox have a single writer.
# - Reading decodes requests and hands each to the service at once; answers go through
#   ChatServer.deliver. A request for a blocking store goes to the storage worker and the
#   connection is `busy` until its Outcome is back: later requests wait in the decoder, so
#   answers keep request order. The socket is still read while busy (an EOF or reset must
#   free the name at once), up to WAITING_REQUESTS decoded requests or `read_pause_bytes`
#   of undecoded bytes. While its own unsent output exceeds `read_pause_bytes`, a
#   connection is not read either (back-pressure).
# - Before queuing anything, a connection has its loop settle the room broadcasts it
#   holds for the pass (`fanout`), so every output keeps the order deliver() made.
# - Any socket error or EOF closes the connection and logs the user out at once.
# - Imports go one way (server -> ioloop -> connection): a connection sees its loop and
#   its server only through the two small Protocols below, which IOLoop and ChatServer
#   satisfy.
# - Counting (metrics on) goes to the loop's `counts`: a chat connection is counted by
#   edition and transport at its first request (`edition_label`), bytes once per flush,
#   and the rare events (an outbox drop, a paced client streaming) where they happen.
from __future__ import annotations

import logging
import selectors
import socket
from typing import Callable, List, Optional, Protocol, Sequence, Set

from ktnchat.logs import log_fields
from ktnchat.metrics import Counters
from ktnchat.protocol import Rejected, Request, RequestDecoder, Response
from ktnchat.protocol.edition2014 import Edition2014Writer
from ktnchat.server.config import ServerConfig
from ktnchat.server.outbox import Outbox
from ktnchat.service import ChatService, Outcome

log = logging.getLogger("ktnchat.server")

RECV_BYTES = 65536
WAITING_REQUESTS = 64  # decoded requests a busy connection may hold before reading stops
WORKER_BATCH = 64  # most requests of one connection handled in one storage-worker job
READ = selectors.EVENT_READ
WRITE = selectors.EVENT_WRITE


class HeldBroadcasts(Protocol):
    """The loop's room broadcasts held for this pass (ktnchat/server/fanout.py)."""

    @property
    def groups(self) -> Sequence[object]: ...

    def settle(self) -> None: ...


class LoopRole(Protocol):
    """What a connection uses of the I/O loop that owns it."""

    dirty: Set[Connection]

    @property
    def fanout(self) -> HeldBroadcasts: ...
    thread_id: Optional[int]
    counts: Optional[Counters]

    def post(self, work: Callable[[], None]) -> None: ...

    def close(self, conn: Connection, reason: str) -> None: ...

    def close_later(self, conn: Connection, reason: str) -> None: ...

    def wake_at(self, when: float, conn: Connection) -> None: ...

    def set_interest(self, conn: Connection, old: int, new: int) -> None: ...


class ServerRole(Protocol):
    """What a connection uses of the server: its settings, its service, delivery."""

    config: ServerConfig
    service: ChatService

    def encode_reply(self, conn: Connection, response: Response) -> List[bytes]: ...

    def offload(self, conn: Connection, requests: List[Request]) -> None: ...

    def deliver(self, origin: Optional[Connection], outcome: Outcome) -> None: ...


class Connection:
    __slots__ = (
        "busy",
        "closed",
        "closing_since",
        "decoder",
        "edition2014",
        "edition_label",
        "framing",
        "last_request",
        "loop",
        "mask",
        "opened_at",
        "outbox",
        "partial_since",
        "peer",
        "plain",
        "server",
        "session",
        "sock",
        "transport",
        "wants_history",
    )

    def __init__(
        self,
        sock: socket.socket,
        peer: str,
        loop: LoopRole,
        server: ServerRole,
        now: float,
        host: str = "",
    ) -> None:
        config = server.config
        self.sock = sock
        self.peer = peer
        self.loop = loop
        self.server = server
        self.decoder = RequestDecoder(config.max_frame_bytes, config.max_depth)
        self.outbox = Outbox(config.pace_interval, config.pace_backlog)
        self.session = server.service.open_session(peer, self, host=host)
        self.mask = READ
        self.busy = False  # a request of ours is on the storage worker
        self.edition2014: Optional[Edition2014Writer] = None  # set if it speaks 2014
        self.edition_label = ""  # "2017" or "2014" once counted, at its first request
        # True while the bytes on the wire are our 2017 objects as encoded: the fan-out
        # hot path appends them to the outbox as they are. False for 2014-edition clients
        # and for WebSocket connections, whose objects are framed by `framing`.
        self.plain = True
        self.framing: Optional[Callable[[bytes], bytes]] = None
        self.transport = "tcp"
        # True once the client said `stream on` (as a request or a "stream" key): it has
        # shown it parses a stream, and gets earlier messages as `history` responses.
        self.wants_history = False
        self.closed = False
        self.closing_since: Optional[float] = None  # set when closing after a final reply
        self.opened_at = now
        self.last_request = now
        self.partial_since: Optional[float] = None  # since when half a request waits

    def fileno(self) -> int:
        return self.sock.fileno()

    # -- reading ------------------------------------------------------------------------

    def on_readable(self, now: float) -> None:
        try:
            data = self.sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.loop.close(self, f"connection error: {exc.strerror or exc}")
            return
        if not data:
            self.loop.close(self, "connection closed")
            return
        self.last_request = now
        self.received(data, now)

    def received(self, data: bytes, now: float) -> None:
        """Bytes read from the socket: decode them and handle what is whole."""
        self.decoder.receive_data(data)
        self.go_on(now)
        self.note_partial(now)

    def go_on(self, now: float) -> None:
        """Handle decoded requests now, or hold them while one is on the worker."""
        if self.busy:
            self.update_interest(self.mask & WRITE != 0)  # hold, and maybe stop reading
        else:
            self.process(now)

    def note_partial(self, now: float) -> None:
        """Start (or stop) the clock on a request that is only partly here."""
        if not self.decoder.partial:
            self.partial_since = None
        elif self.partial_since is None:
            self.partial_since = now

    def process(self, now: float) -> None:
        """Handle the decoded requests, in order, until one has to wait for storage."""
        decoder = self.decoder
        server = self.server
        service = server.service
        session = self.session
        while not self.closed and self.closing_since is None and not self.busy:
            event = decoder.next_event()
            if event is None:
                break
            if isinstance(event, Rejected):
                log.info(
                    "%s: bad request: %s",
                    self.peer,
                    event.message,
                    extra=log_fields("bad_request", conn=self.session.id, peer=self.peer),
                )
                self.send(server.encode_reply(self, service.error(event.message)))
                if event.fatal:
                    self.close_after_flush(now, event.message)
                continue
            if not self.edition_label:
                self.edition_label = "2014" if event.edition == 2014 else "2017"
                counts = self.loop.counts
                if counts is not None:
                    counts.count_connection(self.edition_label, self.transport, opened=True)
            if event.edition == 2014 and self.edition2014 is None:
                self.edition2014 = Edition2014Writer(server.config.backlog_encoding)
                self.plain = False
                log.info("%s speaks the 2014 edition", self.peer)
            if event.alias is not None and self.edition2014 is not None:
                self.edition2014.names_word = event.alias
            if event.stream is not None:  # {"request": …, "stream": "on"}: framing first
                self.set_stream(event.stream)
            if service.needs_worker(event):
                # Hand the worker this request and the ones already decoded behind it:
                # one thread hand-off for a whole pipelined burst, answered in order.
                self.busy = True
                server.offload(self, [event, *decoder.next_requests(WORKER_BATCH - 1)])
                self.update_interest(self.mask & WRITE != 0)
                return
            try:
                outcome = service.handle(session, event)
            except Exception:  # a bug: answer this client, keep serving everyone
                log.exception("%s: request %r failed", self.peer, event.word)
                outcome = Outcome().reply(service.error("Internal error; request not done"))
            server.deliver(self, outcome)

    def resume(self, now: float) -> None:
        """The storage worker answered: go on with the requests that waited."""
        self.busy = False
        self.process(now)
        if not self.closed:
            self.update_interest(self.mask & WRITE != 0)

    # -- writing ------------------------------------------------------------------------

    def send(self, frames: Sequence[bytes]) -> None:
        """Queue encoded objects (owning loop only); the loop flushes once per pass."""
        if self.closed:
            return
        fanout = self.loop.fanout
        if fanout.groups:  # room broadcasts held for this pass go first, in order
            fanout.settle()
        outbox = self.outbox
        for frame in frames:
            if not outbox.push(frame):
                log.info(
                    "%s: over %d objects waiting; streaming until they are written",
                    self.peer,
                    outbox.backlog_limit,
                    extra=log_fields(
                        "paced_to_streaming",
                        conn=self.session.id,
                        user=self.session.username,
                        peer=self.peer,
                    ),
                )
                counts = self.loop.counts
                if counts is not None:
                    counts.paced_to_streaming += 1
        if outbox.queued_bytes > self.server.config.max_outbox_bytes:
            log.warning(
                "%s (%s): dropped: %d bytes of output unread (limit %d)",
                self.peer,
                self.session.username or "not logged in",
                outbox.queued_bytes,
                self.server.config.max_outbox_bytes,
                extra=log_fields(
                    "outbox_drop",
                    conn=self.session.id,
                    user=self.session.username,
                    peer=self.peer,
                ),
            )
            counts = self.loop.counts
            if counts is not None:
                counts.outbox_drops += 1
            self.loop.close_later(self, "too slow: output queue overflowed")
            return
        self.loop.dirty.add(self)

    def flush(self, now: float) -> None:
        """Write what the outbox allows now, without blocking."""
        if self.closed:
            return
        outbox = self.outbox
        sock = self.sock
        blocked = False
        written = 0
        while True:
            chunk = outbox.chunk(now)
            if chunk is None:
                break
            try:
                sent = sock.send(chunk)
            except (BlockingIOError, InterruptedError):
                blocked = True
                break
            except OSError as exc:
                self._count_written(written)
                self.loop.close(self, f"connection error: {exc.strerror or exc}")
                return
            written += sent
            if not outbox.written(sent, now):
                blocked = True
                break
            if outbox.paced:
                break
        if written:
            counts = self.loop.counts
            if counts is not None:
                counts.bytes_out += written
        if self.closing_since is not None and outbox.empty:
            self.loop.close(self, "closed after error")
            return
        due = outbox.due(now)
        if due is not None and due > now:
            self.loop.wake_at(due, self)
        self.update_interest(blocked)

    def _count_written(self, written: int) -> None:
        counts = self.loop.counts
        if counts is not None:
            counts.bytes_out += written

    def update_interest(self, want_write: bool) -> None:
        limit = self.server.config.read_pause_bytes
        decoder = self.decoder
        paused = self.outbox.queued_bytes > limit or (
            self.busy and (decoder.waiting >= WAITING_REQUESTS or decoder.buffered > limit)
        )
        mask = 0 if (paused or self.closing_since is not None) else READ
        if want_write:
            mask |= WRITE
        if mask != self.mask:
            old, self.mask = self.mask, mask
            self.loop.set_interest(self, old, mask)

    def stream(self) -> None:
        self.outbox.stream()

    def farewell(self) -> None:
        """Last bytes before the server closes this connection on shutdown (none on TCP)."""

    def set_stream(self, on: bool) -> None:
        """The client's own `stream on` / `stream off` (owning loop only)."""
        fanout = self.loop.fanout
        if fanout.groups:  # what was broadcast before the switch is queued before it
            fanout.settle()
        if on:
            self.wants_history = True  # for good: it has shown it parses a stream
            self.outbox.stream()
        else:
            self.outbox.set_pace(self.server.config.pace_interval)

    def close_after_flush(self, now: float, reason: str) -> None:
        """Stop reading; close once the queued replies are written (or after a linger)."""
        if self.closing_since is None:
            self.closing_since = now
            log.info(
                "%s: closing: %s",
                self.peer,
                reason,
                extra=log_fields(
                    "closing", conn=self.session.id, user=self.session.username, peer=self.peer
                ),
            )
            self.loop.dirty.add(self)
