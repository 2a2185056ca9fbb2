# One order per room across worker processes, and nothing acknowledged lost to a reader
# that stayed connected: senders and readers on two workers (real processes, real Redis,
# one SQLite file); Redis restarted, a worker's bus connection cut, a worker killed -9.
# A message is acknowledged when its sender got the echo. Every wait is bounded.
from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import pytest

from ktnchat.cluster.link import HEARTBEAT_TTL
from tests.cluster.test_cluster import start_worker
from tests.helpers import Peer
from tests.processes import ServerProcess

Address = Tuple[str, int]
PREFIX = "m:"


def log_in(peers: Dict[str, Peer]) -> None:
    for name, peer in peers.items():
        peer.login(name)


def messages(peer: Peer) -> List[str]:
    """The test messages `peer` received live, in order."""
    return [
        str(obj["content"])
        for obj in peer.received
        if obj.get("response") == "message"
        and not obj.get("history")
        and str(obj.get("content", "")).startswith(PREFIX)
    ]


def collect(peers: List[Peer], wanted: List[str], timeout: float = 30.0) -> None:
    """Read until every peer has every wanted message (bounded)."""
    deadline = time.monotonic() + timeout
    for peer in peers:
        while not set(wanted) <= set(messages(peer)):
            missing = sorted(set(wanted) - set(messages(peer)))
            assert peer._pump(deadline) or not peer.eof, "a reader was disconnected"
            assert time.monotonic() < deadline, f"missing after {timeout}s: {missing[:10]}"


def assert_one_order(peers: List[Peer], wanted: List[str]) -> None:
    """Each peer got each wanted message exactly once, and all in the same order."""
    orders = []
    for peer in peers:
        got = [text for text in messages(peer) if text in set(wanted)]
        assert len(got) == len(set(got)), "a message was delivered twice"
        orders.append(got)
    assert all(order == orders[0] for order in orders), "readers saw different orders"


def send_acked(sender: Peer, text: str, timeout: float = 15.0) -> bool:
    """Send a message; True once the sender got its echo (the acknowledgement)."""
    try:
        sender.send("msg", text)
        sender.expect(
            lambda r: r.get("response") == "message" and r.get("content") == text, timeout
        )
    except (AssertionError, OSError):
        return False
    return True


@pytest.fixture
def cluster_db(tmp_path: Path) -> Path:
    return tmp_path / "chat.db"


def start_two(redis_url: str, db: Path, *extra: str) -> List[Tuple[ServerProcess, Address]]:
    return [start_worker(redis_url, db, *extra) for _ in range(2)]


def stop_all(workers: List[Tuple[ServerProcess, Address]]) -> None:
    for worker, _ in workers:
        worker.kill()


@pytest.mark.parametrize(("threads", "io_threads"), [("1", "1"), ("3", "1"), ("1", "2")])
def test_readers_on_both_workers_see_every_message_once_in_one_order(
    redis_server, cluster_db: Path, threads: str, io_threads: str
) -> None:
    # One worker thread is the default on SQLite; with three, each worker's senders are
    # handled on different threads at once and only the room sequencers keep the order.
    # With two I/O threads a release goes to each loop as a post of its own (with one,
    # through the released queue: ktnchat/server/released.py).
    workers = start_two(
        redis_server.url, cluster_db, "--worker-threads", threads, "--io-threads", io_threads
    )
    (_, a), (_, b) = workers
    try:
        peers = {
            name: Peer(address, stream=True)
            for name, address in (("ra1", a), ("ra2", a), ("rb1", b), ("rb2", b))
        }
        senders = {"sa": a, "sa2": a, "sb": b, "sb2": b}  # two per worker, maybe two threads
        for name, address in senders.items():
            peers[name] = Peer(address, stream=True)
        log_in(peers)
        wanted: List[str] = []
        for round_ in range(3):  # bursts from both workers at once, pipelined
            bursts = {}
            for sender in senders:
                texts = [f"{PREFIX}{sender}-{round_}-{i}" for i in range(40)]
                wanted += texts
                bursts[sender] = "".join(
                    f'{{"request": "msg", "content": "{text}"}}' for text in texts
                ).encode()
            for sender, burst in bursts.items():
                peers[sender].send_raw(burst)
        everyone = list(peers.values())
        collect(everyone, wanted)
        assert_one_order(everyone, wanted)
        for peer in everyone:
            peer.close()
    finally:
        stop_all(workers)


def chatter_through(
    workers: List[Tuple[ServerProcess, Address]],
    disruption: Callable[[], None],
    recovery: Optional[Callable[[], None]] = None,
    rounds: Tuple[int, int, int] = (10, 15, 25),
) -> None:
    """Senders on both workers send (waiting for each acknowledgement) before, during and
    after `disruption`; every reader gets every acknowledged message once, in one order."""
    (_, a), (_, b) = workers
    readers = {"ra": Peer(a, stream=True), "rb": Peer(b, stream=True)}
    senders = {"sa": Peer(a, stream=True), "sb": Peer(b, stream=True)}
    log_in(readers)
    log_in(senders)
    acked: List[str] = []
    before, during, after = rounds
    for i in range(before + during + after):
        if i == before:
            disruption()
        if i == before + during and recovery is not None:
            recovery()
        for name, sender in senders.items():
            text = f"{PREFIX}{name}-{i}"
            if send_acked(sender, text):
                acked.append(text)
    assert len(acked) >= 2 * (before + after), "senders were refused after the recovery"
    everyone = [*readers.values(), *senders.values()]
    collect(everyone, acked)
    assert_one_order(everyone, acked)
    for peer in everyone:
        peer.close()


