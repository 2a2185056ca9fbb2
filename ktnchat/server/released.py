# Messages a room's sequencer released, on their way to the only I/O loop (a cluster with
# one I/O thread, the default).
#
# Rules:
# - add() is called under the room's lock, from any thread, so the queue holds each room's
#   messages in the order they were released; it does not wake the loop.
# - Whoever released them then either calls wake() (the bus thread, the repair thread),
#   which posts one drain unless one is already posted, or (the storage thread) posts work
#   of its own that calls drain() first: a stored message and its sender's own outcome
#   reach the loop in one post.
# - drain() runs on the loop's thread and delivers everything queued, oldest first.
# - No wake is lost: a posted drain clears its flag before it takes items, so an item added
#   while a drain is under way is either taken by it or followed by a fresh post. Two
#   posts at once are harmless (the second finds the queue empty).
from __future__ import annotations

from collections import deque
from typing import Callable, Deque, Sequence, Tuple

from ktnchat.protocol import Response
from ktnchat.service.session import Session

Deliver = Callable[[Response, Sequence[Session]], None]


class ReleasedQueue:
    """Released room messages (response, members snapshot) waiting for the loop."""

    def __init__(self, post: Callable[[Callable[[], None]], None], deliver: Deliver) -> None:
        self._post = post  # the loop's post()
        self._deliver = deliver  # on the loop's thread: queue one message to its members
        self._items: Deque[Tuple[Response, Sequence[Session]]] = deque()
        self._posted = False

    def add(self, response: Response, members: Sequence[Session]) -> None:
        self._items.append((response, members))

    def wake(self) -> None:
        """Have the loop drain the queue soon (safe from any thread)."""
        if self._items and not self._posted:
            self._posted = True
            self._post(self._drain_posted)

    def drain(self) -> None:
        """On the loop's thread: deliver everything queued, in order."""
        items, deliver = self._items, self._deliver
        while items:
            response, members = items.popleft()
            deliver(response, members)

    def _drain_posted(self) -> None:
        self._posted = False
        self.drain()


__all__ = ["ReleasedQueue"]
