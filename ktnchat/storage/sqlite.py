# SQLite storage: durable chat state in one local file, standard library `sqlite3` only.
#
# Rules:
# - URLs follow SQLAlchemy: `sqlite:///chat.db` is relative to the current directory,
#   `sqlite:////var/lib/ktnchat/chat.db` is absolute. Options: `?synchronous=normal|full`
#   (default normal) and `?timeout=SECONDS` (how long to wait for another writer, default
#   10). Unknown options, a missing parent directory or a file that is not a database
#   are refused at start.
# - Durability: WAL journal mode. Every write is one transaction, committed before the
#   method returns ("accepted once this returns"). With synchronous=normal a committed
#   transaction is in the WAL file, so it survives the process being killed (kill -9,
#   a crash); a power loss or OS crash may lose the last few commits, never corrupting
#   the file. With synchronous=full every commit is also fsynced: it survives power loss
#   too, at the price of one fsync per message. Local disks only (WAL needs shared memory,
#   which network file systems do not give).
# - One connection per store, guarded by one lock: calls from any thread are serialised.
#   Writes take the write lock up front (BEGIN IMMEDIATE), so another process writing to
#   the same file makes us wait up to the busy timeout instead of failing at once.
# - The schema is versioned with PRAGMA user_version: MIGRATIONS[n - 1] takes the file
#   from version n - 1 to n, each in its own transaction. A file newer than the code is
#   refused (ConfigurationError), never touched.
# - Message and audit ids are AUTOINCREMENT: never reused, even after the newest row is
#   deleted and the file reopened. Names are kept as given; a `key()` column beside each
#   one (computed in Python, since SQLite's lower() knows only ASCII) serves every lookup.
#   No foreign keys: messages, moderators and bans may name rooms that have no record.
# - Every driver failure (sqlite3.Error, and text or numbers SQLite cannot hold) is
#   raised as StorageError with the cause chained.
from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import contextmanager
from typing import Any, Iterator, List, Optional, Sequence, Set, Tuple
from urllib.parse import parse_qs, unquote, urlsplit

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
    register_scheme,
)

SYNCHRONOUS_LEVELS = {"normal": 1, "full": 2}  # name -> the value PRAGMA synchronous reports
DEFAULT_SYNCHRONOUS = "normal"
DEFAULT_TIMEOUT = 10.0  # seconds to wait for another connection's write lock

# The largest value an SQLite INTEGER holds; ids and limits are clamped to it.
MAX_INTEGER = 2**63 - 1
MIN_INTEGER = -(2**63)

