# Turns a normalised server event (or a local notice) into one display text. Pure: no I/O.
#
# Rules:
# - Every received string is neutralised before display: C0/C1 control characters, DEL and
#   bidirectional overrides become visible escapes (ESC shows as "^["), so neither a
#   hostile server nor a hostile user can drive the terminal. Lone surrogates become U+FFFD.
# - Message bodies keep their line breaks ("\n", "\r\n", U+2028/U+2029), with continuation
#   lines indented under the first line's text; tabs are kept. Senders, timestamps and
#   labels are single-line.
# - Timestamps are shown compactly as the lenient decoder made them ("12:34:56").
# - `style` is a colour hint: message, history, info, notice, error, other, unreadable,
#   local, warning.
from __future__ import annotations

import re
from dataclasses import dataclass

from ktnchat.protocol.lenient import (
    KIND_ERROR,
    KIND_HISTORY_ITEM,
    KIND_INFO,
    KIND_MESSAGE,
    ChatLine,
    Notice,
    ServerEvent,
    Unreadable,
)

_BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f" + _BIDI + "\ud800-\udfff]")
_LINE_BREAKS = re.compile("\r\n|\u2028|\u2029|\x85")
_PREVIEW_CHARS = 80


@dataclass(frozen=True)
class Rendered:
    """Display text (possibly several lines) and a colour hint."""

    text: str
    style: str


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if code < 0x20:
        return "^" + chr(code + 0x40)
    if code == 0x7F:
        return "^?"
    if 0xD800 <= code <= 0xDFFF:
        return "\ufffd"
    return f"<U+{code:04X}>"


def neutralise(text: str, *, multiline: bool = True) -> str:
    """`text` with every terminal-driving character made visible and harmless.

    With `multiline`, line breaks are kept as "\\n"; otherwise they become spaces.
    """
    text = _LINE_BREAKS.sub("\n", text)
    if not multiline:
        text = text.replace("\n", " ").replace("\t", " ")
    return _UNSAFE.sub(_escape, text)


def _body(prefix: str, text: str) -> str:
    """Prefix + text, continuation lines indented under the first line's text."""
    lines = neutralise(text).split("\n")
    indent = "\n" + " " * min(len(prefix), 40)
    return prefix + indent.join(lines)


def _one(text: str) -> str:
    return neutralise(text, multiline=False)


def _stamp(timestamp: object) -> str:
    return f"{_one(timestamp)} " if isinstance(timestamp, str) and timestamp else ""


def render_event(event: ServerEvent, *, show_ids: bool = False) -> Rendered:
    """The display form of one event from the server."""
    if isinstance(event, Unreadable):
        preview = event.data[:_PREVIEW_CHARS].decode("utf-8", errors="replace")
        more = "…" if len(event.data) > _PREVIEW_CHARS else ""
        shown = f": {_one(preview)}{more}" if preview else ""
        reason = _one(event.reason)
        return Rendered(f"? unreadable data from server ({reason}){shown}", "unreadable")
    if isinstance(event, Notice):
        stamp = _stamp(event.timestamp)
        if event.names is not None and event.text == ", ".join(event.names):
            return Rendered(_body(f"{stamp}* users ({len(event.names)}): ", event.text), "notice")
        return Rendered(_body(f"{stamp}* ", event.text), "notice")
    return _render_line(event, show_ids)


def _render_line(line: ChatLine, show_ids: bool) -> Rendered:
    stamp = _stamp(line.timestamp)
    ident = f"#{line.msg_id} " if show_ids and line.msg_id is not None else ""
    sender = _one(line.sender) if line.sender else "?"
    if line.kind == KIND_MESSAGE:
        return Rendered(_body(f"{stamp}{ident}{sender}: ", line.text), "message")
    if line.kind == KIND_HISTORY_ITEM:
        who = f"{sender}: " if line.sender else ""
        return Rendered(_body(f"{stamp}[history] {ident}{who}", line.text), "history")
    if line.kind == KIND_INFO:
        return Rendered(_body(f"{stamp}* ", line.text), "info")
    if line.kind == KIND_ERROR:
        return Rendered(_body(f"{stamp}! error: ", line.text), "error")
    label = _one(line.label) if line.label else "unknown"
    who = f"{sender}: " if line.sender else ""
    return Rendered(_body(f"{stamp}? [{label}] {who}", line.text), "other")


def render_local(message: str, style: str = "local") -> Rendered:
    """A message from the client itself (hints, usage, connection state)."""
    return Rendered(_body("-- ", message), style)
