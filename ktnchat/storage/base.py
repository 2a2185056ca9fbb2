# The storage interface: durable chat state in the service's own vocabulary.
#
# Rules:
# - Adapters implement every abstract method, are safe to call from any thread, and raise
#   only StorageError (wrapping their driver's exceptions) when the store fails.
# - Live state (who is connected, outboxes, sessions) never goes through storage.
# - Message ids are assigned by the store: unique across the whole chat, stable, and
#   increasing in the order messages were accepted (so ordered within every room).
# - The store is a cluster's sequencer: append_message also gives `prev`, the id of the
#   room's newest message when this one was stored, read in the same atomic step (0 if
#   none). So within a room, commit order is id order and prev < id; every message stored
#   between `prev` and `id` in the room has since been deleted.
# - Names of users and rooms are stored as given (display form); every lookup and every
#   uniqueness rule uses `key()` (case-insensitive), so "Alice" cannot evade "alice".
# - A method returns only after its change is as durable as the adapter promises.
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Set, Tuple

from ktnchat.quickinit import quick_init


class StorageError(Exception):
    """The store failed or is unreachable; the operation did not happen (or may not have)."""


class ConfigurationError(Exception):
    """A storage URL names an unknown scheme, a missing driver or a bad option."""


def key(name: str) -> str:
    """The case-insensitive identity of a user or room name."""
    return name.lower()


@quick_init
@dataclass(frozen=True)
class StoredMessage:
    """A chat message as kept by the store."""

    id: int
    room: str
    sender: str
    text: str
    created: float  # seconds since the epoch
    # Only from append_message: the room's newest id before this one (0: none). Not part
    # of a message's identity (a message read back later has prev 0).
    prev: int = field(default=0, compare=False)


@dataclass(frozen=True)
class RoomRecord:
    """A chat room: its name as created, owner (None for built-in rooms), topic."""

    name: str
    owner: Optional[str]
    topic: str
    created: float


SERVER_WIDE = ""  # the Ban.scope of a ban from the whole server


@dataclass(frozen=True)
class Ban:
    """A ban of a user name (kind "name") or an address (kind "address").

    `scope` is a room key, or SERVER_WIDE. `target` is the name key or the address.
    `expires` is None for a ban that lasts until it is lifted.
    """

    scope: str
    kind: str
    target: str
    by: str
    reason: str
    created: float
    expires: Optional[float] = None

    def active(self, now: float) -> bool:
        return self.expires is None or self.expires > now


@dataclass(frozen=True)
class Account:
    """A registered user name and its password hash (never the password)."""

    name: str
    password_hash: str
    created: float


@dataclass(frozen=True)
class AuditEntry:
    """One moderator or admin action: who did what to whom, where, when."""

    id: int
    created: float
    actor: str
    action: str
    target: str
    room: str
    detail: str


