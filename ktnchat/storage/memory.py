# In-memory storage: the default, for demos and tests. Nothing survives a restart.
# Rules: bounded (a ring buffer of `max_messages` per room); one lock guards everything;
# every method is O(limit) or better.
from __future__ import annotations

import threading
from collections import deque
from typing import Deque, Dict, List, Optional
from urllib.parse import parse_qs, urlsplit

from ktnchat.storage.base import ConfigurationError, Storage, StoredMessage

DEFAULT_MAX_MESSAGES = 10_000


class MemoryStorage(Storage):
    """Messages in per-room ring buffers; ids count up per room from 1."""

    SCHEME = "memory"

    def __init__(self, max_messages: int = DEFAULT_MAX_MESSAGES) -> None:
        if max_messages < 1:
            raise ConfigurationError("memory storage: max_messages must be at least 1")
        self.max_messages = max_messages
        self._lock = threading.Lock()
        self._rooms: Dict[str, Deque[StoredMessage]] = {}
        self._last_id: Dict[str, int] = {}

    @classmethod
    def from_url(cls, url: str) -> MemoryStorage:
        """Build from `memory://` or `memory://?max_messages=N`."""
        query = parse_qs(urlsplit(url).query)
        unknown = set(query) - {"max_messages"}
        if unknown:
            raise ConfigurationError(f"memory storage: unknown option(s) {sorted(unknown)}")
        try:
            limit = int(query.get("max_messages", [str(DEFAULT_MAX_MESSAGES)])[-1])
        except ValueError:
            raise ConfigurationError("memory storage: max_messages must be a number") from None
        return cls(limit)

    def append_message(self, room: str, sender: str, text: str, created: float) -> StoredMessage:
        with self._lock:
            message_id = self._last_id.get(room, 0) + 1
            self._last_id[room] = message_id
            message = StoredMessage(message_id, room, sender, text, created)
            ring = self._rooms.get(room)
            if ring is None:
                ring = self._rooms[room] = deque(maxlen=self.max_messages)
            ring.append(message)
            return message

    def recent_messages(
        self, room: str, limit: int, before_id: Optional[int] = None
    ) -> List[StoredMessage]:
        if limit <= 0:
            return []
        with self._lock:
            ring = self._rooms.get(room)
            if not ring:
                return []
            picked: List[StoredMessage] = []
            for message in reversed(ring):
                if before_id is not None and message.id >= before_id:
                    continue
                picked.append(message)
                if len(picked) >= limit:
                    break
        picked.reverse()
        return picked