def test_a_redis_restart_loses_nothing_acknowledged(redis_server, cluster_db: Path) -> None:
    workers = start_two(redis_server.url, cluster_db)
    try:
        chatter_through(workers, redis_server.stop, redis_server.start)
        # What was sent during the outage crossed no bus: each worker took it from the store.
        for worker, _ in workers:
            assert "delivered from the store" in worker.stderr
        # The names were claimed again once Redis was back (it forgot everything).
        deadline = time.monotonic() + 15
        while "re-claimed" not in workers[0][0].stderr:
            assert time.monotonic() < deadline, "names were not re-claimed"
            time.sleep(0.05)
    finally:
        stop_all(workers)


def test_a_cut_bus_connection_loses_nothing_acknowledged(redis_server, cluster_db: Path) -> None:
    import redis

    client = redis.Redis.from_url(redis_server.url)
    workers = start_two(redis_server.url, cluster_db)

    def cut_one() -> None:
        subscribers = client.client_list(_type="pubsub")
        assert len(subscribers) == 2
        client.client_kill_filter(_id=subscribers[0]["id"])

    try:
        chatter_through(workers, cut_one, rounds=(10, 0, 30))
    finally:
        stop_all(workers)
        client.close()


def test_kill_9_of_a_worker_under_load_loses_nothing_for_the_others(
    redis_server, cluster_db: Path
) -> None:
    workers = start_two(redis_server.url, cluster_db)
    (victim, a), (_, b) = workers
    try:
        readers = [Peer(b, stream=True), Peer(b, stream=True)]
        log_in({"rb1": readers[0], "rb2": readers[1]})
        doomed = Peer(a, stream=True)
        doomed.login("doomed")
        senders = {"sa": Peer(a, stream=True), "sb": Peer(b, stream=True)}
        log_in(senders)
        acked: List[str] = []
        for i in range(40):
            if i == 15:
                victim.proc.send_signal(signal.SIGKILL)
                victim.proc.wait(10)
                killed_at = time.monotonic()
            for name, sender in senders.items():
                if name == "sa" and i >= 15:
                    continue  # its worker is gone
                text = f"{PREFIX}{name}-{i}"
                if send_acked(sender, text):
                    acked.append(text)
        assert sum(1 for t in acked if t.startswith(f"{PREFIX}sb-")) == 40
        collect([*readers, senders["sb"]], acked)
        assert_one_order([*readers, senders["sb"]], acked)
        # The dead worker's names free within the heartbeat bound.
        while True:
            with Peer(b) as newcomer:
                newcomer.send("login", "doomed")
                answer = newcomer.expect(lambda r: r.get("response") in ("info", "error"))
            if answer["response"] == "info":
                break
            assert time.monotonic() - killed_at < HEARTBEAT_TTL + 3, "the name stayed taken"
            time.sleep(0.2)
        for peer in [*readers, *senders.values(), doomed]:
            peer.close()
    finally:
        stop_all(workers)


def test_a_joiner_gets_each_message_in_history_or_live_in_order(
    redis_server, cluster_db: Path
) -> None:
    workers = start_two(redis_server.url, cluster_db)
    (_, a), (_, b) = workers
    try:
        sender = Peer(b, stream=True)
        sender.login("sender")
        texts = [f"{PREFIX}{i}" for i in range(300)]
        sender.send_raw("".join(f'{{"request": "msg", "content": "{t}"}}' for t in texts).encode())
        joiners = []
        for n in range(3):  # joining while the burst is being stored
            joiner = Peer(a, stream=True)
            earlier = [str(m["content"]) for m in joiner.login(f"joiner{n}")]
            joiners.append((joiner, earlier))
        collect([sender], texts)
        assert messages(sender) == texts
        for joiner, earlier in joiners:
            history = [t for t in earlier if t.startswith(PREFIX)]
            deadline = time.monotonic() + 30
            # The burst may have been stored before this joiner came: then all in history.
            while texts[-1] not in messages(joiner) and texts[-1] not in history:
                if not joiner._pump(deadline):
                    raise AssertionError(
                        f"the joiner missed the end of the burst (eof={joiner.eof}); got "
                        f"{len(messages(joiner))} live; worker A said:\n{workers[0][0].stderr}"
                    )
            live = messages(joiner)
            start = texts.index(live[0]) if live else len(texts)
            assert live == texts[start:], "live messages skipped or repeated one"
            assert history == texts[start - len(history) : start], "history and live overlap"
        for peer in [sender, *(j for j, _ in joiners)]:
            peer.close()
    finally:
        stop_all(workers)
