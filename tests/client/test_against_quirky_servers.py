# The real client (a subprocess in plain mode) against a scripted fake server that sends
# each quirk measured on student servers; asserts on the rendered output and on the exact
# request bytes the server received. Real sockets on 127.0.0.1 port 0, real threads; every
# wait is on a condition with a bounded timeout.
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from typing import Any, Callable, Dict, Iterator, List, Sequence

import pytest

from tests.client.harness import (
    REPO,
    WAIT,
    Action,
    Chunks,
    ClientProcess,
    Close,
    FakeServer,
    Script,
)


def resp(
    response: str, content: Any, sender: Any = "server", ts: Any = "12:00:00", **extra: Any
) -> bytes:
    return json.dumps(
        {"timestamp": ts, "sender": sender, "response": response, "content": content, **extra}
    ).encode()


def msg(sender: Any, text: str, ts: Any = "2017-03-10 12:34:56") -> Dict[str, Any]:
    return {"timestamp": ts, "sender": sender, "response": "message", "content": text}


LOGIN_OK = resp("info", "Login successful")
M1, M2 = msg("alice", "hi"), msg("bob", "yo")
H1, H2 = "12:34:56 [history] alice: hi", "12:34:56 [history] bob: yo"


@pytest.fixture
def run() -> Iterator[Callable[..., tuple[FakeServer, ClientProcess]]]:
    started: List[Any] = []

    def start(script: Script, *args: str) -> tuple[FakeServer, ClientProcess]:
        server = FakeServer(script)
        started.append(server)
        client = ClientProcess(server.port, *args)
        started.append(client)
        return server, client

    yield start
    for thing in reversed(started):
        if isinstance(thing, ClientProcess):
            thing.kill()
        else:
            thing.stop()


# --- exact requests ----------------------------------------------------------------------


def test_requests_are_exact_json(run: Any) -> None:
    server, client = run({"login": [LOGIN_OK], "help": [resp("info", "server help")]})
    client.type("login alice")
    # The extra key asks ktnchat for the `history` response; other servers ignore it.
    assert server.wait_frames(1)[0] == b'{"request":"login","content":"alice","stream":"on"}'
    assert server.requests()[0] == {"request": "login", "content": "alice", "stream": "on"}
    client.wait_line("12:00:00 * Login successful")
    for line in (
        "login alice s3cret",
        "msg hello",
        "just text",
        "names",
        "help",
        "history",
        "logout",
        "/whoami",
        "/kick bob",
        "",
        "login",
    ):
        client.type(line)
    client.wait_line("12:00:00 * server help")
    client.wait_line("-- usage: login NAME [PASSWORD]")
    frames = server.wait_frames(10)
    assert [json.loads(f) for f in frames] == [
        {"request": "login", "content": "alice", "stream": "on"},
        {"request": "login", "content": "alice s3cret", "stream": "on"},
        {"request": "msg", "content": "hello"},
        {"request": "msg", "content": "just text"},
        {"request": "names", "content": None},
        {"request": "help", "content": None},
        {"request": "history", "content": None},
        {"request": "logout", "content": None},
        {"request": "whoami", "content": None},
        {"request": "kick", "content": "bob"},
    ]
    assert all(not f.endswith(b"\n") for f in frames)
    assert any(line.startswith("-- client commands: login NAME") for line in client.lines)
    client.end_input()
    assert client.wait_exit() == 0
    assert len(server.requests()) == 10


# --- rendering of server quirks ----------------------------------------------------------

