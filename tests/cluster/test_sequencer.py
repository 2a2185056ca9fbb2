# The per-room sequencer (pure logic) and RoomOrder (sequencers + joins + repair thread)
# against an in-memory store: in order, holes filled late or from the store, duplicates,
# deleted messages, the catch-up bound, and "history or live, never both, never neither".
from __future__ import annotations

import threading
from typing import List, Set, Tuple

from ktnchat.cluster.order import RoomOrder
from ktnchat.cluster.sequencer import RoomSequencer
from ktnchat.protocol import INFO, MESSAGE, Response
from ktnchat.service.presence import Presence
from ktnchat.service.session import Session
from ktnchat.storage import MemoryStorage, StoredMessage
from tests.helpers import wait_until


def ids(released: List[Tuple[int, str]]) -> List[int]:
    return [message_id for message_id, _ in released]


def test_in_order_messages_go_out_at_once() -> None:
    seq: RoomSequencer[str] = RoomSequencer(last=10)
    assert ids(seq.offer(11, 10, "a", 0.0)) == [11]
    assert ids(seq.offer(12, 11, "b", 0.0)) == [12]
    assert seq.hole_since is None and seq.last == 12


def test_a_hole_filled_by_a_late_message_releases_both_in_order() -> None:
    seq: RoomSequencer[str] = RoomSequencer(last=10)
    assert seq.offer(13, 12, "c", 1.0) == []
    assert seq.offer(12, 11, "b", 1.1) == []
    assert seq.hole_since == 1.0
    assert ids(seq.offer(11, 10, "a", 1.2)) == [11, 12, 13]
    assert seq.hole_since is None and not seq.held


def test_duplicates_are_dropped() -> None:
    seq: RoomSequencer[str] = RoomSequencer(last=10)
    assert ids(seq.offer(11, 10, "a", 0.0)) == [11]
    assert seq.offer(11, 10, "a", 0.0) == []
    assert seq.offer(9, 8, "old", 0.0) == []
    assert seq.offer(13, 12, "c", 0.0) == []
    assert seq.offer(13, 12, "c", 0.0) == []  # held once
    assert len(seq.held) == 1


def test_a_prev_below_last_means_deleted_messages_between() -> None:
    seq: RoomSequencer[str] = RoomSequencer(last=10)
    # 11 was stored, delivered, then deleted; the store's newest was 9 when 12 came.
    assert ids(seq.offer(12, 9, "x", 0.0)) == [12]


def test_a_hole_is_due_after_the_bound_and_repaired_from_the_store() -> None:
    seq: RoomSequencer[str] = RoomSequencer(last=10)
    seq.offer(13, 12, "c", 5.0)
    assert not seq.repair_due(5.1, 0.15) and seq.repair_due(5.2, 0.15)
    # The store has 11 and 13 (12 was deleted before anyone heard of it).
    released = seq.repair([(11, "a"), (13, "c-from-store")], 5.2)
    assert released == [(11, "a"), (13, "c")]  # the held copy is the one delivered
    assert seq.last == 13 and seq.hole_since is None


def test_a_repair_keeps_messages_stored_after_its_read_waiting() -> None:
    seq: RoomSequencer[str] = RoomSequencer(last=10)
    seq.offer(14, 13, "d", 1.0)  # 13 is on its way
    assert ids(seq.repair([(11, "a"), (12, "b")], 2.0)) == [11, 12]
    assert seq.hole_since == 2.0 and 14 in seq.held
    assert ids(seq.offer(13, 12, "c", 2.1)) == [13, 14]


def fake_response(message: StoredMessage) -> Response:
    return Response(MESSAGE, message.text, message.sender, "t", {"id": message.id})


