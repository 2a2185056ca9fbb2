# Typed lines -> requests or local actions (pure).
from __future__ import annotations

from typing import Optional

import pytest

from ktnchat.client.commands import (
    CLIENT_HINT,
    COMMAND_WORDS,
    EXTENSION_WORDS,
    Command,
    Quit,
    Send,
    Usage,
    is_secret_line,
    parse_command,
    secret_start,
)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("login alice", Send("login", "alice")),
        ("login alice\n", Send("login", "alice")),
        ("  LOGIN   alice  ", Send("login", "alice")),
        ("login alice s3cret", Send("login", "alice s3cret", secret=True)),
        ("login alice two words", Send("login", "alice two words", secret=True)),
        ("login", Usage("usage: login NAME [PASSWORD]")),
        ("logout", Send("logout", None)),
        ("names", Send("names", None)),
        ("history", Send("history", None)),
        ("help", Send("help", None, CLIENT_HINT)),
        ("msg hello world", Send("msg", "hello world")),
        ("msg\thello", Send("msg", "hello")),
        ("msg", Usage("usage: msg TEXT")),
        ("hello world", Send("msg", "hello world")),
        ("help me please", Send("msg", "help me please")),
        ("names are hard", Send("msg", "names are hard")),
        ("quit", Quit()),
        ("EXIT", Quit()),
        ("quit now", Send("msg", "quit now")),
        ("/stream on", Send("stream", "on", raw=True)),
        ("/kick bob", Send("kick", "bob", raw=True)),
        ("/register s3cret-pass", Send("register", "s3cret-pass", secret=True, raw=True)),
        ("/LOGIN alice pw", Send("LOGIN", "alice pw", secret=True, raw=True)),
        ("/whoami", Send("whoami", None, raw=True)),
        ("/", Usage("usage: /WORD [CONTENT] sends a raw request")),
        ("//not a command", Send("msg", "/not a command")),
        ("æøå 🙂", Send("msg", "æøå 🙂")),
        ("", None),
        ("   \t ", None),
        ("\n", None),
    ],
)
def test_parse_command(line: str, expected: Optional[Command]) -> None:
    assert parse_command(line) == expected


# Every extension word from docs/protocol.md: WORD REST -> {"request": WORD, "content": REST}.
EXTENSION_LINES = [
    ("join games", Send("join", "games")),
    ("JOIN  games ", Send("join", "games")),
    ("join", Send("join", None)),
    ("create games chess and go", Send("create", "games chess and go")),
    ("topic", Send("topic", None)),
    ("topic chess  and go", Send("topic", "chess  and go")),
    ("deleteroom games", Send("deleteroom", "games")),
    ("register s3cret-pass", Send("register", "s3cret-pass", secret=True)),
    ("register", Send("register", None, secret=True)),
    ("password old-pass new-pass", Send("password", "old-pass new-pass", secret=True)),
    ("admin the-secret", Send("admin", "the-secret", secret=True)),
    ("kick bob being rude", Send("kick", "bob being rude")),
    ("mute bob 5", Send("mute", "bob 5")),
    ("unmute bob", Send("unmute", "bob")),
    ("ban bob spam", Send("ban", "bob spam")),
    ("unban bob", Send("unban", "bob")),
    ("gban bob", Send("gban", "bob")),
    ("gunban bob", Send("gunban", "bob")),
    ("ipban 10.0.0.1 abuse", Send("ipban", "10.0.0.1 abuse")),
    ("ipunban 10.0.0.1", Send("ipunban", "10.0.0.1")),
    ("remove 42", Send("remove", "42")),
    ("purge bob all", Send("purge", "bob all")),
    ("mod bob", Send("mod", "bob")),
    ("unmod bob", Send("unmod", "bob")),
    ("modlog", Send("modlog", None)),
    ("modlog 20", Send("modlog", "20")),
    ("sendto bob psst, over here", Send("sendto", "bob psst, over here")),
    ("sendto", Send("sendto", None)),
    # Argument-less words: bare they are requests, with more text they are chat.
    ("rooms", Send("rooms", None)),
    ("leave", Send("leave", None)),
    ("bans", Send("bans", None)),
    ("Rooms", Send("rooms", None)),
    ("rooms are fun", Send("msg", "rooms are fun")),
    ("leave me alone", Send("msg", "leave me alone")),
    ("bans are harsh", Send("msg", "bans are harsh")),
    ("//join games", Send("msg", "/join games")),
]


@pytest.mark.parametrize(("line", "expected"), EXTENSION_LINES)
def test_parse_extension_words(line: str, expected: Command) -> None:
    assert parse_command(line) == expected


