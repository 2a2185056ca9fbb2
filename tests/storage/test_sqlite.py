# SQLite adapter tests beyond the shared contract: URLs, WAL, schema versions, durability
# after kill -9, and two connections (as two processes would have) on one file.
# Rules: real files in tmp_path, no mocks, bounded loops and waits, every child process
# killed in a `finally`.
from __future__ import annotations

import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Dict, Iterator, List

import pytest

import ktnchat.storage.sqlite  # noqa: F401  (registers sqlite:// before __init__ does)
from ktnchat.storage import (
    ConfigurationError,
    RoomRecord,
    StorageError,
    storage_from_url,
)
from ktnchat.storage.sqlite import SCHEMA_VERSION, SQLiteStorage, parse_url

REPO = Path(__file__).resolve().parents[2]
T0 = 1_700_000_000.0


def url_of(path: Path, options: str = "") -> str:
    return f"sqlite:///{path}{options}"  # an absolute path gives sqlite:////...


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "chat.db"


@pytest.fixture
def opened() -> Iterator[List[SQLiteStorage]]:
    """Stores a test opened, closed at the end whatever happens."""
    stores: List[SQLiteStorage] = []
    yield stores
    for store in stores:
        store.close()


def open_store(url: str, opened: List[SQLiteStorage]) -> SQLiteStorage:
    store = storage_from_url(url)
    assert isinstance(store, SQLiteStorage)
    opened.append(store)
    return store


def pragma(path: Path, name: str) -> object:
    connection = sqlite3.connect(str(path))
    try:
        return connection.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        connection.close()


# -- URLs -------------------------------------------------------------------------------------


def test_absolute_url(db_path: Path, opened: List[SQLiteStorage]) -> None:
    assert url_of(db_path).startswith("sqlite:////")
    store = open_store(url_of(db_path), opened)
    assert store.path == str(db_path)
    assert db_path.exists()
    assert str(db_path) in store.describe()


def test_relative_url_is_relative_to_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, opened: List[SQLiteStorage]
) -> None:
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///data/chat.db", opened)
    assert store.path == str(tmp_path / "data" / "chat.db")
    monkeypatch.chdir(REPO)  # the store keeps its absolute path after a chdir
    store.append_message("lobby", "alice", "hi", T0)
    assert (tmp_path / "data" / "chat.db").exists()


def test_parse_url_options() -> None:
    assert parse_url("sqlite:///chat.db") == ("chat.db", "normal", 10.0)
    assert parse_url("sqlite:////var/lib/ktnchat/chat.db?synchronous=FULL&timeout=2.5") == (
        "/var/lib/ktnchat/chat.db",
        "full",
        2.5,
    )
    assert parse_url("sqlite:///my%20chat.db")[0] == "my chat.db"


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("sqlite:///chat.db?cache=shared", "unknown option"),
        ("sqlite:///chat.db?synchronous=off", "synchronous must be one of"),
        ("sqlite:///chat.db?synchronous", "synchronous must be one of"),
        ("sqlite:///chat.db?timeout=soon", "timeout must be a number"),
        ("sqlite:///chat.db?timeout=-1", "timeout must be between"),
        ("sqlite://", "names no file"),
        ("sqlite:///:memory:", "names no file"),
        ("sqlite://somehost/chat.db", "names a host"),
    ],
)
def test_bad_urls_are_refused(url: str, complaint: str) -> None:
    with pytest.raises(ConfigurationError, match=complaint):
        storage_from_url(url)


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "chat.db"
    with pytest.raises(ConfigurationError, match="does not exist") as caught:
        storage_from_url(url_of(missing))
    assert str(missing.parent) in str(caught.value)
    assert not missing.parent.exists()  # nothing was created on the way


def test_a_directory_is_not_a_database(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="is a directory"):
        storage_from_url(url_of(tmp_path))


def test_a_file_that_is_not_a_database_is_refused(db_path: Path) -> None:
    db_path.write_bytes(b"this is a chat log, not a database\n" * 200)
    with pytest.raises(ConfigurationError, match="not an SQLite database") as caught:
        storage_from_url(url_of(db_path))
    assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can open any file"
)
def test_an_unreadable_file_is_a_storage_error(db_path: Path) -> None:
    db_path.write_bytes(b"")
    db_path.chmod(0)
    try:
        with pytest.raises((StorageError, ConfigurationError), match=str(db_path)):
            storage_from_url(url_of(db_path))
    finally:
        db_path.chmod(0o600)


