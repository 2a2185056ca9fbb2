# Live room state and the ban cache: what the service keeps in memory between requests.
# Rules: LiveRoom mirrors a stored RoomRecord plus its moderators (loaded once, then kept
# in step by the handlers that change them) and its mutes (live only: a mute is a short
# measure and ends with a restart). BanCache holds every ban, loaded at start-up and kept
# in step with storage by the ban handlers, so checking a login or a connection never
# waits on the store. Both are guarded by Presence.lock.
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Set, Tuple

from ktnchat.storage import SERVER_WIDE, Ban, RoomRecord, key

NAME_BAN = "name"
ADDRESS_BAN = "address"
FOREVER = math.inf


@dataclass
class LiveRoom:
    """A room as the service uses it: record fields, moderators, mutes."""

    name: str
    owner: Optional[str]
    topic: str
    created: float
    moderators: Set[str] = field(default_factory=set)  # name keys
    mutes: Dict[str, float] = field(default_factory=dict)  # name key -> muted until
    # The name's identity (storage.key), made once: every chat message asks for it.
    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.key = key(self.name)

    @classmethod
    def from_record(cls, record: RoomRecord, moderators: Iterable[str]) -> LiveRoom:
        return cls(record.name, record.owner, record.topic, record.created, set(moderators))

    def record(self) -> RoomRecord:
        return RoomRecord(self.name, self.owner, self.topic, self.created)

    def muted(self, name: str, now: float) -> bool:
        if not self.mutes:
            return False
        until = self.mutes.get(key(name))
        if until is None:
            return False
        if until <= now:
            del self.mutes[key(name)]
            return False
        return True


class BanCache:
    """Every ban, by (scope, kind, target)."""

    def __init__(self, bans: Iterable[Ban] = ()) -> None:
        self._bans: Dict[Tuple[str, str, str], Ban] = {}
        for ban in bans:
            self.add(ban)

    def add(self, ban: Ban) -> None:
        self._bans[(ban.scope, ban.kind, ban.target)] = ban

    def remove(self, scope: str, kind: str, target: str) -> Optional[Ban]:
        return self._bans.pop((scope, kind, target), None)

    def find(self, scope: str, kind: str, target: str, now: float) -> Optional[Ban]:
        ban = self._bans.get((scope, kind, target))
        return ban if ban is not None and ban.active(now) else None

    def name_ban(self, scope: str, name: str, now: float) -> Optional[Ban]:
        return self.find(scope, NAME_BAN, key(name), now)

    def server_ban(self, name: Optional[str], host: str, now: float) -> Optional[Ban]:
        """A server-wide ban of this name or this address, if one is in force."""
        if name is not None:
            found = self.name_ban(SERVER_WIDE, name, now)
            if found is not None:
                return found
        return self.find(SERVER_WIDE, ADDRESS_BAN, host, now)

    def listing(self, scope: Optional[str] = None) -> List[Ban]:
        bans = [b for b in self._bans.values() if scope is None or b.scope == scope]
        return sorted(bans, key=lambda b: (b.scope, b.kind, b.target))

    def drop_scope(self, scope: str) -> None:
        for ban_key in [k for k in self._bans if k[0] == scope]:
            del self._bans[ban_key]
