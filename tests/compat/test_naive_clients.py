# Compatibility with the clients students actually wrote: tests/compat/naive_client.py
# does `json.loads(sock.recv(1024))` in a receiver thread with no buffering, so every
# session below also proves the default (paced) server never put two objects in one read
# and never split one. The client runs as a real subprocess, under Python 3 and 2.7.
from __future__ import annotations

import functools
import json
import os
import random
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from tests.helpers import Peer, wait_until

NAIVE_CLIENT = Path(__file__).with_name("naive_client.py")
QUIRKS = ["null", "empty", "None", "stale", "missing"]
PY27_CANDIDATES = ("python2.7", "~/.pyenv/versions/2.7.18/bin/python")
CLIENT_SECONDS = 40.0  # the naive client's own overall deadline
FINISH_SECONDS = 60.0  # the most the test waits for the subprocess to exit
PEER_WAIT = 30.0  # the most a Peer waits for a naive client's message
HISTORY_SIZE = 50
GREETING = 'hei bob, alice her - har du fått "socket.recv" til å funke?'
BOB_REPLY = "ja! json.loads på hver recv(1024), og så en tråd per klient"
RESPONSE_KINDS = {"error", "info", "message", "history"}
CHATTER = (
    "hei alle sammen noen som har fått til server klienten min krasjer når to "
    'meldinger kommer samtidig json.loads sier "Extra data" prøv recv(4096) eller '
    "lag en buffer tråden henger på socket login funker men history blir rar "
    "æøå går fint nå takk for hjelpen demo på fredag i P15 KTN2 er ferdig snart"
)


# -- helpers --------------------------------------------------------------------------------


