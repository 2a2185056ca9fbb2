# The storage interface: durable chat state in the service's own vocabulary.
# Rules: adapters implement every abstract method, are thread-safe, and raise only
# StorageError (wrapping their driver's exceptions) for storage failures. Live state
# (who is connected, outboxes) never goes through storage. Message ids are assigned by
# the store, are stable, and increase within a room.
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional


class StorageError(Exception):
    """The store failed or is unreachable; the operation did not happen."""


class ConfigurationError(Exception):
    """A storage URL names an unknown scheme, a missing driver or a bad option."""


@dataclass(frozen=True)
class StoredMessage:
    """A chat message as kept by the store."""

    id: int
    room: str
    sender: str
    text: str
    created: float  # seconds since the epoch


class Storage(abc.ABC):
    """Durable chat state. Subclasses set SCHEME and register themselves in SCHEMES."""

    SCHEME: str = ""

    @abc.abstractmethod
    def append_message(self, room: str, sender: str, text: str, created: float) -> StoredMessage:
        """Store a message and return it with its new id (accepted only once this returns)."""

    @abc.abstractmethod
    def recent_messages(
        self, room: str, limit: int, before_id: Optional[int] = None
    ) -> List[StoredMessage]:
        """Up to `limit` newest messages of `room` (older than `before_id`), oldest first."""

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release connections and files."""


StorageFactory = Callable[[str], Storage]
SCHEMES: Dict[str, StorageFactory] = {}


def register_scheme(scheme: str, factory: StorageFactory) -> None:
    """Make `scheme://...` URLs build storage through `factory(url)`."""
    SCHEMES[scheme] = factory
