# MongoDB storage: chat state in seven collections of one database (mongodb:// URLs).
#
# Rules:
# - pymongo is imported only when a MongoStorage is built, so `import ktnchat.storage`
#   works without it; a missing driver is a ConfigurationError naming the pip extra.
# - Every driver error leaves as StorageError, with the driver's exception as its cause.
# - Message and audit ids come from counter documents ($inc): unique, increasing, never
#   reused after a restart (start-up also lifts a counter to the highest id stored).
# - Outages: a connection-type failure opens a circuit breaker; until its backoff has
#   passed (0.5 s doubling to 30 s by default) calls fail fast with "storage unavailable"
#   without touching the network, then one call probes the server again. No write is
#   ever retried inside a call (that could store a message twice).
# - Appends in one process are serialized (id taken and document inserted under a lock),
#   so this process's messages become visible in id order.
from __future__ import annotations

import logging
import re
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Set, Tuple, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

from ktnchat.storage.base import (
    Account,
    AuditEntry,
    Ban,
    ConfigurationError,
    RoomRecord,
    Storage,
    StorageError,
    StoredMessage,
    key,
)

if TYPE_CHECKING:
    from types import ModuleType

    from pymongo import MongoClient
    from pymongo.collection import Collection

    Document = Dict[str, Any]

log = logging.getLogger("ktnchat.storage")

T = TypeVar("T")

DEFAULT_DATABASE = "ktnchat"
DEFAULT_RETRY_INITIAL = 0.5
DEFAULT_RETRY_MAX = 30.0
APPEND_ATTEMPTS = 100  # head compare-and-swap tries before an append gives up
# Client options from_url adds unless the URL sets them itself (names are case-insensitive).
DEFAULT_CLIENT_OPTIONS: Dict[str, Any] = {
    "serverSelectionTimeoutMS": 2000,
    "connectTimeoutMS": 2000,
    "socketTimeoutMS": 20000,
    "appname": "ktnchat",
}
# Query options of a storage URL that are ours, not pymongo's.
PREFIX_OPTION = "prefix"

COLLECTIONS = ("messages", "counters", "rooms", "moderators", "bans", "accounts", "audit")
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.-]*$")
_BAD_DATABASE_CHARS = set('/\\. "$*<>:|?')
_INSTALL_HINT = "pip install 'ktnchat[mongo]'"


def _import_pymongo() -> ModuleType:
    """The pymongo package, or a ConfigurationError that says how to install it."""
    try:
        import pymongo
        import pymongo.errors
    except ImportError as exc:
        raise ConfigurationError(
            f"mongodb:// storage needs the pymongo driver: {_INSTALL_HINT}"
        ) from exc
    return pymongo


def redact(url: str) -> str:
    """The URL with any password replaced by ***, for messages and logs."""
    parts = urlsplit(url)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hosts}"))


class CircuitBreaker:
    """Fail fast while a store is down; let one call through to probe after a backoff.

    Closed: every call goes through. A connection failure opens it for `initial` seconds;
    each failed probe doubles the wait, up to `maximum`. A probe that reaches the server
    closes it again. Thread-safe; `clock` is injectable for tests.
    """

    def __init__(
        self,
        initial: float = DEFAULT_RETRY_INITIAL,
        maximum: float = DEFAULT_RETRY_MAX,
        clock: Callable[[], float] = time.monotonic,
        name: str = "MongoDB",
    ) -> None:
        if initial <= 0 or maximum < initial:
            raise ConfigurationError("retry backoff: need 0 < initial <= maximum")
        self.initial = initial
        self.maximum = maximum
        self.clock = clock
        self.name = name
        self._lock = threading.Lock()
        self._open = False
        self._down_since = 0.0
        self._retry_at = 0.0
        self._probing = False
        self.backoff = 0.0  # the current wait; 0 while closed

    @property
    def is_open(self) -> bool:
        with self._lock:
            return self._open

    def enter(self) -> bool:
        """Admit a call (True if it is the probe) or raise StorageError at once."""
        with self._lock:
            if not self._open:
                return False
            now = self.clock()
            if self._probing or now < self._retry_at:
                wait = max(self._retry_at - now, 0.0)
                raise StorageError(
                    f"storage unavailable: {self.name} is unreachable"
                    f" (down {now - self._down_since:.1f} s; next try in {wait:.1f} s)"
                )
            self._probing = True
            return True

    def reached(self, probe: bool) -> None:
        """The call reached the server (whatever it answered): close the breaker."""
        with self._lock:
            if probe:
                self._probing = False
            if not self._open:
                return
            self._open = False
            self.backoff = 0.0
            down = self.clock() - self._down_since
        log.info("%s is back after %.1f s unavailable", self.name, down)

    def failed(self, probe: bool, error: BaseException) -> None:
        """The call could not reach the server: open the breaker or lengthen its wait."""
        with self._lock:
            now = self.clock()
            if not self._open:
                self._open = True
                self._down_since = now
                self.backoff = self.initial
                first = True
            elif probe:
                self.backoff = min(self.backoff * 2, self.maximum)
                first = False
            else:
                return  # admitted before the breaker opened; the outage is already known
            if probe:
                self._probing = False
            self._retry_at = now + self.backoff
            backoff = self.backoff
        if first:
            log.warning(
                "%s unreachable (%s); failing fast, next try in %.1f s",
                self.name,
                _short(error),
                backoff,
            )
        else:
            log.warning("%s still unreachable; next try in %.1f s", self.name, backoff)

    def abandoned(self, probe: bool) -> None:
        """The call ended without an answer either way (e.g. a bug): free the probe slot."""
        if probe:
            with self._lock:
                self._probing = False