def test_every_extension_word_is_parsed_and_completed() -> None:
    words = {cmd.word for _, cmd in EXTENSION_LINES if isinstance(cmd, Send)}
    assert set(EXTENSION_WORDS) <= words
    assert set(EXTENSION_WORDS) <= set(COMMAND_WORDS)
    for word in EXTENSION_WORDS:
        command = parse_command(f"{word} x y")
        assert isinstance(command, Send)
        if word in ("rooms", "leave", "bans"):  # argument-less: the line is chat
            assert command == Send("msg", f"{word} x y")
        else:
            assert (command.word, command.content) == (word, "x y")


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("register s3cret-pass", True),
        ("password old-pass new-pass", True),
        ("ADMIN the-secret", True),
        ("login alice s3cret-pass", True),
        ("/login alice s3cret-pass", True),
        ("/password a b", True),
        ("login alice", False),
        ("msg register now", False),
        ("hello", False),
        ("join games", False),
        ("", False),
    ],
)
def test_secret_lines(line: str, secret: bool) -> None:
    assert is_secret_line(line) is secret


@pytest.mark.parametrize(
    ("line", "start"),
    [
        ("register", 8),
        ("register ", 9),
        ("register s3cret", 9),
        ("  Password old new", 11),
        ("/admin x", 7),
        ("login alice", None),
        ("login alice ", 12),
        ("login alice s3cret", 12),
        ("/login alice s3cret", 13),
        ("registering is fun", None),
        ("msg register x", None),
        ("", None),
    ],
)
def test_secret_start_for_masking_while_typing(line: str, start: Optional[int]) -> None:
    assert secret_start(line) == start


def test_hint_mentions_every_client_command() -> None:
    for word in ("login", "logout", "msg", "names", "history", "help", "quit", "/WORD"):
        assert word in CLIENT_HINT
    for word in ("rooms", "join", "leave", "sendto"):
        assert word in CLIENT_HINT


def test_tty_completer_offers_commands_then_usernames() -> None:
    pytest.importorskip("prompt_toolkit")
    from prompt_toolkit.document import Document

    from ktnchat.client.session import ClientSession
    from ktnchat.client.tty import _make_completer

    session = ClientSession("127.0.0.1", 1, lambda rendered: None)
    session.usernames.update({"alice", "albert", "bob"})
    completer = _make_completer(session)

    def complete(text: str) -> list[str]:
        return [c.text for c in completer.get_completions(Document(text), None)]

    assert complete("na") == ["names"]
    assert complete("h") == ["help", "history"]
    assert complete("msg hi al") == ["albert", "alice"]
    assert complete("hello B") == ["bob"]
    assert complete("se") == ["sendto"]
    assert complete("ro") == ["rooms"]
    assert complete("unm") == ["unmute", "unmod"]


def test_tty_completer_offers_rooms_after_join_and_users_after_user_words() -> None:
    pytest.importorskip("prompt_toolkit")
    from prompt_toolkit.document import Document

    from ktnchat.client.session import ClientSession
    from ktnchat.client.tty import _make_completer

    session = ClientSession("127.0.0.1", 1, lambda rendered: None)
    session.usernames.update({"alice", "gary"})
    session.rooms.update({"games", "Garden", "lobby"})
    completer = _make_completer(session)

    def complete(text: str) -> list[str]:
        return [c.text for c in completer.get_completions(Document(text), None)]

    assert complete("join ") == ["games", "Garden", "lobby"]
    assert complete("join ga") == ["games", "Garden"]
    assert complete("/join l") == ["lobby"]
    assert complete("deleteroom g") == ["games", "Garden"]
    for word in ("sendto", "kick", "mute", "unmute", "ban", "unban", "mod", "unmod", "gban"):
        assert complete(f"{word} g") == ["gary"], word
    assert complete("purge a") == ["alice"]
    assert complete("sendto gary hi a") == ["alice"]


def test_tty_history_never_keeps_password_lines() -> None:
    pytest.importorskip("prompt_toolkit")
    from ktnchat.client.tty import _make_history

    history = _make_history()
    for line in (
        "login alice",
        "register s3cret-pass",
        "login alice s3cret-pass",
        "password s3cret-pass n3w-pass",
        "admin the-secret",
        "/admin the-secret",
        "join games",
        "hello",
    ):
        history.append_string(line)
    assert history.get_strings() == ["login alice", "join games", "hello"]


def test_tty_prompt_shows_the_room() -> None:
    from ktnchat.client.session import ClientSession
    from ktnchat.client.tty import prompt_text

    session = ClientSession("127.0.0.1", 1, lambda rendered: None)
    assert prompt_text(session) == "> "
    session.room = "games"
    assert prompt_text(session) == "[games]> "
    session.room = "ev\x1b[2Jil"
    assert prompt_text(session) == "[ev^[[2Jil]> "
