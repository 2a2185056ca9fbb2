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
    """Counts of observations per bucket (upper bounds), their sum and count."""

    __slots__ = ("bounds", "count", "counts", "total")

    def __init__(self, bounds: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last: above every bound
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1

    def merge(self, other: Histogram) -> None:
        for index, value in enumerate(other.counts):
            self.counts[index] += value
        self.total += other.total
        self.count += other.count

    def cumulative(self) -> List[Tuple[str, float]]:
        """(le, cumulative count) pairs as the exposition format wants them."""
        out: List[Tuple[str, float]] = []
        running = 0
        for bound, value in zip(self.bounds, self.counts):
            running += value
            out.append((repr(bound), float(running)))
        out.append(("+Inf", float(self.count)))
        return out


class Counters:
    """One thread's counts. Fields are plain ints (or dicts of ints keyed by a bounded
    label), written only by the thread that owns this object."""

    __slots__ = (
        "bus_catch_up_messages",
        "bus_catch_ups",
        "bus_publish",
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
        "requests",
        "storage",
    )

    def __init__(self) -> None:
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
)
LABELLED_FIELDS = ("connections_opened", "connections_closed", "requests", "moderation")


class Registry:
    """Every thread's Counters, for one process."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: List[Counters] = []
        self.started = time.time()

    def counters(self) -> Counters:
        """This thread's Counters (created on first use)."""
        mine: Optional[Counters] = getattr(self._local, "counters", None)
        if mine is None:
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
            "ktnchat_connections_opened",
            "Connections accepted, by protocol edition and transport",
            ["edition", "transport"],
            snap.connections_opened,
        )
        yield labelled(
            "ktnchat_connections_closed",
            "Connections closed, by protocol edition and transport",
            ["edition", "transport"],
            snap.connections_closed,
        )
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
            "ktnchat_bus_publish_seconds", "Cluster bus publish latency", snap.bus_publish
        )
        yield counter(
            "ktnchat_bus_catch_ups",
            "Times this worker caught its users up from the store after a bus gap",
            snap.bus_catch_ups,
        )
        yield counter(
            "ktnchat_bus_catch_up_messages",
            "Messages delivered by catch-up from the store",
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


def exposition(collector: MetricsCollector) -> bytes:
    """The Prometheus text format of one collector's metrics."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry)
