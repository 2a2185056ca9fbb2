# Operational counters: plain integers per thread, summed only when someone looks.
#
# Rules:
# - The hot path pays one attribute increment: each thread that counts (every I/O loop,
#   the storage workers, the bus thread) gets its own Counters object from `counters()`,
#   which only that thread writes. Nothing is locked; a scrape reads every thread's
#   integers (stale by at most one pass under the GIL) and adds them up.
# - No label grows without bound: request words come from the command table (anything
#   else counts as "other"), moderation kinds from a fixed set, storage operations from
#   the Storage interface's method names; never user or room names.
# - Histograms use fixed buckets (seconds) and keep counts per bucket, as Prometheus does.
# - prometheus_client is imported only by `exposition()` and `MetricsCollector`, so a
#   server without metrics runs on the standard library alone.
# - Connections: every socket admitted is counted by listener (chat, web, metrics); a
#   chat connection is counted by edition and transport at its first request (before
#   it, nobody knows which edition it speaks; HTTP fetches and scrapes never send one),
#   and again by the same labels when it closes. Open = opened - closed, on scrape.
from __future__ import annotations

import bisect
import threading
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

LATENCY_BUCKETS: Tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
MODERATION_KINDS = frozenset(
    {"kick", "mute", "unmute", "ban", "unban", "gban", "gunban", "ipban", "ipunban"}
    | {"remove", "purge", "mod", "unmod", "deleteroom", "topic"}
)


class Histogram:
    """Counts of observations per bucket (upper bounds) and their sum; the count of
    observations is the sum of the buckets (one increment less per observation)."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last: above every bound
        self.total = 0.0

    @property
    def count(self) -> int:
        return sum(self.counts)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def merge(self, other: Histogram) -> None:
        for index, value in enumerate(list(other.counts)):
            self.counts[index] += value
        self.total += other.total

    def cumulative(self) -> List[Tuple[str, float]]:
        """(le, cumulative count) pairs as the exposition format wants them."""
        out: List[Tuple[str, float]] = []
        running = 0
        for bound, value in zip(self.bounds, self.counts):
            running += value
            out.append((repr(bound), float(running)))
        out.append(("+Inf", float(running + self.counts[-1])))
        return out


class Counters:
    """One thread's counts. Fields are plain ints (or dicts of ints keyed by a bounded
    label), written only by the thread that owns this object."""

    __slots__ = (
        "accepted",
        "bus_catch_up_messages",
        "bus_catch_ups",
        "bus_publish",
        "bus_publish_lost",
        "bytes_out",
        "connections_closed",
        "connections_opened",
        "deliveries",
        "flood_mutes",
        "flood_refusals",
        "logins",
        "logins_failed",
        "loop_pass",
        "messages_stored",
        "moderation",
        "outbox_drops",
        "paced_to_streaming",
        "refused",
        "requests",
        "storage",
    )

    def __init__(self) -> None:
        self.accepted: Dict[str, int] = {}  # listener ("chat", "web", "metrics") -> sockets
        self.refused: Dict[str, int] = {}  # reason ("banned", "limit") -> sockets
        self.connections_opened: Dict[Tuple[str, str], int] = {}  # (edition, transport)
        self.connections_closed: Dict[Tuple[str, str], int] = {}
        self.logins = 0
        self.logins_failed = 0
        self.requests: Dict[Tuple[str, str], int] = {}  # (word, outcome)
        self.messages_stored = 0
        self.deliveries = 0
        self.bytes_out = 0
        self.outbox_drops = 0
        self.paced_to_streaming = 0
        self.flood_refusals = 0
        self.flood_mutes = 0
        self.moderation: Dict[str, int] = {}
        self.storage: Dict[str, Histogram] = {}  # operation -> latency
        self.bus_publish = Histogram()
        self.bus_publish_lost = 0
        self.bus_catch_ups = 0
        self.bus_catch_up_messages = 0
        self.loop_pass = Histogram()

    def count_request(self, word: str, outcome: str) -> None:
        label = (word, outcome)
        self.requests[label] = self.requests.get(label, 0) + 1

    def count_moderation(self, kind: str) -> None:
        kind = kind if kind in MODERATION_KINDS else "other"
        self.moderation[kind] = self.moderation.get(kind, 0) + 1

    def count_connection(self, edition: str, transport: str, opened: bool) -> None:
        table = self.connections_opened if opened else self.connections_closed
        label = (edition, transport)
        table[label] = table.get(label, 0) + 1

    def count_socket(self, table: Dict[str, int], label: str) -> None:
        """One socket accepted (`self.accepted`) or refused (`self.refused`)."""
        table[label] = table.get(label, 0) + 1

    def observe_storage(self, operation: str, seconds: float) -> None:
        histogram = self.storage.get(operation)
        if histogram is None:
            histogram = self.storage[operation] = Histogram()
        histogram.observe(seconds)


INT_FIELDS = (
    "logins",
    "logins_failed",
    "messages_stored",
    "deliveries",
    "bytes_out",
    "outbox_drops",
    "paced_to_streaming",
    "flood_refusals",
    "flood_mutes",
    "bus_catch_ups",
    "bus_catch_up_messages",
    "bus_publish_lost",
)
LABELLED_FIELDS = (
    "accepted",
    "refused",
    "connections_opened",
    "connections_closed",
    "requests",
    "moderation",
)


class Registry:
    """Every thread's Counters, for one process."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: List[Counters] = []
        self.started = time.time()

    def counters(self) -> Counters:
        """This thread's Counters (created on first use)."""
        try:
            return self._local.counters  # type: ignore[no-any-return]
        except AttributeError:  # this thread's first count
            mine = Counters()
            self._local.counters = mine
            with self._lock:
                self._all.append(mine)
        return mine

    def snapshot(self) -> Counters:
        """Every thread's counts added up (a new object; the live ones are not touched)."""
        with self._lock:
            every = list(self._all)
        total = Counters()
        for one in every:
            for name in INT_FIELDS:
                setattr(total, name, getattr(total, name) + getattr(one, name))
            for name in LABELLED_FIELDS:
                mine: Dict[Any, int] = getattr(total, name)
                for label, value in list(getattr(one, name).items()):
                    mine[label] = mine.get(label, 0) + value
            for operation, histogram in list(one.storage.items()):
                target = total.storage.setdefault(operation, Histogram())
                target.merge(histogram)
            total.bus_publish.merge(one.bus_publish)
            total.loop_pass.merge(one.loop_pass)
        return total