QUIRKS: Dict[str, tuple[Sequence[Action], Sequence[str]]] = {
    "two objects in one segment": (
        [LOGIN_OK + resp("history", [json.dumps(M1), json.dumps(M2)])],
        ["12:00:00 * Login successful", H1, H2],
    ),
    "object split across segments": (
        [Chunks(LOGIN_OK[:5], LOGIN_OK[5:30], LOGIN_OK[30:])],
        ["12:00:00 * Login successful"],
    ),
    "newline after every object, whitespace between": (
        [LOGIN_OK + b"\n", b"  \r\n" + resp("message", "hi", "bob") + b"\n"],
        ["12:00:00 * Login successful", "12:00:00 bob: hi"],
    ),
    "history (1) JSON strings": ([resp("history", [json.dumps(M1), json.dumps(M2)])], [H1, H2]),
    "history (2) triples": (
        [resp("history", [["2017-03-10 12:34:56", "alice", "hi"], ["12:34:56", "bob", "yo"]])],
        [H1, H2],
    ),
    "history (3) JSON text": ([resp("history", json.dumps([M1, M2]))], [H1, H2]),
    "history (4) info with a list": ([resp("info", [M1, M2])], [H1, H2]),
    "history (5) one response per message": (
        [resp("history", M1), resp("history", json.dumps(M2))],
        [H1, H2],
    ),
    "history (6) header then messages": (
        [resp("info", "History:"), json.dumps(M1).encode()],
        ["12:00:00 * History:", "12:34:56 alice: hi"],
    ),
    "history (7) plain string": (
        [resp("history", "alice: hi\nbob: yo")],
        ["[history] alice: hi", "          bob: yo"],
    ),
    "history (8) never sent": ([LOGIN_OK], ["12:00:00 * Login successful"]),
    "history list of objects": ([resp("history", [M1, M2])], [H1, H2]),
    "earlier messages replayed as messages (ktnchat)": (
        [
            LOGIN_OK,
            json.dumps({**M1, "history": True}).encode(),
            json.dumps({**M2, "history": True}).encode(),
        ],
        ["12:00:00 * Login successful", H1, H2],
    ),
    "history empty": ([resp("history", []), LOGIN_OK], ["12:00:00 * Login successful"]),
    "double-encoded objects": (
        [json.dumps(LOGIN_OK.decode()).encode(), json.dumps(json.dumps(M1)).encode()],
        ["12:00:00 * Login successful", "12:34:56 alice: hi"],
    ),
    "list senders, int and missing timestamps": (
        [
            resp("message", "hi", ["alice", "bob"], 1489149296),
            json.dumps({"sender": "carol", "response": "message", "content": "no ts"}).encode(),
            resp("message", "float", None, 1489149296.5),
        ],
        ["12:34:56 alice, bob: hi", "carol: no ts", "12:34:56 ?: float"],
    ),
    "garbage between objects": (
        [b"garbage!! " + LOGIN_OK + b" {not json} \x00\xff " + resp("info", "after")],
        [
            "? unreadable data from server (not JSON: Expecting value: line 1 column 1 (char 0)): "
            "garbage!!",
            "12:00:00 * Login successful",
            "12:00:00 * after",
        ],
    ),
    "unknown responses, odd values and content": (
        [
            resp("shout", "HEY", "bob"),
            b"42\n",
            b'["a", 1]',
            resp("info", 3),
            resp("info", {"a": 1}),
            resp("error", None),
            json.dumps({"foo": "bar"}).encode(),
            resp("info", "still alive"),
        ],
        [
            "12:00:00 ? [shout] bob: HEY",
            "? [number] 42",
            '? [list] ["a", 1]',
            "12:00:00 * 3",
            '12:00:00 * {"a": 1}',
            "12:00:00 ! error: ",
            '? [no response key] {"foo": "bar"}',
            "12:00:00 * still alive",
        ],
    ),
    "control characters and escapes neutralised": (
        [resp("message", "\x1b[2J\x1b]0;pwn\x07red\rline\ttab\nnext", "ev\x1bil")],
        ["12:00:00 ev^[il: ^[[2J^[]0;pwn^Gred^Mline\ttab", "                 next"],
    ),
    "ktnchat extras: ids shown only with --show-ids": (
        [resp("message", "hi", "alice", id=7)],
        ["12:00:00 alice: hi"],
    ),
}


@pytest.mark.parametrize("name", list(QUIRKS))
def test_quirk_is_rendered(run: Any, name: str) -> None:
    actions, expected = QUIRKS[name]
    server, client = run({"login": actions})
    client.type("login alice")
    client.wait_lines(expected)
    client.type("msg still typing")
    assert server.wait_frames(2)[1] == b'{"request":"msg","content":"still typing"}'
    client.end_input()
    assert client.wait_exit() == 0
    assert b"\x1b" not in client.raw and b"\x07" not in client.raw and b"\r" not in client.raw


def test_show_ids(run: Any) -> None:
    _, client = run({"login": [resp("message", "hi", "alice", id=7)]}, "--show-ids")
    client.type("login alice")
    client.wait_line("12:00:00 #7 alice: hi")
    client.end_input()
    assert client.wait_exit() == 0


@pytest.mark.parametrize(
    ("answer", "shown"),
    [
        (resp("info", "alice, bob"), "12:00:00 * users (2): alice, bob"),
        (resp("info", "Users: alice bob"), "12:00:00 * Users: alice bob"),
        (resp("info", "['alice', 'bob']"), "12:00:00 * users (2): alice, bob"),
        (resp("info", ["alice", "bob"]), "12:00:00 * users (2): alice, bob"),
        (resp("info", '["alice", "bob"]'), "12:00:00 * users (2): alice, bob"),
        (resp("info", "alice, bob", names=["alice", "bob"]), "12:00:00 * users (2): alice, bob"),
    ],
)
def test_names_answers(run: Any, answer: bytes, shown: str) -> None:
    _, client = run({"login": [LOGIN_OK], "names": [answer]})
    client.type("login alice")
    client.wait_line("12:00:00 * Login successful")
    client.type("names")
    client.wait_line(shown)
    client.end_input()
    assert client.wait_exit() == 0


