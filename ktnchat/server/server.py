# ChatServer: the listening socket, the I/O loops, and delivery of service Outcomes.
#
# Rules:
# - The listener lives in loop 0; accepted sockets are dealt round-robin to the loops.
# - deliver() encodes each response once (bytes shared by every recipient) and queues it
#   on each recipient's connection: directly when the recipient's loop is the current
#   thread, else by post() to its loop. Nothing here blocks on a socket. With one loop,
#   on its thread, a broadcast to a whole room's snapshot waits in the loop's fanout
#   (ktnchat/server/fanout.py) until the pass writes: a reader gets the pass's messages
#   in one append, in the same order.
# - Requests that may call a blocking store run on the StorageWorker (offload); their
#   Outcome comes back to the origin connection's loop, which delivers it.
# - In a cluster (service.cluster set): stored room messages reach local users through
#   the room's sequencer (RoomOrder) on the worker thread that stored them, before they
#   are published; the bus thread feeds other workers' messages to the same sequencers.
#   Everything else of an Outcome is published, then delivered by the origin's loop. With
#   one I/O loop, what a storage job released travels in that job's own post.
#   Without a cluster none of this runs: deliver() is the whole path.
# - shutdown() is idempotent and safe from any thread except the loops themselves.
# - Metrics (config.metrics): each thread counts in its own plain integers
#   (ktnchat/metrics.py; a store that can block is wrapped to time its calls; deliveries
#   are counted once per broadcast, off the per-recipient path); GET /metrics on the web
#   listener, or (config.metrics_port set) on the metrics listener only (the same HTTP
#   endpoint without the chat's pages and /ws, e.g. on a port the internet cannot reach),
#   sums them, on the loop that serves the request.
from __future__ import annotations

import functools
import ipaddress
import logging
import socket
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple

from ktnchat.cluster.events import response_from_wire, response_to_wire
from ktnchat.logs import log_fields
from ktnchat.metrics import CONTENT_TYPE, MetricsCollector, Registry, exposition
from ktnchat.protocol import (
    HISTORY,
    HistoryDelivery,
    Request,
    Response,
    encode_history_as_messages,
    encode_json,
    encode_response,
    encode_response_frames,
)
from ktnchat.protocol.edition2014 import broadcast_object
from ktnchat.server.config import ServerConfig
from ktnchat.server.connection import Connection
from ktnchat.server.fanout import Broadcaster, PendingFanout
from ktnchat.server.heap import HeapTrimmer
from ktnchat.server.ioloop import ConnectionFactory, IOLoop
from ktnchat.server.released import ReleasedQueue
from ktnchat.server.worker import StorageWorker
from ktnchat.service import Broadcast, ChatService, Outcome
from ktnchat.service.presence import Members
from ktnchat.service.session import Session
from ktnchat.storage import StorageError

if TYPE_CHECKING:
    from ktnchat.cluster.link import ClusterLink
    from ktnchat.cluster.order import RoomOrder
    from ktnchat.web.endpoint import WebSettings

log = logging.getLogger("ktnchat.server")

ACCEPT_BATCH = 256
KEEPALIVE_OPTIONS = (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 6))


def _web_connections(settings: WebSettings) -> ConnectionFactory:
    """The factory of a web listener's connections (the web listener's, the metrics
    listener's), each with its own endpoint on `settings`."""
    from ktnchat.server.webconnection import WebConnection

    def make(
        sock: socket.socket, peer: str, loop: IOLoop, server: Any, now: float, host: str
    ) -> Connection:
        return WebConnection(sock, peer, loop, server, now, host, settings)

    return make


