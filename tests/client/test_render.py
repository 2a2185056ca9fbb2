# Normalised events -> display text (pure), including escape-sequence neutralisation.
from __future__ import annotations

import pytest

from ktnchat.client.render import Rendered, neutralise, render_event, render_local
from ktnchat.protocol.lenient import ChatLine, Notice, Unreadable


@pytest.mark.parametrize(
    ("event", "text", "style"),
    [
        (ChatLine("message", "alice", "hi", "12:34:56"), "12:34:56 alice: hi", "message"),
        (ChatLine("message", None, "hi"), "?: hi", "message"),
        (ChatLine("history_item", "bob", "old", "12:00"), "12:00 [history] bob: old", "history"),
        (
            ChatLine("info", "server", "Login successful", "12:00"),
            "12:00 * Login successful",
            "info",
        ),
        (ChatLine("error", "server", "Username taken"), "! error: Username taken", "error"),
        (ChatLine("other", "x", "HI", label="shout"), "? [shout] x: HI", "other"),
        (ChatLine("other", None, "42", label="number"), "? [number] 42", "other"),
        (Notice(("alice", "bob"), "alice, bob"), "* users (2): alice, bob", "notice"),
        (
            Notice(("alice", "bob"), "Users: alice bob", timestamp="01:00"),
            "01:00 * Users: alice bob",
            "notice",
        ),
        (Notice(None, "nobody here"), "* nobody here", "notice"),
        (
            Unreadable(b"garbage", "not JSON"),
            "? unreadable data from server (not JSON): garbage",
            "unreadable",
        ),
        (Unreadable(b"", "too big"), "? unreadable data from server (too big)", "unreadable"),
    ],
)
def test_render_event(event: object, text: str, style: str) -> None:
    assert render_event(event) == Rendered(text, style)  # type: ignore[arg-type]


def test_show_ids() -> None:
    line = ChatLine("message", "alice", "hi", "12:00", msg_id=7)
    assert render_event(line, show_ids=True).text == "12:00 #7 alice: hi"
    assert render_event(line).text == "12:00 alice: hi"


def test_multiline_body_is_indented_and_tabs_kept() -> None:
    line = ChatLine("message", "al", "one\ntwo\r\nthree\u2028four\tfive", "12:00")
    assert render_event(line).text == (
        "12:00 al: one\n          two\n          three\n          four\tfive"
    )


def test_escape_sequences_are_neutralised() -> None:
    hostile = ChatLine(
        "message",
        "ev\x1b[2Jil\nname",
        "\x1b]0;pwned\x07\x1b[31mred\r\x9b2J\x7f\u202eevil\ud800",
        "12:00\x1b[K",
        label="x",
    )
    text = render_event(hostile).text
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text
    assert "\x9b" not in text and "\x7f" not in text and "\u202e" not in text
    assert text == (
        "12:00^[[K ev^[[2Jil name: ^[]0;pwned^G^[[31mred^M<U+009B>2J^?<U+202E>evil\ufffd"
    )
    text.encode("utf-8")  # no lone surrogates left


def test_unreadable_preview_is_neutralised_and_shortened() -> None:
    text = render_event(Unreadable(b"\x1b[31m" + b"x" * 200, "not JSON")).text
    assert "\x1b" not in text
    assert text.endswith("…")
    assert len(text) < 140


def test_other_label_and_notice_are_neutralised() -> None:
    assert "\x1b" not in render_event(ChatLine("other", None, "t", label="\x1b[1m")).text
    assert "\x1b" not in render_event(Notice(("a\x1b",), "a\x1b")).text


@pytest.mark.parametrize(
    ("raw", "shown"),
    [("\x00", "^@"), ("\x08", "^H"), ("\x1f", "^_"), ("\x85", "\n"), ("é", "é"), ("\t", "\t")],
)
def test_neutralise(raw: str, shown: str) -> None:
    assert neutralise(raw) == shown


def test_neutralise_single_line() -> None:
    assert neutralise("a\nb\tc", multiline=False) == "a b c"


def test_render_local() -> None:
    assert render_local("connection lost", "warning") == Rendered("-- connection lost", "warning")
