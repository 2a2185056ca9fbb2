# The 2014 edition of the KTN protocol (seed 000), client side: our requests in its shape,
# and its answers turned into the lenient decoder's events, for the renderer.
#
# Rules:
# - Requests: `login NAME` -> {"request":"login","username":NAME}; `msg TEXT` ->
#   {"request":"message","message":TEXT}; `logout` -> {"request":"logout"}; `names` ->
#   {"request":"users"} (the edition has no names request; `users` is what ktnchat and the
#   2014 servers that list users answer). A raw `/WORD [REST]` goes as {"request":WORD},
#   with "content":REST when REST is given. Everything else (help, history, passwords,
#   the ktnchat extensions) is not in the edition and is refused locally, with the reason.
# - Answers: {"response":"login","username":U,"messages":[…]} becomes an info and one
#   history line per backlog entry (plain "<user> said @ <timestamp>: <text>" strings,
#   JSON strings of message objects, or objects); any answer with an "error" key becomes
#   an error; {"response":"message","message":"<user> said @ <ts>: <text>"} a message from
#   that user (other text is a notice, such as "alice joined"); a logout answer an info;
#   users/listUsers a names Notice. Anything else passes through unchanged.
# - Pure: no I/O; never raises on what a server sends.
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple, Union

from ktnchat.protocol.codec import scrub_surrogates
from ktnchat.protocol.lenient import (
    KIND_ERROR,
    KIND_HISTORY_ITEM,
    KIND_INFO,
    KIND_MESSAGE,
    KIND_OTHER,
    ChatLine,
    Notice,
    ServerEvent,
    display_timestamp,
    parse_names_text,
    sender_text,
)

NAMES_WORD = "users"
NAMES_NOTE = (
    "the 2014 edition has no names request; asking with users, which ktnchat and some "
    "2014 servers answer"
)
_SAID = re.compile(r"(?P<who>[^\n]{1,80}?) said @ (?P<ts>[^\n]{1,40}?): (?P<text>.*)", re.DOTALL)
_MAX_BACKLOG = 100000
_MAX_DECODE_LAYERS = 3
_USER_KEYS = ("username", "sender", "user", "from")
_TIME_KEYS = ("timestamp", "time", "date")
_TEXT_KEYS = ("message", "content", "text", "msg")


@dataclass(frozen=True)
class Refused:
    """A command the 2014 edition has no request for; `reason` is shown, nothing is sent."""

    reason: str


def request_2014(
    word: str, content: Optional[str], *, raw: bool = False
) -> Union[Dict[str, Any], Refused]:
    """The 2014 request object for a command, or why there is none."""
    if raw:
        return {"request": word} if content is None else {"request": word, "content": content}
    if word == "login":
        name = (content or "").strip()
        if len(name.split()) > 1:
            return Refused("the 2014 edition has no passwords; log in with: login NAME")
        return {"request": "login", "username": name}
    if word == "msg":
        return {"request": "message", "message": content or ""}
    if word == "logout":
        return {"request": "logout"}
    if word == "names":
        return {"request": NAMES_WORD}
    if word == "help":
        return Refused(
            "the server speaks the 2014 edition: login NAME, logout, msg TEXT (or just type), "
            "names (as users), quit; /WORD [TEXT] sends any request"
        )
    if word == "history":
        return Refused("the 2014 edition has no history request; the backlog comes with login")
    return Refused(f"{word} is not part of the 2014 edition the server speaks; /{word} sends it")


# --- answers -----------------------------------------------------------------------------


def events_2014(event: ServerEvent) -> List[ServerEvent]:
    """The events to show for one event from a 2014-edition server."""
    if not isinstance(event, ChatLine) or event.kind in (KIND_INFO, KIND_HISTORY_ITEM):
        return [event]
    word = _word(event)
    error = event.extra.get("error")
    if error is not None and error is not False and error != "":
        return [_error(error, event.extra.get("username"))]
    if word == "login":
        return _login(event)
    if word == "logout":
        name = _text(event.extra.get("username"))
        text = f"Logged out {name}" if name else "Logged out"
        return [ChatLine(KIND_INFO, None, text, extra=_with_username(name))]
    if word in ("users", "listusers"):
        return [_names(event.extra.get("users"))]
    if event.kind == KIND_MESSAGE and event.sender is None:
        return [_said_line(event.text, KIND_MESSAGE, _text(event.extra.get("username")) or None)]
    return [event]