class ChatServer:
    """A threaded TCP front-end for a ChatService."""

    def __init__(self, service: ChatService, config: Optional[ServerConfig] = None) -> None:
        self.service = service
        self.config = config or ServerConfig()
        if "stream" not in service.features:
            service.features.append("stream")  # clients may switch pacing off (`stream on`)
        self.metrics: Optional[Registry] = Registry() if self.config.metrics else None
        if self.metrics is not None:
            service.metrics = self.metrics
            if not service.storage.INLINE_SAFE:  # a store that can block: time its calls
                from ktnchat.storage.timed import TimedStorage

                service.storage = TimedStorage(service.storage, self.metrics)
        self._scrape: Optional[Callable[[], bytes]] = None  # built on the first scrape
        # Queues a broadcast to its readers, for deliver() and for the loops' held fan-out.
        self.broadcaster = Broadcaster(self.config.max_outbox_bytes, self.encode_broadcast_2014)
        self.loops = [IOLoop(self, index) for index in range(max(1, self.config.io_threads))]
        # Requests that may block (a slow store, Redis) or burn CPU (password hashing) run
        # here: one thread for one process (one writer keeps each room's order); in a
        # cluster (where the room sequencers keep it) two on a networked store, whose
        # round trips they overlap, but one on SQLite, whose writes take turns anyway (a
        # second thread only waits for the first: +20% CPU per message, cluster_cost.py).
        threads = self.config.worker_threads
        if not threads:
            overlap = service.cluster is not None and service.storage.SCHEME != "sqlite"
            threads = 2 if overlap else 1
        # In a cluster a worker thread sends what its jobs published when it runs out of
        # jobs: one pipeline for a burst, written on the thread that stored the messages.
        cluster = service.cluster
        self.worker = StorageWorker(
            threads=threads, on_idle=cluster.send_queued if cluster is not None else None
        )
        self.order: Optional[RoomOrder] = None  # the room sequencers, in a cluster
        # Cluster joins in progress: session id -> live messages held until the joiner's
        # history is queued (history first, then what came after its floor).
        self._gates: Dict[int, List[Response]] = {}
        self._gate_lock = threading.Lock()
        # Released room messages for the only loop (a cluster with one I/O thread).
        self.released = ReleasedQueue(self.loops[0].post, self._deliver_released)
        self._finishing = threading.local()  # set while a storage job shares its outcomes
        self._listener: Optional[socket.socket] = None
        self._web_listener: Optional[socket.socket] = None
        self._make_web: Optional[ConnectionFactory] = None
        self._metrics_listener: Optional[socket.socket] = None
        self._make_metrics: Optional[ConnectionFactory] = None
        self._next_loop = 0
        self._connection_count = 0
        self._per_address: Dict[str, int] = {}
        self._count_lock = threading.Lock()
        self._stopping = False
        self._stopped = threading.Event()
        self._stop_maintenance = threading.Event()
        self.heap = HeapTrimmer()
        self._maintenance = threading.Thread(
            target=self._maintain, name="ktnchat-maintenance", daemon=True
        )
        self.crashed = False

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> Tuple[str, int]:
        """Bind, listen and start the I/O threads; returns the bound (host, port)."""
        config = self.config
        family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
        listener = socket.create_server(
            (config.host, config.port),
            family=family,
            backlog=config.listen_backlog,
            reuse_port=config.reuse_port,
        )
        listener.setblocking(False)
        self._listener = listener
        first = self.loops[0]
        first.selector.register(listener, 1, self._accept)
        if config.web_port is not None:
            self._start_web(family)
        if config.metrics_port is not None and self.metrics is not None:
            self._start_metrics(family)
        self.worker.start()
        cluster = self.service.cluster
        if cluster is not None:
            from ktnchat.cluster.order import RoomOrder

            service = self.service
            order = RoomOrder(
                service.storage,
                service.presence,
                service.message_response,
                service.missed_notice,
                self._emit_room,
                cluster.want_rooms,
                cluster.wait_room,
                self._close_gate,
            )
            self.order = order
            order.metrics = cluster.metrics = self.metrics
            service.room_entry = order.enter
            cluster.on_room_subscribed = order.catch_up
            cluster.on_recovered = self._cluster_recovered
            order.start()
            cluster.start(self.on_bus_event)
        for loop in self.loops:
            loop.start()
        self._maintenance.start()
        host, port = listener.getsockname()[:2]
        log.info(
            "ktnchat listening on %s:%d (%d I/O thread%s)",
            host,
            port,
            len(self.loops),
            "" if len(self.loops) == 1 else "s",
            extra=log_fields("listening"),
        )
        return host, port

    def _start_web(self, family: socket.AddressFamily) -> None:
        """Listen for browsers (HTTP + WebSocket) in loop 0, beside the TCP listener."""
        from ktnchat.web.endpoint import WebSettings
        from ktnchat.web.static import load_static_files

        config = self.config
        settings = WebSettings(
            files=load_static_files(),
            origins=frozenset(config.web_origins),
            max_message_bytes=config.max_frame_bytes,
            health=self._health,
            # /metrics here unless a metrics listener of its own keeps it off this one
            metrics=self.metrics_page
            if self.metrics is not None and config.metrics_port is None
            else None,
        )
        self._make_web = _web_connections(settings)
        listener = socket.create_server(
            (config.host, config.web_port or 0),
            family=family,
            backlog=config.listen_backlog,
            reuse_port=config.reuse_port,
        )
        listener.setblocking(False)
        self._web_listener = listener
        self.loops[0].selector.register(listener, 1, self._accept_web)
        host, port = listener.getsockname()[:2]
        log.info(
            "ktnchat web client on http://%s:%d/", host, port, extra=log_fields("web_listening")
        )

    def _start_metrics(self, family: socket.AddressFamily) -> None:
        """The metrics listener: the web endpoint serving /metrics and /healthz only, in
        loop 0 beside the others. Never SO_REUSEPORT: each worker of a cluster has its own
        port, so a scraper reaches every one."""
        from ktnchat.web.endpoint import WebSettings

        settings = WebSettings(health=self._health, metrics=self.metrics_page, chat=False)
        self._make_metrics = _web_connections(settings)
        listener = socket.create_server(
            (self.config.host, self.config.metrics_port or 0),
            family=family,
            backlog=self.config.listen_backlog,
        )
        listener.setblocking(False)
        self._metrics_listener = listener
        self.loops[0].selector.register(listener, 1, self._accept_metrics)
        host, port = listener.getsockname()[:2]
        log.info(
            "ktnchat metrics on http://%s:%d/metrics (worker %s)",
            host,
            port,
            self.config.worker,
            extra=log_fields("metrics_listening"),
        )

    def metrics_page(self) -> Tuple[int, bytes, str]:
        """GET /metrics: this process's counters in the Prometheus text format (on the
        loop serving the request; a few milliseconds)."""
        scrape = self._scrape
        if scrape is None:
            try:
                from prometheus_client import ProcessCollector
            except ImportError:
                return (
                    503,
                    b"metrics need prometheus_client: pip install 'ktnchat[metrics]'\n",
                    "text/plain",
                )
            assert self.metrics is not None
            collector = MetricsCollector(self.metrics, self.config.worker, self._gauges())
            process = ProcessCollector(registry=None)
            scrape = self._scrape = functools.partial(exposition, collector, process)
        return 200, scrape(), CONTENT_TYPE

    def _gauges(self) -> Dict[str, Tuple[str, Callable[[], float]]]:
        loops = self.loops
        return {
            "ktnchat_users_online": ("Users logged in to this process", self.user_count),
            "ktnchat_sockets_open": (
                "Sockets admitted and not yet closed (chat, web and metrics listeners)",
                self.connection_count,
            ),
            "ktnchat_outbox_bytes": (
                "Output queued and not yet written, all connections (updated each second)",
                lambda: sum(loop.backlog_bytes for loop in loops),
            ),
            "ktnchat_outbox_bytes_max": (
                "The most output one connection has queued: the slowest reader (each second)",
                lambda: max(loop.backlog_most for loop in loops),
            ),
            "ktnchat_worker_queue": (
                "Jobs waiting for the storage worker threads",
                self.worker.backlog,
            ),
        }

    def _health(self) -> Tuple[int, bytes]:
        if self._stopping or self.crashed:
            return 503, b"stopping\n"
        return 200, f"ok {self.user_count()} users\n".encode("ascii")

    @property
    def web_address(self) -> Tuple[str, int]:
        assert self._web_listener is not None, "web listener not started"
        host, port = self._web_listener.getsockname()[:2]
        return host, port

    @property
    def metrics_address(self) -> Tuple[str, int]:
        assert self._metrics_listener is not None, "metrics listener not started"
        host, port = self._metrics_listener.getsockname()[:2]
        return host, port

    @property
    def address(self) -> Tuple[str, int]:
        assert self._listener is not None, "server not started"
        host, port = self._listener.getsockname()[:2]
        return host, port

    def shutdown(self, timeout: float = 10.0) -> None:
        """Tell every client, close every socket and stop the I/O threads."""
        if self._stopping:
            self._stopped.wait(timeout)
            return
        self._stopping = True
        self._stop_maintenance.set()
        for loop in self.loops:
            loop.stop()
        for loop in self.loops:
            if loop.thread.is_alive() and loop.thread is not threading.current_thread():
                loop.thread.join(timeout)
        self.worker.stop(timeout)
        if self.order is not None:
            self.order.stop()
        if self.service.cluster is not None:
            self.service.cluster.stop()
        if self._listener is not None:
            self._listener.close()
        if self._web_listener is not None:
            self._web_listener.close()
        if self._metrics_listener is not None:
            self._metrics_listener.close()
        self.service.storage.close()
        self._stopped.set()
        log.info("ktnchat stopped", extra=log_fields("stopped"))

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until shutdown() finished; True if it did."""
        return self._stopped.wait(timeout)

    def __enter__(self) -> ChatServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def _maintain(self) -> None:
        """Apply retention (on the storage worker when the store can block) and trim the
        heap, each on its own interval."""
        retention_every = self.config.maintenance_interval
        trim_every = self.config.heap_trim_interval if self.heap.available else 0.0
        now = time.monotonic()
        next_retention = now + retention_every
        next_trim = now + trim_every if trim_every > 0 else float("inf")
        while not self._stop_maintenance.wait(
            max(0.0, min(next_retention, next_trim) - time.monotonic())
        ):
            now = time.monotonic()
            if now >= next_retention:
                next_retention = now + retention_every
                if self.service.storage.INLINE_SAFE:
                    self._retention()
                else:
                    self.worker.submit(self._retention)
            if now >= next_trim:
                next_trim = now + trim_every
                self.heap.trim()

    def _retention(self) -> None:
        try:
            self.service.apply_retention()
        except StorageError as exc:
            log.warning("retention skipped: %s", exc)

    # -- accepting -------------------------------------------------------------------------------

    def _accept(self, now: float) -> None:
        assert self._listener is not None
        self._accept_from(self._listener, None)

    def _accept_web(self, now: float) -> None:
        assert self._web_listener is not None
        self._accept_from(self._web_listener, self._make_web, "web")

    def _accept_metrics(self, now: float) -> None:
        assert self._metrics_listener is not None
        self._accept_from(self._metrics_listener, self._make_metrics, "metrics")

    def _accept_from(
        self, listener: socket.socket, make: Optional[ConnectionFactory], kind: str = "chat"
    ) -> None:
        counts = self.loops[0].counts  # accepting runs on loop 0
        for _ in range(ACCEPT_BATCH):
            try:
                sock, address = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. EMFILE: out of file descriptors
                log.warning("accept failed: %s", exc)
                return
            peer = _format_peer(address)
            host = str(address[0]) if isinstance(address, tuple) else peer
            service = self.service
            ban = service.bans.server_ban(None, host, service.clock())
            if ban is not None:
                log.info(
                    "%s: refused: address banned", peer, extra=log_fields("refused", peer=peer)
                )
                if counts is not None:
                    counts.count_socket(counts.refused, "banned")
                reason = f": {ban.reason}" if ban.reason else ""
                _refuse(
                    sock, self.encode(service.error(f"You are banned from this server{reason}"))
                )
                continue
            refusal = self._admit(host)
            if refusal is not None:
                log.warning(
                    "%s: refused: %s", peer, refusal, extra=log_fields("refused", peer=peer)
                )
                if counts is not None:
                    counts.count_socket(counts.refused, "limit")
                _refuse(sock, self.encode(service.error(refusal)))
                continue
            if counts is not None:
                counts.count_socket(counts.accepted, kind)
            _tune(sock, self.config.send_buffer_bytes)
            loop = self.loops[self._next_loop]
            self._next_loop = (self._next_loop + 1) % len(self.loops)
            if loop is self.loops[0]:
                loop.adopt(sock, peer, host, make)
            else:
                loop.post(functools.partial(loop.adopt, sock, peer, host, make))

    # -- delivery --------------------------------------------------------------------------------

    def encode(self, response: Response) -> List[bytes]:
        """The wire objects for one response (history may become several objects)."""
        config = self.config
        return encode_response_frames(response, config.history_encoding, config.max_object_bytes)

    def encode_reply(self, conn: Connection, response: Response) -> List[bytes]:
        """The wire objects answering `conn` itself, in the edition it speaks. Earlier
        messages go as `message` responses to a client that has not said `stream on`
        (unless --history-delivery history)."""
        writer = conn.edition2014
        if writer is not None:
            objects = [encode_object(obj) for obj in writer.reply_objects(response)]
        else:
            objects = self._encode_2017(conn, response)
        framing = conn.framing
        if framing is not None:  # a WebSocket: the same objects, one per text message
            return [framing(frame) for frame in objects]
        return objects

    def _encode_2017(self, conn: Connection, response: Response) -> List[bytes]:
        if (
            response.kind == HISTORY
            and not conn.wants_history
            and self.config.history_delivery is HistoryDelivery.MESSAGES
        ):
            # A paced client gets at most half its backlog allowance, so a long history
            # never tips it into streaming (which a recv()-per-object client dies of).
            paced = conn.outbox.interval > 0
            limit = max(1, self.config.pace_backlog // 2) if paced else None
            return encode_history_as_messages(response, limit)
        return self.encode(response)

    def _send_reply(self, conn: Connection, response: Response) -> None:
        """On conn's loop: encode a response for conn alone and queue it."""
        if not conn.closed:
            conn.send(self.encode_reply(conn, response))
            if self._gates and response.kind == HISTORY:
                self._open_gate(conn)

    def encode_broadcast_2014(self, response: Response) -> List[bytes]:
        """The wire objects of a broadcast for 2014-edition recipients (maybe none)."""
        obj = broadcast_object(response)
        return [] if obj is None else [encode_object(obj)]

    def deliver(self, origin: Optional[Connection], outcome: Outcome, publish: bool = True) -> None:
        """Queue an Outcome's replies to `origin` and its broadcasts to their rooms.

        In a cluster, room broadcasts, private messages for users elsewhere and the
        Outcome's `remote` events also go on the bus (unless they came from it)."""
        if origin is not None and not origin.closed:
            for response in outcome.replies:
                origin.send(self.encode_reply(origin, response))
            if outcome.stream is not None:
                origin.set_stream(outcome.stream)
        if self._stopping:
            return
        here = threading.get_ident()
        loops = self.loops
        # One loop, and this is its thread: whole-room broadcasts wait in its fanout.
        held = loops[0].fanout if len(loops) == 1 and loops[0].thread_id == here else None
        for broadcast in outcome.broadcasts:
            if broadcast.response.kind == HISTORY:
                # Told to one session (say, a user kicked to the lobby): encoded for
                # that connection, on its own loop, as its replies are.
                self._tell(broadcast)
                continue
            recipients = broadcast.recipients
            if recipients is None:
                recipients = self.service.presence.members(broadcast.room)
            self._fan_out(broadcast.response, recipients, broadcast.exclude, held, here)
        cluster = self.service.cluster
        if cluster is not None and publish:
            self._publish(cluster, outcome)
        for session, reason in outcome.disconnect:
            target = session.transport
            if target is not None and not target.closed:
                target.loop.post(functools.partial(self._disconnect, target, reason))
        if outcome.close and origin is not None:
            origin.close_after_flush(origin.last_request, "closed by the service")

    def _fan_out(
        self,
        response: Response,
        recipients: Sequence[Session],
        exclude: Optional[Session],
        held: Optional[PendingFanout],
        here: int,
    ) -> None:
        """Queue one broadcast to its recipients (held, when `held` is this loop's fanout
        and the broadcast goes to a whole room's snapshot)."""
        if response.kind != HISTORY:  # one object (only a history is ever split)
            frames = [encode_response(response, self.config.history_encoding)]
        else:
            frames = self.encode(response)
        if held is not None:
            if len(frames) == 1 and exclude is None and type(recipients) is Members:
                held.add(recipients, frames[0], response)
                return
            held.settle()  # queued below, directly: what was held goes first
        delivered = self.broadcaster.queue(recipients, frames, (response,), exclude, here)
        metrics = self.metrics
        if metrics is not None:
            metrics.counters().deliveries += delivered

    def _deliver_released(self, response: Response, members: Sequence[Session]) -> None:
        """On the only loop's thread: a message a room's sequencer released (_emit_room)."""
        if self._stopping:
            return
        loop = self.loops[0]
        self._fan_out(response, members, None, loop.fanout, loop.thread_id or 0)

    def _tell(self, broadcast: Broadcast) -> None:
        """Deliver a per-connection response (a history) to each of its recipients."""
        recipients = broadcast.recipients
        if recipients is None:
            recipients = self.service.presence.members(broadcast.room)
        here = threading.get_ident()
        told = 0
        for session in recipients:
            target = session.transport
            if target is None or target.closed or session is broadcast.exclude:
                continue
            told += 1
            if target.loop.thread_id == here:
                self._send_reply(target, broadcast.response)
            else:
                target.loop.post(functools.partial(self._send_reply, target, broadcast.response))
        if told and self.metrics is not None:
            self.metrics.counters().deliveries += told

    # -- the cluster --------------------------------------------------------------------------

    def _events(self, outcomes: Sequence[Outcome]) -> List[Dict[str, Any]]:
        """The outcomes' cluster-wide parts as bus events (ktnchat/cluster/events.py)."""
        batch: List[Dict[str, Any]] = []
        for outcome in outcomes:
            for broadcast in outcome.broadcasts:
                if broadcast.room:
                    event: Dict[str, Any] = {
                        "t": "room",
                        "room": broadcast.room,
                        "r": response_to_wire(broadcast.response),
                    }
                    if broadcast.seq is not None:
                        event["id"], event["p"] = broadcast.seq
                    batch.append(event)
                elif broadcast.to_user is not None:
                    batch.append(
                        {
                            "t": "user",
                            "to": broadcast.to_user.lower(),
                            "r": response_to_wire(broadcast.response),
                        }
                    )
            batch.extend(outcome.remote)
        return batch

    def _publish(self, cluster: ClusterLink, *outcomes: Outcome) -> None:
        """Put the outcomes' cluster-wide parts on the bus (queued, in order)."""
        cluster.publish_many(self._events(outcomes))

    def _share(self, cluster: ClusterLink, outcomes: List[Outcome]) -> None:
        """On a worker thread, after handling: deliver the stored messages to local users
        through their rooms' sequencers (local first), then publish everything. The
        sequenced broadcasts leave the outcomes (the origin's loop delivers the rest)."""
        batch = self._events(outcomes)
        order = self.order
        sequenced: List[Broadcast] = []
        if order is not None:
            for outcome in outcomes:
                if not any(b.seq is not None for b in outcome.broadcasts):
                    continue
                rest = []
                for broadcast in outcome.broadcasts:
                    if broadcast.seq is not None and broadcast.room:
                        order.offer(broadcast.room, *broadcast.seq, broadcast.response)
                        sequenced.append(broadcast)
                    else:
                        rest.append(broadcast)
                outcome.broadcasts = rest
        # Sent by this worker thread when it runs out of jobs (StorageWorker.on_idle).
        if order is None or not sequenced:
            cluster.publish_many(batch, wake=False)
            return
        stored = [(b.room, b.seq[0]) for b in sequenced if b.seq is not None]

        def lost(_: object) -> None:  # announced once Redis is back (_cluster_recovered)
            for room, message_id in stored:
                order.unannounced(room, message_id)

        cluster.publish_many(batch, lost, wake=False)

    def _emit_room(self, room: str, response: Response) -> None:
        """A sequencer released a message (under the room's lock): to the room's local
        members now, except joiners whose history is not queued yet (held for them).

        The members are taken now. With one I/O loop the message joins the released
        queue (ktnchat/server/released.py; added under the room's lock, so in release
        order), drained by the storing job's own post or a wake; with several, it is one
        post per loop (under the room's lock too). Either way the loop's own fan-out path
        encodes once and queues to each reader."""
        members: Sequence[Session] = self.service.presence.members(room)
        gates = self._gates
        if gates:
            recipients: List[Session] = []
            with self._gate_lock:
                for session in members:
                    held = gates.get(session.id)
                    if held is None:
                        recipients.append(session)
                    else:
                        held.append(response)
            members = recipients
        if not members:
            return
        loops = self.loops
        here = threading.get_ident()
        if len(loops) == 1:  # the common case, kept lean: queued in release order
            self.released.add(response, members)
            if not getattr(self._finishing, "active", False):
                self.released.wake()  # else the storage job's own post drains it
            return
        split: Dict[IOLoop, List[Session]] = {}
        for session in members:
            target = session.transport
            if target is not None:
                split.setdefault(target.loop, []).append(session)
        for loop, sessions in split.items():
            outcome = Outcome(broadcasts=[Broadcast(room, response, recipients=sessions)])
            if loop.thread_id == here:
                self.deliver(None, outcome, publish=False)
            else:
                loop.post(functools.partial(self.deliver, None, outcome, False))

    def _close_gate(self, session: Session) -> None:
        """A session joins a room (under the room's lock): hold its live messages."""
        with self._gate_lock:
            self._gates.setdefault(session.id, [])

    def _open_gate(self, conn: Connection) -> None:
        """On conn's loop, once its history is queued: the held live messages follow."""
        with self._gate_lock:
            held = self._gates.pop(conn.session.id, None)
        if held and self.metrics is not None:
            self.metrics.counters().deliveries += len(held)
        framing = conn.framing
        for response in held or ():
            if conn.edition2014 is not None:
                frames = self.encode_broadcast_2014(response)
            else:
                frames = self.encode(response)
            conn.send(frames if framing is None else [framing(frame) for frame in frames])

    def _cluster_recovered(self) -> None:
        """Redis is back: re-claim names, announce the rooms whose messages could not be
        published, and catch every local room up from the store."""
        service, cluster, order = self.service, self.service.cluster, self.order
        self.worker.submit(service.reassert_names)
        if cluster is None or order is None:
            return

        def announce() -> None:
            heads = order.take_unannounced()
            events = [{"t": "head", "room": room, "id": last} for room, last in heads.items()]

            def lost(_: object) -> None:
                for room, last in heads.items():
                    order.unannounced(room, last)

            cluster.publish_many(events, lost)

        self.worker.submit(announce)
        order.catch_up()

    def on_bus_event(self, event: Dict[str, Any]) -> None:
        """Another worker's event (on the bus thread): deliver it to the users held here."""
        kind = event.get("t")
        order = self.order
        if kind == "room":
            response = response_from_wire(event["r"])
            room = str(event["room"])
            if "id" in event and order is not None:
                order.offer(room, int(event["id"]), int(event.get("p", 0)), response)
                return
            self.deliver(None, Outcome(broadcasts=[Broadcast(room, response)]), publish=False)
        elif kind == "head":
            if order is not None:
                order.head(str(event.get("room", "")), int(event.get("id", 0)))
        elif kind == "user":
            target = self.service.presence.holder(str(event.get("to", "")))
            if target is not None:
                response = response_from_wire(event["r"])
                self.deliver(
                    None,
                    Outcome(broadcasts=[Broadcast("", response, recipients=[target])]),
                    publish=False,
                )
        elif kind in ("act", "state"):
            service = self.service
            self.worker.submit(lambda: self.deliver(None, service.apply_remote(event)))

    def _disconnect(self, conn: Connection, reason: str) -> None:
        """On conn's loop: a final `error`, then close (e.g. a banned user)."""
        if not conn.closed:
            conn.send(self.encode_reply(conn, self.service.error(reason)))
            conn.close_after_flush(conn.last_request, reason)

    def offload(self, conn: Connection, requests: List[Request]) -> None:
        """Handle `requests` (in order) on the storage worker, then deliver on conn's loop."""
        session, service = conn.session, self.service

        def job() -> None:
            outcomes = []
            for request in requests:
                try:
                    outcomes.append(service.handle(session, request))
                except Exception:
                    log.exception("%s: %r failed", conn.peer, request.word)
                    outcomes.append(
                        Outcome().reply(service.error("Internal error; request not done"))
                    )
            cluster = service.cluster
            if cluster is not None:  # here, on the worker: I/O threads never wait on Redis
                finishing = self._finishing
                finishing.active = True
                try:
                    self._share(cluster, outcomes)
                except Exception:  # a bug: the sender still gets its answers, and resumes
                    log.exception("%s: sharing with the cluster failed", conn.peer)
                finally:
                    finishing.active = False
            conn.loop.post(functools.partial(self._finish, conn, outcomes))

        self.worker.submit(job, session.id)

    def _finish(self, conn: Connection, outcomes: List[Outcome]) -> None:
        """On the connection's loop: deliver a worker's Outcomes and resume the connection."""
        if len(self.loops) == 1:
            self.released.drain()  # what its job released (and anyone's before)
        for outcome in outcomes:
            # A sender that vanished meanwhile: what was stored is still broadcast.
            # Already published to the cluster by the worker (see offload).
            self.deliver(None if conn.closed else conn, outcome, publish=False)
        if self._gates and not conn.closed:
            self._open_gate(conn)  # a join's history went out just now
        if not conn.closed:
            conn.resume(conn.last_request)

    def _admit(self, host: str) -> Optional[str]:
        """Count a new connection from `host`; the refusal text if a cap is reached."""
        config = self.config
        with self._count_lock:
            if self._connection_count >= config.max_connections:
                return "Server full: too many connections; try again later"
            capped = config.max_connections_per_address > 0 and (
                config.cap_loopback or not _is_loopback(host)
            )
            if capped and self._per_address.get(host, 0) >= config.max_connections_per_address:
                return (
                    f"Too many connections from your address (the limit is "
                    f"{config.max_connections_per_address}); close some and try again"
                )
            self._connection_count += 1
            self._per_address[host] = self._per_address.get(host, 0) + 1
            return None

    def connection_closed(self, conn: Connection, reason: str) -> None:
        """A loop closed `conn`: free its name and tell its room (unless stopping)."""
        host = conn.session.host
        with self._count_lock:
            self._connection_count -= 1
            left = self._per_address.get(host, 1) - 1
            if left > 0:
                self._per_address[host] = left
            else:
                self._per_address.pop(host, None)
        service, session = self.service, conn.session
        # Break the connection <-> session cycle: with it, every closed connection stayed
        # in memory (socket, decoder, outbox) until the cyclic GC's rare full pass, and
        # its scattered leftovers pinned allocator arenas (docs/reliability.md).
        session.transport = None
        if self._gates:
            with self._gate_lock:
                self._gates.pop(session.id, None)
        if service.cluster is not None and not self._stopping:
            # Freeing the name touches Redis: not on this I/O thread.
            self.worker.submit(
                lambda: self.deliver(None, service.close_session(session, reason)), session.id
            )
            return
        outcome = service.close_session(session, reason)
        if not self._stopping:
            self.deliver(None, outcome)

    def loop_crashed(self, loop: IOLoop) -> None:
        self.crashed = True
        threading.Thread(target=self.shutdown, name="ktnchat-crash-stop", daemon=True).start()

    def connection_count(self) -> int:
        with self._count_lock:
            return self._connection_count

    def user_count(self) -> int:
        return self.service.presence.online_count()


def encode_object(obj: object) -> bytes:
    """One JSON object as it goes on the wire: ASCII, newline-terminated."""
    return (encode_json(obj) + "\n").encode("ascii")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _format_peer(address: object) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address)


def _tune(sock: socket.socket, send_buffer_bytes: int) -> None:
    sock.setblocking(False)
    if send_buffer_bytes > 0:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer_bytes)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in KEEPALIVE_OPTIONS:
        option = getattr(socket, name, None)
        if option is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, option, value)
            except OSError:
                pass


def _refuse(sock: socket.socket, frames: Sequence[bytes]) -> None:
    try:
        sock.setblocking(False)
        sock.send(b"".join(frames))
    except OSError:
        pass
    finally:
        sock.close()


__all__ = ["ChatServer"]
