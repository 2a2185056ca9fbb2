# Compatibility with the clients students actually wrote: tests/compat/naive_client.py
# does `json.loads(sock.recv(1024))` in a receiver thread with no buffering, so every
# session below also proves the default (paced) server never put two objects in one read
# and never split one. The client runs as a real subprocess, under Python 3 and 2.7.
#
# Rules:
# - Under the defaults a naive client gets the earlier messages as ordinary `message`
#   objects marked "history": true, one per object, oldest first; one session keeps the
#   seed's `history` shape covered (history_delivery=HISTORY, entries as JSON strings).
# - Sessions of one test run at the same time, each against its own server and its own
#   streaming bob, so the folder stays fast; every wait is bounded, no sleeps, and every
#   process is stopped by the test.
# - A failure that is only a coalesced read gets one more run, with a warning: on a loaded
#   machine a client can be starved past the 50 ms pace. A server that coalesces fails
#   every run (the negative control at the end proves the client notices).
from __future__ import annotations

import json
import sys
import warnings
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

import pytest

from ktnchat.protocol import HistoryDelivery
from tests.compat.support import (
    HERE,
    ClientProcess,
    login_peer,
    realistic_messages,
    seed_history,
)
from tests.helpers import Peer, wait_until

NAIVE_CLIENT = HERE / "naive_client.py"
QUIRKS = ["null", "empty", "None", "stale", "missing"]
CLIENT_SECONDS = 40.0  # the naive client's own overall deadline
PEER_WAIT = 30.0  # the most a Peer waits for a naive client's message
HISTORY_SIZE = 30
GREETING = 'hei bob, alice her - har du fått "socket.recv" til å funke?'
BOB_REPLY = "ja! json.loads på hver recv(1024), og så en tråd per klient"
RESPONSE_KINDS = {"error", "info", "message", "history"}


# -- helpers --------------------------------------------------------------------------------


class NaiveRun(ClientProcess):
    """One naive-client subprocess."""

    def __init__(
        self,
        python: str,
        port: int,
        steps: List[Dict[str, Any]],
        quirk: str = "null",
        reply_waiting: bool = False,
        hold: bool = False,
    ) -> None:
        args = ["--port", str(port), "--quirk", quirk, "--timeout", str(CLIENT_SECONDS)]
        args += ["--step-timeout", str(CLIENT_SECONDS), "--script", json.dumps(steps)]
        if reply_waiting:
            args.append("--reply-waiting")
        super().__init__(python, NAIVE_CLIENT, args, f"naive client ({quirk})", hold)

    def finish(self, expected_status: int = 0) -> List[Dict[str, Any]]:
        """Wait (bounded) for the exit; the objects it printed. Fails on a bad status:
        with Coalesced when it is a read that did not hold exactly one object."""
        code, out, err = self.wait()
        if code != expected_status:
            failure = Coalesced if code == 1 and "could not parse" in err else AssertionError
            raise failure(f"wanted exit {expected_status}: {self.describe()}")
        return [json.loads(line) for line in out.splitlines() if line.strip()]


class Coalesced(AssertionError):
    """A naive client's recv(1024) held more or less than one object."""


def again_if_coalesced(attempt: Callable[[], None]) -> None:
    """attempt(), once more if it failed only by a coalesced read: a loaded machine can
    starve a client past the 50 ms pace (then two objects wait in its socket). A server
    that coalesces fails both (see test_naive_client_detects_coalesced_output)."""
    try:
        attempt()
    except Coalesced as exc:
        warnings.warn(f"a coalesced read, run again: {str(exc)[:300]}", stacklevel=1)
        attempt()


def is_earlier(obj: Dict[str, Any]) -> bool:
    """A `history` object, or an earlier message replayed as a `message` object."""
    kind = obj["response"]
    return kind == "history" or (kind == "message" and obj.get("history") is True)


def groups(objects: List[Dict[str, Any]]) -> List[List[Dict[str, Any]]]:
    """Consecutive earlier-message objects grouped together; every other object alone."""
    out: List[List[Dict[str, Any]]] = []
    for obj in objects:
        if is_earlier(obj) and out and is_earlier(out[-1][0]):
            out[-1].append(obj)
        else:
            out.append([obj])
    return out


