# A Storage that times every call of the store it wraps, for ktnchat_storage_seconds.
#
# Rules:
# - Only the server builds one, and only with metrics on and for a store that can block
#   (INLINE_SAFE False: SQLite, MongoDB), whose calls take tens of microseconds or more.
#   The in-memory store answers in about 2 µs and timing it would add a third to each
#   call (measured: ~0.6 µs), so it is not wrapped. Otherwise the service calls its store
#   directly and pays nothing.
# - Every method of the Storage interface is passed through unchanged (arguments, result,
#   exceptions); a call that raises is timed too. Labels are the interface's method
#   names, a fixed set.
# - Counts go to the calling thread's Counters (ktnchat/metrics.py): plain integers, no
#   lock. (Messages stored are counted by the service, for every store.)
from __future__ import annotations

from time import perf_counter
from typing import Any, Callable, List, Optional, Set, Tuple, TypeVar

from ktnchat.metrics import Registry
from ktnchat.storage.base import Account, AuditEntry, Ban, RoomRecord, Storage, StoredMessage

T = TypeVar("T")


class TimedStorage(Storage):
    """`inner`, with each call's latency observed by operation in `registry`."""

    def __init__(self, inner: Storage, registry: Registry) -> None:
        self.inner = inner
        self.registry = registry
        self.SCHEME = inner.SCHEME
        self.INLINE_SAFE = inner.INLINE_SAFE

    def __getattr__(self, name: str) -> Any:
        # Only for what the interface does not name (an adapter's own extras, in tests).
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def _timed(self, operation: str, call: Callable[..., T], *args: Any) -> T:
        start = perf_counter()
        try:
            return call(*args)
        finally:
            self.registry.counters().observe_storage(operation, perf_counter() - start)

    # -- messages -------------------------------------------------------------------------

    def append_message(self, room: str, sender: str, text: str, created: float) -> StoredMessage:
        return self._timed(
            "append_message", self.inner.append_message, room, sender, text, created
        )

    def recent_messages(
        self, room: str, limit: int, before_id: Optional[int] = None
    ) -> List[StoredMessage]:
        return self._timed("recent_messages", self.inner.recent_messages, room, limit, before_id)

    def messages_after(
        self, room: str, after_id: int, limit: int
    ) -> Tuple[List[StoredMessage], int]:
        return self._timed("messages_after", self.inner.messages_after, room, after_id, limit)

    def get_message(self, message_id: int) -> Optional[StoredMessage]:
        return self._timed("get_message", self.inner.get_message, message_id)

    def delete_message(self, message_id: int) -> Optional[StoredMessage]:
        return self._timed("delete_message", self.inner.delete_message, message_id)

    def delete_messages_by(self, sender: str, room: Optional[str] = None) -> List[int]:
        return self._timed("delete_messages_by", self.inner.delete_messages_by, sender, room)

    def prune_messages(
        self, keep_per_room: Optional[int] = None, older_than: Optional[float] = None
    ) -> int:
        return self._timed("prune_messages", self.inner.prune_messages, keep_per_room, older_than)

    # -- rooms ----------------------------------------------------------------------------

    def create_room(self, room: RoomRecord) -> bool:
        return self._timed("create_room", self.inner.create_room, room)

    def get_room(self, name: str) -> Optional[RoomRecord]:
        return self._timed("get_room", self.inner.get_room, name)

    def list_rooms(self) -> List[RoomRecord]:
        return self._timed("list_rooms", self.inner.list_rooms)

    def set_topic(self, name: str, topic: str) -> bool:
        return self._timed("set_topic", self.inner.set_topic, name, topic)

    def delete_room(self, name: str) -> bool:
        return self._timed("delete_room", self.inner.delete_room, name)

    # -- moderators -----------------------------------------------------------------------

    def add_moderator(self, room: str, username: str) -> bool:
        return self._timed("add_moderator", self.inner.add_moderator, room, username)

    def remove_moderator(self, room: str, username: str) -> bool:
        return self._timed("remove_moderator", self.inner.remove_moderator, room, username)

    def moderators(self, room: str) -> Set[str]:
        return self._timed("moderators", self.inner.moderators, room)

    # -- bans -----------------------------------------------------------------------------

    def add_ban(self, ban: Ban) -> None:
        self._timed("add_ban", self.inner.add_ban, ban)

    def remove_ban(self, scope: str, kind: str, target: str) -> bool:
        return self._timed("remove_ban", self.inner.remove_ban, scope, kind, target)

    def list_bans(self, scope: Optional[str] = None) -> List[Ban]:
        return self._timed("list_bans", self.inner.list_bans, scope)

    # -- accounts -------------------------------------------------------------------------

    def create_account(self, account: Account) -> bool:
        return self._timed("create_account", self.inner.create_account, account)

    def get_account(self, name: str) -> Optional[Account]:
        return self._timed("get_account", self.inner.get_account, name)

    def set_password(self, name: str, password_hash: str) -> bool:
        return self._timed("set_password", self.inner.set_password, name, password_hash)

    # -- audit ----------------------------------------------------------------------------

    def append_audit(
        self, actor: str, action: str, target: str, room: str, detail: str, created: float
    ) -> AuditEntry:
        return self._timed(
            "append_audit", self.inner.append_audit, actor, action, target, room, detail, created
        )

    def list_audit(self, limit: int, before_id: Optional[int] = None) -> List[AuditEntry]:
        return self._timed("list_audit", self.inner.list_audit, limit, before_id)

    # -- life cycle -----------------------------------------------------------------------

    def ping(self) -> None:
        self._timed("ping", self.inner.ping)

    def close(self) -> None:
        self.inner.close()

    def describe(self) -> str:
        return self.inner.describe()


__all__ = ["TimedStorage"]
