# What only the MongoDB adapter does: URL parsing, indexes, ids across restarts, and
# the circuit breaker that keeps the server running through a MongoDB outage (with a
# proxy that makes mongomock "go down" and an injected clock: no sleeps).
from __future__ import annotations

import logging
import subprocess
import sys
from typing import Any, Dict, List, Tuple

import pytest

from ktnchat.storage import Account, ConfigurationError, RoomRecord, StorageError

pytest.importorskip("pymongo", reason="pymongo is not installed")
mongomock = pytest.importorskip("mongomock", reason="mongomock is not installed")

import pymongo  # noqa: E402
import pymongo.errors  # noqa: E402

from ktnchat.storage.mongodb import CircuitBreaker, MongoStorage, redact  # noqa: E402
from tests.storage.flaky_mongo import FlakyClient, Outage  # noqa: E402

T0 = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def outage() -> Outage:
    return Outage()


@pytest.fixture
def flaky(clock: Clock, outage: Outage) -> MongoStorage:
    client = FlakyClient(mongomock.MongoClient(), outage)
    return MongoStorage(client, "ktnchat_test", clock=clock, retry_initial=0.5, retry_max=4.0)


def unavailable(store: MongoStorage) -> StorageError:
    with pytest.raises(StorageError, match="storage unavailable") as info:
        store.append_message("lobby", "alice", "lost", T0)
    return info.value


# -- URLs -------------------------------------------------------------------------------------


class FakeClient:
    """Stands in for pymongo.MongoClient: records how it was built, serves mongomock."""

    made: List[FakeClient] = []

    def __init__(self, url: str, **options: Any) -> None:
        self.url = url
        self.options = options
        self.closed = False
        self._inner = mongomock.MongoClient()
        FakeClient.made.append(self)

    def __getitem__(self, name: str) -> Any:
        return self._inner[name]

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_client(monkeypatch: pytest.MonkeyPatch) -> List[FakeClient]:
    FakeClient.made = []
    monkeypatch.setattr(pymongo, "MongoClient", FakeClient)
    return FakeClient.made


def test_database_comes_from_the_url_path(fake_client: List[FakeClient]) -> None:
    store = MongoStorage.from_url("mongodb://db.example:27017/chatdb")
    assert store.database_name == "chatdb"
    assert fake_client[0].url == "mongodb://db.example:27017/chatdb"
    assert store.describe() == "MongoDB at db.example:27017, database chatdb"


@pytest.mark.parametrize(
    "url", ["mongodb://db.example", "mongodb://db.example/", "mongodb://db.example/?w=1"]
)
def test_database_defaults_to_ktnchat(fake_client: List[FakeClient], url: str) -> None:
    assert MongoStorage.from_url(url).database_name == "ktnchat"


def test_short_timeouts_by_default(fake_client: List[FakeClient]) -> None:
    MongoStorage.from_url("mongodb://db.example/chat")
    options = fake_client[0].options
    assert options["serverSelectionTimeoutMS"] == 2000
    assert options["connectTimeoutMS"] == 2000
    assert options["socketTimeoutMS"] > 0


def test_the_urls_own_options_are_kept_and_win(fake_client: List[FakeClient]) -> None:
    MongoStorage.from_url(
        "mongodb://db.example/chat?replicaSet=rs0&serverselectiontimeoutms=150"
        "&connectTimeoutMS=300&authSource=admin"
    )
    client = fake_client[0]
    assert client.url == (
        "mongodb://db.example/chat?replicaSet=rs0&serverselectiontimeoutms=150"
        "&connectTimeoutMS=300&authSource=admin"
    )
    # Keyword arguments would override the URL in pymongo: none for what the URL sets.
    assert "serverSelectionTimeoutMS" not in client.options
    assert "connectTimeoutMS" not in client.options
    assert client.options["socketTimeoutMS"] > 0


def test_prefix_option_names_the_collections(fake_client: List[FakeClient]) -> None:
    store = MongoStorage.from_url("mongodb://db.example/chat?w=majority&prefix=ktn_")
    assert fake_client[0].url == "mongodb://db.example/chat?w=majority"
    store.append_message("lobby", "alice", "hi", T0)
    names = set(fake_client[0]["chat"].list_collection_names())
    assert "ktn_messages" in names and "messages" not in names
    assert "prefixed 'ktn_'" in store.describe()


