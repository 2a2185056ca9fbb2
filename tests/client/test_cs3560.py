# The CS3560 dialect (`--dialect cs3560`, ktnchat/client/cs3560.py), one test per rule of
# the CS3560 Chatroom assignment (seed 004): the real client runs as a subprocess in plain
# mode, a line is typed, and the printed output is checked exactly, line by line. Against a
# real ktnchat server (start_server, no pacing) and against a scripted fake server that
# records the raw bytes it receives, so "an error sends nothing" is checked on the wire.
# Every wait is bounded (a condition with a timeout); every process and socket is stopped.
from __future__ import annotations

import json
import socket
import time
from typing import Any, Callable, Iterator, List, Tuple

import pytest

from ktnchat.server import ChatServer
from tests.client.harness import WAIT, ClientProcess, FakeServer, Script
from tests.helpers import Peer, start_server

NAME_20 = "A" * 20
NAME_21 = "B" * 21


class Client(ClientProcess):
    """`python -m ktnchat.client --plain --dialect cs3560 127.0.0.1 PORT`, every printed
    line checked."""

    def __init__(self, port: int) -> None:
        super().__init__(port, "--dialect", "cs3560", exact_output=True)


def resp(response: str, content: Any, sender: str = "server", **extra: Any) -> bytes:
    obj = {"timestamp": "12:00:00", "sender": sender, "response": response, "content": content}
    return (json.dumps({**obj, **extra}) + "\n").encode()


# The answers of a ktnchat server, as docs/protocol.md shows them.
KTN_SCRIPT: Script = {
    "login": [
        resp("info", "Login successful; welcome, alice", username="alice", features=["stream"]),
        resp(
            "history",
            [
                '{"timestamp":"12:00:00","sender":"bob","response":"message",'
                '"content":"old chatter","id":1}'
            ],
        ),
    ],
    "names": [resp("info", "Users in lobby: alice, bob", names=["alice", "bob"], room="lobby")],
    "who": [resp("info", "Users online: bob", names=["bob"])],
    "logout": [resp("info", "Logged out alice; you are still connected", username="alice")],
    "sendto": [resp("message", "hi", "alice", private=True, to="bob")],
}
NAMES = b'{"request":"names","content":null}'
WHO = b'{"request":"who","content":null}'
LOGIN_ALICE = b'{"request":"login","content":"alice"}'


@pytest.fixture
def clients() -> Iterator[Callable[[int], Client]]:
    started: List[Client] = []

    def start(port: int) -> Client:
        client = Client(port)
        started.append(client)
        return client

    yield start
    for client in started:
        client.kill()


@pytest.fixture
def fake() -> Iterator[Callable[[Script], FakeServer]]:
    started: List[FakeServer] = []

    def start(script: Script) -> FakeServer:
        server = FakeServer(script)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def ktn() -> Iterator[Tuple[ChatServer, int]]:
    server = start_server(pace_interval=0.0)
    try:
        yield server, server.address[1]
    finally:
        server.shutdown()


# --- every error prints exactly and sends nothing ----------------------------------------

ERRORS = {
    "login without a username": ("login", "Bad username"),
    "login with an extra parameter": ("login John Doe", "Bad username"),
    "login with a 21-character username": (f"login {NAME_21}", "Bad username"),
    "list with a parameter": ("list bob", "Invalid command"),
    "sendto without a message": ("sendto JohnHello", "Bad username"),
    "sendto alone": ("sendto", "Bad username"),
    "sendto a 21-character username": (f"sendto {NAME_21} Hello", "Bad username"),
    "sendto 65,536 characters": ("sendto John " + "x" * 65536, "Bad message"),
    "logout with a parameter": ("logout Joe", "Invalid command"),
    "exit with a parameter": ("exit client", "Invalid command"),
    "an unknown command": ("hello there", "Invalid command"),
    "an unknown command word alone": ("msg", "Invalid command"),
}


@pytest.mark.parametrize("line, error", list(ERRORS.values()), ids=list(ERRORS))
def test_error_prints_exactly_and_sends_nothing(
    fake: Callable[[Script], FakeServer], clients: Callable[[int], Client], line: str, error: str
) -> None:
    server = fake(KTN_SCRIPT)
    client = clients(server.port)
    client.run(line, error)
    client.run("list", "bob")  # sent after the error: the first thing on the wire (`who`,
    assert client.finish() == 0  # as nobody is logged in yet)
    with server.cond:
        assert server.frames == [WHO]


