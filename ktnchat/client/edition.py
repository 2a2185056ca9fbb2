# Which edition of the KTN protocol the server speaks: the `--edition` choice, and in
# `auto` (the default) the fall-back from the 2017 edition to the 2014 one. Pure: no I/O.
#
# Rules:
# - `2017` and `2014` are fixed for the whole session. `auto` speaks 2017 until the server
#   shows its edition, then keeps that edition for the rest of the session.
# - An object in the 2017 shape settles 2017 for good, whatever it says: one with content,
#   a history, a names answer, or one without content and without 2014 words and keys
#   that has a sender or timestamp. So a slow server, an error such as "Username taken",
#   or a close after any such answer never cause a fall-back; nothing is timed. Garbage,
#   bare values and objects without a response word settle nothing.
# - An object without content that has a 2014 word (`login`, `logout`, `users`,
#   `listUsers`) or key (`error`, `username`, `messages`, `message`, `users`), or that is a
#   bare response word outside the 2017 four (such as `protocolError`), switches to 2014;
#   so does a close while a 2017 login waits for its first answer. The switch yields one
#   notice for the user, whether the login is to be sent again in the 2014 shape (not
#   after a 2014 login answer: the server took it), and whether to show the object itself
#   (not an error or a word 2014 does not have: the notice quotes it).
# - After the switch, a close before the server answered the 2014 login reconnects once
#   (a server may close after answering the 2017 login in its own shape).
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ktnchat.protocol.lenient import (
    KIND_HISTORY_ITEM,
    KIND_OTHER,
    ChatLine,
    Notice,
    ServerEvent,
    Unreadable,
)

AUTO = "auto"
EDITION_CHOICES = (AUTO, "2017", "2014")
EDITION_2014 = 2014
EDITION_2017 = 2017
RETRY_2014 = "retrying in the 2014 edition of the KTN protocol"
# Labels the lenient decoder gives values that are not response objects.
_NOT_RESPONSES = frozenset({"text", "list", "number", "null", "boolean", "no response key"})
_WORDS_2014 = frozenset({"login", "logout", "users", "listusers"})
_SHOWN_2014 = _WORDS_2014 | {"message"}  # 2014 answers shown even when they settle it
_KEYS_2014 = ("error", "username", "messages", "message", "users")
_CONTENT_FALLBACKS = ("message", "msg", "text", "body")  # the lenient decoder's
_GIST_CHARS = 60


@dataclass(frozen=True)
class Switch:
    """The server showed the 2014 edition: tell the user `notice`; send the login again
    in the 2014 shape if `resend_login`; show the event itself if `show`."""

    notice: str
    resend_login: bool
    show: bool


def shape_of(event: ServerEvent) -> Optional[int]:
    """The edition whose shape an event has (2017 or 2014), or None if it shows neither."""
    if isinstance(event, Unreadable):
        return None
    if isinstance(event, Notice) or event.kind == KIND_HISTORY_ITEM:
        return EDITION_2017
    if event.kind == KIND_OTHER and (event.label or "") in _NOT_RESPONSES:
        return None
    if _has_content(event):
        return EDITION_2017
    if _word(event) in _WORDS_2014 or any(key in event.extra for key in _KEYS_2014):
        return EDITION_2014
    if event.sender is not None or event.raw_timestamp is not None:
        return EDITION_2017
    return EDITION_2014 if event.kind == KIND_OTHER else None


def _has_content(event: ChatLine) -> bool:
    """True if the object had a non-empty `content` (not text the decoder took from a
    2014 key such as "message")."""
    if event.text == "":
        return False
    return not any(event.extra.get(key) == event.text for key in _CONTENT_FALLBACKS)


def _word(event: ChatLine) -> str:
    return (event.label or "").strip().lower() if event.kind == KIND_OTHER else event.kind


def _has_error(event: ChatLine) -> bool:
    error = event.extra.get("error")
    return not (error is None or error is False or error == "")


def gist(event: ChatLine) -> str:
    """A short one-line summary of what an object said: "protocolError: Bad request"."""
    word = event.label if event.kind == KIND_OTHER and event.label else event.kind
    error = event.extra.get("error")
    detail = error if isinstance(error, str) and error else event.text
    text = f"{word}: {detail}" if detail else word
    text = " ".join(text.split())
    return text if len(text) <= _GIST_CHARS else text[: _GIST_CHARS - 1] + "…"


class EditionTracker:
    """The edition spoken now (`edition`) and, in auto, the evidence so far."""

    def __init__(self, choice: str = AUTO) -> None:
        if choice not in EDITION_CHOICES:
            raise ValueError(f"unknown edition {choice!r}")
        self.choice = choice
        self.edition = EDITION_2014 if choice == "2014" else EDITION_2017
        self._undecided = choice == AUTO
        self._login_waiting = False  # a 2017 login sent while undecided, not answered yet
        self._retry_once = False  # fell back and resent the login: reconnect on a close

    @property
    def undecided(self) -> bool:
        """True in auto mode until the server has shown its edition."""
        return self._undecided

    @property
    def waiting(self) -> bool:
        """True while a login waits for the first answer that may still change the edition
        (a 2017 login while undecided, or the login sent again after a fall-back)."""
        return self._login_waiting or self._retry_once

    def login_sent(self) -> None:
        """A login request went out (in the edition spoken now)."""
        if self._undecided:
            self._login_waiting = True

    def seen(self, event: ServerEvent) -> Optional[Switch]:
        """Judge one event from the server; a Switch when it shows the 2014 edition."""
        shape = shape_of(event)
        if shape is not None:
            self._retry_once = False  # the server answered: no more reconnecting for it
        if not self._undecided or shape is None:
            return None
        if shape == EDITION_2017:
            self._undecided = self._login_waiting = False
            return None
        assert isinstance(event, ChatLine)  # shape_of gives 2014 only for ChatLines
        error = _has_error(event)
        accepted = _word(event) == "login" and not error  # a 2014 login answer
        resend = self._login_waiting and not accepted
        show = not error and _word(event) in _SHOWN_2014
        self._switch(resend)
        if resend:
            notice = f"the server answered the 2017 login in another shape ({gist(event)}): "
            return Switch(notice + RETRY_2014, resend_login=True, show=show)
        notice = f"the server speaks another edition ({gist(event)}): using the 2014 edition"
        return Switch(notice, resend_login=False, show=show)

    def closed(self, reason: str) -> Optional[str]:
        """The connection ended: a notice if the session is to reconnect and log in in the
        2014 shape, else None."""
        if self._undecided and self._login_waiting:
            self._switch(True)
            return f"no answer to the 2017 login ({reason}): {RETRY_2014}"
        if self._retry_once:
            self._retry_once = False
            return "the server closed the connection before answering the 2014 login: reconnecting"
        return None

    def _switch(self, resend: bool) -> None:
        self.edition = EDITION_2014
        self._undecided = self._login_waiting = False
        self._retry_once = resend