def _short(error: BaseException, limit: int = 200) -> str:
    """A driver message cut to one readable line (server-selection errors run long)."""
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _message(doc: Mapping[str, Any]) -> StoredMessage:
    return StoredMessage(doc["_id"], doc["room"], doc["sender"], doc["text"], doc["created"])


def _room(doc: Mapping[str, Any]) -> RoomRecord:
    return RoomRecord(doc["name"], doc["owner"], doc["topic"], doc["created"])


def _ban(doc: Mapping[str, Any]) -> Ban:
    return Ban(
        doc["scope"],
        doc["kind"],
        doc["target"],
        doc["by"],
        doc["reason"],
        doc["created"],
        doc.get("expires"),
    )


def _account(doc: Mapping[str, Any]) -> Account:
    return Account(doc["name"], doc["password_hash"], doc["created"])


def _audit(doc: Mapping[str, Any]) -> AuditEntry:
    return AuditEntry(
        doc["_id"],
        doc["created"],
        doc["actor"],
        doc["action"],
        doc["target"],
        doc["room"],
        doc["detail"],
    )


class MongoStorage(Storage):
    """Chat state in MongoDB; built from a URL or around a ready client (tests: mongomock)."""

    SCHEME = "mongodb"
    INLINE_SAFE = False

    def __init__(
        self,
        client: MongoClient[Document],
        database: str = DEFAULT_DATABASE,
        *,
        prefix: str = "",
        retry_initial: float = DEFAULT_RETRY_INITIAL,
        retry_max: float = DEFAULT_RETRY_MAX,
        clock: Callable[[], float] = time.monotonic,
        where: Optional[str] = None,
        owns_client: bool = False,
    ) -> None:
        """Use `client` (closed by close() only if `owns_client`); create indexes now.

        Raises:
            ConfigurationError: pymongo missing, bad database name or prefix.
            StorageError: the server cannot be reached or refused to create indexes.
        """
        self._pymongo = _import_pymongo()
        import bson.errors  # installed with pymongo

        self._bson_errors = bson.errors
        _check_database(database)
        if not _PREFIX_RE.match(prefix) or prefix.startswith("system."):
            raise ConfigurationError(
                f"mongodb storage: bad collection prefix {prefix!r} (letters, digits, _ . -)"
            )
        self.database_name = database
        self.prefix = prefix
        self.where = where if where is not None else _client_hosts(client)
        self._client = client
        self._owns_client = owns_client
        self._closed = False
        self.breaker = CircuitBreaker(
            retry_initial, retry_max, clock, name=f"MongoDB at {self.where}"
        )
        self._append_lock = threading.Lock()  # id + insert, so ids appear in order
        self._audit_lock = threading.Lock()
        db = client[database]
        self._messages: Collection[Document] = db[prefix + "messages"]
        self._counters: Collection[Document] = db[prefix + "counters"]
        self._rooms: Collection[Document] = db[prefix + "rooms"]
        self._moderators: Collection[Document] = db[prefix + "moderators"]
        self._bans: Collection[Document] = db[prefix + "bans"]
        self._accounts: Collection[Document] = db[prefix + "accounts"]
        self._audit: Collection[Document] = db[prefix + "audit"]
        self._db = db
        self._run("start-up", self._prepare, guarded=False)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        retry_initial: float = DEFAULT_RETRY_INITIAL,
        retry_max: float = DEFAULT_RETRY_MAX,
        clock: Callable[[], float] = time.monotonic,
    ) -> MongoStorage:
        """Build from `mongodb://[user:pass@]host[:port][,host...]/[database][?options]`.

        The database defaults to `ktnchat`; `mongodb+srv://` works too (pymongo needs
        dnspython for it). Query options go to pymongo, which also reads the URL's own
        timeouts; short timeouts (DEFAULT_CLIENT_OPTIONS) are added where the URL is
        silent. `prefix=` (ours) prefixes every collection name.

        Raises:
            ConfigurationError: pymongo missing, or a bad URL, database or option.
            StorageError: the server cannot be reached now.
        """
        pymongo = _import_pymongo()
        parts = urlsplit(url)
        if parts.scheme not in ("mongodb", "mongodb+srv"):
            raise ConfigurationError(f"not a MongoDB URL: {redact(url)!r}")
        hosts = parts.netloc.rpartition("@")[2]
        if not hosts:
            raise ConfigurationError(f"MongoDB URL names no host: {redact(url)!r}")
        database = unquote(parts.path.lstrip("/")) or DEFAULT_DATABASE
        prefix = ""
        kept: List[str] = []
        given: Set[str] = set()
        for item in re.split("[&;]", parts.query):
            if not item:
                continue
            name, _, value = item.partition("=")
            if unquote(name).lower() == PREFIX_OPTION:
                prefix = unquote(value)
                continue
            given.add(unquote(name).lower())
            kept.append(item)
        options = {
            option: value
            for option, value in DEFAULT_CLIENT_OPTIONS.items()
            if option.lower() not in given
        }
        if "timeoutms" in given:  # pymongo's overall timeout replaces the socket timeout
            options.pop("socketTimeoutMS", None)
        client_url = urlunsplit(parts._replace(query="&".join(kept), fragment=""))
        try:
            client: MongoClient[Document] = pymongo.MongoClient(client_url, **options)
        except pymongo.errors.ConfigurationError as exc:
            raise ConfigurationError(f"bad MongoDB URL {redact(url)!r}: {exc}") from exc
        except (pymongo.errors.PyMongoError, ValueError, TypeError) as exc:
            raise ConfigurationError(f"bad MongoDB URL {redact(url)!r}: {exc}") from exc
        try:
            return cls(
                client,
                database,
                prefix=prefix,
                retry_initial=retry_initial,
                retry_max=retry_max,
                clock=clock,
                where=hosts,
                owns_client=True,
            )
        except BaseException:
            client.close()
            raise

    def describe(self) -> str:
        text = f"MongoDB at {self.where}, database {self.database_name}"
        if self.prefix:
            text += f", collections prefixed {self.prefix!r}"
        return text

    # -- plumbing -------------------------------------------------------------------

    def _run(self, what: str, operation: Callable[[], T], guarded: bool = True) -> T:
        """Run one call through the breaker (unless not `guarded`: start-up, which either
        succeeds or stops the server); driver errors become StorageError."""
        if self._closed:
            raise StorageError("storage closed")
        errors = self._pymongo.errors
        probe = self.breaker.enter() if guarded else False
        try:
            result = operation()
        except errors.ConnectionFailure as exc:
            if guarded:
                self.breaker.failed(probe, exc)
            raise StorageError(
                f"storage unavailable: cannot reach MongoDB at {self.where} ({what}): {_short(exc)}"
            ) from exc
        except errors.PyMongoError as exc:
            self.breaker.reached(probe)
            raise StorageError(f"MongoDB {what} failed: {_short(exc)}") from exc
        except (self._bson_errors.BSONError, UnicodeEncodeError, OverflowError) as exc:
            # Values BSON cannot encode: a lone surrogate in a string, an int over 64 bits.
            self.breaker.abandoned(probe)
            raise StorageError(f"MongoDB {what} failed: {_short(exc)}") from exc
        except BaseException:
            self.breaker.abandoned(probe)
            raise
        self.breaker.reached(probe)
        return result

    def _prepare(self) -> None:
        """Indexes, and counters at least as high as the highest id stored."""
        ascending = self._pymongo.ASCENDING
        self._messages.create_index(
            [("room_key", ascending), ("_id", ascending)], name="room_key_id"
        )
        self._messages.create_index(
            [("sender_key", ascending), ("room_key", ascending)], name="sender_key_room_key"
        )
        self._messages.create_index([("created", ascending)], name="created")
        self._rooms.create_index([("key", ascending)], name="key", unique=True)
        self._moderators.create_index(
            [("room_key", ascending), ("user_key", ascending)],
            name="room_key_user_key",
            unique=True,
        )
        self._bans.create_index(
            [("scope", ascending), ("kind", ascending), ("target", ascending)],
            name="scope_kind_target",
            unique=True,
        )
        self._accounts.create_index([("key", ascending)], name="key", unique=True)
        for counter, collection in (("messages", self._messages), ("audit", self._audit)):
            newest = collection.find_one({}, {"_id": 1}, sort=[("_id", -1)])
            highest = newest["_id"] if newest is not None else 0
            self._upsert_ignoring_race(self._counters, {"_id": counter}, {"$max": {"seq": highest}})

    def _upsert_ignoring_race(
        self, collection: Collection[Document], query: Document, update: Document
    ) -> None:
        """An idempotent upsert; a concurrent upsert of the same key may win the insert."""
        try:
            collection.update_one(query, update, upsert=True)
        except self._pymongo.errors.DuplicateKeyError:
            collection.update_one(query, update, upsert=True)

    def _next_id(self, counter: str) -> int:
        doc = self._counters.find_one_and_update(
            {"_id": counter},
            {"$inc": {"seq": 1}},
            upsert=True,
            return_document=self._pymongo.ReturnDocument.AFTER,
        )
        if doc is None:  # cannot happen with upsert + AFTER; never hand out a bad id
            raise StorageError(f"MongoDB counter {counter!r} returned nothing")
        return int(doc["seq"])

    def _insert_unique(self, what: str, collection: Collection[Document], doc: Document) -> bool:
        """Insert; False when a unique index already holds the key."""

        def insert() -> bool:
            try:
                collection.insert_one(doc)
            except self._pymongo.errors.DuplicateKeyError:
                return False
            return True

        return self._run(what, insert)

    # -- messages -------------------------------------------------------------------

    def append_message(self, room: str, sender: str, text: str, created: float) -> StoredMessage:
        # The room's order: a head document per room ("room:<key>" in counters) holds the
        # room's newest id; a message takes a fresh id, then compare-and-swaps the head
        # from the id it read (its `prev`) to its own. A lost race takes a new id and tries
        # again, so within a room prev < id and the chain of heads is in id order across
        # every process. The message is inserted just after its swap.
        room_key = key(room)
        head_id = "room:" + room_key
        duplicate = self._pymongo.errors.DuplicateKeyError

        def append() -> StoredMessage:
            for _ in range(APPEND_ATTEMPTS):
                head = self._counters.find_one({"_id": head_id})
                if head is None:
                    newest = self._messages.find_one(
                        {"room_key": room_key}, {"_id": 1}, sort=[("_id", -1)]
                    )
                    prev = int(newest["_id"]) if newest is not None else 0
                else:
                    prev = int(head.get("last", 0))
                message_id = self._next_id("messages")
                if head is None:
                    try:
                        self._counters.insert_one({"_id": head_id, "last": message_id})
                    except duplicate:
                        continue
                elif (
                    self._counters.update_one(
                        {"_id": head_id, "last": prev}, {"$set": {"last": message_id}}
                    ).modified_count
                    != 1
                ):
                    continue
                message = StoredMessage(message_id, room, sender, text, created, prev)
                self._messages.insert_one(
                    {
                        "_id": message.id,
                        "room": room,
                        "room_key": room_key,
                        "sender": sender,
                        "sender_key": key(sender),
                        "text": text,
                        "created": created,
                    }
                )
                return message
            raise StorageError(f"MongoDB: room {room!r} too busy to append (head contended)")

        with self._append_lock:
            return self._run("append_message", append)

    def messages_after(
        self, room: str, after_id: int, limit: int
    ) -> Tuple[List[StoredMessage], int]:
        query: Document = {"room_key": key(room), "_id": {"$gt": after_id}}

        def read() -> Tuple[List[StoredMessage], int]:
            total = self._messages.count_documents(query)
            if limit <= 0 or total == 0:
                return [], total
            cursor = self._messages.find(query, sort=[("_id", -1)], limit=limit)
            picked = [_message(doc) for doc in cursor]
            picked.reverse()
            return picked, total

        result: Tuple[List[StoredMessage], int] = self._run("messages_after", read)
        return result

    def recent_messages(
        self, room: str, limit: int, before_id: Optional[int] = None
    ) -> List[StoredMessage]:
        if limit <= 0:  # pymongo reads limit 0 as "no limit"
            return []
        query: Document = {"room_key": key(room)}
        if before_id is not None:
            query["_id"] = {"$lt": before_id}

        def read() -> List[StoredMessage]:
            cursor = self._messages.find(query, sort=[("_id", -1)], limit=limit)
            return [_message(doc) for doc in cursor]

        picked = self._run("recent_messages", read)
        picked.reverse()
        return picked

    def get_message(self, message_id: int) -> Optional[StoredMessage]:
        doc = self._run("get_message", lambda: self._messages.find_one({"_id": message_id}))
        return None if doc is None else _message(doc)

    def delete_message(self, message_id: int) -> Optional[StoredMessage]:
        doc = self._run(
            "delete_message", lambda: self._messages.find_one_and_delete({"_id": message_id})
        )
        return None if doc is None else _message(doc)

    def delete_messages_by(self, sender: str, room: Optional[str] = None) -> List[int]:
        query: Document = {"sender_key": key(sender)}
        if room is not None:
            query["room_key"] = key(room)

        def delete() -> List[int]:
            # By id, so a message sent meanwhile is neither removed nor left unreported.
            ids = sorted(doc["_id"] for doc in self._messages.find(query, {"_id": 1}))
            if ids:
                self._messages.delete_many({"_id": {"$in": ids}})
            return ids

        return self._run("delete_messages_by", delete)

    def prune_messages(
        self, keep_per_room: Optional[int] = None, older_than: Optional[float] = None
    ) -> int:
        def prune() -> int:
            removed = 0
            if older_than is not None:
                old = self._messages.delete_many({"created": {"$lt": older_than}})
                removed += old.deleted_count
            if keep_per_room is not None:
                keep = max(keep_per_room, 0)
                for room_key in self._messages.distinct("room_key"):
                    newest_doomed = self._messages.find_one(
                        {"room_key": room_key}, {"_id": 1}, sort=[("_id", -1)], skip=keep
                    )
                    if newest_doomed is None:
                        continue
                    removed += self._messages.delete_many(
                        {"room_key": room_key, "_id": {"$lte": newest_doomed["_id"]}}
                    ).deleted_count
            return removed

        return self._run("prune_messages", prune)

    # -- rooms ----------------------------------------------------------------------

    def create_room(self, room: RoomRecord) -> bool:
        doc: Document = {
            "key": key(room.name),
            "name": room.name,
            "owner": room.owner,
            "topic": room.topic,
            "created": room.created,
        }
        return self._insert_unique("create_room", self._rooms, doc)

    def get_room(self, name: str) -> Optional[RoomRecord]:
        doc = self._run("get_room", lambda: self._rooms.find_one({"key": key(name)}))
        return None if doc is None else _room(doc)

    def list_rooms(self) -> List[RoomRecord]:
        # Binary order of UTF-8 is code point order, the same as Python's sorted().
        return self._run(
            "list_rooms", lambda: [_room(doc) for doc in self._rooms.find({}, sort=[("key", 1)])]
        )

    def set_topic(self, name: str, topic: str) -> bool:
        result = self._run(
            "set_topic",
            lambda: self._rooms.update_one({"key": key(name)}, {"$set": {"topic": topic}}),
        )
        return result.matched_count > 0

    def delete_room(self, name: str) -> bool:
        room_key = key(name)

        def delete() -> bool:
            if self._rooms.find_one({"key": room_key}, {"_id": 1}) is None:
                return False
            # The room record goes last: if this stops half-way, deleting again finishes.
            self._moderators.delete_many({"room_key": room_key})
            self._bans.delete_many({"scope": room_key})
            self._messages.delete_many({"room_key": room_key})
            return self._rooms.delete_one({"key": room_key}).deleted_count > 0

        return self._run("delete_room", delete)

    # -- moderators ------------------------------------------------------------------

    def add_moderator(self, room: str, username: str) -> bool:
        doc: Document = {"room_key": key(room), "user_key": key(username)}
        return self._insert_unique("add_moderator", self._moderators, doc)

    def remove_moderator(self, room: str, username: str) -> bool:
        result = self._run(
            "remove_moderator",
            lambda: self._moderators.delete_one({"room_key": key(room), "user_key": key(username)}),
        )
        return result.deleted_count > 0

    def moderators(self, room: str) -> Set[str]:
        return self._run(
            "moderators",
            lambda: {
                doc["user_key"]
                for doc in self._moderators.find({"room_key": key(room)}, {"user_key": 1})
            },
        )

    # -- bans -----------------------------------------------------------------------

    def add_ban(self, ban: Ban) -> None:
        query: Document = {"scope": ban.scope, "kind": ban.kind, "target": ban.target}
        doc: Document = dict(
            query,
            by=ban.by,
            reason=ban.reason,
            created=ban.created,
            expires=ban.expires,
        )

        def replace() -> None:
            try:
                self._bans.replace_one(query, doc, upsert=True)
            except self._pymongo.errors.DuplicateKeyError:
                # A concurrent add of the same ban won the insert; replacing is idempotent.
                self._bans.replace_one(query, doc, upsert=True)

        self._run("add_ban", replace)

    def remove_ban(self, scope: str, kind: str, target: str) -> bool:
        result = self._run(
            "remove_ban",
            lambda: self._bans.delete_one({"scope": scope, "kind": kind, "target": target}),
        )
        return result.deleted_count > 0

    def list_bans(self, scope: Optional[str] = None) -> List[Ban]:
        query: Document = {} if scope is None else {"scope": scope}
        bans = self._run("list_bans", lambda: [_ban(doc) for doc in self._bans.find(query)])
        return sorted(bans, key=lambda b: (b.scope, b.kind, b.target))

    # -- accounts -------------------------------------------------------------------

    def create_account(self, account: Account) -> bool:
        doc: Document = {
            "key": key(account.name),
            "name": account.name,
            "password_hash": account.password_hash,
            "created": account.created,
        }
        return self._insert_unique("create_account", self._accounts, doc)

    def get_account(self, name: str) -> Optional[Account]:
        doc = self._run("get_account", lambda: self._accounts.find_one({"key": key(name)}))
        return None if doc is None else _account(doc)

    def set_password(self, name: str, password_hash: str) -> bool:
        result = self._run(
            "set_password",
            lambda: self._accounts.update_one(
                {"key": key(name)}, {"$set": {"password_hash": password_hash}}
            ),
        )
        return result.matched_count > 0

    # -- audit ----------------------------------------------------------------------

    def append_audit(
        self, actor: str, action: str, target: str, room: str, detail: str, created: float
    ) -> AuditEntry:
        def append() -> AuditEntry:
            entry = AuditEntry(self._next_id("audit"), created, actor, action, target, room, detail)
            self._audit.insert_one(
                {
                    "_id": entry.id,
                    "created": created,
                    "actor": actor,
                    "action": action,
                    "target": target,
                    "room": room,
                    "detail": detail,
                }
            )
            return entry

        with self._audit_lock:
            return self._run("append_audit", append)

    def list_audit(self, limit: int, before_id: Optional[int] = None) -> List[AuditEntry]:
        if limit <= 0:
            return []
        query: Document = {} if before_id is None else {"_id": {"$lt": before_id}}
        return self._run(
            "list_audit",
            lambda: [
                _audit(doc) for doc in self._audit.find(query, sort=[("_id", -1)], limit=limit)
            ],
        )

    # -- life cycle -----------------------------------------------------------------

    def ping(self) -> None:
        self._run("ping", lambda: self._db.command("ping"))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owns_client:
            try:
                self._client.close()
            except Exception as exc:  # closing is best effort; the process is stopping
                log.debug("closing the MongoDB client failed: %s", exc)


def _check_database(name: str) -> None:
    if not name or len(name) > 63 or _BAD_DATABASE_CHARS & set(name) or "\0" in name:
        raise ConfigurationError(f"mongodb storage: bad database name {name!r}")


def _client_hosts(client: Any) -> str:
    """host:port of the client's seeds without contacting the server (or a stand-in)."""
    try:
        seeds = client.topology_description.server_descriptions()
        return ",".join(f"{host}:{port}" for host, port in seeds)
    except Exception:
        return type(client).__module__.split(".")[0] + " client"