def test_errors_against_a_real_server_change_nothing(
    ktn: Tuple[ChatServer, int], clients: Callable[[int], Client]
) -> None:
    _, port = ktn
    client = clients(port)
    client.run("login alice", "Success")
    for line, error in ERRORS.values():
        client.run(line, error)
    client.run("list", "alice")  # still logged in as alice, the only user
    assert client.finish() == 0


# --- login ---------------------------------------------------------------------------------


def test_login_valid_prints_success(
    ktn: Tuple[ChatServer, int], clients: Callable[[int], Client]
) -> None:
    _, port = ktn
    client = clients(port)
    client.run("login John", "Success")
    client.run("list", "John")
    assert client.finish() == 0


def test_login_with_20_characters_is_fine(
    fake: Callable[[Script], FakeServer],
    ktn: Tuple[ChatServer, int],
    clients: Callable[[int], Client],
) -> None:
    server = fake(KTN_SCRIPT)
    client = clients(server.port)
    client.run(f"login {NAME_20}", "Success")
    assert client.finish() == 0
    assert server.frames == [b'{"request":"login","content":"%s"}' % NAME_20.encode()]
    real = clients(ktn[1])
    real.run(f"login {NAME_20}", "Success")
    real.run("list", NAME_20)
    assert real.finish() == 0


def test_login_refused_prints_failure(
    ktn: Tuple[ChatServer, int], clients: Callable[[int], Client]
) -> None:
    first, second = clients(ktn[1]), clients(ktn[1])
    first.run("login alice", "Success")
    second.run("login alice", "Failure")  # taken
    second.run("login bad!name", "Failure")  # the server's rule: letters and digits
    second.run("login bob", "Success")
    assert first.finish() == 0
    assert second.finish() == 0


def test_login_is_sent_as_ktn_login(
    fake: Callable[[Script], FakeServer], clients: Callable[[int], Client]
) -> None:
    server = fake(KTN_SCRIPT)
    client = clients(server.port)
    client.run("login alice", "Success")  # printed once; the history is not printed
    client.run("list", "alice bob")
    client.run("sendto bob hi", "Success")
    client.run("logout", "Success")
    assert client.finish() == 0
    assert server.frames == [
        LOGIN_ALICE,
        NAMES,
        b'{"request":"sendto","content":"bob hi"}',
        b'{"request":"logout","content":null}',
    ]


# --- list ----------------------------------------------------------------------------------


def test_list_prints_the_usernames_on_one_line(
    ktn: Tuple[ChatServer, int], clients: Callable[[int], Client]
) -> None:
    alice, bob = clients(ktn[1]), clients(ktn[1])
    alice.run("login alice", "Success")
    bob.run("login bob", "Success")
    alice.run("list", "alice bob")
    assert alice.finish() == 0
    assert bob.finish() == 0


def test_list_split_over_several_infos_is_printed_once(
    fake: Callable[[Script], FakeServer], clients: Callable[[int], Client]
) -> None:
    """A ktnchat names answer may come in pieces; a later piece answers no other request."""
    names = ["alice", "bob", "carol", "dave"]
    script = dict(KTN_SCRIPT)
    # The second piece comes when the client, the list printed, has sent the sendto.
    script["names"] = [resp("info", "Users in lobby: alice, bob", names=names, room="lobby")]
    script["sendto"] = [
        resp("info", "Users in lobby: carol, dave"),
        resp("error", "bob is not online; message not sent"),
    ]
    server = fake(script)
    client = clients(server.port)
    client.run("login alice", "Success")
    client.type("list")
    client.type("sendto bob hi")
    client.expect("alice bob carol dave", "Failure")
    client.run("logout", "Success")
    assert client.finish() == 0
    assert len(server.frames) == 4


# --- sendto --------------------------------------------------------------------------------


def test_sendto_prints_success_and_the_recipient_prints_the_message(
    ktn: Tuple[ChatServer, int], clients: Callable[[int], Client]
) -> None:
    me, john = clients(ktn[1]), clients(ktn[1])
    john.run("login John", "Success")
    me.run("login alice", "Success")
    me.run("sendto John Hello, how are you?", "Success")
    john.expect("alice: Hello, how are you?")
    assert me.finish() == 0
    assert john.finish() == 0


def test_sendto_65535_characters_is_fine(
    ktn: Tuple[ChatServer, int], clients: Callable[[int], Client]
) -> None:
    me, john = clients(ktn[1]), clients(ktn[1])
    john.run("login John", "Success")
    me.run("login alice", "Success")
    text = "y" * 65535
    me.run(f"sendto John {text}", "Success")
    john.expect(f"alice: {text}")
    assert me.finish() == 0
    assert john.finish() == 0


