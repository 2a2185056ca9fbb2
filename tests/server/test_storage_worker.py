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


# -- the worker's idle work (what a cluster uses to send a burst's publishes at once) ----


def run_gated(jobs: int, on_idle_raises: bool = False) -> list:
    """`jobs` jobs queued behind a gate, then let through; returns what ran, in order."""
    from ktnchat.server.worker import StorageWorker

    ran: list = []
    gate = threading.Event()

    def idle() -> None:
        ran.append("idle")
        if on_idle_raises:
            raise RuntimeError("a bug in the idle work")

    worker = StorageWorker(on_idle=idle)
    worker.start()
    try:
        worker.submit(lambda: ran.append("gate") if gate.wait(10) else None)
        for index in range(jobs):
            worker.submit(lambda index=index: ran.append(index))
        gate.set()
        wait_until(lambda: ran.count("idle") >= 1 and jobs - 1 in ran, 5)
        wait_until(lambda: ran[-1] == "idle", 5)
    finally:
        worker.stop()
    return ran


def test_idle_work_runs_once_a_burst_is_done_not_after_every_job() -> None:
    ran = run_gated(5)
    assert ran[:7] == ["gate", 0, 1, 2, 3, 4, "idle"]


def test_under_a_steady_load_idle_work_runs_every_32_jobs() -> None:
    from ktnchat.server.worker import IDLE_EVERY

    ran = run_gated(100)
    jobs_before = [len([x for x in ran[:i] if x != "idle"]) for i in range(len(ran))]
    idle_after = [jobs_before[i] for i, x in enumerate(ran) if x == "idle"]
    assert idle_after[:4] == [IDLE_EVERY, 2 * IDLE_EVERY, 3 * IDLE_EVERY, 101]
    assert [x for x in ran if x != "idle"] == ["gate", *range(100)]


def test_idle_work_that_raises_does_not_stop_the_jobs() -> None:
    ran = run_gated(3, on_idle_raises=True)
    assert [x for x in ran if x != "idle"] == ["gate", 0, 1, 2]