REGISTRY = Registry()


def counters() -> Counters:
    """The calling thread's Counters in the process registry."""
    return REGISTRY.counters()


class MetricsCollector:
    """A prometheus_client collector that reads the registry (and live gauges) on scrape."""

    def __init__(
        self,
        registry: Registry = REGISTRY,
        worker: str = "0",
        gauges: Optional[Dict[str, Tuple[str, Any]]] = None,
    ) -> None:
        self.registry = registry
        self.worker = worker
        # name -> (help, callable returning a number): connections open, users online...
        self.gauges = gauges or {}

    def describe(self) -> List[Any]:
        return []  # collected fresh on every scrape; nothing to check at registration

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        snap = self.registry.snapshot()
        worker = self.worker

        def counter(name: str, text: str, value: float) -> Any:
            family = CounterMetricFamily(name, text, labels=["worker"])
            family.add_metric([worker], value)
            return family

        def labelled(name: str, text: str, labels: List[str], table: Dict[Any, int]) -> Any:
            family = CounterMetricFamily(name, text, labels=["worker", *labels])
            for label, value in sorted(table.items()):
                values = list(label) if isinstance(label, tuple) else [label]
                family.add_metric([worker, *values], value)
            return family

        def histogram(name: str, text: str, one: Histogram, labels: Any = ()) -> Any:
            family = HistogramMetricFamily(name, text, labels=["worker", *labels])
            family.add_metric([worker], one.cumulative(), one.total)
            return family

        yield labelled(
            "ktnchat_sockets_accepted",
            "Sockets admitted, by listener (chat: TCP, web: HTTP and WebSocket, metrics)",
            ["listener"],
            snap.accepted,
        )
        yield labelled(
            "ktnchat_sockets_refused",
            "Sockets refused at accept: banned address, or a connection limit",
            ["reason"],
            snap.refused,
        )
        yield labelled(
            "ktnchat_connections_opened",
            "Chat connections, counted at their first request, by edition and transport",
            ["edition", "transport"],
            snap.connections_opened,
        )
        yield labelled(
            "ktnchat_connections_closed",
            "Chat connections closed, by the edition and transport they were counted with",
            ["edition", "transport"],
            snap.connections_closed,
        )
        open_now = GaugeMetricFamily(
            "ktnchat_connections_open",
            "Chat connections open now (opened - closed), by edition and transport",
            labels=["worker", "edition", "transport"],
        )
        for label, opened in sorted(snap.connections_opened.items()):
            closed = snap.connections_closed.get(label, 0)
            open_now.add_metric([worker, *label], float(max(0, opened - closed)))
        yield open_now
        yield counter("ktnchat_logins", "Successful logins", snap.logins)
        yield counter("ktnchat_logins_failed", "Refused logins", snap.logins_failed)
        yield labelled(
            "ktnchat_requests",
            "Requests handled, by request word and outcome (ok or error)",
            ["request", "outcome"],
            snap.requests,
        )
        yield counter("ktnchat_messages_stored", "Chat messages stored", snap.messages_stored)
        yield counter(
            "ktnchat_deliveries", "Broadcast objects queued to recipients", snap.deliveries
        )
        yield counter("ktnchat_bytes_out", "Bytes written to client sockets", snap.bytes_out)
        yield counter(
            "ktnchat_outbox_drops",
            "Clients dropped because their unread output passed the outbox cap",
            snap.outbox_drops,
        )
        yield counter(
            "ktnchat_paced_to_streaming",
            "Paced clients switched to streaming because they fell behind",
            snap.paced_to_streaming,
        )
        yield counter(
            "ktnchat_flood_refusals", "Requests refused by flood control", snap.flood_refusals
        )
        yield counter("ktnchat_flood_mutes", "Users muted by flood control", snap.flood_mutes)
        yield labelled(
            "ktnchat_moderation_actions",
            "Moderation actions done, by kind",
            ["kind"],
            snap.moderation,
        )
        storage = HistogramMetricFamily(
            "ktnchat_storage_seconds",
            "Storage call latency, by operation",
            labels=["worker", "operation"],
        )
        for operation, one in sorted(snap.storage.items()):
            storage.add_metric([worker, operation], one.cumulative(), one.total)
        yield storage
        yield histogram(
            "ktnchat_bus_publish_seconds",
            "Cluster bus publish latency (one pipelined round trip to Redis)",
            snap.bus_publish,
        )
        yield counter(
            "ktnchat_bus_publish_lost",
            "Bus events that could not be published (Redis down)",
            snap.bus_publish_lost,
        )
        yield counter(
            "ktnchat_bus_catch_ups",
            "Repairs from the store that delivered messages here (a hole in a room's "
            "order, a bus reconnect, a room newly heard)",
            snap.bus_catch_ups,
        )
        yield counter(
            "ktnchat_bus_catch_up_messages",
            "Messages delivered by those repairs",
            snap.bus_catch_up_messages,
        )
        yield histogram(
            "ktnchat_loop_pass_seconds",
            "Time an I/O loop spent handling one pass of ready sockets",
            snap.loop_pass,
        )
        for name, (text, read) in sorted(self.gauges.items()):
            gauge = GaugeMetricFamily(name, text, labels=["worker"])
            gauge.add_metric([worker], float(read()))
            yield gauge


def exposition(collector: MetricsCollector, *more: Any) -> bytes:
    """The Prometheus text format of one collector's metrics (and of `more` collectors,
    e.g. prometheus_client's ProcessCollector)."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    for other in more:
        registry.register(other)
    return generate_latest(registry)


# What exposition() returns: the classic text format (prometheus_client's generate_latest,
# which its own HTTP handler also serves with this type unless asked for another).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
