# Requests that touch a blocking store run on the storage worker: the I/O threads keep
# serving everyone else while the store is stuck, and each connection's answers keep the
# order of its requests. The "slow store" is a memory store whose writes wait on a gate
# the test opens: no sleeps, no timing.
from __future__ import annotations

import threading

from ktnchat.storage import MemoryStorage, StoredMessage
from tests.helpers import Peer, wait_until


class GatedStorage(MemoryStorage):
    """A store that blocks in append_message until `gate` is set (a stuck database)."""

    INLINE_SAFE = False

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()
        self.waiting = threading.Event()

    def append_message(self, room: str, sender: str, text: str, created: float) -> StoredMessage:
        if not self.gate.is_set():
            self.waiting.set()
            assert self.gate.wait(30), "test never opened the gate"
        return super().append_message(room, sender, text, created)


def test_a_stuck_store_does_not_stall_the_io_thread(server_factory) -> None:
    storage = GatedStorage()
    server = server_factory(storage=storage, pace_interval=0.0)
    with Peer(server.address) as alice, Peer(server.address) as bob:
        alice.login("alice")
        bob.login("bob")
        storage.gate.clear()
        alice.send("msg", "stuck in storage")
        assert storage.waiting.wait(5)
        bob.send("names")  # answered by the I/O thread while the worker is blocked
        assert "alice" in bob.expect(lambda r: "names" in r)["content"]
        bob.send("help")
        bob.expect_response("info")
        assert not [r for r in alice.received if r.get("response") == "message"]
        storage.gate.set()
        alice.expect_response("message", content="stuck in storage")
        bob.expect_response("message", content="stuck in storage")


def test_answers_keep_request_order_across_the_worker(server_factory) -> None:
    storage = GatedStorage()
    server = server_factory(storage=storage, pace_interval=0.0)
    with Peer(server.address) as alice:
        alice.login("alice")
        storage.gate.clear()
        # msg goes to the worker; names (inline) must still be answered after the echo.
        alice.send_raw(
            b'{"request": "msg", "content": "first"}{"request": "names", "content": null}'
        )
        assert storage.waiting.wait(5)
        storage.gate.set()
        first = alice.expect(lambda r: r.get("response") in ("message", "info"))
        second = alice.expect(lambda r: r.get("response") in ("message", "info"))
        assert first["response"] == "message" and first["content"] == "first"
        assert "names" in second


def test_a_client_vanishing_while_its_request_waits_frees_its_name(server_factory) -> None:
    storage = GatedStorage()
    server = server_factory(storage=storage, pace_interval=0.0)
    with Peer(server.address) as alice, Peer(server.address) as bob:
        alice.login("alice")
        bob.login("bob")
        storage.gate.clear()
        alice.send("msg", "sent, then gone")
        assert storage.waiting.wait(5)
        alice.close()
        wait_until(lambda: server.service.presence.holder("alice") is None)
        storage.gate.set()
        # The message was stored, so the room sees it (it is in the history too).
        bob.expect_response("message", content="sent, then gone")
        with Peer(server.address) as again:
            earlier = again.login("alice")
            assert "sent, then gone" in [entry["content"] for entry in earlier]


def test_many_clients_through_the_worker_all_get_everything(server_factory) -> None:
    storage = GatedStorage()
    server = server_factory(storage=storage, pace_interval=0.0, io_threads=2)
    peers = [Peer(server.address) for _ in range(8)]
    try:
        for i, peer in enumerate(peers):
            peer.login(f"user{i}")
        for i, peer in enumerate(peers):
            for j in range(5):
                peer.send("msg", f"{i}-{j}")
        for peer in peers:
            got = [peer.expect_response("message")["content"] for _ in range(40)]
            for i in range(8):  # per-sender order holds
                assert [c for c in got if c.startswith(f"{i}-")] == [f"{i}-{j}" for j in range(5)]
    finally:
        for peer in peers:
            peer.close()
