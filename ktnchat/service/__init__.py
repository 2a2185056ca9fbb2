# The chat service: rules, live state and outcomes; no sockets, no JSON bytes.
from ktnchat.service.config import DEFAULT_ROOM, ServiceConfig
from ktnchat.service.errors import ChatError
from ktnchat.service.outcome import Broadcast, Outcome
from ktnchat.service.service import ChatService
from ktnchat.service.session import Session

__all__ = [
    "DEFAULT_ROOM",
    "Broadcast",
    "ChatError",
    "ChatService",
    "Outcome",
    "ServiceConfig",
    "Session",
]