def test_srv_urls_and_several_hosts_are_accepted(fake_client: List[FakeClient]) -> None:
    srv = MongoStorage.from_url("mongodb+srv://cluster0.example.net/chat")
    assert srv.describe() == "MongoDB at cluster0.example.net, database chat"
    hosts = MongoStorage.from_url("mongodb://a:1,b:2/chat?replicaSet=rs")
    assert hosts.describe() == "MongoDB at a:1,b:2, database chat"


def test_describe_and_errors_never_show_the_password(fake_client: List[FakeClient]) -> None:
    store = MongoStorage.from_url("mongodb://chat:s3cret@db.example:27017/chat")
    assert "s3cret" not in store.describe() and "chat:" not in store.describe()
    assert redact("mongodb://chat:s3cret@h/db") == "mongodb://chat:***@h/db"
    with pytest.raises(ConfigurationError) as info:
        MongoStorage.from_url("mongodb://chat:s3cret@db.example/bad.name")
    assert "s3cret" not in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgres://db.example/chat",
        "mongodb:///chat",
        "mongodb://db.example/bad.name",
        "mongodb://db.example/a/b",
        "mongodb://db.example/chat?prefix=$bad",
    ],
)
def test_bad_urls_are_configuration_errors(fake_client: List[FakeClient], url: str) -> None:
    with pytest.raises(ConfigurationError):
        MongoStorage.from_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "mongodb+srv://cluster0.example.net:27017/chat",
        "mongodb://db.example/chat?tls=true&ssl=false",
        "mongodb://db.example:port/chat",
    ],
)
def test_pymongos_own_url_errors_become_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError, match="bad MongoDB URL"):
        MongoStorage.from_url(url)


def test_missing_pymongo_is_a_clear_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pymongo", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'ktnchat\[mongo\]'"):
        MongoStorage.from_url("mongodb://db.example/chat")
    with pytest.raises(ConfigurationError, match="pymongo"):
        MongoStorage(mongomock.MongoClient(), "chat")


