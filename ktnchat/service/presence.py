# Who is online and in which room: the live registry, in memory only.
# Rules: one lock guards the name table and room membership; a name is held by exactly
# one session (case-insensitively); a room's member snapshot (`Members`, immutable) is
# made under the lock once per change of the room's membership and shared until the next
# change, so fan-out iterates without holding it, and two broadcasts with the same
# snapshot object went to exactly the same sessions. Every operation is O(1) except making
# a snapshot (O(members), once per join or leave).
from __future__ import annotations

import threading
from typing import Dict, List, Optional, Tuple

from ktnchat.service.names import name_key
from ktnchat.service.session import Session


class Members(Tuple[Session, ...]):
    """A room's sessions at one moment; the same object until the membership changes."""

    __slots__ = ()


NO_MEMBERS = Members()


class Presence:
    """Name claims and room membership of the live sessions."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._by_name: Dict[str, Session] = {}
        self._rooms: Dict[str, Dict[int, Session]] = {}
        self._snapshots: Dict[str, Members] = {}

    def claim(self, session: Session, username: str) -> bool:
        """Give `username` to `session` if nobody holds it; True on success.

        A closed session never gets a name (its connection is gone)."""
        key = name_key(username)
        with self.lock:
            if session.closed:
                return False
            holder = self._by_name.get(key)
            if holder is not None and holder is not session:
                return False
            self._by_name[key] = session
            session.username = username
            return True

    def release(self, session: Session) -> Optional[str]:
        """Free the session's name; returns the name it held."""
        with self.lock:
            name = session.username
            if name is None:
                return None
            if self._by_name.get(name_key(name)) is session:
                del self._by_name[name_key(name)]
            session.username = None
            return name

    def holder(self, username: str) -> Optional[Session]:
        with self.lock:
            return self._by_name.get(name_key(username))

    def enter(self, session: Session, room: str) -> None:
        """Make `session` a member of `room` (leaving its current room)."""
        with self.lock:
            if session.closed:
                return
            self.leave(session)
            self._rooms.setdefault(room, {})[session.id] = session
            self._snapshots.pop(room, None)
            session.room = room

    def leave(self, session: Session) -> Optional[str]:
        """Remove `session` from its room; returns the room it was in."""
        with self.lock:
            room = session.room
            if room is None:
                return None
            members = self._rooms.get(room)
            if members is not None:
                members.pop(session.id, None)
                if not members:
                    del self._rooms[room]
            self._snapshots.pop(room, None)
            session.room = None
            return room

    def members(self, room: str) -> Members:
        """A snapshot of the room's sessions (shared: never to be changed)."""
        snapshot = self._snapshots.get(room)  # made whole under the lock, then stored
        if snapshot is not None:
            return snapshot
        with self.lock:
            snapshot = self._snapshots.get(room)
            if snapshot is None:
                members = self._rooms.get(room)
                if not members:
                    return NO_MEMBERS
                snapshot = self._snapshots[room] = Members(members.values())
            return snapshot

    def member_count(self, room: str) -> int:
        with self.lock:
            members = self._rooms.get(room)
            return len(members) if members else 0

    def usernames(self, room: str) -> List[str]:
        """Display names in the room, sorted case-insensitively."""
        with self.lock:
            members = self._rooms.get(room) or {}
            names = [s.username for s in members.values() if s.username is not None]
        return sorted(names, key=name_key)

    def sessions(self) -> List[Session]:
        """Every logged-in session."""
        with self.lock:
            return list(self._by_name.values())

    def online_count(self) -> int:
        with self.lock:
            return len(self._by_name)