# -- pragmas and schema --------------------------------------------------------------------


def test_wal_mode_and_synchronous(db_path: Path, opened: List[SQLiteStorage]) -> None:
    store = open_store(url_of(db_path), opened)
    assert pragma(db_path, "journal_mode") == "wal"  # persistent: recorded in the file
    assert "WAL, synchronous=normal" in store.describe()
    full = open_store(url_of(db_path, "?synchronous=full"), opened)
    assert "synchronous=full" in full.describe() and "power loss" in full.describe()


def test_schema_version_is_recorded(db_path: Path, opened: List[SQLiteStorage]) -> None:
    open_store(url_of(db_path), opened)
    assert SCHEMA_VERSION >= 1
    assert pragma(db_path, "user_version") == SCHEMA_VERSION


def test_an_empty_existing_file_is_migrated(db_path: Path, opened: List[SQLiteStorage]) -> None:
    db_path.write_bytes(b"")
    store = open_store(url_of(db_path), opened)
    assert store.append_message("lobby", "alice", "hi", T0).id == 1
    assert pragma(db_path, "user_version") == SCHEMA_VERSION


@pytest.mark.parametrize(
    ("version", "complaint"), [(SCHEMA_VERSION + 1, "newer"), (-1, "no ktnchat")]
)
def test_an_unknown_schema_version_is_refused_and_left_alone(
    db_path: Path, version: int, complaint: str
) -> None:
    storage_from_url(url_of(db_path)).close()
    connection = sqlite3.connect(str(db_path))
    connection.execute(f"PRAGMA user_version = {version}")
    connection.commit()
    connection.close()
    with pytest.raises(ConfigurationError, match=complaint):
        storage_from_url(url_of(db_path))
    assert pragma(db_path, "user_version") == version


def test_reopening_an_up_to_date_file_keeps_its_data(
    db_path: Path, opened: List[SQLiteStorage]
) -> None:
    first = open_store(url_of(db_path), opened)
    message = first.append_message("Lobby", "Alice", "hi", T0)
    first.close()
    second = open_store(url_of(db_path), opened)
    assert second.get_message(message.id) == message
    assert second.recent_messages("LOBBY", 5) == [message]


def test_ids_are_never_reused_after_deleting_the_newest(
    db_path: Path, opened: List[SQLiteStorage]
) -> None:
    first = open_store(url_of(db_path), opened)
    ids = [first.append_message("lobby", "a", str(i), T0).id for i in range(3)]
    assert first.delete_message(ids[-1]) is not None
    assert first.delete_messages_by("a") == ids[:2]
    first.close()
    second = open_store(url_of(db_path), opened)
    assert second.append_message("lobby", "a", "new", T0).id > ids[-1]
    audit = second.append_audit("admin", "kick", "a", "lobby", "", T0)
    assert audit.id == 1


def test_keys_are_lowered_beyond_ascii(db_path: Path, opened: List[SQLiteStorage]) -> None:
    # SQLite's own lower() knows only ASCII; key() is Python's str.lower().
    store = open_store(url_of(db_path), opened)
    store.append_message("ÆRØ", "Ødegård", "hei", T0)
    assert [m.room for m in store.recent_messages("ærø", 5)] == ["ÆRØ"]
    assert len(store.delete_messages_by("ØDEGÅRD")) == 1


def test_driver_failures_become_storage_errors(db_path: Path, opened: List[SQLiteStorage]) -> None:
    store = open_store(url_of(db_path), opened)
    with pytest.raises(StorageError) as caught:
        store.append_message("lobby", "alice", "lone \ud800 surrogate", T0)
    assert isinstance(caught.value.__cause__, UnicodeEncodeError)
    assert store.recent_messages("lobby", 5) == []  # nothing half-written
    assert store.get_message(2**70) is None and store.delete_message(-(2**70)) is None
    store.close()
    with pytest.raises(StorageError) as caught:
        store.append_message("lobby", "alice", "after close", T0)
    assert isinstance(caught.value.__cause__, sqlite3.Error)
    with pytest.raises(StorageError):
        store.ping()