# --- stream extension --------------------------------------------------------------------

KTN_LOGIN = resp(
    "info", "Login successful", username="alice", server="ktnchat/0.1", features=["stream", "ids"]
)


def test_stream_on_sent_once_when_advertised_and_ack_hidden(run: Any) -> None:
    server, client = run(
        {
            "login": [KTN_LOGIN],
            "stream": [resp("info", "streaming enabled", stream=True)],
            "names": [resp("info", "alice", names=["alice"])],
        }
    )
    client.type("login alice")
    assert server.wait_frames(2)[1] == b'{"request":"stream","content":"on"}'
    client.type("names")
    client.wait_line("12:00:00 * users (1): alice")
    client.end_input()
    assert client.wait_exit() == 0
    assert [r["request"] for r in server.requests()] == ["login", "stream", "names"]
    assert not any("streaming enabled" in line for line in client.lines)


@pytest.mark.parametrize(
    "login_reply",
    [LOGIN_OK, resp("info", "Login successful", features=["ids"]), resp("info", "stream")],
)
def test_stream_never_sent_unless_advertised(run: Any, login_reply: bytes) -> None:
    server, client = run({"login": [login_reply], "names": [resp("info", "alice")]})
    client.type("login alice")
    client.wait_line("12:00:00 * " + json.loads(login_reply)["content"])
    client.type("names")
    client.wait_line("12:00:00 * users (1): alice")
    client.end_input()
    assert client.wait_exit() == 0
    assert [r["request"] for r in server.requests()] == ["login", "names"]


# --- ktnchat extensions: rooms, private messages, removals, passwords ---------------------

KTN_LOBBY_LOGIN = resp(
    "info", "Login successful", username="alice", server="ktnchat/0.2", features=[], room="lobby"
)


def test_join_sends_exact_json_and_shows_the_room(run: Any) -> None:
    joined = resp("info", "You joined games", event="joined", room="games", topic="chess")
    history = resp("history", [json.dumps({**M2, "id": 5})])
    server, client = run({"login": [KTN_LOBBY_LOGIN], "join": [joined, history]}, "--show-ids")
    client.type("login alice")
    client.wait_line("12:00:00 * Login successful")
    client.type("join games")
    assert server.wait_frames(2)[1] == b'{"request":"join","content":"games"}'
    client.wait_lines(
        [
            "12:00:00 * [games] You joined games (topic: chess)",
            "12:34:56 [games] [history] #5 bob: yo",
        ]
    )
    client.type("leave me alone")
    assert server.wait_frames(3)[2] == b'{"request":"msg","content":"leave me alone"}'
    client.end_input()
    assert client.wait_exit() == 0


def test_private_message_is_shown_as_private(run: Any) -> None:
    echo = resp("message", "psst", "alice", "12:34:56", private=True, to="bob")
    server, client = run({"login": [LOGIN_OK], "sendto": [echo]})
    client.type("login alice")
    client.wait_line("12:00:00 * Login successful")
    client.type("sendto bob psst")
    assert server.wait_frames(2)[1] == b'{"request":"sendto","content":"bob psst"}'
    client.wait_line("12:34:56 [private] alice -> bob: psst")
    client.end_input()
    assert client.wait_exit() == 0


def test_removed_message_is_shown_as_removed(run: Any) -> None:
    spam = resp("message", "buy cheap watches now, very cheap", "mallory", "12:34:56", id=42)
    removed = resp(
        "info",
        "A message from mallory was removed by carol",
        "server",
        "12:35:00",
        room="lobby",
        event="removed",
        deleted=[42],
        by="carol",
    )
    server, client = run({"login": [LOGIN_OK, spam], "remove": [removed, removed]})
    client.type("login alice")
    client.wait_line("12:34:56 mallory: buy cheap watches now, very cheap")
    client.type("remove 42")
    assert server.wait_frames(2)[1] == b'{"request":"remove","content":"42"}'
    client.wait_lines(
        [
            '12:35:00 * message #42 (mallory: "buy cheap watches now, very…") was removed by carol',
            "12:35:00 * message #42 was removed by carol",
        ]
    )
    client.end_input()
    assert client.wait_exit() == 0