class Storage(abc.ABC):
    """Durable chat state. Adapters set SCHEME and are registered in SCHEMES."""

    SCHEME: str = ""
    # True when every call returns in microseconds and never blocks on I/O, so the I/O
    # threads may call it directly; otherwise calls run on the storage worker.
    INLINE_SAFE: bool = False

    # -- messages -------------------------------------------------------------------

    @abc.abstractmethod
    def append_message(self, room: str, sender: str, text: str, created: float) -> StoredMessage:
        """Store a message and return it with its new id (accepted once this returns)."""

    @abc.abstractmethod
    def recent_messages(
        self, room: str, limit: int, before_id: Optional[int] = None
    ) -> List[StoredMessage]:
        """Up to `limit` newest messages of `room` with id < before_id, oldest first."""

    def messages_after(
        self, room: str, after_id: int, limit: int
    ) -> Tuple[List[StoredMessage], int]:
        """The newest `limit` messages of `room` with id > after_id, oldest first, and how
        many such messages there are in all (a catch-up: more than `limit` means the
        oldest were left out). Adapters may override this generic version."""
        picked: List[StoredMessage] = []
        total = 0
        before: Optional[int] = None
        while True:
            page = self.recent_messages(room, 500, before_id=before)
            newer = [m for m in page if m.id > after_id]
            total += len(newer)
            room_left = max(0, limit - len(picked))
            if room_left:
                picked[:0] = newer[-room_left:]
            if len(newer) < len(page) or len(page) < 500:
                return picked, total
            before = page[0].id

    @abc.abstractmethod
    def get_message(self, message_id: int) -> Optional[StoredMessage]:
        """The message with this id, or None if there is none (or it was removed)."""

    @abc.abstractmethod
    def delete_message(self, message_id: int) -> Optional[StoredMessage]:
        """Remove one message; returns it, or None if there was none."""

    @abc.abstractmethod
    def delete_messages_by(self, sender: str, room: Optional[str] = None) -> List[int]:
        """Remove every message of `sender` (in `room`, or everywhere); returns their ids."""

    @abc.abstractmethod
    def prune_messages(
        self, keep_per_room: Optional[int] = None, older_than: Optional[float] = None
    ) -> int:
        """Retention: keep at most `keep_per_room` newest per room and none created before
        `older_than`; returns how many were removed."""

    # -- rooms ----------------------------------------------------------------------

    @abc.abstractmethod
    def create_room(self, room: RoomRecord) -> bool:
        """Add a room; False if a room with the same key exists."""

    @abc.abstractmethod
    def get_room(self, name: str) -> Optional[RoomRecord]:
        """The room with this name (any case), or None."""

    @abc.abstractmethod
    def list_rooms(self) -> List[RoomRecord]:
        """Every room, sorted by key."""

    @abc.abstractmethod
    def set_topic(self, name: str, topic: str) -> bool:
        """Change a room's topic; False if there is no such room."""

    @abc.abstractmethod
    def delete_room(self, name: str) -> bool:
        """Remove a room, its moderators, its bans and its messages; False if none."""

    # -- moderators ------------------------------------------------------------------

    @abc.abstractmethod
    def add_moderator(self, room: str, username: str) -> bool:
        """Make `username` a moderator of `room`; False if it already was."""

    @abc.abstractmethod
    def remove_moderator(self, room: str, username: str) -> bool:
        """Take the role away; False if `username` was not a moderator of `room`."""

    @abc.abstractmethod
    def moderators(self, room: str) -> Set[str]:
        """Name keys of the room's moderators."""

    # -- bans -----------------------------------------------------------------------

    @abc.abstractmethod
    def add_ban(self, ban: Ban) -> None:
        """Add a ban, replacing one with the same scope, kind and target."""

    @abc.abstractmethod
    def remove_ban(self, scope: str, kind: str, target: str) -> bool:
        """Lift a ban; False if there was none."""

    @abc.abstractmethod
    def list_bans(self, scope: Optional[str] = None) -> List[Ban]:
        """Bans in `scope` (a room key or SERVER_WIDE), or all bans when None."""

    # -- accounts -------------------------------------------------------------------

    @abc.abstractmethod
    def create_account(self, account: Account) -> bool:
        """Register a name; False if the name (any case) is registered already."""

    @abc.abstractmethod
    def get_account(self, name: str) -> Optional[Account]:
        """The account of this name (any case), or None."""

    @abc.abstractmethod
    def set_password(self, name: str, password_hash: str) -> bool:
        """Replace an account's password hash; False if there is no such account."""

    # -- audit ----------------------------------------------------------------------

    @abc.abstractmethod
    def append_audit(
        self, actor: str, action: str, target: str, room: str, detail: str, created: float
    ) -> AuditEntry:
        """Record a moderator action; returns it with its id."""

    @abc.abstractmethod
    def list_audit(self, limit: int, before_id: Optional[int] = None) -> List[AuditEntry]:
        """Up to `limit` newest audit entries with id < before_id, newest first."""

    # -- life cycle -----------------------------------------------------------------

    def ping(self) -> None:  # noqa: B027 - a store that cannot fail needs no check
        """Raise StorageError if the store cannot be reached now."""

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release connections and files."""

    def describe(self) -> str:
        """Where the data lives, for the start-up log line."""
        return self.SCHEME


StorageFactory = Callable[[str], Storage]
SCHEMES: Dict[str, StorageFactory] = {}


def register_scheme(scheme: str, factory: StorageFactory) -> None:
    """Make `scheme://...` URLs build storage through `factory(url)`."""
    SCHEMES[scheme] = factory