# -- two connections on one file -------------------------------------------------------------


def test_two_stores_on_one_file_see_each_others_writes(
    db_path: Path, opened: List[SQLiteStorage]
) -> None:
    one = open_store(url_of(db_path), opened)
    two = open_store(url_of(db_path), opened)
    first = one.append_message("lobby", "alice", "from one", T0)
    assert two.get_message(first.id) == first
    second = two.append_message("lobby", "bob", "from two", T0 + 1)
    assert second.id > first.id
    assert one.recent_messages("lobby", 10) == [first, second]
    assert two.create_room(RoomRecord("Games", "bob", "", T0))
    assert not one.create_room(RoomRecord("games", "alice", "", T0))
    assert one.set_topic("GAMES", "chess")
    assert two.get_room("games") == RoomRecord("Games", "bob", "chess", T0)


def test_two_stores_writing_at_once_lose_nothing(
    db_path: Path, opened: List[SQLiteStorage]
) -> None:
    stores = [open_store(url_of(db_path), opened) for _ in range(2)]
    errors: List[BaseException] = []
    ids: Dict[int, str] = {}
    lock = threading.Lock()

    def writer(n: int) -> None:
        try:
            for i in range(100):
                text = f"w{n} {i}"
                message = stores[n % 2].append_message("lobby", f"w{n}", text, T0 + i)
                with lock:
                    ids[message.id] = text
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert len(ids) == 400
    stored = stores[0].recent_messages("lobby", 1000)
    assert {m.id: m.text for m in stored} == ids


# -- kill -9 ---------------------------------------------------------------------------------------

WRITER = """
import sys
sys.path.insert(0, {repo!r})
from ktnchat.storage.sqlite import SQLiteStorage
store = SQLiteStorage.from_url({url!r})
print("ready", flush=True)
for i in range(1_000_000):
    message = store.append_message("lobby", "writer", "message %d" % i, 1.0 + i)
    print(message.id, i, flush=True)
"""


def _pump(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


def _record(line: str, acknowledged: Dict[int, str]) -> None:
    if not line.endswith("\n"):
        return  # cut short by the kill: never fully printed, so never acknowledged
    message_id, index = line.split()
    acknowledged[int(message_id)] = f"message {index}"


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
@pytest.mark.parametrize("synchronous", ["normal", "full"])
def test_acknowledged_messages_survive_kill_9(db_path: Path, synchronous: str) -> None:
    """Every id the writer printed (after append_message returned) is there after kill -9.

    The writer runs ahead of our reading, so the lines still in the pipe when the kill
    lands are read afterwards and checked too: the last one printed is the last message
    acknowledged before the process died.
    """
    wanted = 300  # acknowledged messages to see before the kill
    url = url_of(db_path, f"?synchronous={synchronous}")
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER.format(repo=str(REPO), url=url)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acknowledged: Dict[int, str] = {}
    try:
        assert child.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        pump = threading.Thread(target=_pump, args=(child.stdout, lines), daemon=True)
        pump.start()
        deadline = time.monotonic() + 60
        assert lines.get(timeout=30).strip() == "ready"
        while len(acknowledged) < wanted:
            _record(lines.get(timeout=max(0.1, deadline - time.monotonic())), acknowledged)
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
        pump.join(timeout=30)  # the pipe is at its end once the writer is dead
        assert not pump.is_alive()
        while not lines.empty():
            _record(lines.get_nowait(), acknowledged)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()
    store = storage_from_url(url)
    try:
        for message_id, text in sorted(acknowledged.items()):
            message = store.get_message(message_id)
            assert message is not None, (
                f"acknowledged message {message_id} lost ({len(acknowledged)} acknowledged)"
            )
            assert message.text == text and message.room == "lobby"
        stored = store.recent_messages("lobby", 1_000_000)
        assert [m.id for m in stored] == sorted(m.id for m in stored)
        assert len(stored) >= len(acknowledged) >= wanted
        newer = store.append_message("lobby", "after", "restart", T0)
        assert newer.id > max(m.id for m in stored)
    finally:
        store.close()