def _word(event: ChatLine) -> str:
    if event.kind == KIND_OTHER:
        return (event.label or "").strip().lower()
    return event.kind


def _error(error: Any, username: Any) -> ChatLine:
    text = _text(error) or "error"
    name = _text(username)
    return ChatLine(KIND_ERROR, None, f"{text} ({name})" if name else text)


def _login(event: ChatLine) -> List[ServerEvent]:
    name = _text(event.extra.get("username"))
    text = f"Logged in as {name}" if name else "Logged in"
    out: List[ServerEvent] = [ChatLine(KIND_INFO, None, text, extra=_with_username(name))]
    out.extend(backlog_lines(event.extra.get("messages")))
    return out


def _with_username(name: str) -> Dict[str, Any]:
    return {"username": name} if name else {}


def _names(users: Any) -> Notice:
    if isinstance(users, list):
        names = tuple(name for name in (_text(u).strip() for u in users[:10000]) if name)
        return Notice(names, ", ".join(names))
    text = _text(users)
    return Notice(parse_names_text(text), text)


def backlog_lines(messages: Any) -> List[ChatLine]:
    """The history lines of a 2014 login answer's `messages`, in any of its shapes."""
    if isinstance(messages, str):
        decoded = _json(messages)
        messages = decoded if isinstance(decoded, list) else [messages]
    if not isinstance(messages, list):
        return []
    return [_backlog_line(item) for item in messages[:_MAX_BACKLOG]]


def _backlog_line(item: Any) -> ChatLine:
    for _ in range(_MAX_DECODE_LAYERS):  # a JSON string, maybe of a JSON string
        decoded = _json(item) if isinstance(item, str) else None
        if not isinstance(decoded, (dict, str)):
            break
        item = decoded
    if isinstance(item, dict):
        return _object_line(item)
    return _said_line(_text(item), KIND_HISTORY_ITEM)


def _object_line(obj: Dict[str, Any]) -> ChatLine:
    text = next((_text(obj[k]) for k in _TEXT_KEYS if isinstance(obj.get(k), str)), None)
    if text is None:
        text = _text(obj)
    sender = next((sender_text(obj[k]) for k in _USER_KEYS if obj.get(k) is not None), None)
    raw_ts = next((obj[k] for k in _TIME_KEYS if obj.get(k) is not None), None)
    if raw_ts is None:
        return _said_line(text, KIND_HISTORY_ITEM, sender)
    return ChatLine(KIND_HISTORY_ITEM, sender, text, display_timestamp(raw_ts), raw_ts)


def _said_line(text: str, kind: str, sender: Optional[str] = None) -> ChatLine:
    """A line from "<user> said @ <timestamp>: <text>" (when <user> is `sender`, if one is
    known); other text is from `sender`, or, with none, a notice (for a message) or a
    history line without a sender (for a backlog entry)."""
    parts = said_parts(text)
    if parts is not None and (sender is None or parts[0] == sender):
        who, stamp, body = parts
        return ChatLine(kind, who, body, display_timestamp(stamp), stamp)
    if sender is None and kind == KIND_MESSAGE:
        return ChatLine(KIND_INFO, None, text)
    return ChatLine(kind, sender, text)


def said_parts(text: str) -> Optional[Tuple[str, str, str]]:
    """(user, timestamp, text) of "<user> said @ <timestamp>: <text>", else None."""
    match = _SAID.fullmatch(text)
    if match is None:
        return None
    return match.group("who").strip(), match.group("ts").strip(), match.group("text")


def _json(text: str) -> Any:
    stripped = text.strip()
    if not stripped or stripped[0] not in '{["':
        return None
    try:
        return json.loads(stripped, strict=False)
    except (ValueError, RecursionError):
        return None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return scrub_surrogates(value)
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return repr(value)
