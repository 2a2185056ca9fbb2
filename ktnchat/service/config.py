# Service limits and presentation choices, with their defaults in one place.
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Tuple

from ktnchat.service.flood import FloodConfig

DEFAULT_ROOM = "lobby"


@dataclass(frozen=True)
class ServiceConfig:
    """Everything the service needs to know that is not live state or storage."""

    default_room: str = DEFAULT_ROOM
    max_username_chars: int = 20  # as seed 004; seed 001 sets no limit
    max_message_chars: int = 65_535  # as seed 004
    history_on_login: int = 100  # messages replayed at login
    history_max: int = 1_000  # most messages one `history` request may ask for
    announce_max_members: int = 200  # rooms larger than this get no join/leave notices
    text_chunk_chars: int = 800  # long info texts (names, help) are split into pieces
    timestamp_format: str = "%Y-%m-%d %H:%M:%S"
    utc: bool = False
    server_name: str = "server"  # the `sender` of error/info/history responses
    features: Tuple[str, ...] = ()  # advertised in the login info's "features" key
    max_rooms: int = 1_000
    max_room_name_chars: int = 24
    max_topic_chars: int = 200
    flood: FloodConfig = field(default_factory=FloodConfig)
    retention_messages: int = 0  # keep at most this many messages per room (0: no limit)
    retention_days: float = 0.0  # forget messages older than this (0: never)