def test_storage_package_and_this_module_import_without_pymongo() -> None:
    code = (
        "import sys; sys.modules['pymongo'] = None; sys.modules['bson'] = None\n"
        "import ktnchat.storage, ktnchat.storage.mongodb\n"
        "try:\n"
        "    ktnchat.storage.mongodb.MongoStorage.from_url('mongodb://h/db')\n"
        "except ktnchat.storage.ConfigurationError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "pip install 'ktnchat[mongo]'" in done.stdout


def test_storage_from_url_builds_it(fake_client: List[FakeClient]) -> None:
    from ktnchat.storage import SCHEMES, storage_from_url

    if "mongodb" not in SCHEMES:
        pytest.skip("mongodb:// is not registered in ktnchat.storage yet")
    store = storage_from_url("mongodb://db.example/chat")
    assert isinstance(store, MongoStorage) and store.database_name == "chat"


def test_an_unreachable_server_at_start_is_a_storage_error() -> None:
    # Real pymongo, nothing listening on port 1: the URL's short timeout applies.
    with pytest.raises(StorageError, match="storage unavailable") as info:
        MongoStorage.from_url(
            "mongodb://127.0.0.1:1/chat?serverSelectionTimeoutMS=200&connectTimeoutMS=200"
        )
    assert isinstance(info.value.__cause__, pymongo.errors.ConnectionFailure)


def test_close_closes_only_a_client_it_opened(fake_client: List[FakeClient]) -> None:
    MongoStorage.from_url("mongodb://db.example/chat").close()
    assert fake_client[0].closed
    given = FakeClient("mongodb://db.example")
    store = MongoStorage(given, "chat")  # type: ignore[arg-type]
    store.close()
    assert not given.closed
    with pytest.raises(StorageError, match="closed"):
        store.get_message(1)


# -- schema and ids -------------------------------------------------------------------------


def test_indexes_exist_after_start() -> None:
    client = mongomock.MongoClient()
    MongoStorage(client, "chat")
    db = client["chat"]

    def keys(collection: str) -> Dict[Tuple[Tuple[str, int], ...], bool]:
        info = db[collection].index_information()
        return {tuple(spec["key"]): bool(spec.get("unique")) for spec in info.values()}

    assert keys("messages")[(("room_key", 1), ("_id", 1))] is False
    assert keys("messages")[(("sender_key", 1), ("room_key", 1))] is False
    assert keys("messages")[(("created", 1),)] is False
    assert keys("rooms")[(("key", 1),)] is True
    assert keys("moderators")[(("room_key", 1), ("user_key", 1))] is True
    assert keys("bans")[(("scope", 1), ("kind", 1), ("target", 1))] is True
    assert keys("accounts")[(("key", 1),)] is True
    MongoStorage(client, "chat")  # creating them again on the next start is harmless


def test_ids_keep_increasing_after_reopening() -> None:
    client = mongomock.MongoClient()
    first = MongoStorage(client, "chat")
    a = first.append_message("lobby", "alice", "one", T0)
    b = first.append_message("games", "bob", "two", T0)
    first.delete_message(b.id)  # the newest id is gone, but is never handed out again
    audit = first.append_audit("admin", "ban", "mallory", "", "", T0)
    first.close()
    second = MongoStorage(client, "chat")
    c = second.append_message("lobby", "carol", "three", T0)
    assert a.id < b.id < c.id
    assert second.append_audit("admin", "kick", "x", "", "", T0).id > audit.id


def test_ids_stay_ahead_of_stored_messages_if_the_counters_were_lost() -> None:
    client = mongomock.MongoClient()
    first = MongoStorage(client, "chat")
    last = [first.append_message("lobby", "a", str(i), T0) for i in range(3)][-1]
    client["chat"].drop_collection("counters")
    second = MongoStorage(client, "chat")
    assert second.append_message("lobby", "a", "next", T0).id == last.id + 1


def test_two_stores_on_one_database_share_the_id_sequence() -> None:
    client = mongomock.MongoClient()
    one, two = MongoStorage(client, "chat"), MongoStorage(client, "chat")
    ids = [store.append_message("lobby", "a", "x", T0).id for store in (one, two, one, two)]
    assert ids == sorted(set(ids))


def test_a_prefix_keeps_two_chats_apart_in_one_database() -> None:
    client = mongomock.MongoClient()
    blue = MongoStorage(client, "chat", prefix="blue_")
    green = MongoStorage(client, "chat", prefix="green_")
    blue.create_account(Account("alice", "h", T0))
    assert green.get_account("alice") is None
    assert green.create_room(RoomRecord("lobby", None, "", T0))
    assert blue.list_rooms() == []


# -- errors -------------------------------------------------------------------------------


def test_other_driver_errors_are_storage_errors_and_keep_the_breaker_closed(
    flaky: MongoStorage, outage: Outage
) -> None:
    outage.down = True
    outage.error = pymongo.errors.OperationFailure("not authorized on chat")
    with pytest.raises(StorageError, match="not authorized") as info:
        flaky.get_room("lobby")
    assert isinstance(info.value.__cause__, pymongo.errors.OperationFailure)
    assert not flaky.breaker.is_open
    outage.down = False
    assert flaky.get_room("lobby") is None


# -- outages ------------------------------------------------------------------------------


def test_an_outage_fails_fast_backs_off_and_recovers(
    flaky: MongoStorage, outage: Outage, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ktnchat.storage")
    before = flaky.append_message("lobby", "alice", "before", T0)

    # (a) MongoDB goes away: the call that finds out says storage is unavailable.
    outage.down = True
    first = unavailable(flaky)
    assert isinstance(first.__cause__, pymongo.errors.ServerSelectionTimeoutError)
    assert flaky.breaker.backoff == 0.5

    # (b) Within the backoff window nothing touches the client.
    touched = len(outage.calls)
    clock.advance(0.4)
    unavailable(flaky)
    for call in (
        lambda: flaky.recent_messages("lobby", 10),
        lambda: flaky.get_account("alice"),
        flaky.ping,
    ):
        with pytest.raises(StorageError, match="storage unavailable"):
            call()
    assert len(outage.calls) == touched

    # (d) Each failed probe doubles the wait, up to the maximum (4 s here).
    waits = []
    for _ in range(6):
        clock.now = flaky.breaker._retry_at - 0.01
        unavailable(flaky)  # just before the retry time: still fast, still untouched
        assert len(outage.calls) == touched
        clock.advance(0.01)
        unavailable(flaky)  # the probe: one call reaches the (dead) client
        assert len(outage.calls) == touched + 1
        touched = len(outage.calls)
        waits.append(flaky.breaker.backoff)
    assert waits == [1.0, 2.0, 4.0, 4.0, 4.0, 4.0]

    # (c) MongoDB is back: after the wait, calls succeed again; nothing stored twice.
    outage.down = False
    unavailable(flaky)  # the breaker does not know yet
    assert len(outage.calls) == touched
    clock.advance(4.0)
    after = flaky.append_message("lobby", "alice", "after", T0 + 1)
    assert not flaky.breaker.is_open
    assert flaky.recent_messages("lobby", 100) == [before, after]
    assert after.id > before.id
    assert any(
        "back after" in record.getMessage() and "19.5 s" in record.getMessage()
        for record in caplog.records
    )
    assert any("unreachable" in record.getMessage() for record in caplog.records)

    # A second outage starts again from the shortest wait.
    outage.down = True
    unavailable(flaky)
    assert flaky.breaker.backoff == 0.5


def test_a_write_that_fails_half_way_is_not_retried(
    flaky: MongoStorage, outage: Outage, clock: Clock
) -> None:
    outage.down, outage.only = True, {"insert_one"}
    unavailable(flaky)  # the id was taken, then the insert failed
    assert outage.calls.count("insert_one") == 1
    outage.down = False
    clock.advance(1.0)
    flaky.append_message("lobby", "alice", "kept", T0)
    assert [m.text for m in flaky.recent_messages("lobby", 10)] == ["kept"]


def test_ping_goes_through_the_breaker(flaky: MongoStorage, outage: Outage, clock: Clock) -> None:
    flaky.ping()
    outage.down = True
    with pytest.raises(StorageError, match="storage unavailable"):
        flaky.ping()
    touched = len(outage.calls)
    with pytest.raises(StorageError, match="storage unavailable"):
        flaky.ping()
    assert len(outage.calls) == touched
    outage.down = False
    clock.advance(0.5)
    flaky.ping()
    assert not flaky.breaker.is_open


def test_only_one_probe_at_a_time(clock: Clock) -> None:
    breaker = CircuitBreaker(0.5, 30.0, clock)
    assert breaker.enter() is False  # closed: everyone goes through
    breaker.failed(False, OSError("down"))
    clock.advance(0.5)
    assert breaker.enter() is True  # this call probes...
    with pytest.raises(StorageError, match="storage unavailable"):
        breaker.enter()  # ...and the others still fail fast meanwhile
    breaker.failed(False, OSError("late"))  # a call admitted before the outage
    assert breaker.backoff == 0.5  # does not count as a failed probe
    breaker.reached(True)
    assert breaker.enter() is False


def test_a_probe_that_ends_in_a_bug_frees_the_probe_slot(clock: Clock) -> None:
    breaker = CircuitBreaker(0.5, 30.0, clock)
    breaker.failed(False, OSError("down"))
    clock.advance(0.5)
    assert breaker.enter() is True
    breaker.abandoned(True)
    assert breaker.enter() is True


@pytest.mark.parametrize("initial, maximum", [(0, 1), (-1, 1), (2, 1)])
def test_bad_backoff_settings_are_refused(initial: float, maximum: float) -> None:
    with pytest.raises(ConfigurationError):
        CircuitBreaker(initial, maximum)


def test_text_bson_cannot_encode_is_a_storage_error() -> None:
    # JSON lets a client send a lone surrogate; BSON (UTF-8) cannot store it.
    store = MongoStorage(mongomock.MongoClient(), "chat")
    with pytest.raises(StorageError):
        store.append_message("lobby", "alice", "broken \ud800", T0)
    assert not store.breaker.is_open
    assert store.append_message("lobby", "alice", "fine", T0).text == "fine"
