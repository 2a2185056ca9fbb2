# Turns one typed line into a request for the server or a local action. Pure: no I/O.
#
# Rules:
# - `login NAME [PASSWORD]`, `logout`, `msg TEXT`, `names`, `help`, `history`, `quit`/`exit`;
#   any other text is sent as `msg`. Command words are case-insensitive.
# - The ktnchat extension words (rooms, join, sendto, kick, ...; EXTENSION_WORDS) are sent
#   as `{"request": WORD, "content": REST}`: the rest of the line, or null when nothing
#   follows. The server checks their arguments and explains a refusal.
# - An argument-less command word followed by more text is ordinary chat text
#   ("help me please" is a message, so is "leave me alone"), so only a bare `names` asks
#   for the names list. Words that take arguments (even optional ones) never fall under it.
# - `/WORD [REST]` sends any request word raw (content REST, or null; `raw` is set):
#   future extension commands work without a client update. `//text` sends the message
#   "/text".
# - Lines that carry a password or secret (`register`, `password`, `admin`, `login NAME
#   PASSWORD`, also as `/WORD`) are marked `secret`: front ends must not echo them or keep
#   them in any history; `secret_start` says where the secret part of a line begins, so a
#   terminal can mask it while it is typed.
# - An empty (or all-blank) line does nothing.
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Tuple, Union

CLIENT_HINT = (
    "client commands: login NAME [PASSWORD], logout, msg TEXT (or just type), names, "
    "history, help, rooms, join ROOM, leave, sendto USER TEXT, /WORD [ARGS] (raw request), "
    "quit; the server's help lists every request you may send"
)
# Request words that take no argument: followed by more text, the line is chat.
_NO_ARGUMENT = frozenset({"logout", "names", "help", "history", "rooms", "leave", "bans"})
# ktnchat extension words sent as WORD + rest of line (see docs/protocol.md).
EXTENSION_WORDS = (
    "rooms",
    "join",
    "leave",
    "create",
    "topic",
    "deleteroom",
    "register",
    "password",
    "admin",
    "kick",
    "mute",
    "unmute",
    "ban",
    "unban",
    "gban",
    "gunban",
    "ipban",
    "ipunban",
    "bans",
    "remove",
    "purge",
    "mod",
    "unmod",
    "modlog",
    "sendto",
)
COMMAND_WORDS = (
    "login",
    "logout",
    "msg",
    "names",
    "help",
    "history",
    "quit",
    "exit",
    *EXTENSION_WORDS,
)
# Words whose content is a password or secret, whatever follows.
_SECRET_WORDS = frozenset({"register", "password", "admin"})
_EXTENSIONS = frozenset(EXTENSION_WORDS)
_SECRET_AFTER_WORD = re.compile(r"\s*/?(?:register|password|admin)(?:\s+|$)", re.IGNORECASE)
_SECRET_AFTER_NAME = re.compile(r"\s*/?login\s+\S+\s+", re.IGNORECASE)


@dataclass(frozen=True)
class Send:
    """Send `{"request": word, "content": content}`; show `hint` locally if set.

    `secret`: the line carries a password; never echo it or keep it in a history.
    `raw`: typed as `/WORD`: sent as it is, in every edition of the protocol.
    """

    word: str
    content: Optional[str] = None
    hint: Optional[str] = None
    secret: bool = False
    raw: bool = False


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
        return Send(word, rest or None, secret=_is_secret(word.lower(), rest), raw=True)
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
        if password:
            return Send("login", f"{name} {password}", secret=True)
        return Send("login", name)
    if word == "msg":
        if not rest:
            return Usage("usage: msg TEXT")
        return Send("msg", rest)
    if word in _EXTENSIONS and word not in _NO_ARGUMENT:
        return Send(word, rest or None, secret=_is_secret(word, rest))
    return Send("msg", text)


def is_secret_line(line: str) -> bool:
    """True if a typed line carries a password (keep it out of every history)."""
    command = parse_command(line)
    return isinstance(command, Send) and command.secret


def secret_start(line: str) -> Optional[int]:
    """Where the secret part of a (partly) typed line starts, or None if it has none.

    "register pw" -> 9; "login alice pw" -> 12; "login alice" -> None.
    """
    match = _SECRET_AFTER_WORD.match(line) or _SECRET_AFTER_NAME.match(line)
    return match.end() if match else None


def _is_secret(word: str, rest: str) -> bool:
    if word in _SECRET_WORDS:
        return True
    return word == "login" and len(rest.split(None, 1)) > 1


def _split(text: str) -> Tuple[str, str]:
    """The first word and the rest (stripped) of a line."""
    parts = text.strip().split(None, 1)
    if not parts:
        return "", ""
    return parts[0], parts[1].strip() if len(parts) > 1 else ""
