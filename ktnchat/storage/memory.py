# In-memory storage: the default, for demos and tests. Nothing survives a restart.
# Rules: bounded (at most `max_messages` per room, the oldest dropped first; at most
# `max_audit` audit entries); one lock guards everything; no call blocks on I/O, so the
# I/O threads may call it directly (INLINE_SAFE).
from __future__ import annotations

import itertools
import threading
from collections import deque
from typing import Deque, Dict, List, Optional, Set, Tuple
from urllib.parse import parse_qs, urlsplit

from ktnchat.storage.base import (
    Account,
    AuditEntry,
    Ban,
    ConfigurationError,
    RoomRecord,
    Storage,
    StoredMessage,
    key,
)

DEFAULT_MAX_MESSAGES = 10_000
DEFAULT_MAX_AUDIT = 10_000

BanKey = Tuple[str, str, str]


class MemoryStorage(Storage):
    """Everything in dictionaries; message ids count up from 1 across all rooms."""

    SCHEME = "memory"
    INLINE_SAFE = True

    def __init__(
        self, max_messages: int = DEFAULT_MAX_MESSAGES, max_audit: int = DEFAULT_MAX_AUDIT
    ) -> None:
        if max_messages < 1:
            raise ConfigurationError("memory storage: max_messages must be at least 1")
        self.max_messages = max_messages
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._messages: Dict[str, Deque[StoredMessage]] = {}  # per room, oldest first
        self._rooms: Dict[str, RoomRecord] = {}
        self._moderators: Dict[str, Set[str]] = {}
        self._bans: Dict[BanKey, Ban] = {}
        self._accounts: Dict[str, Account] = {}
        self._audit: Deque[AuditEntry] = deque(maxlen=max_audit)
        self._audit_ids = itertools.count(1)

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

    def describe(self) -> str:
        return f"memory (at most {self.max_messages} messages per room; lost on restart)"

    # -- messages -------------------------------------------------------------------

    def append_message(self, room: str, sender: str, text: str, created: float) -> StoredMessage:
        room_key = key(room)
        with self._lock:
            ring = self._messages.get(room_key)
            if ring is None:
                ring = self._messages[room_key] = deque(maxlen=self.max_messages)
            prev = ring[-1].id if ring else 0
            message = StoredMessage(next(self._ids), room, sender, text, created, prev)
            ring.append(message)  # a full ring drops its oldest
            return message

    def messages_after(
        self, room: str, after_id: int, limit: int
    ) -> Tuple[List[StoredMessage], int]:
        with self._lock:
            ring = self._messages.get(key(room))
            newer = [m for m in ring if m.id > after_id] if ring else []
        return (newer[-limit:] if limit > 0 else []), len(newer)

    def recent_messages(
        self, room: str, limit: int, before_id: Optional[int] = None
    ) -> List[StoredMessage]:
        picked: List[StoredMessage] = []
        if limit <= 0:
            return picked
        with self._lock:
            ring = self._messages.get(key(room))
            if ring:
                for message in reversed(ring):
                    if before_id is not None and message.id >= before_id:
                        continue
                    picked.append(message)
                    if len(picked) >= limit:
                        break
        picked.reverse()
        return picked

    def get_message(self, message_id: int) -> Optional[StoredMessage]:
        with self._lock:
            found = self._find(message_id)
            return None if found is None else found[0][found[1]]

    def delete_message(self, message_id: int) -> Optional[StoredMessage]:
        with self._lock:
            found = self._find(message_id)
            if found is None:
                return None
            ring, index = found
            message = ring[index]
            del ring[index]
            return message

    def _find(self, message_id: int) -> Optional[Tuple[Deque[StoredMessage], int]]:
        """The ring holding `message_id` and its place there (under the lock). A ring is in
        id order (ids count up under the lock), so each ring is searched by halves."""
        for ring in self._messages.values():
            if not ring or not ring[0].id <= message_id <= ring[-1].id:
                continue
            low, high = 0, len(ring)
            while low < high:
                middle = (low + high) // 2
                if ring[middle].id < message_id:
                    low = middle + 1
                else:
                    high = middle
            if low < len(ring) and ring[low].id == message_id:
                return ring, low
        return None

    def delete_messages_by(self, sender: str, room: Optional[str] = None) -> List[int]:
        who = key(sender)
        removed: List[int] = []
        with self._lock:
            rooms = [key(room)] if room is not None else list(self._messages)
            for name in rooms:
                ring = self._messages.get(name)
                if not ring:
                    continue
                doomed = {m.id for m in ring if key(m.sender) == who}
                if doomed:
                    _keep_only(ring, doomed)
                removed += doomed
        return sorted(removed)

    def prune_messages(
        self, keep_per_room: Optional[int] = None, older_than: Optional[float] = None
    ) -> int:
        removed = 0
        with self._lock:
            for ring in self._messages.values():
                doomed: Set[int] = set()
                if older_than is not None:
                    doomed = {m.id for m in ring if m.created < older_than}
                if keep_per_room is not None and len(ring) - len(doomed) > keep_per_room:
                    survivors = [m.id for m in ring if m.id not in doomed]
                    doomed.update(survivors[: len(survivors) - keep_per_room])
                if doomed:
                    _keep_only(ring, doomed)
                removed += len(doomed)
        return removed

    # -- rooms ----------------------------------------------------------------------

    def create_room(self, room: RoomRecord) -> bool:
        with self._lock:
            if key(room.name) in self._rooms:
                return False
            self._rooms[key(room.name)] = room
            return True

    def get_room(self, name: str) -> Optional[RoomRecord]:
        with self._lock:
            return self._rooms.get(key(name))

    def list_rooms(self) -> List[RoomRecord]:
        with self._lock:
            return [self._rooms[name] for name in sorted(self._rooms)]

    def set_topic(self, name: str, topic: str) -> bool:
        with self._lock:
            room = self._rooms.get(key(name))
            if room is None:
                return False
            self._rooms[key(name)] = RoomRecord(room.name, room.owner, topic, room.created)
            return True

    def delete_room(self, name: str) -> bool:
        room_key = key(name)
        with self._lock:
            if self._rooms.pop(room_key, None) is None:
                return False
            self._moderators.pop(room_key, None)
            for ban_key in [k for k in self._bans if k[0] == room_key]:
                del self._bans[ban_key]
            self._messages.pop(room_key, None)
            return True

    # -- moderators ------------------------------------------------------------------

    def add_moderator(self, room: str, username: str) -> bool:
        with self._lock:
            members = self._moderators.setdefault(key(room), set())
            if key(username) in members:
                return False
            members.add(key(username))
            return True

    def remove_moderator(self, room: str, username: str) -> bool:
        with self._lock:
            members = self._moderators.get(key(room), set())
            if key(username) not in members:
                return False
            members.discard(key(username))
            return True

    def moderators(self, room: str) -> Set[str]:
        with self._lock:
            return set(self._moderators.get(key(room), ()))

    # -- bans -----------------------------------------------------------------------

    def add_ban(self, ban: Ban) -> None:
        with self._lock:
            self._bans[(ban.scope, ban.kind, ban.target)] = ban

    def remove_ban(self, scope: str, kind: str, target: str) -> bool:
        with self._lock:
            return self._bans.pop((scope, kind, target), None) is not None

    def list_bans(self, scope: Optional[str] = None) -> List[Ban]:
        with self._lock:
            bans = [b for b in self._bans.values() if scope is None or b.scope == scope]
        return sorted(bans, key=lambda b: (b.scope, b.kind, b.target))

    # -- accounts -------------------------------------------------------------------

    def create_account(self, account: Account) -> bool:
        with self._lock:
            if key(account.name) in self._accounts:
                return False
            self._accounts[key(account.name)] = account
            return True

    def get_account(self, name: str) -> Optional[Account]:
        with self._lock:
            return self._accounts.get(key(name))

    def set_password(self, name: str, password_hash: str) -> bool:
        with self._lock:
            account = self._accounts.get(key(name))
            if account is None:
                return False
            self._accounts[key(name)] = Account(account.name, password_hash, account.created)
            return True

    # -- audit ----------------------------------------------------------------------

    def append_audit(
        self, actor: str, action: str, target: str, room: str, detail: str, created: float
    ) -> AuditEntry:
        with self._lock:
            entry = AuditEntry(next(self._audit_ids), created, actor, action, target, room, detail)
            self._audit.append(entry)
            return entry

    def list_audit(self, limit: int, before_id: Optional[int] = None) -> List[AuditEntry]:
        picked: List[AuditEntry] = []
        with self._lock:
            for entry in reversed(self._audit):
                if before_id is not None and entry.id >= before_id:
                    continue
                if len(picked) >= limit:
                    break
                picked.append(entry)
        return picked


def _keep_only(ring: Deque[StoredMessage], doomed: Set[int]) -> None:
    """Drop the messages whose ids are in `doomed` from `ring`, keeping the order."""
    kept = [message for message in ring if message.id not in doomed]
    ring.clear()
    ring.extend(kept)
