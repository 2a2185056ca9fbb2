# Normalised events -> display text (pure), including escape-sequence neutralisation.
from __future__ import annotations

import pytest

from ktnchat.client.render import (
    RecentMessages,
    Rendered,
    neutralise,
    render_event,
    render_local,
)
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
        (
            ChatLine("other", None, "", label="protocolError", extra={"error": "Bad request"}),
            "? [protocolError] Bad request",
            "other",
        ),
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


def test_replayed_messages_are_shown_as_history() -> None:
    """ktnchat's earlier messages as `message` responses marked "history": true."""
    line = ChatLine("message", "bob", "hi", "12:00", msg_id=3, extra={"history": True, "id": 3})
    assert render_event(line) == Rendered("12:00 [history] bob: hi", "history")
    assert (
        render_event(line, room="lobby", show_ids=True).text == "12:00 [lobby] [history] #3 bob: hi"
    )
    assert (
        render_event(ChatLine("message", "bob", "hi", extra={"history": "yes"})).text == "bob: hi"
    )
    private = ChatLine("message", "bob", "psst", extra={"history": True, "private": True})
    assert render_event(private).style == "private"
    recent = RecentMessages()
    recent.remember(line)
    assert recent.get(3) == ("bob", "hi")


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


# --- ktnchat extensions ------------------------------------------------------------------


def info(text: str, **extra: object) -> ChatLine:
    return ChatLine("info", "server", text, "12:35", extra=dict(extra))


def test_private_message() -> None:
    line = ChatLine("message", "alice", "psst", "12:34", extra={"private": True, "to": "bob"})
    assert render_event(line) == Rendered("12:34 [private] alice -> bob: psst", "private")
    hostile = ChatLine("message", "a", "x", extra={"private": True, "to": "b\x1b[2J"})
    assert render_event(hostile).text == "[private] a -> b^[[2J: x"
    not_private = ChatLine("message", "a", "x", extra={"private": "yes", "to": "b"})
    assert render_event(not_private) == Rendered("a: x", "message")


def test_removed_with_a_remembered_message() -> None:
    recent = RecentMessages()
    recent.remember(ChatLine("message", "alice", "first words of a rather long message", msg_id=42))
    removed = info(
        "A message from alice was removed by carol",
        event="removed",
        deleted=[42],
        by="carol",
        room="lobby",
    )
    assert render_event(removed, recent=recent) == Rendered(
        '12:35 * message #42 (alice: "first words of a rather long…") was removed by carol',
        "removed",
    )


def test_removed_without_a_remembered_message() -> None:
    removed = info(
        "A message from alice was removed by carol", event="removed", deleted=[42], by="carol"
    )
    expected = Rendered("12:35 * message #42 was removed by carol", "removed")
    assert render_event(removed) == expected
    assert render_event(removed, recent=RecentMessages()) == expected


def test_removed_many_some_remembered() -> None:
    recent = RecentMessages()
    recent.remember(ChatLine("history_item", "mallory", "spam\nspam", msg_id=2))
    purge = info(
        "3 message(s) from mallory were removed by carol",
        event="removed",
        deleted=[1, 2, 3],
        by="carol",
    )
    assert render_event(purge, recent=recent).text == (
        '12:35 * message #2 (mallory: "spam spam") was removed by carol\n'
        "12:35 * and 2 other message(s) were removed by carol"
    )
    assert render_event(purge).text == "12:35 * 3 message(s) from mallory were removed by carol"


def test_recent_messages_is_bounded_and_skips_private_and_idless() -> None:
    recent = RecentMessages(limit=3)
    for msg_id in range(5):
        recent.remember(ChatLine("message", "a", f"m{msg_id}", msg_id=msg_id))
    assert len(recent) == 3
    assert recent.get(1) is None and recent.get(4) == ("a", "m4")
    recent.remember(ChatLine("message", "a", "p", msg_id=9, extra={"private": True}))
    recent.remember(ChatLine("message", "a", "no id"))
    recent.remember(ChatLine("info", "server", "i", msg_id=8))
    assert len(recent) == 3 and recent.get(9) is None and recent.get(8) is None
    recent.forget((4, 99))
    assert recent.get(4) is None


def test_joined_and_room_events_name_the_room() -> None:
    joined = info("You joined games", event="joined", room="games", topic="chess", owner="al")
    assert render_event(joined) == Rendered(
        "12:35 * [games] You joined games (topic: chess)", "room"
    )
    same = info("You created games: chess", event="joined", room="games", topic="chess")
    assert render_event(same).text == "12:35 * [games] You created games: chess"
    join = info("bob joined games", event="join", username="bob", room="games")
    assert render_event(join) == Rendered("12:35 * [games] bob joined games", "info")
    kicked = info("You were kicked", event="kicked", room="games", by="carol")
    assert render_event(kicked) == Rendered("12:35 * [games] You were kicked", "warning")
    registered = info("alice is registered", event="registered", username="alice")
    assert render_event(registered) == Rendered("12:35 * alice is registered", "info")


def test_history_names_the_current_room() -> None:
    line = ChatLine("history_item", "bob", "old", "12:00", msg_id=3)
    assert render_event(line, room="games").text == "12:00 [games] [history] bob: old"
    assert render_event(line, room="games", show_ids=True).text == (
        "12:00 [games] [history] #3 bob: old"
    )
    assert render_event(line).text == "12:00 [history] bob: old"


def test_rooms_list() -> None:
    rooms = info(
        "Rooms:\nlobby (2)\ngames (1) - chess",
        rooms=[
            {"name": "lobby", "members": 2, "topic": "", "owner": None},
            {"name": "games", "members": 1, "topic": "chess", "owner": "al"},
        ],
    )
    assert render_event(rooms) == Rendered(
        "12:35 * Rooms:\n        lobby (2)\n        games (1) - chess", "room"
    )
