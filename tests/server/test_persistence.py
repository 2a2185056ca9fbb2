# Durable storage behind the real server: restarts, kill -9, a MongoDB outage, retention
# and waiting for the store at start-up. Real sockets and real SQLite files; MongoDB is
# mongomock behind a proxy that can go down.
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Dict, List

import pytest

from ktnchat.protocol import encode_request
from ktnchat.server.main import open_storage
from ktnchat.storage import (
    SCHEMES,
    MemoryStorage,
    Storage,
    StorageError,
    register_scheme,
    storage_from_url,
)
from tests.helpers import NO_FLOOD, Peer
from tests.processes import ServerProcess


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def test_sqlite_messages_survive_a_restart(server_factory, tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "chat.db")
    first = server_factory(storage=storage_from_url(url), pace_interval=0.0)
    with Peer(first.address) as alice:
        alice.login("alice")
        sent = []
        for i in range(5):
            alice.send("msg", f"before restart {i}")
            sent.append(alice.expect_response("message", content=f"before restart {i}"))
    first.shutdown()
    second = server_factory(storage=storage_from_url(url), pace_interval=0.0)
    with Peer(second.address) as bob:
        entries = bob.login("bob")
        assert [(e["id"], e["content"], e["timestamp"]) for e in entries] == [
            (m["id"], m["content"], m["timestamp"]) for m in sent
        ]
        bob.send("msg", "after restart")
        assert bob.expect_response("message")["id"] > sent[-1]["id"]


def test_kill_9_loses_no_acknowledged_message(tmp_path: Path) -> None:
    """Every message whose echo a client saw is in the store after the server is killed."""
    db = tmp_path / "chat.db"
    server = ServerProcess(
        "--port",
        "0",
        "--storage",
        sqlite_url(db),
        "--pace-ms",
        "0",
        "--flood",
        "off",
        "--log-level",
        "INFO",
    )
    acked: Dict[int, str] = {}
    try:
        address = server.wait_listening()
        peer = Peer(address, stream=True)
        peer.login("writer")
        sent = 0
        while len(acked) < 300:  # bounded: 15 batches
            peer.send_raw(b"".join(encode_request("msg", f"m{sent + j}") for j in range(20)))
            sent += 20
            for _ in range(20):
                echo = peer.expect_response("message")
                acked[echo["id"]] = echo["content"]
        # A burst in flight, and the server dies in the middle of it.
        peer.send_raw(b"".join(encode_request("msg", f"m{sent + j}") for j in range(200)))
        server.proc.kill()
        server.proc.wait(10)
        peer.wait_eof(timeout=10)
        for obj in peer.unread():  # echoes that made it out before the kill
            if obj.get("response") == "message":
                acked[obj["id"]] = obj["content"]
        peer.close()
    finally:
        server.kill()
    store = storage_from_url(sqlite_url(db))
    try:
        for message_id, text in acked.items():
            stored = store.get_message(message_id)
            assert stored is not None and stored.text == text, f"acknowledged {text} lost"
    finally:
        store.close()
    assert len(acked) >= 300


mongomock = pytest.importorskip("mongomock", reason="mongomock is not installed")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_mongodb_outage_gives_clear_errors_and_service_resumes(server_factory) -> None:
    from ktnchat.storage.mongodb import MongoStorage
    from tests.storage.flaky_mongo import FlakyClient, Outage

    outage, clock = Outage(), Clock()
    store = MongoStorage(
        FlakyClient(mongomock.MongoClient(), outage),
        "ktnchat_test",
        clock=clock,
        retry_initial=1.0,
        retry_max=8.0,
    )
    server = server_factory(storage=store, pace_interval=0.0)
    with Peer(server.address) as alice, Peer(server.address) as bob:
        alice.login("alice")
        bob.login("bob")
        alice.send("msg", "before")
        bob.expect_response("message", content="before")

        outage.down = True
        for attempt in range(3):  # the first fails on the network, the rest fast
            alice.send("msg", f"during {attempt}")
            error = alice.expect_response("error")
            assert error["content"] == "Storage unavailable, message not sent"
        bob.send("names")  # the chat itself keeps running
        assert "alice" in bob.expect(lambda r: "names" in r)["content"]
        with Peer(server.address) as carol:  # login needs the store: a clear error too
            carol.send("login", "carol")
            assert "Storage unavailable" in carol.expect_response("error")["content"]

        outage.down = False
        clock.now += 60  # past the backoff: the next call tries MongoDB again
        alice.send("msg", "after")
        assert bob.expect_response("message")["content"] == "after"  # nothing from the outage
    assert [m.text for m in store.recent_messages("lobby", 10)] == ["before", "after"]


def test_retention_by_count_and_age() -> None:
    from ktnchat.protocol import Request
    from ktnchat.service import ChatService

    now = [1_000_000.0]
    service = ChatService(
        MemoryStorage(),
        replace(NO_FLOOD, retention_messages=3, retention_days=1.0),
        clock=lambda: now[0],
    )
    session = service.open_session("p")
    service.handle(session, Request("login", "alice"))
    for i in range(2):
        service.handle(session, Request("msg", f"old {i}"))
    now[0] += 2 * 86400
    for i in range(4):
        service.handle(session, Request("msg", f"new {i}"))
    assert service.apply_retention() == 3  # 2 too old, then 1 past the count
    assert [m.text for m in service.storage.recent_messages("lobby", 10)] == [
        "new 1",
        "new 2",
        "new 3",
    ]


def test_start_up_waits_for_an_unreachable_store_then_gives_up_or_succeeds() -> None:
    failures: List[int] = [2]
    slept: List[float] = []

    def flaky_factory(url: str) -> Storage:
        if failures[0] > 0:
            failures[0] -= 1
            raise StorageError("connection refused")
        return MemoryStorage()

    register_scheme("flakytest", flaky_factory)
    try:
        store = open_storage("flakytest://", wait=60, sleep=slept.append)
        assert isinstance(store, MemoryStorage) and slept == [0.5, 1.0]
        failures[0] = 10**6
        started = time.monotonic()
        with pytest.raises(StorageError):
            open_storage("flakytest://", wait=0.2, sleep=lambda s: time.sleep(min(s, 0.05)))
        assert time.monotonic() - started < 30
    finally:
        del SCHEMES["flakytest"]
