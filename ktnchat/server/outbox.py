# A connection's queue of encoded response objects, and when they may be written.
#
# Rules (single-threaded: only the owning I/O loop touches an Outbox):
# - Streaming mode coalesces everything queued into one write per flush.
# - Paced mode (the default for a new connection) hands out one object at a time and
#   no sooner than `interval` seconds after the previous one was fully written, so a
#   client that does `json.loads(recv(N))` never finds two objects in one read.
# - A paced outbox with more than `backlog_limit` objects waiting streams until it has
#   drained, then paces again (better a coalesced burst than dropping a client that can
#   parse it; a naive client is back on one object per segment once the flood is over).
#   Only stream() (the client's own `stream on`) switches pacing off for good.
# - `queued_bytes` counts everything not yet written, for the overflow and pause limits.
# - `frames` is public for one caller: the fan-out's hot path (Broadcaster.queue in
#   ktnchat/server/fanout.py) appends to a streaming outbox directly (exactly what push()
#   does when not paced), saving a call per delivery.
from __future__ import annotations

from typing import List, Optional


class Outbox:
    __slots__ = (
        "_pending",
        "backlog_limit",
        "frames",
        "interval",
        "next_at",
        "pace",
        "queued_bytes",
    )

    def __init__(self, interval: float, backlog_limit: int) -> None:
        self.pace = interval  # the pacing this connection returns to after a flood
        self.interval = interval  # the pacing in force now; 0: streaming
        self.backlog_limit = backlog_limit
        self.frames: List[bytes] = []
        self._pending: Optional[memoryview] = None
        self.queued_bytes = 0
        self.next_at = 0.0

    @property
    def paced(self) -> bool:
        return self.interval > 0

    @property
    def empty(self) -> bool:
        return self._pending is None and not self.frames

    def stream(self) -> None:
        """Switch to streaming for good: coalesce from now on."""
        self.interval = self.pace = 0.0

    def set_pace(self, interval: float) -> None:
        """Pace again (the client said `stream off`)."""
        self.interval = self.pace = interval

    def push(self, frame: bytes) -> bool:
        """Queue one encoded object. Returns False if this made a paced outbox stream."""
        self.frames.append(frame)
        self.queued_bytes += len(frame)
        if self.interval and len(self.frames) > self.backlog_limit:
            self.interval = 0.0
            return False
        return True

    def due(self, now: float) -> Optional[float]:
        """When the next write may happen: None if nothing waits, else a time <= now if now."""
        if self._pending is not None:
            return now
        if not self.frames:
            return None
        return self.next_at if self.interval else now

    def chunk(self, now: float) -> Optional[memoryview]:
        """The bytes to write now, or None (nothing queued, or paced and not yet due)."""
        if self._pending is not None:
            return self._pending
        frames = self.frames
        if not frames:
            return None
        if self.interval:
            if now < self.next_at:
                return None
            data = frames.pop(0)
        elif len(frames) == 1:
            data = frames.pop()
        else:
            data = b"".join(frames)
            frames.clear()
        self._pending = memoryview(data)
        return self._pending

    def written(self, count: int, now: float) -> bool:
        """Record that `count` bytes of the chunk were written; True if it is all gone."""
        pending = self._pending
        assert pending is not None
        self.queued_bytes -= count
        if count >= len(pending):
            self._pending = None
            if self.interval:
                self.next_at = now + self.interval
            elif self.pace and not self.frames:
                self.interval = self.pace  # the flood has drained: pace again
                self.next_at = now + self.pace
            return True
        self._pending = pending[count:]
        return False
