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
# - ktnchat extensions: private messages read "[private] alice -> bob: text"; infos about
#   a room (an `event` with a `room`) start with "[room]"; history lines name the current
#   room when it is known; a `removed` info names each removed message the client still
#   remembers (RecentMessages, bounded) and is shown as "message #42 ... was removed".
# - A message replayed from before (ktnchat's `"history": true`, sent to clients that did
#   not ask for the `history` response) is an earlier message: shown as a history line.
# - An unknown response without content shows its "error" text, if it has one.
# - `style` is a colour hint: message, private, history, info, room, removed, notice,
#   error, other, unreadable, local, warning.
from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import List, Optional, Tuple

from ktnchat.protocol.lenient import (
    KIND_ERROR,
    KIND_HISTORY_ITEM,
    KIND_INFO,
    KIND_MESSAGE,
    ChatLine,
    Notice,
    ServerEvent,
    Unreadable,
    deleted_ids,
    event_name,
    is_private,
)

_BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f" + _BIDI + "\ud800-\udfff]")
_LINE_BREAKS = re.compile("\r\n|\u2028|\u2029|\x85")
_PREVIEW_CHARS = 80
_REMOVED_PREVIEW_CHARS = 30
_MAX_REMOVED_LINES = 20
RECENT_MESSAGES = 1000
# Infos addressed to us that deserve attention.
_WARNING_EVENTS = frozenset({"kicked", "muted", "flood", "shutdown"})


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


class RecentMessages:
    """The last `limit` displayed messages with an id: id -> (sender, text)."""

    def __init__(self, limit: int = RECENT_MESSAGES) -> None:
        self._limit = max(1, limit)
        self._items: OrderedDict[int, Tuple[str, str]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def remember(self, event: ServerEvent) -> None:
        """Keep a message or history line that has an id (private messages have none)."""
        if not isinstance(event, ChatLine) or event.msg_id is None:
            return
        if event.kind not in (KIND_MESSAGE, KIND_HISTORY_ITEM) or is_private(event):
            return
        self._items[event.msg_id] = (event.sender or "?", event.text)
        self._items.move_to_end(event.msg_id)
        while len(self._items) > self._limit:
            self._items.popitem(last=False)

    def get(self, msg_id: int) -> Optional[Tuple[str, str]]:
        """The (sender, text) of a remembered message, else None."""
        return self._items.get(msg_id)

    def forget(self, ids: Tuple[int, ...]) -> None:
        for msg_id in ids:
            self._items.pop(msg_id, None)


def render_event(
    event: ServerEvent,
    *,
    show_ids: bool = False,
    room: Optional[str] = None,
    recent: Optional[RecentMessages] = None,
) -> Rendered:
    """The display form of one event from the server.

    `room`: the current room (named on history lines); `recent`: what the client remembers
    of displayed messages (names the messages a `removed` info speaks of).
    """
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
    if event.kind == KIND_INFO and event_name(event) is not None:
        return _render_event_info(event, recent)
    return _render_line(event, show_ids, room)


def is_replayed(line: ChatLine) -> bool:
    """A ktnchat message replayed from before (`"history": true`), not a private one."""
    return line.kind == KIND_MESSAGE and line.extra.get("history") is True and not is_private(line)


def _render_line(line: ChatLine, show_ids: bool, room: Optional[str]) -> Rendered:
    stamp = _stamp(line.timestamp)
    ident = f"#{line.msg_id} " if show_ids and line.msg_id is not None else ""
    sender = _one(line.sender) if line.sender else "?"
    if line.kind == KIND_MESSAGE and not is_replayed(line):
        if is_private(line):
            to = line.extra.get("to")
            target = f" -> {_one(to)}" if isinstance(to, str) and to else ""
            return Rendered(
                _body(f"{stamp}[private] {ident}{sender}{target}: ", line.text), "private"
            )
        return Rendered(_body(f"{stamp}{ident}{sender}: ", line.text), "message")
    if line.kind == KIND_HISTORY_ITEM or is_replayed(line):
        who = f"{sender}: " if line.sender else ""
        where = f"[{_one(room)}] " if room else ""
        return Rendered(_body(f"{stamp}{where}[history] {ident}{who}", line.text), "history")
    if line.kind == KIND_INFO:
        style = "room" if isinstance(line.extra.get("rooms"), list) else "info"
        return Rendered(_body(f"{stamp}* ", line.text), style)
    if line.kind == KIND_ERROR:
        return Rendered(_body(f"{stamp}! error: ", line.text), "error")
    label = _one(line.label) if line.label else "unknown"
    who = f"{sender}: " if line.sender else ""
    error = line.extra.get("error")
    text = line.text or (error if isinstance(error, str) else "")  # {"response":…,"error":…}
    return Rendered(_body(f"{stamp}? [{label}] {who}", text), "other")


def _render_event_info(line: ChatLine, recent: Optional[RecentMessages]) -> Rendered:
    """An info with a ktnchat `event`: room prefix, removals, warnings."""
    stamp = _stamp(line.timestamp)
    name = event_name(line)
    if name == "removed":
        return _render_removed(line, stamp, recent)
    room = line.extra.get("room")
    where = f"[{_one(room)}] " if isinstance(room, str) and room else ""
    text = line.text
    if name == "joined":
        topic = line.extra.get("topic")
        if isinstance(topic, str) and topic.strip() and topic not in text:
            text = f"{text} (topic: {topic})"
        return Rendered(_body(f"{stamp}* {where}", text), "room")
    style = "warning" if name in _WARNING_EVENTS else "info"
    return Rendered(_body(f"{stamp}* {where}", text), style)


def _render_removed(line: ChatLine, stamp: str, recent: Optional[RecentMessages]) -> Rendered:
    ids = deleted_ids(line)
    by = line.extra.get("by")
    by_text = f" by {_one(by)}" if isinstance(by, str) and by else ""
    shown: List[str] = []
    for msg_id in ids:
        seen = recent.get(msg_id) if recent is not None else None
        if seen is None:
            continue
        if len(shown) == _MAX_REMOVED_LINES:
            break
        sender, text = seen
        shown.append(f'message #{msg_id} ({_one(sender)}: "{_preview(text)}") was removed{by_text}')
    others = len(ids) - len(shown)
    if not shown:
        if len(ids) == 1:
            shown.append(f"message #{ids[0]} was removed{by_text}")
        else:
            shown.append(_one(line.text) or f"{len(ids)} messages were removed{by_text}")
    elif others:
        shown.append(f"and {others} other message(s) were removed{by_text}")
    return Rendered("\n".join(f"{stamp}* {text}" for text in shown), "removed")


def _preview(text: str) -> str:
    """The first words of a message body on one line, shortened with "…"."""
    words = " ".join(_one(text).split())
    if len(words) <= _REMOVED_PREVIEW_CHARS:
        return words
    cut = words[:_REMOVED_PREVIEW_CHARS]
    if words[_REMOVED_PREVIEW_CHARS] != " " and " " in cut:
        cut = cut.rsplit(" ", 1)[0]  # whole words only
    return cut.rstrip() + "…"


def render_local(message: str, style: str = "local") -> Rendered:
    """A message from the client itself (hints, usage, connection state)."""
    return Rendered(_body("-- ", message), style)