def earlier_messages(group: List[Dict[str, Any]], delivery: HistoryDelivery) -> List[Any]:
    """The messages in one group of earlier-message objects, checked for `delivery`."""
    if delivery is HistoryDelivery.HISTORY:
        assert all(obj["response"] == "history" for obj in group), group
        assert len(group) >= 2, "a 30-message history should come in several objects"
        entries = []
        for obj in group:
            assert isinstance(obj["content"], list)
            for entry in obj["content"]:
                assert isinstance(entry, str), f"history entry is not a JSON string: {entry!r}"
                entries.append(json.loads(entry))
        return entries
    assert all(obj["response"] == "message" and obj["history"] is True for obj in group)
    ids = [obj["id"] for obj in group]
    assert ids == sorted(ids) and len(set(ids)) == len(ids), ids
    return [{k: v for k, v in obj.items() if k != "history"} for obj in group]


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


def check_alice_session(
    objects: List[Dict[str, Any]], seeded: List[str], delivery: HistoryDelivery
) -> None:
    assert_well_formed(objects)
    grouped = groups(objects)
    kinds = ["earlier" if is_earlier(group[0]) else group[0]["response"] for group in grouped]
    assert kinds == [
        "info",  # help
        "error",  # names before login
        "info",  # login
        "earlier",  # the 30 seeded messages
        "message",  # alice's own echo
        "message",  # bob's reply
        "info",  # names
        "info",  # logout
        "info",  # login again
        "earlier",  # 30 + alice's + bob's
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

    first = earlier_messages(history, delivery)
    assert [entry["content"] for entry in first] == seeded
    assert {entry["sender"] for entry in first} == {"bob"}
    assert all(entry["response"] == "message" for entry in first)
    assert all(isinstance(entry["timestamp"], str) for entry in first)

    assert (echo["sender"], echo["content"]) == ("alice", GREETING)
    assert (reply["sender"], reply["content"]) == ("bob", BOB_REPLY)
    assert "history" not in echo and "history" not in reply  # live, not replayed

    assert isinstance(names["content"], str)
    assert "alice" in names["content"] and "bob" in names["content"]

    second = [entry["content"] for entry in earlier_messages(history_again, delivery)]
    assert second == [*seeded, GREETING, BOB_REPLY]


@dataclass
class Session:
    """bob fills a server's history, then chats with one naive alice."""

    label: str
    quirk: str
    reply_waiting: bool = False
    delivery: HistoryDelivery = HistoryDelivery.MESSAGES
    seeded: List[str] = field(default_factory=lambda: realistic_messages(HISTORY_SIZE))
    bob: Optional[Peer] = None
    alice: Optional[NaiveRun] = None


def run_sessions(server_factory: Any, python: str, sessions: List[Session]) -> None:
    """All sessions at once, each with its own server; fails naming every bad one. The
    sessions that failed only by a coalesced read get one more run (again_if_coalesced)."""
    coalesced = run_batch(server_factory, python, sessions)
    if coalesced:
        labels = [s.label for s in coalesced]
        warnings.warn(f"a coalesced read in {labels}, run again", stacklevel=1)
        again = [Session(s.label, s.quirk, s.reply_waiting, s.delivery) for s in coalesced]
        if run_batch(server_factory, python, again):
            raise Coalesced(f"coalesced reads twice in a row in {labels}")


def run_batch(server_factory: Any, python: str, sessions: List[Session]) -> List[Session]:
    """All sessions at once; fails on any problem except a coalesced read, and returns
    the sessions that had one."""
    failures: Dict[str, str] = {}
    coalesced: List[Session] = []
    with ExitStack() as stack:
        for session in sessions:
            server = server_factory(history_delivery=session.delivery)
            session.bob = stack.enter_context(login_peer(server.address, "bob"))
            seed_history(session.bob, "bob", session.seeded)
            session.alice = stack.enter_context(
                NaiveRun(
                    python,
                    server.address[1],
                    alice_session(),
                    session.quirk,
                    session.reply_waiting,
                    hold=True,
                )
            )
        # Every client started up first, then all connect: no start-up competes for the
        # CPU with a client that is already reading its paced objects.
        for session in sessions:
            assert session.alice is not None
            session.alice.wait_ready()
        for session in sessions:
            assert session.alice is not None
            session.alice.release()
        for session in sessions:
            assert session.bob is not None and session.alice is not None
            try:
                session.bob.expect_response(
                    "message", sender="alice", content=GREETING, timeout=PEER_WAIT
                )
                session.bob.send("msg", BOB_REPLY)
            except AssertionError as exc:
                failures[session.label] = f"bob never got the greeting: {exc}"
        for session in sessions:
            assert session.alice is not None
            try:
                objects = session.alice.finish()
                check_alice_session(objects, session.seeded, session.delivery)
            except Coalesced:
                failures.pop(session.label, None)  # why bob got no greeting, if he did not
                coalesced.append(session)
            except AssertionError as exc:
                failures.setdefault(session.label, str(exc))
    assert not failures, "\n\n".join(f"[{label}] {text}" for label, text in failures.items())
    return coalesced


# -- the tests --------------------------------------------------------------------------------


def test_naive_python3_clients_full_sessions(server_factory: Any) -> None:
    """Each content quirk, and three of them waiting for a reply after every request."""
    sessions = [Session(quirk, quirk) for quirk in QUIRKS]
    sessions += [Session(f"{q}, reply-waiting", q, True) for q in ("null", "stale", "missing")]
    run_sessions(server_factory, sys.executable, sessions)


@pytest.mark.py2
def test_naive_python27_clients_full_sessions(server_factory: Any, python27: str) -> None:
    sessions = [Session(quirk, quirk) for quirk in QUIRKS]
    sessions.append(Session("None, reply-waiting", "None", True))
    run_sessions(server_factory, python27, sessions)


def test_naive_client_with_the_seeds_history_shape(server_factory: Any) -> None:
    """history_delivery=HISTORY: the `history` objects (JSON-string entries, several
    objects under --max-object-bytes) still reach a naive client whole."""
    run_sessions(
        server_factory,
        sys.executable,
        [Session("history shape", "null", delivery=HistoryDelivery.HISTORY)],
    )


def test_naive_client_asking_for_history_gets_messages(server_factory: Any) -> None:
    """A `history` request of a client that did not say `stream on` is answered with the
    earlier messages as `message` objects too, one per object."""
    again_if_coalesced(lambda: asking_for_history(server_factory()))


def asking_for_history(server: Any) -> None:
    seeded = realistic_messages(HISTORY_SIZE)
    steps: List[Dict[str, Any]] = [
        {"request": "login", "content": "alice"},
        {"wait": {"response": "info", "username": "alice"}},
        {"wait": {"response": "message", "content": seeded[-1]}},
        {"request": "history", "content": 5},
        {"wait": {"response": "message", "content": seeded[-1]}},
        {"request": "logout"},
        {"wait": {"response": "info", "username": "alice"}},
    ]
    with login_peer(server.address, "bob") as bob:
        seed_history(bob, "bob", seeded)
        with NaiveRun(sys.executable, server.address[1], steps) as alice:
            got = alice.finish()
    assert_well_formed(got)
    assert [g[0]["response"] if len(g) == 1 else "earlier" for g in groups(got)] == [
        "info",
        "earlier",
        "info",
    ], got
    replayed = [o["content"] for o in got if is_earlier(o)]
    assert replayed == [*seeded, *seeded[-5:]]


def test_two_naive_clients_chat_concurrently(server_factory: Any) -> None:
    """carol and alice, both naive, talk while bob watches; neither sees a merged read."""
    again_if_coalesced(lambda: two_naive_clients(server_factory()))


def two_naive_clients(server: Any) -> None:
    hello, answer = "hei carol, ser du denne?", "ja, alice - hver melding for seg"
    carol_steps: List[Dict[str, Any]] = [
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
    alice_steps: List[Dict[str, Any]] = [
        {"request": "login", "content": "alice"},
        {"wait": {"response": "info", "username": "alice"}},
        {"request": "msg", "content": hello},
        {"wait": {"response": "message", "sender": "carol", "content": answer}},
        {"request": "names"},
        {"request": "logout"},
        {"wait": {"response": "info", "username": "alice"}},
    ]
    seeded = realistic_messages(HISTORY_SIZE)
    with login_peer(server.address, "bob") as bob:
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
        replayed = [o["content"] for o in got if is_earlier(o)]
        assert replayed == seeded  # the login's earlier messages; carol's came first
        assert all(o["response"] == "message" for o in got if is_earlier(o))
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
    with login_peer(server.address, "bob") as bob:
        seed_history(bob, "bob", realistic_messages(HISTORY_SIZE))
        steps: List[Dict[str, Any]] = [
            {"request": "login", "content": "alice"},
            {"wait": {"response": "info", "username": "alice"}},
            {"request": "logout"},
            {"wait": {"response": "info", "username": "alice"}},
        ]
        with NaiveRun(sys.executable, server.address[1], steps) as alice:
            alice.finish(expected_status=1)
        assert "could not parse" in alice.stderr
    wait_until(lambda: server.user_count() == 0)
