# `--workers 2 --metrics-port P`: each worker process serves its own series, labelled with
# its index, on P + index; together they add up to what the cluster did.
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from pathlib import Path
from typing import List, Tuple

from tests.helpers import Peer, wait_until
from tests.metrics.support import Scrape, scrape
from tests.processes import ServerProcess

CLIENTS = 6


def two_free_ports() -> int:
    """A port P such that P and P + 1 are free now (bounded search)."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = int(first.getsockname()[1])
            if port >= 65535:
                continue
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
        return port
    raise AssertionError("no two consecutive free ports")


def children(pid: int) -> List[int]:
    """The direct children of `pid` (Linux /proc), e.g. a supervisor's workers."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def stop(server: ServerProcess) -> None:
    """Stop the supervisor and its workers even when the test failed half-way: SIGKILL
    to the supervisor alone would leave the workers running."""
    workers = children(server.proc.pid)
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)
        try:
            server.proc.wait(20)
        except subprocess.TimeoutExpired:
            workers += children(server.proc.pid)  # any started meanwhile
    for pid in workers:
        try:
            os.kill(pid, signal.SIGKILL)  # gone already after a clean stop
        except ProcessLookupError:
            pass
    server.kill()


def test_each_worker_reports_its_own_series(redis_server, tmp_path: Path) -> None:
    base = two_free_ports()
    server = ServerProcess(
        "--port",
        "0",
        "--workers",
        "2",
        "--bus",
        redis_server.url,
        "--storage",
        f"sqlite:///{tmp_path / 'chat.db'}",
        "--pace-ms",
        "0",
        "--flood",
        "off",
        "--metrics-port",
        str(base),
        "--log-format",
        "json",
    )
    try:
        address = server.wait_listening()  # a worker's line: wait for the supervisor's
        wait_until(lambda: any("(2 workers)" in line for line in server.lines), timeout=60)
        peers: List[Peer] = []
        try:
            for n in range(CLIENTS):
                peer = Peer(address, stream=True)
                peers.append(peer)
                peer.login(f"user{n}")
            for n in range(3):
                peers[0].send("msg", f"to everyone {n}")
            for peer in peers:
                peer.expect_response("message", content="to everyone 2", timeout=10)
            scrapes: List[Tuple[str, Scrape]] = [
                ("0", scrape(("127.0.0.1", base))),
                ("1", scrape(("127.0.0.1", base + 1))),
            ]
        finally:
            for peer in peers:
                peer.close()
        for index, page in scrapes:
            assert page.status == 200
            # Every ktnchat series of this port is this worker's, and only this worker's.
            workers = {
                dict(labels).get("worker")
                for name, labels in page.samples
                if name.startswith("ktnchat_")
            }
            assert workers == {index}
        total = lambda name, **labels: sum(p.value(name, **labels) for _, p in scrapes)  # noqa: E731
        assert total("ktnchat_logins_total") == CLIENTS
        assert total("ktnchat_users_online") == CLIENTS
        assert total("ktnchat_sockets_accepted_total", listener="chat") == CLIENTS
        assert total("ktnchat_connections_open", edition="2017", transport="tcp") == CLIENTS
        assert total("ktnchat_messages_stored_total") == 3  # on the sender's worker alone
        assert sorted(p.value("ktnchat_messages_stored_total") for _, p in scrapes) == [0, 3]
        assert total("ktnchat_requests_total", request="msg", outcome="ok") == 3
        # Every message reached every client, wherever it was held: 3 x 6 at least (the
        # rest are join notices).
        assert total("ktnchat_deliveries_total") >= 3 * CLIENTS
        # The sender's worker published its messages on the bus, and timed it.
        assert total("ktnchat_bus_publish_seconds_count") >= 1
        assert total("ktnchat_bus_publish_lost_total") == 0
        workers = children(server.proc.pid)
        assert len(workers) == 2
        server.proc.send_signal(signal.SIGTERM)
        assert server.wait_exit() == 0
        assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
    finally:
        stop(server)
    # The workers' JSON log lines say which worker wrote them; the supervisor's do not.
    records = [json.loads(line) for line in server.lines]
    assert {r.get("worker") for r in records} == {None, "0", "1"}
    metrics_lines = [r for r in records if r["event"] == "metrics_listening"]
    assert sorted((r["worker"], r["message"].split("/")[2]) for r in metrics_lines) == [
        ("0", f"127.0.0.1:{base}"),
        ("1", f"127.0.0.1:{base + 1}"),
    ]
