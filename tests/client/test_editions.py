# The client (a real process in plain mode) against 2014-edition servers modelled as real
# servers (tests/client/old_servers.py), against 2017 servers that must not be taken for
# 2014 ones, and against a real ktnchat server in both editions. Real sockets on 127.0.0.1
# port 0; every wait is bounded; every server and process is stopped by its test.
from __future__ import annotations

import json
from typing import Any, Callable, Dict, Iterator, List, Sequence, Tuple

import pytest

from ktnchat.protocol.edition2014 import BacklogEncoding
from ktnchat.server import ChatServer
from tests.client.harness import ClientProcess, Close, FakeServer, Script
from tests.client.old_servers import (
    REAL_SERVERS,
    Backlog,
    Model,
    OldServer,
    On2017,
    first_2014_connection,
)
from tests.client.relay import Relay
from tests.helpers import Peer

BACKLOG = [("bob", "hi"), ("carol", "yo: and more")]
BACKLOG_LINES = ["12:00:00 [history] bob: hi", "12:00:00 [history] carol: yo: and more"]
RETRY = "retrying in the 2014 edition of the KTN protocol"
CLOSED = f"-- no answer to the 2017 login (the server closed the connection): {RETRY}"
NOTICES = {
    On2017.CLOSE: [CLOSED],
    On2017.RESET: [
        f"-- no answer to the 2017 login (connection error: Connection reset by peer): {RETRY}"
    ],
    On2017.TRACEBACK: [
        "? unreadable data from server (not JSON: Expecting value: line 1 column 1 (char 0)): "
        "KeyError:",
        "? unreadable data from server (not JSON: Expecting value: line 1 column 1 (char 0)): "
        "'username'",
        CLOSED,
    ],
    On2017.PROTOCOL_ERROR: [
        "-- the server answered the 2017 login in another shape "
        f"(protocolError: Unknown request format): {RETRY}"
    ],
    On2017.PROTOCOL_ERROR_CLOSE: [
        "-- the server answered the 2017 login in another shape "
        f"(protocolError: Unknown request format): {RETRY}",
        "-- the server closed the connection before answering the 2014 login: reconnecting",
    ],
    On2017.LOGIN_ERROR: [
        "-- the server answered the 2017 login in another shape "
        f"(login: Invalid username!): {RETRY}"
    ],
}
NAMES_NOTE = (
    "-- the 2014 edition has no names request; asking with users, which ktnchat and some "
    "2014 servers answer"
)
LOGIN_2017 = {"request": "login", "content": "alice", "stream": "on"}


@pytest.fixture
def procs() -> Iterator[List[Any]]:
    """Everything a test starts: stopped (clients killed) at the end, newest first."""
    started: List[Any] = []
    yield started
    for thing in reversed(started):
        if isinstance(thing, ClientProcess):
            thing.kill()
        else:
            thing.stop()


def start_old(procs: List[Any], model: Model) -> OldServer:
    server = OldServer(model, BACKLOG)
    procs.append(server)
    return server


def start_client(procs: List[Any], port: int, *args: str) -> ClientProcess:
    client = ClientProcess(port, *args, exact_output=True)
    procs.append(client)
    return client


def requests_of(frames: Sequence[Tuple[int, Dict[str, Any]]], name: str) -> List[Dict[str, Any]]:
    """Every request sent on the connections that logged in (or tried to) as `name`,
    including the 2017 logins before the fall-back."""
    conns = {
        n
        for n, r in frames
        if r.get("request") == "login" and name in (r.get("username"), r.get("content"))
    }
    return [r for n, r in frames if n in conns]


# --- the fall-back against the four real servers, and two more variants -----------------


@pytest.mark.parametrize("name", list(REAL_SERVERS))
def test_falls_back_and_chats_with_a_2014_server(procs: List[Any], name: str) -> None:
    model = REAL_SERVERS[name]
    server = start_old(procs, model)
    alice = start_client(procs, server.port)
    alice.run("login alice", *NOTICES[model.on_2017], "* Logged in as alice", *BACKLOG_LINES)
    # A second user, told to speak 2014: straight to it, no notice.
    bob = start_client(procs, server.port, "--edition", "2014")
    bob.run("login bob", "* Logged in as bob", *BACKLOG_LINES)
    alice.run("msg hello", "12:00:00 alice: hello")
    bob.expect("12:00:00 alice: hello")
    bob.run("hey alice", "12:00:00 bob: hey alice")
    alice.expect("12:00:00 bob: hey alice")
    if model.knows_users:
        alice.run("names", NAMES_NOTE, "* users (2): alice, bob")
    else:
        alice.run("names", NAMES_NOTE, "! error: Unknown request: users")
    alice.run("history", "-- the 2014 edition has no history request; the backlog comes with login")
    if model.close_after_logout:
        alice.run(
            "logout", "* Logged out alice", "-- disconnected (the server closed the connection)"
        )
        assert alice.wait_exit() == 0
    else:
        alice.run("logout", "* Logged out alice")
        assert alice.finish() == 0
    assert bob.finish() == 0
    frames = server.wait_frames(1)
    sent = requests_of(frames, "alice")
    assert sent == [
        LOGIN_2017,
        {"request": "login", "username": "alice"},
        {"request": "message", "message": "hello"},
        {"request": "users"},
        {"request": "logout"},
    ]
    reconnected = model.on_2017 is not On2017.PROTOCOL_ERROR
    assert server.connections == (3 if reconnected else 2)
    assert requests_of(frames, "bob")[0] == {"request": "login", "username": "bob"}