@functools.cache
def find_python27() -> Optional[str]:
    """A Python 2.7 interpreter that really runs (a pyenv shim may exist but not work)."""
    for candidate in PY27_CANDIDATES:
        path = shutil.which(candidate) if "/" not in candidate else os.path.expanduser(candidate)
        if not path or not os.access(path, os.X_OK):
            continue
        try:
            probe = subprocess.run(
                [path, "-c", "import sys; sys.exit(0 if sys.version_info[:2] == (2, 7) else 1)"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=_py27_env(),
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return path
    return None


def _py27_env() -> Dict[str, str]:
    drop = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYENV_VERSION")
    return {key: value for key, value in os.environ.items() if key not in drop}


@pytest.fixture
def python27() -> str:
    path = find_python27()
    if path is None:
        pytest.skip(
            "no working Python 2.7: neither python2.7 on PATH nor "
            "~/.pyenv/versions/2.7.18/bin/python runs"
        )
    return path


class NaiveRun:
    """One naive-client subprocess; its output is drained by a thread from the start."""

    def __init__(
        self,
        python: str,
        port: int,
        steps: List[Dict[str, Any]],
        quirk: str = "null",
        reply_waiting: bool = False,
    ) -> None:
        argv = [
            python,
            str(NAIVE_CLIENT),
            "--port",
            str(port),
            "--quirk",
            quirk,
            "--timeout",
            str(CLIENT_SECONDS),
            "--step-timeout",
            str(CLIENT_SECONDS),
            "--script",
            json.dumps(steps),
        ]
        if reply_waiting:
            argv.append("--reply-waiting")
        env = _py27_env() if python != sys.executable else dict(os.environ)
        self.argv = argv
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self._output: List[bytes] = []
        self._drain = threading.Thread(target=self._communicate, daemon=True)
        self._drain.start()

    def _communicate(self) -> None:
        self._output.extend(self.proc.communicate())

    def finish(self, expected_status: int = 0) -> List[Dict[str, Any]]:
        """Wait (bounded) for the exit; the objects it printed. Fails on a bad status."""
        self._drain.join(FINISH_SECONDS)
        if self._drain.is_alive():
            self.stop()
            raise AssertionError(f"naive client still running after {FINISH_SECONDS}s")
        out, err = self._output
        self.stderr = err.decode("utf-8", "replace")
        assert self.proc.returncode == expected_status, (
            f"naive client exited {self.proc.returncode} (wanted {expected_status})\n"
            f"stderr:\n{self.stderr}\nstdout:\n{out.decode('utf-8', 'replace')}"
        )
        return [json.loads(line) for line in out.decode("ascii").splitlines() if line.strip()]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self._drain.join(10)

    def __enter__(self) -> NaiveRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def realistic_messages(count: int) -> List[str]:
    """`count` distinct chat lines of 20-120 characters (some Norwegian, some quotes)."""
    words = CHATTER.split()
    rng = random.Random(2017)
    lines = []
    for index in range(count):
        target = rng.randint(20, 120)
        line = f"#{index:02d}"
        while True:
            word = rng.choice(words)
            if len(line) + 1 + len(word) > target:
                break
            line += " " + word
        lines.append(line.ljust(20, "!"))
    assert all(20 <= len(line) <= 120 for line in lines)
    return lines


def seed_history(peer: Peer, name: str, texts: List[str]) -> None:
    """Send `texts` as chat messages from `peer` (logged in as `name`); wait for each echo."""
    for text in texts:
        peer.send("msg", text)
        peer.expect_response("message", sender=name, content=text)


def login_peer(address: tuple, name: str, stream: bool = False) -> Peer:
    peer = Peer(address, stream=stream)
    try:
        peer.login(name)
    except BaseException:
        peer.close()
        raise
    return peer


def history_entries(obj: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The messages in one `history` object (each entry a JSON-encoded string)."""
    assert isinstance(obj["content"], list)
    entries = []
    for entry in obj["content"]:
        assert isinstance(entry, str), f"history entry is not a JSON string: {entry!r}"
        entries.append(json.loads(entry))
    return entries


def groups(objects: List[Dict[str, Any]]) -> List[List[Dict[str, Any]]]:
    """Consecutive `history` objects grouped together; every other object alone."""
    out: List[List[Dict[str, Any]]] = []
    for obj in objects:
        if obj["response"] == "history" and out and out[-1][0]["response"] == "history":
            out[-1].append(obj)
        else:
            out.append([obj])
    return out


def assert_well_formed(objects: List[Dict[str, Any]]) -> None:
    for obj in objects:
        assert obj["response"] in RESPONSE_KINDS, obj
        assert isinstance(obj["timestamp"], str), obj
        assert isinstance(obj["sender"], str), obj
        assert "content" in obj, obj
        if obj["response"] in ("error", "info", "history"):
            assert obj["sender"] != "", obj
        if obj["response"] != "history":
            assert isinstance(obj["content"], str), obj


def alice_session() -> List[Dict[str, Any]]:
    """help and names before login, login, msg, (bob answers), names, logout, again."""
    return [
        {"request": "help"},
        {"request": "names"},  # not logged in yet: must be an error, not silence
        {"request": "login", "content": "alice"},
        {"wait": {"response": "info", "username": "alice"}},
        {"request": "msg", "content": GREETING},
        {"wait": {"response": "message", "sender": "alice", "content": GREETING}},
        {"wait": {"response": "message", "sender": "bob", "content": BOB_REPLY}},
        {"request": "names"},
        {"request": "logout"},
        {"wait": {"response": "info", "username": "alice"}},
        {"request": "login", "content": "alice"},
        {"wait": {"response": "info", "username": "alice"}},
        {"request": "logout"},
        {"wait": {"response": "info", "username": "alice"}},
    ]


def check_alice_session(objects: List[Dict[str, Any]], seeded: List[str]) -> None:
    assert_well_formed(objects)
    grouped = groups(objects)
    kinds = [group[0]["response"] for group in grouped]
    assert kinds == [
        "info",  # help
        "error",  # names before login
        "info",  # login
        "history",  # the 50 seeded messages, in several objects
        "message",  # alice's own echo
        "message",  # bob's reply
        "info",  # names
        "info",  # logout
        "info",  # login again
        "history",  # 50 + alice's + bob's
        "info",  # logout
    ], f"unexpected sequence {kinds}: {objects!r}"
    (
        (help_info,),
        (error,),
        (login,),
        history,
        (echo,),
        (reply,),
        (names,),
        (logout,),
        (login_again,),
        history_again,
        (logout_again,),
    ) = grouped

    assert "login" in help_info["content"] and "help" in help_info["content"]
    assert error["content"].strip()
    for answer in (login, logout, login_again, logout_again):
        assert answer["username"] == "alice"

    assert len(history) >= 2, "a 50-message history should come in several objects"
    first = [entry for obj in history for entry in history_entries(obj)]
    assert [entry["content"] for entry in first] == seeded
    assert {entry["sender"] for entry in first} == {"bob"}
    assert all(entry["response"] == "message" for entry in first)
    assert all(isinstance(entry["timestamp"], str) for entry in first)

    assert (echo["sender"], echo["content"]) == ("alice", GREETING)
    assert (reply["sender"], reply["content"]) == ("bob", BOB_REPLY)

    assert isinstance(names["content"], str)
    assert "alice" in names["content"] and "bob" in names["content"]

    second = [entry["content"] for obj in history_again for entry in history_entries(obj)]
    assert second == [*seeded, GREETING, BOB_REPLY]


def run_alice_with_bob(
    server: Any, python: str, quirk: str, reply_waiting: bool = False
) -> List[Dict[str, Any]]:
    """bob fills the history, then chats with a naive alice; alice's received objects."""
    seeded = realistic_messages(HISTORY_SIZE)
    with login_peer(server.address, "bob", stream=True) as bob:
        seed_history(bob, "bob", seeded)
        with NaiveRun(python, server.address[1], alice_session(), quirk, reply_waiting) as alice:
            bob.expect(
                lambda r: (
                    r.get("response") == "message"
                    and r.get("sender") == "alice"
                    and r.get("content") == GREETING
                ),
                timeout=PEER_WAIT,
            )
            bob.send("msg", BOB_REPLY)
            objects = alice.finish()
    check_alice_session(objects, seeded)
    return objects


# -- the tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("quirk", QUIRKS)
def test_naive_python3_client_full_session(server: Any, quirk: str) -> None:
    run_alice_with_bob(server, sys.executable, quirk)


@pytest.mark.parametrize("quirk", ["null", "stale", "missing"])
def test_reply_waiting_client_full_session(server: Any, quirk: str) -> None:
    run_alice_with_bob(server, sys.executable, quirk, reply_waiting=True)


@pytest.mark.py2
@pytest.mark.parametrize("quirk", QUIRKS)
def test_naive_python27_client_full_session(server: Any, python27: str, quirk: str) -> None:
    run_alice_with_bob(server, python27, quirk)


@pytest.mark.py2
def test_reply_waiting_python27_client_full_session(server: Any, python27: str) -> None:
    run_alice_with_bob(server, python27, "None", reply_waiting=True)


def test_two_naive_clients_chat_concurrently(server: Any) -> None:
    """carol and alice, both naive, talk while bob watches; neither sees a merged read."""
    hello, answer = "hei carol, ser du denne?", "ja, alice - hver melding for seg"
    carol_steps = [
        {"request": "login", "content": "carol"},
        {"wait": {"response": "info", "username": "carol"}},
        {"wait": {"response": "message", "sender": "alice", "content": hello}},
        {"request": "msg", "content": answer},
        {"wait": {"response": "message", "sender": "carol", "content": answer}},
        {"wait": {"response": "info", "event": "leave", "username": "alice"}},
        {"request": "names"},
        {"request": "logout"},
        {"wait": {"response": "info", "username": "carol"}},
    ]
    alice_steps = [
        {"request": "login", "content": "alice"},
        {"wait": {"response": "info", "username": "alice"}},
        {"request": "msg", "content": hello},
        {"wait": {"response": "message", "sender": "carol", "content": answer}},
        {"request": "names"},
        {"request": "logout"},
        {"wait": {"response": "info", "username": "alice"}},
    ]
    seeded = realistic_messages(HISTORY_SIZE)
    with login_peer(server.address, "bob", stream=True) as bob:
        seed_history(bob, "bob", seeded)
        with NaiveRun(sys.executable, server.address[1], carol_steps, "stale") as carol:
            bob.expect(
                lambda r: r.get("event") == "join" and r.get("username") == "carol",
                timeout=PEER_WAIT,
            )
            with NaiveRun(sys.executable, server.address[1], alice_steps, "missing") as alice:
                alice_got = alice.finish()
                carol_got = carol.finish()
        bob.expect_response("message", sender="alice", content=hello)
        bob.expect_response("message", sender="carol", content=answer)
    for got in (alice_got, carol_got):
        assert_well_formed(got)
        history = [
            entry["content"]
            for obj in got
            if obj["response"] == "history"
            for entry in history_entries(obj)
        ]
        assert history[:HISTORY_SIZE] == seeded
    alice_names = [o for o in alice_got if o["response"] == "info" and "names" in o]
    carol_names = [o for o in carol_got if o["response"] == "info" and "names" in o]
    assert len(alice_names) == 1 and len(carol_names) == 1
    for who in ("alice", "bob", "carol"):
        assert who in alice_names[0]["content"]
    assert "bob" in carol_names[0]["content"] and "carol" in carol_names[0]["content"]
    assert not [o for o in alice_got + carol_got if o["response"] == "error"]


def test_naive_client_detects_coalesced_output(server_factory: Any) -> None:
    """Negative control: without pacing the same client must fail, so a pass means something."""
    server = server_factory(pace_interval=0.0)
    with login_peer(server.address, "bob", stream=True) as bob:
        seed_history(bob, "bob", realistic_messages(HISTORY_SIZE))
        steps = [
            {"request": "login", "content": "alice"},
            {"wait": {"response": "info", "username": "alice"}},
            {"request": "logout"},
            {"wait": {"response": "info", "username": "alice"}},
        ]
        with NaiveRun(sys.executable, server.address[1], steps) as alice:
            alice.finish(expected_status=1)
        assert "could not parse" in alice.stderr
    wait_until(lambda: server.user_count() == 0)
