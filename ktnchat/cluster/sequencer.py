# One room's delivery order on one worker: the store decides the order, this follows it.
#
# Rules (pure logic, no threads, no I/O: the caller holds a lock and reads the store):
# - Each stored message carries `prev`, the id of the room's message stored just before it
#   (ktnchat/storage/base.py). A message is released when prev <= last (the last id this
#   worker delivered in the room) and id > last; then `last` becomes its id. A message
#   with id <= last is a duplicate and is dropped. Otherwise it is held: a hole is open.
# - Ids along a room's chain increase, so releasing in chain order is releasing in id
#   order, and every worker releases the same messages in the same order.
# - A hole that has not filled within the caller's bound is repaired from the store: the
#   caller reads the room's messages with id > last (at most a bound) and gives them to
#   repair(), which releases them in id order (holes left by deleted messages and by
#   publishes that never came are skipped, since the store no longer has them), then
#   whatever held messages now follow. Messages held that the read did not see stay held,
#   with a fresh clock (they were stored after the read began).
from __future__ import annotations

from typing import Dict, Generic, List, Optional, Tuple, TypeVar

T = TypeVar("T")

Released = List[Tuple[int, T]]


class RoomSequencer(Generic[T]):
    """Releases a room's messages (id, item) in the store's order, once each."""

    __slots__ = ("dead", "held", "hole_since", "last")

    def __init__(self, last: int) -> None:
        self.last = last  # the id of the last message released in this room here
        self.held: Dict[int, Tuple[int, T]] = {}  # id -> (prev, item), waiting for a hole
        self.hole_since: Optional[float] = None  # when the oldest open hole opened
        self.dead = False  # dropped (no local members); whoever holds it must look again

    def offer(self, message_id: int, prev: int, item: T, now: float) -> Released[T]:
        """A message from this worker or the bus; returns what may be delivered now."""
        if message_id <= self.last or message_id in self.held:
            return []  # a duplicate (the bus and a repair both brought it)
        if prev > self.last:
            self.held[message_id] = (prev, item)
            if self.hole_since is None:
                self.hole_since = now
            return []
        self.last = message_id
        released: Released[T] = [(message_id, item)]
        if self.held:
            self._drain(released, now)
        return released

    def repair_due(self, now: float, bound: float) -> bool:
        return self.hole_since is not None and now - self.hole_since >= bound

    def repair(self, stored: List[Tuple[int, T]], now: float) -> Released[T]:
        """Messages with id > last read from the store (ascending ids): release them, and
        the held messages they make ready, in id order."""
        released: Released[T] = []
        for message_id, item in stored:
            if message_id <= self.last:
                continue
            held = self.held.pop(message_id, None)
            released.append((message_id, item if held is None else held[1]))
            self.last = message_id
        self._drain(released, now)
        if self.held:
            self.hole_since = now  # stored after the read began: wait for them afresh
        return released

    def _drain(self, released: Released[T], now: float) -> None:
        held = self.held
        for message_id in sorted(held):
            prev, item = held[message_id]
            if message_id <= self.last:
                del held[message_id]
                continue
            if prev > self.last:
                break
            del held[message_id]
            released.append((message_id, item))
            self.last = message_id
        if not held:
            self.hole_since = None
        elif released or self.hole_since is None:
            self.hole_since = now  # progress: the next hole gets a full bound


__all__ = ["RoomSequencer"]