def test_sendto_an_offline_user_prints_failure(
    ktn: Tuple[ChatServer, int], clients: Callable[[int], Client]
) -> None:
    me = clients(ktn[1])
    me.run("login alice", "Success")
    me.run("sendto John Hello, how are you?", "Failure")
    assert me.finish() == 0


def test_sendto_before_login_prints_failure(
    ktn: Tuple[ChatServer, int], clients: Callable[[int], Client]
) -> None:
    me = clients(ktn[1])
    me.run("sendto John Hello", "Failure")
    assert me.finish() == 0


def test_only_private_messages_are_printed(
    ktn: Tuple[ChatServer, int], clients: Callable[[int], Client]
) -> None:
    """Room chatter, join/leave notices and history are not CS3560: nothing is printed."""
    server, port = ktn
    with Peer(server.address) as bob:
        bob.login("bob")
        bob.send("msg", "old room chatter")  # becomes history for alice
        bob.expect_response("message", content="old room chatter")
        alice = clients(port)
        alice.run("login alice", "Success")
        bob.expect_response("info", event="join")
        bob.send("msg", "room chatter")
        bob.send("sendto", "alice psst")
        alice.expect("bob: psst")
        with Peer(server.address) as carol:
            carol.login("carol")  # a join notice for alice
        alice.run("sendto bob hi", "Success")
        bob.expect_response("message", content="hi", to="bob")
        assert alice.finish() == 0


def test_incoming_text_is_made_harmless(
    fake: Callable[[Script], FakeServer], clients: Callable[[int], Client]
) -> None:
    server = fake(KTN_SCRIPT)
    client = clients(server.port)
    client.run("login alice", "Success")
    server.push(resp("message", "psst\x1b[2J\nline 2", "bob", private=True, to="alice"))
    client.expect("bob: psst^[[2J", "line 2")  # line breaks kept, escapes made visible
    assert client.finish() == 0


def test_sendto_yourself_prints_success_and_the_message(
    ktn: Tuple[ChatServer, int], clients: Callable[[int], Client]
) -> None:
    me = clients(ktn[1])
    me.run("login alice", "Success")
    me.run("sendto alice note to self", "Success", "alice: note to self")
    assert me.finish() == 0


# --- logout and exit -----------------------------------------------------------------------


def test_logout_keeps_the_connection_then_list_and_login_work(
    fake: Callable[[Script], FakeServer], clients: Callable[[int], Client]
) -> None:
    server = fake(KTN_SCRIPT)
    client = clients(server.port)
    client.run("login alice", "Success")
    client.run("logout", "Success")
    client.run("list", "bob")  # logged out: `who` (KTN refuses `names` before login)
    client.run("login alice", "Success")
    assert client.finish() == 0
    logout = b'{"request":"logout","content":null}'
    assert server.frames == [LOGIN_ALICE, logout, WHO, LOGIN_ALICE]
    assert server.connections == 1


def test_logout_against_a_real_server(
    ktn: Tuple[ChatServer, int], clients: Callable[[int], Client]
) -> None:
    client, other = clients(ktn[1]), clients(ktn[1])
    other.run("login bob", "Success")
    client.run("login alice", "Success")
    client.run("logout", "Success")
    # Logged out, `list` sends ktnchat's `who` (KTN refuses `names` before login).
    client.run("list", "bob")
    client.run("login alice", "Success")
    client.run("list", "alice bob")
    assert other.finish() == 0
    assert client.finish() == 0


def test_exit_closes_the_socket_and_exits_0(
    fake: Callable[[Script], FakeServer], clients: Callable[[int], Client]
) -> None:
    server = fake(KTN_SCRIPT)
    client = clients(server.port)
    client.run("login alice", "Success")
    client.type("exit")
    assert client.wait_exit() == 0
    server.wait_for(lambda: server.closed_by_client == 1, "the client to close its socket")
    assert server.frames == [LOGIN_ALICE]  # exit sends nothing (no logout)


def test_exit_against_a_real_server(
    ktn: Tuple[ChatServer, int], clients: Callable[[int], Client]
) -> None:
    client = clients(ktn[1])
    client.run("login alice", "Success")
    client.type("exit")
    assert client.wait_exit() == 0
    other = clients(ktn[1])
    deadline = time.monotonic() + WAIT
    other.run("login alice", "Success")  # the name is free: alice's connection is closed
    other.run("list", "alice")
    assert other.finish() == 0
    assert time.monotonic() < deadline


