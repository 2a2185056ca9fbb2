# Typed lines -> requests or local actions (pure).
from __future__ import annotations

from typing import Optional

import pytest

from ktnchat.client.commands import CLIENT_HINT, Command, Quit, Send, Usage, parse_command


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("login alice", Send("login", "alice")),
        ("login alice\n", Send("login", "alice")),
        ("  LOGIN   alice  ", Send("login", "alice")),
        ("login alice s3cret", Send("login", "alice s3cret")),
        ("login alice two words", Send("login", "alice two words")),
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
        ("/stream on", Send("stream", "on")),
        ("/kick bob", Send("kick", "bob")),
        ("/whoami", Send("whoami", None)),
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


def test_hint_mentions_every_client_command() -> None:
    for word in ("login", "logout", "msg", "names", "history", "help", "quit", "/WORD"):
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
