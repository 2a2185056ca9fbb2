# The real CLI (`python -m ktnchat server`) as a subprocess: it reports where it listens,
# serves a client, and on SIGTERM/SIGINT tells every client goodbye, closes, and exits 0
# without a traceback. A bad storage URL is refused with a clear message.
from __future__ import annotations

import signal

import pytest

from tests.helpers import Peer
from tests.processes import EXIT_SECONDS, START_SECONDS, ServerProcess


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_says_goodbye_and_exits_cleanly(signum: signal.Signals) -> None:
    server = ServerProcess("--host", "127.0.0.1", "--port", "0", "--log-level", "INFO")
    try:
        host, port = server.wait_listening()
        assert host == "127.0.0.1" and port > 0
        with Peer((host, port)) as alice, Peer((host, port)) as lurker:
            alice.login("alice")
            lurker.send("help")  # connected, never logged in
            lurker.expect_response("info")
            alice.send("msg", "is anyone here?")
            assert alice.expect_response("message")["content"] == "is anyone here?"
            server.wait_signal_handlers()
            server.proc.send_signal(signum)
            for peer in (alice, lurker):
                goodbye = peer.expect_response("info", timeout=EXIT_SECONDS)
                assert goodbye.get("event") == "shutdown" or "shut" in goodbye["content"].lower()
                assert isinstance(goodbye["content"], str) and goodbye["content"]
                peer.wait_eof(timeout=EXIT_SECONDS)
                assert list(peer.unread()) == [], "nothing may follow the goodbye"
            code = server.wait_exit()
        assert code == 0, f"exit status {code}; stderr:\n{server.stderr}"
        assert "Traceback" not in server.stderr, server.stderr
        assert "KeyboardInterrupt" not in server.stderr, server.stderr
        assert signum.name in server.stderr  # "received SIGTERM; shutting down"
    finally:
        server.kill()


def test_signal_with_no_clients_exits_cleanly() -> None:
    server = ServerProcess("--port", "0", "--log-level", "INFO")
    try:
        server.wait_listening()
        server.wait_signal_handlers()
        server.proc.send_signal(signal.SIGTERM)
        code = server.wait_exit()
        assert code == 0, f"exit status {code}; stderr:\n{server.stderr}"
        assert "Traceback" not in server.stderr, server.stderr
    finally:
        server.kill()


def test_bad_storage_url_is_refused_clearly() -> None:
    server = ServerProcess("--port", "0", "--storage", "foo://", "--log-level", "INFO")
    try:
        code = server.wait_exit(timeout=START_SECONDS)
        assert code != 0
        assert "Traceback" not in server.stderr, server.stderr
        assert "foo://" in server.stderr and "storage" in server.stderr.lower(), server.stderr
        assert "listening on" not in server.stderr
    finally:
        server.kill()


# Fault injection for the test below: the CLI, with ChatServer.start() made to return a
# second late, as if the main thread were descheduled right after the "listening" line.
SLOW_START = """
import sys, time
from ktnchat.server import main as cli
original = cli.ChatServer.start
def start(self):
    address = original(self)
    time.sleep(1.0)
    return address
cli.ChatServer.start = start
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_right_after_ready_line_is_clean(signum: signal.Signals) -> None:
    """A supervisor may signal as soon as "listening on" appears; that must be clean too."""
    server = ServerProcess("--port", "0", "--log-level", "INFO", launcher=["-c", SLOW_START])
    try:
        host, port = server.wait_listening()
        with Peer((host, port)) as alice:
            server.proc.send_signal(signum)
            code = server.wait_exit()
            assert code == 0, f"exit status {code}; stderr:\n{server.stderr}"
            assert "Traceback" not in server.stderr, server.stderr
            goodbye = alice.expect_response("info", timeout=EXIT_SECONDS)
            assert goodbye.get("event") == "shutdown"
    finally:
        server.kill()