def test_exit_waits_for_answers_still_due(
    fake: Callable[[Script], FakeServer], clients: Callable[[int], Client]
) -> None:
    server = fake(KTN_SCRIPT)
    client = clients(server.port)
    client.type("login alice")
    client.type("list")
    client.type("exit")
    client.type("list")  # after exit: not read
    client.expect("Success", "alice bob")
    assert client.wait_exit() == 0
    assert server.frames == [LOGIN_ALICE, NAMES]


def test_a_piped_script_prints_in_the_order_of_its_lines(
    ktn: Tuple[ChatServer, int], clients: Callable[[int], Client]
) -> None:
    """Lock step: each line waits for the answer to the request before it."""
    client = clients(ktn[1])
    for line in ("login alice", "login John Doe", "list", "list bob", "sendto bob hi"):
        client.type(line)
    for line in ("logout", "logout Joe", "list", "hello", "login alice", "exit client", "exit"):
        client.type(line)
    client.expect("Success", "Bad username", "alice", "Invalid command", "Failure")
    # Logged out, `list` asks `who`: nobody is online, so the list line is empty.
    client.expect("Success", "Invalid command", "", "Invalid command", "Success")
    client.expect("Invalid command")
    assert client.wait_exit() == 0


# --- other servers -------------------------------------------------------------------------


def test_another_server_error_is_failure_and_any_other_answer_success(
    fake: Callable[[Script], FakeServer], clients: Callable[[int], Client]
) -> None:
    server = fake(
        {
            "login": [resp("info", "Login successful"), resp("history", [])],
            "names": [resp("info", "Connected users: alice, bob")],
            "sendto": [resp("error", "Unknown request sendto")],
            "logout": [resp("logout", "bye")],  # an unknown response word
        }
    )
    client = clients(server.port)
    client.run("login alice", "Success")
    server.push(resp("message", "room chatter", "carol"))  # never an answer: not printed
    client.run("list", "alice bob")
    client.run("sendto bob hi", "Failure")
    client.run("logout", "Success")
    assert client.finish() == 0


def test_the_server_closing_is_reported_on_stderr_only(
    fake: Callable[[Script], FakeServer], clients: Callable[[int], Client]
) -> None:
    server = fake({"login": [resp("info", "ok")]})
    client = clients(server.port)
    client.run("login alice", "Success")
    server.stop()
    assert client.wait_exit() == 1
    assert b"connection lost" in client.stderr


def test_cannot_connect_exits_2(clients: Callable[[int], Client]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    client = clients(port)
    assert client.finish() == 2
    assert b"cannot connect" in client.stderr


def test_reconnect_is_refused_with_the_dialect() -> None:
    from ktnchat.client.main import main

    with pytest.raises(SystemExit) as exc:
        main(["--dialect", "cs3560", "--reconnect", "127.0.0.1", "1"])
    assert exc.value.code == 2


# --- all three editions on one server -----------------------------------------------------


def test_a_2014_a_2017_and_a_cs3560_client_on_one_server(
    ktn: Tuple[ChatServer, int], clients: Callable[[int], Client]
) -> None:
    from tests.helpers import Peer

    server, port = ktn
    with Peer(server.address) as modern, Peer(server.address) as old:
        modern.login("modern")
        old.send_raw(json.dumps({"request": "login", "username": "old_timer"}).encode())
        old.expect(lambda r: r.get("response") == "login")
        carol = clients(port)
        carol.run("login carol", "Success")
        modern.expect(lambda r: r.get("event") == "join" and r.get("username") == "carol")
        old.expect(lambda r: "carol joined" in r.get("message", ""))
        carol.run("list", "carol modern old_timer")
        # CS3560 -> 2017 and 2017 -> CS3560, as private messages.
        carol.run("sendto modern hello from CS3560", "Success")
        got = modern.expect(lambda r: r.get("private") is True)
        assert (got["sender"], got["content"]) == ("carol", "hello from CS3560")
        modern.send("sendto", "carol hello from 2017")
        carol.expect("modern: hello from 2017")
        # CS3560 -> 2014 and 2014 -> everyone (the 2017 user reads it in the room).
        carol.run("sendto old_timer hi old timer", "Success")
        assert (
            "carol (privately) said @"
            in old.expect(lambda r: "privately" in r.get("message", ""))["message"]
        )
        old.send_raw(json.dumps({"request": "message", "message": "hello from 2014"}).encode())
        got = modern.expect_response("message", content="hello from 2014")
        assert got["sender"] == "old_timer"
        carol.run("logout", "Success")
        modern.expect(lambda r: r.get("event") == "leave" and r.get("username") == "carol")
        assert carol.finish() == 0
