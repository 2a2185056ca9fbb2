# One order per room, cluster-wide: this worker's room sequencers, joins, and the thread
# that repairs holes and catches rooms up from the store.
#
# Rules:
# - A room has a sequencer here while it has local members (created on the first join,
#   dropped by the sweep once nobody here is in it). Every message of the room reaches
#   local users through it: those stored here (local first: in the pass that stored them,
#   before they are published) and those from the bus. So every reader on every worker
#   gets the room's messages in the store's order (ktnchat/cluster/sequencer.py).
# - A join happens under the room's sequencer lock: the joiner becomes a member and takes
#   the id of the last message delivered here as its floor; its history is read up to the
#   floor, and everything after it reaches it live. Either in history or live, never both,
#   never neither.
# - Releasing and handing to the I/O loops (emit) happen under the room's lock, so the
#   order released is the order queued on every connection.
# - Holes open for more than `hole_bound` seconds, rooms newly subscribed on the bus and
#   every room after a bus reconnect (or a `head` announcement from a worker whose
#   publishes were lost) are repaired from the store on this module's own thread, never on
#   an I/O thread: messages with id > last, at most `catch_up_limit` (the newest; the
#   room's local users are told how many they missed and that `history` has them).
# - A quiet room (nothing released here for QUIET_SECONDS) is also checked against the
#   store at every sweep: a message whose publish never happened (its worker was killed
#   just after storing it) leaves no hole until the room's next message, so without this
#   check it would wait for that message; with it, it arrives within a few seconds. Busy
#   rooms need no check (their next message shows the hole); one read per quiet room per
#   sweep.
# - The first local member of a room waits (on its worker thread, bounded) until the bus
#   carries the room's channel here, so notices sent after its join reach it.
# - Lock order: a room's lock, then Presence.lock, then an I/O loop's post lock. The
#   service's room lock may be held when a join takes a room lock, never the reverse.
from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Dict, Optional, Sequence, Set, Tuple

from ktnchat.cluster.sequencer import RoomSequencer
from ktnchat.metrics import Registry
from ktnchat.protocol import Response
from ktnchat.service.presence import Presence
from ktnchat.service.session import Session
from ktnchat.storage import Storage, StorageError, StoredMessage

log = logging.getLogger("ktnchat.cluster")

HOLE_BOUND = 0.15  # seconds a hole may stay open before the store fills it
CATCH_UP_LIMIT = 1000  # most messages one repair delivers per room
SWEEP_SECONDS = 2.0  # how often rooms without local members are dropped
RETRY_SECONDS = 0.5  # after the store failed a repair
SUBSCRIBE_WAIT = 1.0  # most a first joiner waits for the room's bus channel
QUIET_SECONDS = 1.0  # a room with no release for this long is checked at each sweep

Emit = Callable[[str, Response], None]  # (room key, response): to the room's local members


class _Room:
    __slots__ = ("catch_up", "lock", "name", "released_at", "retry_at", "seq")

    def __init__(self, name: str, last: int, now: float) -> None:
        self.name = name
        self.lock = threading.Lock()
        self.seq: RoomSequencer[Response] = RoomSequencer(last)
        self.catch_up = False
        self.retry_at = 0.0
        self.released_at = now  # when this worker last released one of its messages