class Harness:
    """A RoomOrder over a memory store, recording what each member would receive."""

    def __init__(self, hole_bound: float = 0.05, limit: int = 1000) -> None:
        self.store = MemoryStorage()
        self.presence = Presence()
        self.got: List[Tuple[str, Response]] = []
        self.lock = threading.Lock()
        self.wanted: Set[str] = set()
        self.order = RoomOrder(
            self.store,
            self.presence,
            fake_response,
            lambda room, missed: Response(INFO, f"missed {missed}", "server", "t", {}),
            self.emit,
            self.want,
            lambda room, timeout: True,
            hole_bound=hole_bound,
            catch_up_limit=limit,
        )
        self.order.start()

    def emit(self, room: str, response: Response) -> None:
        with self.lock:
            self.got.append((room, response))

    def want(self, rooms: Set[str]) -> None:
        self.wanted = set(rooms)

    def texts(self) -> List[str]:
        with self.lock:
            return [str(response.content) for _, response in self.got]

    def join(self, name: str, room: str = "lobby") -> Tuple[Session, int]:
        session = Session(name)
        session.username = name
        _, floor = self.order.enter(session, room, room)
        return session, floor

    def store_message(self, text: str, room: str = "lobby") -> StoredMessage:
        return self.store.append_message(room, "x", text, 0.0)

    def offer(self, message: StoredMessage, room: str = "lobby") -> None:
        self.order.offer(room, message.id, message.prev, fake_response(message))


def test_room_order_delivers_local_and_remote_messages_in_store_order() -> None:
    h = Harness()
    try:
        h.join("alice")
        assert h.wanted == {"lobby"}
        a, b, c = (h.store_message(t) for t in "abc")
        h.offer(c)  # from the bus, before b's publish arrived
        h.offer(b)
        h.offer(a)
        h.offer(b)  # again (a repair raced the bus)
        assert h.texts() == ["a", "b", "c"]
    finally:
        h.order.stop()


def test_room_order_repairs_a_hole_whose_message_never_comes() -> None:
    h = Harness(hole_bound=0.05)
    try:
        h.join("alice")
        h.store_message("lost on the bus")
        second = h.store_message("second")
        h.offer(second)
        wait_until(lambda: len(h.texts()) == 2, timeout=5)
        assert h.texts() == ["lost on the bus", "second"]
    finally:
        h.order.stop()


def test_room_order_skips_a_message_deleted_before_it_arrived() -> None:
    h = Harness(hole_bound=0.05)
    try:
        h.join("alice")
        doomed = h.store_message("removed at once")
        after = h.store_message("after")
        h.store.delete_message(doomed.id)
        h.offer(after)
        wait_until(lambda: h.texts() == ["after"], timeout=5)
    finally:
        h.order.stop()


def test_a_catch_up_past_the_bound_delivers_the_newest_and_says_how_many_were_missed() -> None:
    h = Harness(limit=5)
    try:
        h.join("alice")
        for i in range(12):
            h.store_message(f"m{i}")
        h.order.catch_up()  # as after a bus reconnect
        wait_until(lambda: len(h.texts()) == 6, timeout=5)
        assert h.texts() == ["missed 7"] + [f"m{i}" for i in range(7, 12)]
    finally:
        h.order.stop()


def test_a_joiner_gets_each_message_in_history_or_live_never_both_never_neither() -> None:
    h = Harness()
    try:
        h.join("alice")
        early = h.store_message("before")
        h.offer(early)
        stored_not_yet_offered = h.store_message("in flight")
        _, floor = h.join("bob")
        history = [m.text for m in h.store.recent_messages("lobby", 10, before_id=floor + 1)]
        h.offer(stored_not_yet_offered)
        assert history == ["before"]  # the live stream brings "in flight"
        assert h.texts() == ["before", "in flight"]
    finally:
        h.order.stop()


def test_rooms_without_local_members_are_dropped_by_the_sweep() -> None:
    h = Harness()
    try:
        session, _ = h.join("alice", "games")
        h.presence.leave(session)
        wait_until(lambda: h.order.rooms() == set(), timeout=10)
        assert h.wanted == set()
    finally:
        h.order.stop()


def test_a_quiet_room_gets_a_stored_message_that_was_never_published() -> None:
    # Its worker stored it and was killed before publishing: no later message shows the
    # hole, so only the sweep's check of quiet rooms against the store brings it.
    h = Harness()
    try:
        h.join("alice")
        h.store_message("stored, never published")
        wait_until(lambda: h.texts() == ["stored, never published"], timeout=10)
        h.store_message("and another, later")
        wait_until(lambda: len(h.texts()) == 2, timeout=10)
        assert h.texts() == ["stored, never published", "and another, later"]
    finally:
        h.order.stop()
