# The edition rules without sockets: which shapes settle 2017 or show 2014 (every quirky
# 2017 server model must settle 2017 or nothing), the tracker's fall-back decisions, the
# 2014 requests, and the 2014 answers as the user sees them.
from __future__ import annotations

import json
from typing import Any, List, Optional

import pytest

from ktnchat.client.edition import EditionTracker, shape_of
from ktnchat.client.edition2014 import (
    Refused,
    backlog_lines,
    events_2014,
    request_2014,
    said_parts,
)
from ktnchat.client.render import render_event
from ktnchat.client.session import ClientSession, Incoming
from ktnchat.protocol.lenient import ServerEvent, ServerStreamDecoder, events_from_value
from tests.client.harness import Chunks
from tests.client.test_against_quirky_servers import KTN_LOGIN, LOGIN_OK, QUIRKS


def decoded(*frames: bytes) -> List[ServerEvent]:
    decoder = ServerStreamDecoder()
    out: List[ServerEvent] = []
    for frame in frames:
        out.extend(decoder.feed(frame))
    return out + decoder.close()


def one(value: Any) -> ServerEvent:
    events = events_from_value(value)
    assert len(events) == 1
    return events[0]


# --- shapes ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(QUIRKS))
def test_no_quirky_2017_server_shows_the_2014_shape(name: str) -> None:
    actions, _ = QUIRKS[name]
    data = [b"".join(a.parts) if isinstance(a, Chunks) else a for a in actions]
    shapes = [shape_of(event) for event in decoded(*(d for d in data if isinstance(d, bytes)))]
    assert 2014 not in shapes and 2017 in shapes


@pytest.mark.parametrize(
    "value",
    [
        json.loads(LOGIN_OK),
        json.loads(KTN_LOGIN),
        {"response": "error", "content": "Username taken"},  # no timestamp, no sender
        {"timestamp": "12:00", "sender": "server", "response": "error", "content": ""},
        {"timestamp": "12:00", "sender": "server", "response": "error", "content": None},
        {"sender": "server", "response": "info", "content": "stream", "stream": True},
        {"response": "message", "sender": "bob", "content": "hi", "history": True, "id": 1},
        {"response": "info", "content": "alice, bob", "names": ["alice", "bob"]},
        {"response": "history", "content": [{"sender": "bob", "content": "hi"}]},
        {"response": "login", "content": "Login successful"},  # a quirky 2017 word
        {"timestamp": "12:00", "sender": "server", "response": "login", "content": "ok"},
    ],
)
def test_2017_shapes(value: Any) -> None:
    assert shape_of(one(value)) == 2017


@pytest.mark.parametrize(
    "value",
    [
        {"response": "login", "username": "alice", "messages": []},
        {"response": "login", "error": "Invalid username!", "username": None},
        {"response": "protocolError", "error": "Unknown request format"},
        {"response": "protocolError"},
        {"response": "message", "message": "bob said @ 2014-03-03 12:00:00: hi"},
        {"response": "message", "error": "You are not logged in!"},
        {"response": "logout", "username": "alice"},
        {"response": "users", "users": ["alice"]},
        {"response": "error", "error": "Bad request"},
    ],
)
def test_2014_shapes(value: Any) -> None:
    assert shape_of(one(value)) == 2014


@pytest.mark.parametrize("frame", [b"garbage!", b"42", b'"text"', b"null", b'{"foo": "bar"}'])
def test_no_shape(frame: bytes) -> None:
    assert [shape_of(event) for event in decoded(frame)] == [None]


# --- the tracker -------------------------------------------------------------------------

INFO_2017 = one(json.loads(LOGIN_OK))
PROTOCOL_ERROR = one({"response": "protocolError", "error": "Unknown request format"})
LOGIN_2014 = one({"response": "login", "username": "alice", "messages": []})


def test_auto_settles_2017_on_any_2017_answer_and_never_falls_back_later() -> None:
    tracker = EditionTracker()
    tracker.login_sent()
    assert tracker.seen(decoded(b"garbage")[0]) is None and tracker.undecided
    assert tracker.seen(INFO_2017) is None and not tracker.undecided
    assert tracker.seen(PROTOCOL_ERROR) is None
    assert tracker.closed("the server closed the connection") is None
    assert tracker.edition == 2017


def test_auto_falls_back_on_a_close_and_reconnects_once_more_at_most() -> None:
    tracker = EditionTracker()
    assert tracker.closed("x") is None  # no login waiting: an ordinary lost connection
    tracker = EditionTracker()
    tracker.login_sent()
    assert tracker.closed("reset") == (
        "no answer to the 2017 login (reset): retrying in the 2014 edition of the KTN protocol"
    )
    assert tracker.edition == 2014
    tracker.login_sent()
    notice = tracker.closed("closed")
    assert notice is not None and "reconnecting" in notice
    assert tracker.closed("closed") is None
    assert tracker.edition == 2014


def test_auto_falls_back_on_a_wrong_shape() -> None:
    tracker = EditionTracker()
    tracker.login_sent()
    switch = tracker.seen(PROTOCOL_ERROR)
    assert switch is not None and switch.resend_login and not switch.show
    assert "(protocolError: Unknown request format)" in switch.notice
    assert tracker.edition == 2014
    assert tracker.seen(LOGIN_2014) is None  # answered: a later close is a lost connection
    assert tracker.closed("closed") is None