class RoomOrder:
    """This worker's per-room sequencers (see the header)."""

    def __init__(
        self,
        storage: Storage,
        presence: Presence,
        to_response: Callable[[StoredMessage], Response],
        notice: Callable[[str, int], Response],
        emit: Emit,
        want_rooms: Callable[[Set[str]], None],
        wait_room: Callable[[str, float], bool],
        on_enter: Optional[Callable[[Session], None]] = None,
        hole_bound: float = HOLE_BOUND,
        catch_up_limit: int = CATCH_UP_LIMIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.storage = storage
        self.presence = presence
        self.to_response = to_response
        self.notice = notice  # (room name, how many missed) -> the info to send
        self.emit = emit
        self.want_rooms = want_rooms
        self.wait_room = wait_room  # (room key, seconds): until the bus carries the room here
        self.on_enter = on_enter  # called under the room's lock as a session joins
        self.hole_bound = hole_bound
        self.catch_up_limit = catch_up_limit
        self.clock = clock
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._rooms: Dict[str, _Room] = {}
        self._unannounced: Dict[str, int] = {}  # room -> newest id whose publish was lost
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="ktnchat-order", daemon=True)
        self.repairs = 0  # how many repairs delivered something (for tests and logs)
        self.metrics: Optional[Registry] = None  # counts repairs when metrics are on

    # -- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._wake.notify()
        if self._thread.is_alive():
            self._thread.join(5)

    # -- joins ----------------------------------------------------------------------------

    def enter(
        self, session: Session, room_key: str, room_name: str
    ) -> Tuple[Sequence[Session], int]:
        """Make `session` a member of the room; returns the members before it and its
        floor (its history must stop there).

        Raises:
            StorageError: the room had no sequencer here and the store failed.
        """
        while True:
            room = self._room(room_key, room_name)
            with room.lock:
                if room.seq.dead:
                    continue  # swept just now: make a fresh one
                members = self.presence.members(room_key)
                self.presence.enter(session, room_key)
                if self.on_enter is not None:
                    self.on_enter(session)
                return members, room.seq.last

    def _room(self, room_key: str, room_name: str) -> _Room:
        with self._lock:
            room = self._rooms.get(room_key)
        if room is not None:
            return room
        newest = self.storage.recent_messages(room_name, 1)
        created = _Room(room_name, newest[-1].id if newest else 0, self.clock())
        with self._lock:
            room = self._rooms.setdefault(room_key, created)
            rooms = set(self._rooms)
        if room is created:
            self.want_rooms(rooms)
            # The first local member: hear the room's channel before joining, so the room's
            # notices (not stored, so not repairable) reach the joiner too. Messages would
            # be repaired from the store anyway.
            if not self.wait_room(room_key, SUBSCRIBE_WAIT):
                log.warning("cluster: %s: bus subscription not confirmed in time", room_name)
        return room

    # -- messages -------------------------------------------------------------------------

    def offer(self, room_key: str, message_id: int, prev: int, response: Response) -> None:
        """A stored message of the room (stored here, or from the bus)."""
        with self._lock:
            room = self._rooms.get(room_key)
        if room is None:
            return  # nobody here is in that room
        with room.lock:
            if room.seq.dead:
                return
            now = self.clock()
            released = room.seq.offer(message_id, prev, response, now)
            if released:
                room.released_at = now
            for _, item in released:
                self.emit(room_key, item)
            waiting = room.seq.hole_since is not None
        if waiting:
            with self._lock:
                self._wake.notify()

    def head(self, room_key: str, message_id: int) -> None:
        """Another worker says the room has messages up to `message_id`."""
        with self._lock:
            room = self._rooms.get(room_key)
            if room is not None and message_id > room.seq.last:
                room.catch_up = True
                self._wake.notify()

    def catch_up(self, room_key: Optional[str] = None) -> None:
        """Repair the room (every room when None) from the store soon."""
        with self._lock:
            for key, room in self._rooms.items():
                if room_key is None or key == room_key:
                    room.catch_up = True
            self._wake.notify()

    def unannounced(self, room_key: str, message_id: int) -> None:
        """A message stored here whose publish was lost (Redis down)."""
        with self._lock:
            self._unannounced[room_key] = max(message_id, self._unannounced.get(room_key, 0))

    def take_unannounced(self) -> Dict[str, int]:
        with self._lock:
            taken, self._unannounced = self._unannounced, {}
        return taken

    def rooms(self) -> Set[str]:
        with self._lock:
            return set(self._rooms)

    def last(self, room_key: str) -> Optional[int]:
        with self._lock:
            room = self._rooms.get(room_key)
        return None if room is None else room.seq.last

    # -- the repair thread ----------------------------------------------------------------

    def _run(self) -> None:
        next_sweep = self.clock() + SWEEP_SECONDS
        while True:
            with self._lock:
                if self._stopping:
                    return
                now = self.clock()
                due = [
                    (key, room)
                    for key, room in self._rooms.items()
                    if room.retry_at <= now
                    and (room.catch_up or room.seq.repair_due(now, self.hole_bound))
                ]
                if not due and now < next_sweep:
                    wait = min(next_sweep - now, self._next_due(now))
                    self._wake.wait(max(0.005, wait))
                    continue
            for key, room in due:
                try:
                    self._repair(key, room)
                except Exception:  # a bug: keep repairing the other rooms, retry this one
                    log.exception("cluster: repairing %s failed", room.name)
                    with room.lock:
                        room.catch_up = True
                        room.retry_at = self.clock() + RETRY_SECONDS
            if self.clock() >= next_sweep:
                next_sweep = self.clock() + SWEEP_SECONDS
                try:
                    self._sweep()
                except Exception:
                    log.exception("cluster: sweeping rooms failed")

    def _next_due(self, now: float) -> float:
        """Seconds until the next hole is due (caller holds _lock)."""
        soonest = SWEEP_SECONDS
        for room in self._rooms.values():
            if room.catch_up:
                soonest = min(soonest, room.retry_at - now)
            since = room.seq.hole_since
            if since is not None:
                soonest = min(soonest, max(room.retry_at, since + self.hole_bound) - now)
        return soonest

    def _repair(self, room_key: str, room: _Room) -> None:
        with room.lock:
            room.catch_up = False
            after = room.seq.last
        try:
            stored, total = self.storage.messages_after(room.name, after, self.catch_up_limit)
        except StorageError as exc:
            log.warning("cluster: catching up %s failed (retrying): %s", room.name, exc)
            with room.lock:
                room.catch_up = True
                room.retry_at = self.clock() + RETRY_SECONDS
            return
        items = [(message.id, self.to_response(message)) for message in stored]
        missed = total - len(stored)
        with room.lock:
            if room.seq.dead:
                return
            now = self.clock()
            released = room.seq.repair(items, now)
            if released:
                room.released_at = now
            if missed > 0 and stored and released and released[0][0] == stored[0].id:
                log.warning("cluster: %s: %d message(s) past the catch-up bound", room.name, missed)
                self.emit(room_key, self.notice(room.name, missed))
            for _, item in released:
                self.emit(room_key, item)
        if released:
            self.repairs += 1
            if self.metrics is not None:
                counts = self.metrics.counters()
                counts.bus_catch_ups += 1
                counts.bus_catch_up_messages += len(released)
            log.info(
                "cluster: %s: %d message(s) delivered from the store", room.name, len(released)
            )

    def _sweep(self) -> None:
        """Drop the sequencers of rooms nobody here is in any more; check quiet rooms
        against the store (see the header)."""
        now = self.clock()
        with self._lock:
            for room in self._rooms.values():
                if now - room.released_at >= QUIET_SECONDS:
                    room.catch_up = True
            for key, room in list(self._rooms.items()):
                if self.presence.member_count(key) == 0:
                    with room.lock:
                        if self.presence.member_count(key) == 0:
                            room.seq.dead = True
                            del self._rooms[key]
            rooms = set(self._rooms)
        self.want_rooms(rooms)


__all__ = ["CATCH_UP_LIMIT", "HOLE_BOUND", "RoomOrder"]
