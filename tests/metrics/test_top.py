# `ktnchat top HOST:PORT` against a real server's metrics listener: every name it reads is
# one the server exports, and its screen shows the session's figures.
from __future__ import annotations

import io
from contextlib import redirect_stdout
from typing import Callable, Dict

from ktnchat.server import ChatServer
from ktnchat.top import BY_LABEL, COUNTERS, GAUGES, HISTOGRAMS
from ktnchat.top import main as top_main
from tests.helpers import Peer
from tests.metrics.support import scrape


def rows(screen: str) -> Dict[str, str]:
    """label -> the first figure after it, for the screen's "label   figure ..." lines."""
    out = {}
    for line in screen.splitlines():
        label, figure = line[:28].strip(), line[28:].split()
        if label and figure:
            out[label] = figure[0]
    return out


def test_top_reads_the_real_endpoint(server_factory: Callable[..., ChatServer]) -> None:
    server = server_factory(metrics_port=0, pace_interval=0.0)
    with Peer(server.address, stream=True) as alice, Peer(server.address, stream=True) as bob:
        alice.login("alice")
        bob.login("bob")
        alice.send("msg", "one")
        alice.send("msg", "two")
        bob.expect_response("message", content="two")
        alice.expect_response("message", content="two")
        declared = scrape(server.metrics_address).families()
        read = [name for _, name, _ in GAUGES] + [name for _, name in COUNTERS]
        read += [name for _, name in HISTOGRAMS] + [name for _, name, _ in BY_LABEL]
        assert set(read) <= declared, set(read) - declared

        out = io.StringIO()
        host, port = server.metrics_address
        with redirect_stdout(out):
            assert top_main([f"{host}:{port}", "--once"]) == 0
    screen = rows(out.getvalue())
    assert screen["connections open"] == "2"
    assert screen["users online"] == "2"
    assert screen["logins"] == "2"
    assert screen["messages stored"] == "2"
    assert screen["deliveries"] == "5"  # bob's join to alice, 2 messages to 2 readers
    assert "p50" in out.getvalue()  # the loop-pass and storage histograms have samples
