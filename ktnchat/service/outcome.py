# What a handler wants sent: replies to the requester and broadcasts to audiences.
# Rules: the service returns an Outcome and never sends; the front-end delivers it.
# Audiences are symbolic (a room name) so a cluster bus can carry them to other
# processes; `exclude` names a session that must not receive the broadcast.
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ktnchat.protocol import Response
from ktnchat.quickinit import quick_init
from ktnchat.service.session import Session


@quick_init
@dataclass(frozen=True)
class Broadcast:
    """Send `response` to the members of `room` (except `exclude`)."""

    room: str
    response: Response
    exclude: Optional[Session] = None
    # Local members snapshotted when the room's order was fixed; None means "resolve
    # at delivery time". The front-end delivers to exactly these sessions.
    recipients: Optional[Sequence[Session]] = None
    to_user: Optional[str] = None  # a private message: the user it is for (room is "")
    # A stored room message: (its id, the room's previous id), for a cluster's per-room
    # sequencer (ktnchat/cluster/order.py). One process delivers to `recipients` as is.
    seq: Optional[Tuple[int, int]] = None


@dataclass(init=False)
class Outcome:
    """The result of one request or session event."""

    # Slots and a written-out __init__: one Outcome is made per request (chat messages too).
    __slots__ = ("broadcasts", "close", "disconnect", "remote", "replies", "stream")

    replies: List[Response]
    broadcasts: List[Broadcast]
    stream: Optional[bool]  # switch this connection's framing mode
    close: bool  # close the connection after the replies
    # Other connections to close (banned users), each told why in a final `error`.
    disconnect: List[Tuple[Session, str]]
    # Events for the other workers of a cluster (ktnchat/cluster/events.py): actions on
    # users they hold and changes to the caches every worker keeps.
    remote: List[Dict[str, Any]]

    def __init__(
        self,
        replies: Optional[List[Response]] = None,
        broadcasts: Optional[List[Broadcast]] = None,
        stream: Optional[bool] = None,
        close: bool = False,
        disconnect: Optional[List[Tuple[Session, str]]] = None,
        remote: Optional[List[Dict[str, Any]]] = None,
    ) -> None:
        self.replies = [] if replies is None else replies
        self.broadcasts = [] if broadcasts is None else broadcasts
        self.stream = stream
        self.close = close
        self.disconnect = [] if disconnect is None else disconnect
        self.remote = [] if remote is None else remote

    def reply(self, response: Response) -> Outcome:
        self.replies.append(response)
        return self

    def broadcast(
        self, room: str, response: Response, exclude: Optional[Session] = None
    ) -> Outcome:
        self.broadcasts.append(Broadcast(room, response, exclude))
        return self

    def tell(self, session: Session, response: Response) -> Outcome:
        """Send `response` to one other session (e.g. the target of a moderator action)."""
        self.broadcasts.append(Broadcast("", response, recipients=[session]))
        return self
