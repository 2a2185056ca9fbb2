# Live per-connection state the service keeps: who this connection is and where.
# Rules: created by the service, mutated only under the service's locks; `transport`
# belongs to the front-end (the service stores it and never touches it).
from __future__ import annotations

import itertools
from typing import Any, Optional

from ktnchat.service.flood import FloodGuard

_ids = itertools.count(1)


class Session:
    """One client connection as the service sees it."""

    __slots__ = (
        "admin",
        "authenticated",
        "closed",
        "edition",
        "flood",
        "host",
        "id",
        "peer",
        "room",
        "transport",
        "username",
    )

    def __init__(
        self,
        peer: str,
        transport: Any = None,
        host: str = "",
        flood: Optional[FloodGuard] = None,
    ) -> None:
        self.id = next(_ids)
        self.peer = peer
        self.host = host or peer  # the address bans match (no port)
        self.transport = transport
        self.flood = flood
        self.username: Optional[str] = None
        self.room: Optional[str] = None  # the key of the current room
        self.authenticated = False  # logged in with the account's password
        self.admin = False  # proved the admin secret
        self.edition = 2017  # 2014 once the client spoke the 2014 edition
        self.closed = False

    @property
    def logged_in(self) -> bool:
        return self.username is not None

    def __repr__(self) -> str:
        who = self.username or "anonymous"
        return f"<Session {self.id} {who} from {self.peer}>"
