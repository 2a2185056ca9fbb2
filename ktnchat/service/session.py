# Live per-connection state the service keeps: who this connection is and where.
# Rules: created by the service, mutated only under the service's locks; `transport`
# belongs to the front-end (the service stores it and never touches it).
from __future__ import annotations

import itertools
from typing import Any, Optional

_ids = itertools.count(1)


class Session:
    """One client connection as the service sees it."""

    __slots__ = ("closed", "id", "peer", "room", "transport", "username")

    def __init__(self, peer: str, transport: Any = None) -> None:
        self.id = next(_ids)
        self.peer = peer
        self.transport = transport
        self.username: Optional[str] = None
        self.room: Optional[str] = None
        self.closed = False

    @property
    def logged_in(self) -> bool:
        return self.username is not None

    def __repr__(self) -> str:
        who = self.username or "anonymous"
        return f"<Session {self.id} {who} from {self.peer}>"