@pytest.mark.parametrize("on_2017", [On2017.PROTOCOL_ERROR_CLOSE, On2017.LOGIN_ERROR])
def test_falls_back_on_other_answers(procs: List[Any], on_2017: On2017) -> None:
    server = start_old(procs, Model(on_2017, Backlog.OBJECTS))
    alice = start_client(procs, server.port)
    alice.run("login alice", *NOTICES[on_2017], "* Logged in as alice", *BACKLOG_LINES)
    alice.run("msg hello", "12:00:00 alice: hello")
    assert alice.finish() == 0
    assert [r for _, r in server.wait_frames(3)][1:] == [
        {"request": "login", "username": "alice"},
        {"request": "message", "message": "hello"},
    ]


@pytest.mark.parametrize("on_2017", [On2017.CLOSE, On2017.PROTOCOL_ERROR])
def test_a_script_typed_ahead_is_sent_again_in_the_2014_shape(
    procs: List[Any], on_2017: On2017
) -> None:
    """Lines piped in before the server answered the 2017 login (even a logout) are sent
    again, in the 2014 shape, after the fall-back."""
    server = start_old(procs, Model(on_2017, Backlog.JSON))
    alice = ClientProcess(server.port)
    procs.append(alice)
    for line in ("login alice", "msg hello", "names", "logout"):
        alice.type(line)
    alice.wait_line("* Logged out alice")
    assert alice.finish() == 0
    # The note comes when `names` goes out in the 2014 shape: before or after the login
    # answer, as the server's close and the piped lines race.
    assert alice.lines.count(NAMES_NOTE) == 1
    notices = NOTICES[on_2017]
    if on_2017 is On2017.CLOSE and alice.lines[0] != CLOSED:
        notices = NOTICES[On2017.RESET]  # writing after the server's close brings an RST
    assert [line for line in alice.lines if line != NAMES_NOTE] == [
        *notices,
        "* Logged in as alice",
        *BACKLOG_LINES,
        "12:00:00 alice: hello",
        "* users (1): alice",
        "* Logged out alice",
    ]
    sent = [r for _, r in server.wait_frames(1) if "content" not in r]
    assert sent == [
        {"request": "login", "username": "alice"},
        {"request": "message", "message": "hello"},
        {"request": "users"},
        {"request": "logout"},
    ]


def test_2014_errors_and_refusals_are_shown(procs: List[Any]) -> None:
    server = start_old(procs, Model(On2017.CLOSE, Backlog.PLAIN))
    client = start_client(procs, server.port, "--edition", "2014")
    client.run("msg too early", "! error: You are not logged in!")
    client.run("logout", "! error: Not logged in!")
    client.run("login bad!", "! error: Invalid username! (bad!)")
    client.run(
        "login alice s3cret", "-- the 2014 edition has no passwords; log in with: login NAME"
    )
    client.run(
        "join games", "-- join is not part of the 2014 edition the server speaks; /join sends it"
    )
    client.run("login old_timer", "* Logged in as old_timer", *BACKLOG_LINES)
    other = start_client(procs, server.port, "--edition", "2014")
    other.run("login old_timer", "! error: Name already taken! (old_timer)")
    client.type("/listUsers")
    client.expect("! error: Unknown request: listUsers")
    assert other.finish() == 0 and client.finish() == 0
    assert server.connections == 2
    assert [r for _, r in server.wait_frames(6)][:6] == [
        {"request": "message", "message": "too early"},
        {"request": "logout"},
        {"request": "login", "username": "bad!"},
        {"request": "login", "username": "old_timer"},
        {"request": "login", "username": "old_timer"},
        {"request": "listUsers"},
    ]


@pytest.mark.parametrize("on_2017", [On2017.CLOSE, On2017.PROTOCOL_ERROR])
def test_edition_2017_never_falls_back(procs: List[Any], on_2017: On2017) -> None:
    server = start_old(procs, Model(on_2017, Backlog.PLAIN))
    client = start_client(procs, server.port, "--edition", "2017")
    if on_2017 is On2017.CLOSE:
        client.run("login alice", "-- connection lost: the server closed the connection")
        assert client.wait_exit() == 1
        assert [r for _, r in server.wait_frames(1)] == [LOGIN_2017]
    else:
        client.run("login alice", "? [protocolError] Unknown request format")
        client.run("msg hi", "? [protocolError] Unknown request format")
        assert client.finish() == 0
        assert [r for _, r in server.wait_frames(2)] == [
            LOGIN_2017,
            {"request": "msg", "content": "hi"},
        ]
    assert server.connections == 1
    assert first_2014_connection(server.frames) is None


