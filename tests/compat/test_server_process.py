# The real CLI (`python -m ktnchat server`) as a subprocess: it reports where it listens,
# serves a client, and on SIGTERM/SIGINT tells every client goodbye, closes, and exits 0
# without a traceback. A bad storage URL is refused with a clear message. The history
# flags reach the server: real student-client models survive the defaults, and the ones
# measured to die on the old shapes die under --history-delivery history and
# --backlog-encoding plain.
#
# Rules: every wait is bounded; every server process is killed in a finally. The clients
# here are paced (naive) peers logged in by hand, not through any history shape.
from __future__ import annotations

import json
import signal
import sys
from contextlib import ExitStack
from typing import Dict, Tuple

import pytest

from tests.compat.support import HERE, ClientProcess, login, login_peer, seed_history
from tests.helpers import Peer
from tests.processes import EXIT_SECONDS, START_SECONDS, ServerProcess


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_says_goodbye_and_exits_cleanly(signum: signal.Signals) -> None:
    server = ServerProcess("--host", "127.0.0.1", "--port", "0", "--log-level", "INFO")
    try:
        host, port = server.wait_listening()
        assert host == "127.0.0.1" and port > 0
        with Peer((host, port)) as alice, Peer((host, port)) as lurker:
            login(alice, "alice")  # a paced peer: its (empty) history sends nothing
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


EARLIER = ["first of three, from bob", "second of three", "third of three, the last"]


def model_script(name: str) -> str:
    return json.dumps(
        [
            {"type": f"login {name}"},
            {"see": EARLIER[-1]},
            {"type": "logout"},
            {"see": "logged out"},
        ]
    )


@pytest.mark.parametrize(
    ("flags", "outcomes"),
    [
        ((), {"B": 0, "G": 0, "2014a": 0}),
        (
            ("--history-delivery", "history", "--backlog-encoding", "plain"),
            {"B": 1, "G": 0, "2014a": 1},  # 1: the model's receiving thread died
        ),
    ],
    ids=["defaults", "old-shapes"],
)
def test_history_flags_reach_student_client_models(
    flags: Tuple[str, ...], outcomes: Dict[str, int]
) -> None:
    server = ServerProcess("--port", "0", "--log-level", "INFO", *flags)
    try:
        host, port = server.wait_listening()
        with login_peer((host, port), "bob") as bob:
            seed_history(bob, "bob", EARLIER)
            runs = {}
            with ExitStack() as stack:
                for behaviour in outcomes:
                    name = "old_a" if behaviour == "2014a" else f"stu{behaviour}"
                    args = ["--behaviour", behaviour, "--script", model_script(name)]
                    runs[behaviour] = stack.enter_context(
                        ClientProcess(
                            sys.executable, HERE / "student_clients.py", [*args, host, str(port)]
                        )
                    )
                got = {behaviour: run.wait()[0] for behaviour, run in runs.items()}
        assert got == outcomes, "\n".join(run.describe() for run in runs.values())
        for behaviour, code in outcomes.items():
            if code == 0:
                assert all(text in runs[behaviour].stdout for text in EARLIER)
            else:
                assert "Traceback" in runs[behaviour].stderr
    finally:
        server.kill()