def test_auto_takes_a_2014_login_answer_without_logging_in_again() -> None:
    tracker = EditionTracker()
    tracker.login_sent()
    switch = tracker.seen(LOGIN_2014)
    assert switch is not None and not switch.resend_login and switch.show


@pytest.mark.parametrize("choice", ["2014", "2017"])
def test_a_chosen_edition_never_changes(choice: str) -> None:
    tracker = EditionTracker(choice)
    tracker.login_sent()
    assert tracker.seen(PROTOCOL_ERROR if choice == "2017" else INFO_2017) is None
    assert tracker.closed("closed") is None
    assert tracker.edition == int(choice)


def test_unknown_edition_is_refused() -> None:
    with pytest.raises(ValueError):
        EditionTracker("2016")


# --- 2014 requests -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "content", "raw", "expected"),
    [
        ("login", "alice", False, {"request": "login", "username": "alice"}),
        ("msg", "hi there", False, {"request": "message", "message": "hi there"}),
        ("logout", None, False, {"request": "logout"}),
        ("names", None, False, {"request": "users"}),
        ("listUsers", None, True, {"request": "listUsers"}),
        ("join", "games", True, {"request": "join", "content": "games"}),
    ],
)
def test_2014_requests(word: str, content: Optional[str], raw: bool, expected: Any) -> None:
    assert request_2014(word, content, raw=raw) == expected


@pytest.mark.parametrize(
    ("word", "content"),
    [("login", "alice pw"), ("help", None), ("history", None), ("join", "games")],
)
def test_2014_refusals(word: str, content: Optional[str]) -> None:
    assert isinstance(request_2014(word, content), Refused)


# --- 2014 answers ------------------------------------------------------------------------

SAID = "bob said @ 2014-03-03 12:00:00: hi: there"


def shown(value: Any) -> List[str]:
    return [render_event(event).text for event in events_2014(one(value))]


@pytest.mark.parametrize(
    "entry",
    [
        SAID,
        json.dumps({"response": "message", "message": SAID}),
        {"response": "message", "message": SAID},
        {"username": "bob", "timestamp": "2014-03-03 12:00:00", "message": "hi: there"},
        json.dumps(json.dumps({"response": "message", "message": SAID})),
    ],
    ids=["plain", "json string", "object", "object with keys", "double-encoded"],
)
def test_2014_login_backlog_in_every_form(entry: Any) -> None:
    answer = {"response": "login", "username": "alice", "messages": [entry]}
    assert shown(answer) == ["* Logged in as alice", "12:00:00 [history] bob: hi: there"]


def test_2014_backlog_odd_values() -> None:
    assert [line.text for line in backlog_lines(json.dumps([SAID]))] == ["hi: there"]
    assert [line.text for line in backlog_lines("just text")] == ["just text"]
    assert backlog_lines(None) == [] and backlog_lines(7) == []
    assert render_event(backlog_lines([3])[0]).text == "[history] 3"


@pytest.mark.parametrize(
    ("value", "lines"),
    [
        ({"response": "message", "message": SAID}, ["12:00:00 bob: hi: there"]),
        ({"response": "message", "message": "alice joined"}, ["* alice joined"]),
        ({"response": "message", "message": "hi", "username": "bob"}, ["bob: hi"]),
        (
            {"response": "message", "error": "You are not logged in!"},
            ["! error: You are not logged in!"],
        ),
        (
            {"response": "login", "error": "Name already taken!", "username": "bob"},
            ["! error: Name already taken! (bob)"],
        ),
        ({"response": "logout", "username": "bob"}, ["* Logged out bob"]),
        (
            {"response": "logout", "error": "Not logged in!", "username": None},
            ["! error: Not logged in!"],
        ),
        ({"response": "users", "users": ["alice", "bob"]}, ["* users (2): alice, bob"]),
        ({"response": "listUsers", "users": "alice, bob"}, ["* users (2): alice, bob"]),
        ({"response": "message", "message": "ok", "error": None}, ["* ok"]),
        ({"response": "weird", "content": "x", "sender": "s"}, ["? [weird] s: x"]),
    ],
)
def test_2014_answers(value: Any, lines: List[str]) -> None:
    assert shown(value) == lines


def test_said_parts() -> None:
    assert said_parts(SAID) == ("bob", "2014-03-03 12:00:00", "hi: there")
    assert said_parts("bob (privately) said @ 12:00: x\ny") == ("bob (privately)", "12:00", "x\ny")
    assert said_parts("bob said hi") is None


# --- the session: a 2014 answer to a 2017 login, fed without sockets ---------------------


def test_session_switches_and_shows_2014_answers() -> None:
    shown_lines: List[str] = []
    session = ClientSession("127.0.0.1", 1, lambda r: shown_lines.append(r.text))
    session.editions.login_sent()
    for value in (
        {"response": "login", "username": "alice", "messages": [SAID]},
        {"response": "message", "message": "alice said @ 2014-03-03 12:01:00: yo"},
    ):
        session.handle_item(Incoming(0, one(value)))
    assert shown_lines == [
        "-- the server speaks another edition (login): using the 2014 edition",
        "* Logged in as alice",
        "12:00:00 [history] bob: hi: there",
        "12:01:00 alice: yo",
    ]
    assert session.editions.edition == 2014 and session.usernames == {"alice", "bob"}
