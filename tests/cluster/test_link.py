# The bus link itself, between two ClusterLink objects on a real Redis: publishing is
# queued and sent in order (by the publisher thread, or by the queueing thread itself);
# a run of events for one channel crosses as one batch and arrives as the events it
# carried; a worker never handles its own events; what cannot be sent, or was written but
# never answered, is reported to on_lost. Every wait is bounded.
from __future__ import annotations

import threading
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from ktnchat.cluster.link import ClusterLink
from tests.cluster.conftest import RedisServer
from tests.helpers import wait_until


class Heard:
    def __init__(self) -> None:
        self.events: List[Dict[str, Any]] = []
        self.lock = threading.Lock()

    def __call__(self, event: Dict[str, Any]) -> None:
        with self.lock:
            self.events.append(event)

    def taken(self) -> List[Dict[str, Any]]:
        with self.lock:
            return list(self.events)


@pytest.fixture
def links(redis_server: RedisServer) -> Iterator[Tuple[ClusterLink, Heard, ClusterLink, Heard]]:
    started: List[ClusterLink] = []
    try:
        pair = []
        for name in ("a", "b"):
            link = ClusterLink(redis_server.url, namespace="linktest", worker=name)
            heard = Heard()
            link.start(heard)
            started.append(link)
            link.want_rooms({"lobby"})
            assert link.wait_room("lobby", 10.0)
            pair.extend([link, heard])
        yield pair[0], pair[1], pair[2], pair[3]  # type: ignore[misc]
    finally:
        for link in started:
            link.stop()


def room_event(n: int) -> Dict[str, Any]:
    return {"t": "room", "room": "lobby", "id": n, "p": n - 1, "r": {"k": "message", "c": n}}


def test_a_burst_for_one_room_arrives_whole_and_in_order(links: Any) -> None:
    a, heard_a, _, heard_b = links
    a.publish_many([room_event(n) for n in range(1, 51)])
    a.publish_many([room_event(n) for n in range(51, 61)])
    assert a.flush(10.0)
    wait_until(lambda: len(heard_b.taken()) >= 60, 10.0)
    got = heard_b.taken()
    assert [e["id"] for e in got] == list(range(1, 61))
    assert {e["w"] for e in got} == {"a"}
    assert all(e["t"] == "room" and e["room"] == "lobby" for e in got)
    assert heard_a.taken() == []  # its own events are dropped unread


def test_events_for_different_channels_keep_their_order(links: Any) -> None:
    a, _, b, heard_b = links
    mixed = [
        room_event(1),
        room_event(2),
        {"t": "state", "kind": "topic", "room": "lobby", "topic": "x"},
        room_event(3),
        {"t": "state", "kind": "topic", "room": "lobby", "topic": "y"},
        {"t": "state", "kind": "topic", "room": "lobby", "topic": "z"},
    ]
    a.publish_many(mixed)
    assert a.flush(10.0)
    wait_until(lambda: len(heard_b.taken()) >= 6, 10.0)
    got = [(e["t"], e.get("id", e.get("topic"))) for e in heard_b.taken()]
    assert got == [
        ("room", 1),
        ("room", 2),
        ("state", "x"),
        ("room", 3),
        ("state", "y"),
        ("state", "z"),
    ]
    assert b.worker == "b"


def test_what_cannot_be_sent_is_reported_lost(links: Any, redis_server: RedisServer) -> None:
    a, _, _, _ = links
    redis_server.stop()
    lost: List[List[Dict[str, Any]]] = []
    batch = [room_event(7), room_event(8)]
    a.publish_many(batch, lost.append)
    wait_until(lambda: len(lost) == 1, 10.0)
    assert [e["id"] for e in lost[0]] == [7, 8]


def test_a_worker_thread_sends_its_own_burst_and_redis_confirms_it(links: Any) -> None:
    a, _, _, heard_b = links
    a.publish_many([room_event(n) for n in range(1, 11)], wake=False)
    a.publish_many([room_event(n) for n in range(11, 21)], wake=False)
    a.send_queued()  # as a storage thread does when it runs out of jobs
    wait_until(lambda: len(heard_b.taken()) >= 20, 10.0)
    assert [e["id"] for e in heard_b.taken()] == list(range(1, 21))
    assert a.flush(10.0)  # confirmed by Redis


def test_events_written_but_never_answered_are_reported_lost(
    links: Any, redis_server: RedisServer
) -> None:
    import os
    import signal

    a, _, _, _ = links
    a.publish_many([room_event(0)])  # the publisher's connection is made
    assert a.flush(10.0)
    lost: List[List[Dict[str, Any]]] = []
    os.kill(redis_server.proc.pid, signal.SIGSTOP)  # takes nothing in, answers nothing
    try:
        a.publish_many([room_event(1), room_event(2)], lost.append, wake=False)
        a.send_queued()  # written to the socket: Redis has not answered
        assert lost == []
    finally:
        redis_server.stop()  # SIGKILL ends a stopped process too
    wait_until(lambda: len(lost) == 1, 10.0)  # the publisher sees the connection end
    assert [e["id"] for e in lost[0]] == [1, 2]
