# Turns one typed line into a request for the server or a local action. Pure: no I/O.
#
# Rules:
# - `login NAME [PASSWORD]`, `logout`, `msg TEXT`, `names`, `help`, `history`, `quit`/`exit`;
#   any other text is sent as `msg`. Command words are case-insensitive.
# - An argument-less command word followed by more text is ordinary chat text
#   ("help me please" is a message), so only a bare `names` asks for the names list.
# - `/WORD [REST]` sends any request word raw (content REST, or null): future extension
#   commands work without a client update. `//text` sends the message "/text".
# - An empty (or all-blank) line does nothing.
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple, Union

CLIENT_HINT = (
    "client commands: login NAME [PASSWORD], logout, msg TEXT (or just type), names, "
    "history, help, /WORD [ARGS] (raw request), quit"
)
COMMAND_WORDS = ("login", "logout", "msg", "names", "help", "history", "quit", "exit")
_NO_ARGUMENT = frozenset({"logout", "names", "help", "history"})


@dataclass(frozen=True)
class Send:
    """Send `{"request": word, "content": content}`; show `hint` locally if set."""

    word: str
    content: Optional[str] = None
    hint: Optional[str] = None


@dataclass(frozen=True)
class Quit:
    """Leave the client."""


@dataclass(frozen=True)
class Usage:
    """The line was a malformed command; show `message` and send nothing."""

    message: str


Command = Union[Send, Quit, Usage]


def parse_command(line: str) -> Optional[Command]:
    """The action for one typed line, or None when there is nothing to do."""
    text = line.rstrip("\r\n")
    if not text.strip():
        return None
    stripped = text.strip()
    if stripped.startswith("//"):
        return Send("msg", stripped[1:])
    if stripped.startswith("/"):
        word, rest = _split(stripped[1:])
        if not word:
            return Usage("usage: /WORD [CONTENT] sends a raw request")
        return Send(word, rest or None)
    word, rest = _split(stripped)
    word = word.lower()
    if word in ("quit", "exit") and not rest:
        return Quit()
    if word in _NO_ARGUMENT and not rest:
        return Send(word, None, CLIENT_HINT if word == "help" else None)
    if word == "login":
        name, password = _split(rest)
        if not name:
            return Usage("usage: login NAME [PASSWORD]")
        return Send("login", f"{name} {password}" if password else name)
    if word == "msg":
        if not rest:
            return Usage("usage: msg TEXT")
        return Send("msg", rest)
    return Send("msg", text)


def _split(text: str) -> Tuple[str, str]:
    """The first word and the rest (stripped) of a line."""
    parts = text.strip().split(None, 1)
    if not parts:
        return "", ""
    return parts[0], parts[1].strip() if len(parts) > 1 else ""