def test_password_lines_are_sent_but_never_echoed(run: Any) -> None:
    server, client = run(
        {
            "login": [LOGIN_OK],
            "register": [resp("info", "alice is registered", event="registered")],
            "admin": [resp("error", "Wrong admin secret")],
        }
    )
    client.type("login alice")
    client.wait_line("12:00:00 * Login successful")
    for line in (
        "register s3cret-pass-1",
        "password s3cret-pass-1 s3cret-pass-2",
        "admin s3cret-admin-3",
        "login alice s3cret-pass-2",
    ):
        client.type(line)
    client.wait_lines(["12:00:00 * alice is registered", "12:00:00 ! error: Wrong admin secret"])
    assert [json.loads(f) for f in server.wait_frames(5)][1:] == [
        {"request": "register", "content": "s3cret-pass-1"},
        {"request": "password", "content": "s3cret-pass-1 s3cret-pass-2"},
        {"request": "admin", "content": "s3cret-admin-3"},
        {"request": "login", "content": "alice s3cret-pass-2", "stream": "on"},
    ]
    client.end_input()
    assert client.wait_exit() == 0
    assert b"s3cret" not in client.raw and b"s3cret" not in client.stderr


# --- connection endings ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("logout_actions", "lines"),
    [
        ([resp("info", "Bye"), Close()], ["12:00:00 * Bye"]),
        ([Close()], []),
    ],
    ids=["reply then close", "close without reply"],
)
def test_server_closing_after_logout_exits_0(run: Any, logout_actions: Any, lines: Any) -> None:
    _, client = run({"login": [LOGIN_OK], "logout": logout_actions})
    client.type("login alice")
    client.wait_line("12:00:00 * Login successful")
    client.type("logout")
    client.wait_lines([*lines, "-- disconnected (the server closed the connection)"])
    assert client.wait_exit() == 0


def test_logout_without_close_keeps_session(run: Any) -> None:
    server, client = run({"login": [LOGIN_OK], "logout": [resp("info", "Logged out")]})
    client.type("login alice")
    client.type("logout")
    client.wait_line("12:00:00 * Logged out")
    client.type("login bob")
    assert json.loads(server.wait_frames(3)[2]) == {
        "request": "login",
        "content": "bob",
        "stream": "on",
    }
    client.end_input()
    assert client.wait_exit() == 0


def test_connection_lost_exits_non_zero(run: Any) -> None:
    _, client = run({"login": [LOGIN_OK], "msg": [Close()]})
    client.type("login alice")
    client.wait_line("12:00:00 * Login successful")
    client.type("msg boom")
    client.wait_line("-- connection lost: the server closed the connection")
    assert client.wait_exit() == 1


def test_quit_logs_out_and_exits_0(run: Any) -> None:
    server, client = run({"login": [LOGIN_OK]})
    client.type("login alice")
    client.wait_line("12:00:00 * Login successful")
    client.type("quit")
    assert client.wait_exit() == 0
    assert [r["request"] for r in server.requests()] == ["login", "logout"]


def test_output_pending_at_end_of_input_is_printed(run: Any) -> None:
    _, client = run({"login": [Chunks(LOGIN_OK, resp("history", [M1, M2]))]})
    client.type("login alice")
    client.end_input()
    assert client.wait_exit() == 0
    assert client.lines[-3:] == ["12:00:00 * Login successful", H1, H2]


def test_reconnect_logs_in_again(run: Any) -> None:
    server, client = run({"login": [LOGIN_OK], "msg": [Close()]}, "--reconnect")
    client.type("login alice s3cret")
    client.wait_line("12:00:00 * Login successful")
    client.type("msg boom")
    client.wait_line("-- connection lost: the server closed the connection")
    frames = server.wait_frames(3)
    assert json.loads(frames[2]) == {"request": "login", "content": "alice s3cret", "stream": "on"}
    assert server.connections == 2
    client.wait_line(f"-- reconnected to 127.0.0.1:{server.port}")
    client.end_input()
    assert client.wait_exit() == 0


def test_connection_refused_exits_2() -> None:
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, "-m", "ktnchat.client", "127.0.0.1", str(port), "--plain"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        cwd=str(REPO),
        env=env,
        timeout=WAIT,
    )
    assert done.returncode == 2
    assert done.stdout == b""
    err = done.stderr.decode().strip()
    assert err == f"ktnchat: cannot connect to 127.0.0.1:{port}: Connection refused"


def test_bad_port_is_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ktnchat.client", "127.0.0.1", "nope"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        cwd=str(REPO),
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        timeout=WAIT,
    )
    assert done.returncode == 2
    assert b"not a port number" in done.stderr