# MIGRATIONS[n - 1] takes a database from schema version n - 1 to n. Append only: never
# edit a migration that has shipped.
MIGRATIONS: Tuple[Tuple[str, ...], ...] = (
    # 1: the initial schema.
    (
        """CREATE TABLE messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            room TEXT NOT NULL,
            room_key TEXT NOT NULL,
            sender TEXT NOT NULL,
            sender_key TEXT NOT NULL,
            text TEXT NOT NULL,
            created REAL NOT NULL
        )""",
        "CREATE INDEX messages_by_room ON messages (room_key, id)",
        "CREATE INDEX messages_by_sender ON messages (sender_key, room_key)",
        "CREATE INDEX messages_by_created ON messages (created)",
        """CREATE TABLE rooms (
            name_key TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            owner TEXT,
            topic TEXT NOT NULL,
            created REAL NOT NULL
        ) WITHOUT ROWID""",
        """CREATE TABLE moderators (
            room_key TEXT NOT NULL,
            user_key TEXT NOT NULL,
            PRIMARY KEY (room_key, user_key)
        ) WITHOUT ROWID""",
        """CREATE TABLE bans (
            scope TEXT NOT NULL,
            kind TEXT NOT NULL,
            target TEXT NOT NULL,
            banned_by TEXT NOT NULL,
            reason TEXT NOT NULL,
            created REAL NOT NULL,
            expires REAL,
            PRIMARY KEY (scope, kind, target)
        ) WITHOUT ROWID""",
        """CREATE TABLE accounts (
            name_key TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            created REAL NOT NULL
        ) WITHOUT ROWID""",
        """CREATE TABLE audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            created REAL NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL,
            room TEXT NOT NULL,
            detail TEXT NOT NULL
        )""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

_MESSAGE_COLUMNS = "id, room, sender, text, created"
_BAN_COLUMNS = "scope, kind, target, banned_by, reason, created, expires"
_AUDIT_COLUMNS = "id, created, actor, action, target, room, detail"

# What SQLite cannot store: lone surrogates in text, integers beyond 64 bits.
_DRIVER_ERRORS = (sqlite3.Error, UnicodeEncodeError, OverflowError)


def _clamp(number: int) -> int:
    return max(MIN_INTEGER, min(MAX_INTEGER, number))


def _message(row: Sequence[Any]) -> StoredMessage:
    return StoredMessage(int(row[0]), row[1], row[2], row[3], float(row[4]))


def _ban(row: Sequence[Any]) -> Ban:
    expires = None if row[6] is None else float(row[6])
    return Ban(row[0], row[1], row[2], row[3], row[4], float(row[5]), expires)


def _audit(row: Sequence[Any]) -> AuditEntry:
    return AuditEntry(int(row[0]), float(row[1]), row[2], row[3], row[4], row[5], row[6])


def parse_url(url: str) -> Tuple[str, str, float]:
    """The file path, synchronous level and busy timeout a `sqlite:` URL names.

    Raises:
        ConfigurationError: not a file URL, or an unknown or bad option.
    """
    parts = urlsplit(url)
    if parts.scheme != SQLiteStorage.SCHEME:
        raise ConfigurationError(f"sqlite storage: {url!r} is not a sqlite:// URL")
    if parts.netloc:
        raise ConfigurationError(
            f"sqlite storage: {url!r} names a host ({parts.netloc!r}); use sqlite:///relative.db "
            "or sqlite:////absolute/path.db"
        )
    if parts.fragment:
        raise ConfigurationError(f"sqlite storage: unexpected '#{parts.fragment}' in {url!r}")
    path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
    if not path or path == ":memory:":
        raise ConfigurationError(
            f"sqlite storage: {url!r} names no file; use sqlite:///chat.db "
            "(or memory:// for a store that is lost on restart)"
        )
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = set(query) - {"synchronous", "timeout"}
    if unknown:
        raise ConfigurationError(
            f"sqlite storage: unknown option(s) {sorted(unknown)}; known: synchronous, timeout"
        )
    synchronous = query.get("synchronous", [DEFAULT_SYNCHRONOUS])[-1].lower()
    if synchronous not in SYNCHRONOUS_LEVELS:
        raise ConfigurationError(
            f"sqlite storage: synchronous must be one of {sorted(SYNCHRONOUS_LEVELS)}, "
            f"not {synchronous!r}"
        )
    raw_timeout = query.get("timeout", [str(DEFAULT_TIMEOUT)])[-1]
    try:
        timeout = float(raw_timeout)
    except ValueError:
        raise ConfigurationError(
            f"sqlite storage: timeout must be a number of seconds, not {raw_timeout!r}"
        ) from None
    if not 0 <= timeout <= 3600:
        raise ConfigurationError("sqlite storage: timeout must be between 0 and 3600 seconds")
    return path, synchronous, timeout


class SQLiteStorage(Storage):
    """Chat state in one SQLite file (WAL); every write committed before it returns."""

    SCHEME = "sqlite"
    INLINE_SAFE = False

    def __init__(
        self, path: str, synchronous: str = DEFAULT_SYNCHRONOUS, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        """Open (creating if need be) and migrate the database at `path`.

        Raises:
            ConfigurationError: bad option, missing directory, not a database, or a schema
                newer than this code.
            StorageError: the file could not be opened or set up.
        """
        if synchronous not in SYNCHRONOUS_LEVELS:
            raise ConfigurationError(
                f"sqlite storage: synchronous must be one of {sorted(SYNCHRONOUS_LEVELS)}"
            )
        self.path = os.path.abspath(path)
        self.synchronous = synchronous
        self.timeout = timeout
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            raise ConfigurationError(
                f"sqlite storage: directory {directory!r} does not exist (for {self.path!r})"
            )
        if os.path.isdir(self.path):
            raise ConfigurationError(f"sqlite storage: {self.path!r} is a directory")
        self._lock = threading.Lock()
        try:
            self._connection = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StorageError(f"sqlite storage: cannot open {self.path!r}: {exc}") from exc
        try:
            self._set_up()
        except sqlite3.Error as exc:
            self._connection.close()
            if "not a database" in str(exc):
                raise ConfigurationError(
                    f"sqlite storage: {self.path!r} is not an SQLite database"
                ) from exc
            raise StorageError(f"sqlite storage: cannot open {self.path!r}: {exc}") from exc
        except BaseException:
            self._connection.close()
            raise

    @classmethod
    def from_url(cls, url: str) -> SQLiteStorage:
        """Build from `sqlite:///relative.db` or `sqlite:////absolute.db`, with options."""
        path, synchronous, timeout = parse_url(url)
        return cls(path, synchronous, timeout)

    def describe(self) -> str:
        promise = (
            "survives power loss"
            if self.synchronous == "full"
            else "survives a killed process, not a power loss"
        )
        return f"sqlite {self.path} (WAL, synchronous={self.synchronous}: {promise})"

    # -- connection -----------------------------------------------------------------

    def _set_up(self) -> None:
        """Check the schema version, switch to WAL, then migrate; raises sqlite3 errors."""
        db = self._connection
        db.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        self._refuse_newer(self._user_version())
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StorageError(
                f"sqlite storage: {self.path!r} could not be put in WAL mode (it is in {mode!r} "
                "mode; is another program holding it open?)"
            )
        db.execute(f"PRAGMA synchronous = {SYNCHRONOUS_LEVELS[self.synchronous]}")
        level = db.execute("PRAGMA synchronous").fetchone()[0]
        if level != SYNCHRONOUS_LEVELS[self.synchronous]:
            raise StorageError(f"sqlite storage: synchronous={self.synchronous} did not take")
        while True:
            db.execute("BEGIN IMMEDIATE")
            try:
                version = self._user_version()  # again: another process may have migrated
                self._refuse_newer(version)
                if version == SCHEMA_VERSION:
                    db.execute("COMMIT")
                    return
                for statement in MIGRATIONS[version]:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {version + 1}")
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def _user_version(self) -> int:
        return int(self._connection.execute("PRAGMA user_version").fetchone()[0])

    def _refuse_newer(self, version: int) -> None:
        if version < 0:
            raise ConfigurationError(
                f"sqlite storage: {self.path!r} has schema version {version}, which no "
                "ktnchat wrote; refusing to touch it"
            )
        if version > SCHEMA_VERSION:
            raise ConfigurationError(
                f"sqlite storage: {self.path!r} has schema version {version}, newer than the "
                f"{SCHEMA_VERSION} this ktnchat knows; upgrade ktnchat or use another file"
            )

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """The connection, under the lock; driver errors become StorageError."""
        with self._lock:
            try:
                yield self._connection
            except _DRIVER_ERRORS as exc:
                raise StorageError(f"sqlite storage: {exc}") from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction, under the lock, committed on leaving (rolled back on error)."""
        with self._lock:
            db = self._connection
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
            except _DRIVER_ERRORS as exc:
                raise StorageError(f"sqlite storage: {exc}") from exc

    def ping(self) -> None:
        with self._read() as db:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()

    def close(self) -> None:
        with self._lock:
            try:
                self._connection.close()
            except sqlite3.Error as exc:
                raise StorageError(f"sqlite storage: closing {self.path!r}: {exc}") from exc

    # -- messages -------------------------------------------------------------------

    def append_message(self, room: str, sender: str, text: str, created: float) -> StoredMessage:
        with self._write() as db:
            # Inside the write transaction (BEGIN IMMEDIATE: one writer at a time across
            # every process), so `prev` is exactly the message committed before this one.
            (prev,) = db.execute(
                "SELECT coalesce(max(id), 0) FROM messages WHERE room_key = ?", (key(room),)
            ).fetchone()
            cursor = db.execute(
                "INSERT INTO messages (room, room_key, sender, sender_key, text, created)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (room, key(room), sender, key(sender), text, created),
            )
            message_id = cursor.lastrowid
        assert message_id is not None
        return StoredMessage(message_id, room, sender, text, created, int(prev))

    def messages_after(
        self, room: str, after_id: int, limit: int
    ) -> Tuple[List[StoredMessage], int]:
        after = _clamp(after_id)
        with self._read() as db:
            (total,) = db.execute(
                "SELECT count(*) FROM messages WHERE room_key = ? AND id > ?", (key(room), after)
            ).fetchone()
            rows = (
                db.execute(
                    f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE room_key = ? AND id > ?"
                    " ORDER BY id DESC LIMIT ?",
                    (key(room), after, _clamp(limit)),
                ).fetchall()
                if limit > 0
                else []
            )
        return [_message(row) for row in reversed(rows)], int(total)

    def recent_messages(
        self, room: str, limit: int, before_id: Optional[int] = None
    ) -> List[StoredMessage]:
        if limit <= 0:
            return []
        before = MAX_INTEGER if before_id is None else _clamp(before_id)
        with self._read() as db:
            rows = db.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE room_key = ? AND id < ?"
                " ORDER BY id DESC LIMIT ?",
                (key(room), before, _clamp(limit)),
            ).fetchall()
        return [_message(row) for row in reversed(rows)]

    def get_message(self, message_id: int) -> Optional[StoredMessage]:
        if not MIN_INTEGER <= message_id <= MAX_INTEGER:
            return None
        with self._read() as db:
            row = db.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id = ?", (message_id,)
            ).fetchone()
        return None if row is None else _message(row)

    def delete_message(self, message_id: int) -> Optional[StoredMessage]:
        if not MIN_INTEGER <= message_id <= MAX_INTEGER:
            return None
        with self._write() as db:
            row = db.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id = ?", (message_id,)
            ).fetchone()
            if row is not None:
                db.execute("DELETE FROM messages WHERE id = ?", (message_id,))
        return None if row is None else _message(row)

    def delete_messages_by(self, sender: str, room: Optional[str] = None) -> List[int]:
        where = "sender_key = ?"
        params: Tuple[str, ...] = (key(sender),)
        if room is not None:
            where += " AND room_key = ?"
            params += (key(room),)
        with self._write() as db:
            ids = [
                int(row[0])
                for row in db.execute(f"SELECT id FROM messages WHERE {where} ORDER BY id", params)
            ]
            if ids:
                db.execute(f"DELETE FROM messages WHERE {where}", params)
        return ids

    def prune_messages(
        self, keep_per_room: Optional[int] = None, older_than: Optional[float] = None
    ) -> int:
        removed = 0
        with self._write() as db:
            if older_than is not None:
                removed += db.execute(
                    "DELETE FROM messages WHERE created < ?", (older_than,)
                ).rowcount
            if keep_per_room is not None and keep_per_room <= 0:
                removed += db.execute("DELETE FROM messages").rowcount
            elif keep_per_room is not None:
                keep = _clamp(keep_per_room)
                crowded = db.execute(
                    "SELECT room_key FROM messages GROUP BY room_key HAVING count(*) > ?", (keep,)
                ).fetchall()
                for (room_key,) in crowded:
                    # The oldest message to keep; everything older in the room goes.
                    (oldest_kept,) = db.execute(
                        "SELECT id FROM messages WHERE room_key = ? ORDER BY id DESC"
                        " LIMIT 1 OFFSET ?",
                        (room_key, keep - 1),
                    ).fetchone()
                    removed += db.execute(
                        "DELETE FROM messages WHERE room_key = ? AND id < ?",
                        (room_key, oldest_kept),
                    ).rowcount
        return removed

    # -- rooms ----------------------------------------------------------------------

    def create_room(self, room: RoomRecord) -> bool:
        with self._write() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO rooms (name_key, name, owner, topic, created)"
                " VALUES (?, ?, ?, ?, ?)",
                (key(room.name), room.name, room.owner, room.topic, room.created),
            )
            return cursor.rowcount == 1

    def get_room(self, name: str) -> Optional[RoomRecord]:
        with self._read() as db:
            row = db.execute(
                "SELECT name, owner, topic, created FROM rooms WHERE name_key = ?", (key(name),)
            ).fetchone()
        return None if row is None else RoomRecord(row[0], row[1], row[2], float(row[3]))

    def list_rooms(self) -> List[RoomRecord]:
        # BINARY collation compares UTF-8 bytes: the same order as Python's sorted(str).
        with self._read() as db:
            rows = db.execute(
                "SELECT name, owner, topic, created FROM rooms ORDER BY name_key"
            ).fetchall()
        return [RoomRecord(row[0], row[1], row[2], float(row[3])) for row in rows]

    def set_topic(self, name: str, topic: str) -> bool:
        with self._write() as db:
            cursor = db.execute("UPDATE rooms SET topic = ? WHERE name_key = ?", (topic, key(name)))
            return cursor.rowcount == 1

    def delete_room(self, name: str) -> bool:
        room_key = key(name)
        with self._write() as db:
            if db.execute("DELETE FROM rooms WHERE name_key = ?", (room_key,)).rowcount == 0:
                return False
            db.execute("DELETE FROM moderators WHERE room_key = ?", (room_key,))
            db.execute("DELETE FROM bans WHERE scope = ?", (room_key,))
            db.execute("DELETE FROM messages WHERE room_key = ?", (room_key,))
            return True

    # -- moderators ------------------------------------------------------------------

    def add_moderator(self, room: str, username: str) -> bool:
        with self._write() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO moderators (room_key, user_key) VALUES (?, ?)",
                (key(room), key(username)),
            )
            return cursor.rowcount == 1

    def remove_moderator(self, room: str, username: str) -> bool:
        with self._write() as db:
            cursor = db.execute(
                "DELETE FROM moderators WHERE room_key = ? AND user_key = ?",
                (key(room), key(username)),
            )
            return cursor.rowcount == 1

    def moderators(self, room: str) -> Set[str]:
        with self._read() as db:
            rows = db.execute(
                "SELECT user_key FROM moderators WHERE room_key = ?", (key(room),)
            ).fetchall()
        return {row[0] for row in rows}

    # -- bans -----------------------------------------------------------------------

    def add_ban(self, ban: Ban) -> None:
        with self._write() as db:
            db.execute(
                f"INSERT OR REPLACE INTO bans ({_BAN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    ban.scope,
                    ban.kind,
                    ban.target,
                    ban.by,
                    ban.reason,
                    ban.created,
                    ban.expires,
                ),
            )

    def remove_ban(self, scope: str, kind: str, target: str) -> bool:
        with self._write() as db:
            cursor = db.execute(
                "DELETE FROM bans WHERE scope = ? AND kind = ? AND target = ?",
                (scope, kind, target),
            )
            return cursor.rowcount == 1

    def list_bans(self, scope: Optional[str] = None) -> List[Ban]:
        order = " ORDER BY scope, kind, target"
        with self._read() as db:
            if scope is None:
                rows = db.execute(f"SELECT {_BAN_COLUMNS} FROM bans{order}").fetchall()
            else:
                rows = db.execute(
                    f"SELECT {_BAN_COLUMNS} FROM bans WHERE scope = ?{order}", (scope,)
                ).fetchall()
        return [_ban(row) for row in rows]

    # -- accounts -------------------------------------------------------------------

    def create_account(self, account: Account) -> bool:
        with self._write() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO accounts (name_key, name, password_hash, created)"
                " VALUES (?, ?, ?, ?)",
                (key(account.name), account.name, account.password_hash, account.created),
            )
            return cursor.rowcount == 1

    def get_account(self, name: str) -> Optional[Account]:
        with self._read() as db:
            row = db.execute(
                "SELECT name, password_hash, created FROM accounts WHERE name_key = ?",
                (key(name),),
            ).fetchone()
        return None if row is None else Account(row[0], row[1], float(row[2]))

    def set_password(self, name: str, password_hash: str) -> bool:
        with self._write() as db:
            cursor = db.execute(
                "UPDATE accounts SET password_hash = ? WHERE name_key = ?",
                (password_hash, key(name)),
            )
            return cursor.rowcount == 1

    # -- audit ----------------------------------------------------------------------

    def append_audit(
        self, actor: str, action: str, target: str, room: str, detail: str, created: float
    ) -> AuditEntry:
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO audit (created, actor, action, target, room, detail)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (created, actor, action, target, room, detail),
            )
            entry_id = cursor.lastrowid
        assert entry_id is not None
        return AuditEntry(entry_id, created, actor, action, target, room, detail)

    def list_audit(self, limit: int, before_id: Optional[int] = None) -> List[AuditEntry]:
        if limit <= 0:
            return []
        before = MAX_INTEGER if before_id is None else _clamp(before_id)
        with self._read() as db:
            rows = db.execute(
                f"SELECT {_AUDIT_COLUMNS} FROM audit WHERE id < ? ORDER BY id DESC LIMIT ?",
                (before, _clamp(limit)),
            ).fetchall()
        return [_audit(row) for row in rows]


register_scheme(SQLiteStorage.SCHEME, SQLiteStorage.from_url)