# --- 2017 servers that are slow, refuse, or close are not 2014 servers -------------------

OK = json.dumps(
    {"timestamp": "12:00:00", "sender": "server", "response": "info", "content": "Welcome"}
).encode()


def error(text: str, **keys: Any) -> bytes:
    return json.dumps({"response": "error", "content": text, **keys}).encode()


def start_fake(procs: List[Any], script: Script) -> Tuple[FakeServer, ClientProcess]:
    server = FakeServer(script)
    procs.append(server)
    return server, start_client(procs, server.port)


def test_a_slow_2017_server_is_not_taken_for_2014(procs: List[Any]) -> None:
    server, client = start_fake(procs, {"names": [Close()]})  # login: no answer (yet)
    client.type("login alice")
    client.type("msg early")  # still the 2017 shape: no answer is no evidence
    assert [json.loads(f) for f in server.wait_frames(2)] == [
        LOGIN_2017,
        {"request": "msg", "content": "early"},
    ]
    server.push(OK)
    client.expect("12:00:00 * Welcome")
    client.type("names")  # the server closes now: after its 2017 answer, no fall-back
    client.expect("-- connection lost: the server closed the connection")
    assert client.wait_exit() == 1
    assert server.connections == 1 and len(server.frames) == 3


@pytest.mark.parametrize(
    "refusal",
    [
        error("Username alice is taken; choose another", timestamp="12:00:00", sender="server"),
        error("Username alice is taken; choose another"),  # no timestamp, no sender
    ],
)
def test_a_2017_refusal_then_close_is_not_taken_for_2014(procs: List[Any], refusal: bytes) -> None:
    server, client = start_fake(procs, {"login": [refusal, Close()]})
    client.type("login alice")
    shown = client.wait_match(r"(12:00:00 )?! error: Username alice is taken; choose another")
    client.expect(shown, "-- connection lost: the server closed the connection")
    assert client.wait_exit() == 1
    assert server.connections == 1 and server.requests() == [LOGIN_2017]


def test_a_2017_refusal_keeps_the_2017_shape(procs: List[Any]) -> None:
    server, client = start_fake(procs, {"login": [error("Username taken")]})
    client.run("login alice", "! error: Username taken")
    client.run("login bob", "! error: Username taken")
    assert client.finish() == 0
    assert server.requests() == [LOGIN_2017, {**LOGIN_2017, "content": "bob"}]


# --- a real ktnchat server: both editions on one port ------------------------------------


def said_earlier(server: ChatServer, text: str) -> str:
    """bob (a 2017 peer) says `text` and leaves; the display time of the message."""
    with Peer(server.address, stream=True) as bob:
        bob.login("bob")
        bob.send("msg", text)
        return str(bob.expect_response("message", content=text)["timestamp"])[-8:]


def test_ktnchat_sends_our_2017_client_the_history_response(
    procs: List[Any], server_factory: Callable[..., ChatServer]
) -> None:
    server = server_factory(pace_interval=0.0)
    stamp = said_earlier(server, "earlier")
    relay = Relay(server.address)
    procs.append(relay)
    client = start_client(procs, relay.port)
    client.type("login alice")
    client.expect(client.wait_match(r"\d\d:\d\d:\d\d \* Login successful; welcome, alice"))
    client.expect(f"{stamp} [lobby] [history] bob: earlier")
    relay.wait_for(b'"response":"history"')
    assert b'"history":true' not in relay.from_server  # no replayed messages
    assert client.finish() == 0


@pytest.mark.parametrize("backlog", [BacklogEncoding.JSON, BacklogEncoding.PLAIN])
def test_a_2014_session_on_ktnchat(
    procs: List[Any], server_factory: Callable[..., ChatServer], backlog: BacklogEncoding
) -> None:
    server = server_factory(pace_interval=0.0, backlog_encoding=backlog)
    stamp = said_earlier(server, "earlier")
    with Peer(server.address, stream=True) as carol:
        carol.login("carol")
        alice = start_client(procs, server.address[1], "--edition", "2014")
        alice.run("login alice", "* Logged in as alice", f"{stamp} [history] bob: earlier")
        carol.expect(lambda r: r.get("event") == "join" and r.get("username") == "alice")
        alice.type("msg hello from 2014")
        got = carol.expect_response("message", content="hello from 2014")
        assert got["sender"] == "alice"
        alice.expect(f"{got['timestamp'][-8:]} alice: hello from 2014")
        carol.send("msg", "hello from 2017")
        got = carol.expect_response("message", content="hello from 2017")
        alice.expect(f"{got['timestamp'][-8:]} carol: hello from 2017")
        alice.run("names", NAMES_NOTE, "* users (2): alice, carol")
        alice.run("logout", "* Logged out alice")
        carol.expect(lambda r: r.get("event") == "leave" and r.get("username") == "alice")
        assert alice.finish() == 0
