# Queuing a broadcast to its readers (Broadcaster), and one I/O loop's room broadcasts of
# the current pass, held until the pass writes (PendingFanout).
#
# Rules (PendingFanout: its loop's thread only; Broadcaster.queue: any thread, touching
# only the connections of the calling thread's loop and posting to the others):
# - A broadcast to a whole room's member snapshot (presence.Members, one object per
#   membership) is added here instead of being queued to each reader at once. Adjacent
#   broadcasts to the same snapshot object form one group: the same sessions, in the
#   same order, so each reader gets the group's objects joined in one append (one
#   Python step per reader per group, not per message). Only adjacent ones: a group is
#   never moved past another, so every connection's output keeps the exact order in
#   which deliver() was called.
# - The groups are settled (queued to their readers) before anything else is queued to
#   any connection of this loop (Connection.send settles first), and before the loop
#   writes. Broadcaster.queue, which ChatServer.deliver also queues every other
#   broadcast with, handles a reader: the streaming fast path (one append), else
#   Connection.send of the objects (paced, 2014-edition, WebSocket, or over its outbox
#   cap), so pacing, framing and the overflow drop are the same on both paths.
# - Broadcasts are held only while the server has one I/O loop: every reader is then on
#   this loop.
from __future__ import annotations

import functools
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
    thread_id: Optional[int]


class Broadcaster:
    """Queues a broadcast's encoded objects to each of its readers, from any thread."""

    __slots__ = ("_encode_2014", "_limit")

    def __init__(
        self, max_outbox_bytes: int, encode_2014: Callable[[Response], List[bytes]]
    ) -> None:
        self._limit = max_outbox_bytes
        self._encode_2014 = encode_2014

    def queue(
        self,
        members: Sequence[Session],
        frames: List[bytes],
        responses: Sequence[Response],
        exclude: Optional[Session],
        here: Optional[int],
    ) -> int:
        """Queue `frames` (the objects of `responses`, in order) to every open member but
        `exclude`; returns how many got them. A reader on the calling thread's loop (`here`)
        is queued to at once: the streaming fast path (one append of the objects joined),
        else Connection.send; a reader on another loop gets a post() to its loop."""
        blob = frames[0] if len(frames) == 1 else b"".join(frames)
        size = len(blob)
        limit = self._limit
        web: Optional[List[bytes]] = None  # each object in its WebSocket frame, once
        web_blob = b""
        old: Optional[List[bytes]] = None  # the 2014 edition's objects, once
        delivered = 0
        for session in members:
            if session is exclude:
                continue
            target = session.transport
            if target is None or target.closed:
                continue
            delivered += 1
            local = target.loop.thread_id == here
            payload = frames
            if target.plain:
                outbox = target.outbox
                if local and not outbox.interval and outbox.queued_bytes + size <= limit:
                    outbox.frames.append(blob)
                    outbox.queued_bytes += size
                    target.loop.dirty.add(target)
                    continue
            elif target.edition2014 is not None:
                if old is None:
                    encode = self._encode_2014
                    old = [obj for response in responses for obj in encode(response)]
                framing = target.framing
                payload = old if framing is None else [framing(obj) for obj in old]
            elif target.framing is not None:
                if web is None:
                    web = [target.framing(frame) for frame in frames]
                    web_blob = b"".join(web)
                payload = web
                outbox = target.outbox
                if local and not outbox.interval and outbox.queued_bytes + len(web_blob) <= limit:
                    outbox.frames.append(web_blob)
                    outbox.queued_bytes += len(web_blob)
                    target.loop.dirty.add(target)
                    continue
            if local:
                target.send(payload)
            else:
                target.loop.post(functools.partial(target.send, payload))
        return delivered


class PendingFanout:
    """Room broadcasts of this pass, grouped, waiting to be queued to their readers."""

    __slots__ = ("_broadcaster", "_loop", "groups")

    def __init__(self, loop: Counted, broadcaster: Broadcaster) -> None:
        self._loop = loop
        self._broadcaster = broadcaster
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
        loop = self._loop
        while self.groups:  # queuing cannot add groups; bounded by what is held now
            groups, self.groups = self.groups, []
            for group in groups:
                delivered = self._broadcaster.queue(
                    group.members, group.frames, group.responses, None, loop.thread_id
                )
                counts = loop.counts
                if counts is not None:
                    counts.deliveries += delivered * len(group.frames)
