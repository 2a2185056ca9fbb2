# One I/O loop's room broadcasts of the current pass, held until the pass writes.
#
# Rules (loop thread only, like the connections it queues to):
# - A broadcast to a whole room's member snapshot (presence.Members, one object per
#   membership) is added here instead of being queued to each reader at once. Adjacent
#   broadcasts to the same snapshot object form one group: the same sessions, in the
#   same order, so each reader gets the group's objects joined in one append (one
#   Python step per reader per group, not per message). Only adjacent ones: a group is
#   never moved past another, so every connection's output keeps the exact order in
#   which deliver() was called.
# - The groups are settled (queued to their readers) before anything else is queued to
#   any connection of this loop (Connection.send settles first), and before the loop
#   writes. A reader is handled as ChatServer.deliver would: the streaming fast path
#   (one append), else Connection.send of each object (paced, 2014-edition, WebSocket,
#   or over its outbox cap), so pacing, framing and the overflow drop are unchanged.
# - Used only while the server has one I/O loop: every reader is then on this loop.
from __future__ import annotations

from typing import Callable, List, Optional, Protocol, Sequence

from ktnchat.metrics import Counters
from ktnchat.protocol import Response
from ktnchat.service.session import Session


class _Group:
    __slots__ = ("frames", "members", "responses")

    def __init__(self, members: Sequence[Session], frame: bytes, response: Response) -> None:
        self.members = members
        self.frames = [frame]
        self.responses = [response]


class Counted(Protocol):
    counts: Optional[Counters]


class PendingFanout:
    """Room broadcasts of this pass, grouped, waiting to be queued to their readers."""

    __slots__ = ("_encode_2014", "_limit", "_loop", "groups")

    def __init__(
        self,
        loop: Counted,
        max_outbox_bytes: int,
        encode_2014: Callable[[Response], List[bytes]],
    ) -> None:
        self._loop = loop
        self._limit = max_outbox_bytes
        self._encode_2014 = encode_2014
        self.groups: List[_Group] = []

    def add(self, members: Sequence[Session], frame: bytes, response: Response) -> None:
        """Hold one encoded broadcast for `members` (a presence snapshot)."""
        groups = self.groups
        if groups:
            last = groups[-1]
            if last.members is members:
                last.frames.append(frame)
                last.responses.append(response)
                return
        groups.append(_Group(members, frame, response))

    def settle(self) -> None:
        """Queue every held broadcast to its readers, in order."""
        while self.groups:  # queuing cannot add groups; bounded by what is held now
            groups, self.groups = self.groups, []
            for group in groups:
                self._queue(group)

    def _queue(self, group: _Group) -> None:
        frames = group.frames
        blob = frames[0] if len(frames) == 1 else b"".join(frames)
        size = len(blob)
        limit = self._limit
        web: Optional[List[bytes]] = None  # each object in its WebSocket frame, once
        web_blob = b""
        old: Optional[List[bytes]] = None  # the 2014 edition's objects, once
        delivered = 0
        for session in group.members:
            target = session.transport
            if target is None or target.closed:
                continue
            delivered += 1
            outbox = target.outbox
            if target.plain:
                if not outbox.interval and outbox.queued_bytes + size <= limit:
                    outbox.frames.append(blob)
                    outbox.queued_bytes += size
                    target.loop.dirty.add(target)
                else:
                    target.send(frames)
                continue
            framing = target.framing
            if target.edition2014 is not None:
                if old is None:
                    encode = self._encode_2014
                    old = [obj for response in group.responses for obj in encode(response)]
                target.send(old if framing is None else [framing(obj) for obj in old])
                continue
            if framing is None:  # not plain, not 2014, not framed: nothing else exists
                target.send(frames)
                continue
            if web is None:
                web = [framing(frame) for frame in frames]
                web_blob = b"".join(web)
            if not outbox.interval and outbox.queued_bytes + len(web_blob) <= limit:
                outbox.frames.append(web_blob)
                outbox.queued_bytes += len(web_blob)
                target.loop.dirty.add(target)
            else:
                target.send(web)
        counts = self._loop.counts
        if counts is not None:
            counts.deliveries += delivered * len(frames)
