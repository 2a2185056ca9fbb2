# Interprets whatever a KTN chat server sends, sans I/O: bytes in, normalised events out.
#
# Rules:
# - Liberal in what it accepts: every variant measured on real student servers (several
#   objects per segment, split objects, newline endings, double-encoded objects, odd
#   timestamps and senders, eight history shapes, names in many styles, unknown responses,
#   non-object JSON, garbage) becomes ChatLine / Notice / Unreadable events.
# - Never raises on input: a frame that cannot be parsed becomes an Unreadable event and the
#   stream carries on; an oversized frame is dropped and the splitter is restarted.
# - Text is passed through as received (lone surrogates scrubbed); neutralising control
#   characters for a terminal is the renderer's job, not this module's.
# - No sockets, threads or clocks; converting an epoch timestamp uses the local time zone.
# - ktnchat extension keys stay in `extra`; small helpers (event_name, entered_room,
#   deleted_ids, is_private, ...) read them and ignore values of the wrong type.
from __future__ import annotations

import ast
import enum
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

from ktnchat.protocol.codec import scrub_surrogates
from ktnchat.protocol.errors import FrameTooLarge
from ktnchat.protocol.events import (
    CONTENT_KEY,
    ERROR,
    HISTORY,
    INFO,
    MESSAGE,
    RESPONSE_KEY,
    SENDER_KEY,
    TIMESTAMP_KEY,
)
from ktnchat.protocol.framing import Frame, FrameSplitter

LENIENT_MAX_FRAME_BYTES = 8 * 1024 * 1024
LENIENT_MAX_DEPTH = 64
_MAX_DECODE_LAYERS = 3  # a JSON string holding JSON holding JSON...
_MAX_NAMES_PENDING = 16
_MAX_NAME_CHARS = 64
_MAX_TIMESTAMP_CHARS = 24

# ChatLine kinds.
KIND_ERROR = "error"
KIND_INFO = "info"
KIND_MESSAGE = "message"
KIND_HISTORY_ITEM = "history_item"
KIND_OTHER = "other"

_RESYNC = re.compile(rb"[}\n][ \t\r\n]*\{")
_TIME_OF_DAY = re.compile(r"(?<!\d)(\d{1,2}):(\d{2})(?::(\d{2}))?(?!\d)")
_EPOCH_TEXT = re.compile(r"^\s*\d{9,13}(?:\.\d+)?\s*$")
_NAME_PREFIX = re.compile(r"^[^:\n]{0,60}:\s*")  # "Users: ", "Connected users: "
_NAME_SPLIT = re.compile(r"[,;\s]+")
_SIMPLE_NAME = re.compile(r"^[^\s:,;]{1,64}$")
_NAME_STRIP = "'\"[](){}<>*- \t"
# Extension keys marking an info as something other than a names answer.
_NOT_NAMES_KEYS = ("event", "stream", "rooms", "bans", "entries")
_MAX_DELETED_IDS = 100000


class HistoryShape(enum.Enum):
    """How a server delivered the chat history (see `history_encoding`).

    OBJECTS: `history` content is a list of message objects (the seed's wording).
    JSON_STRINGS: (1) a list of strings, each the JSON text of a message object.
    TRIPLES: (2) a list of `[timestamp, sender, text]` arrays.
    JSON_TEXT: (3) content is one string holding the JSON text of a list.
    INFO_LIST: (4) an `info` response whose content is a list of messages.
    PER_MESSAGE: (5) one `history` response per message (content one object or string).
    HEADER_THEN_MESSAGES: (6) an `info` header followed by ordinary `message` responses.
    PLAIN_STRING: (7) one plain string (free text) as content.
    ABSENT: (8) no history response at all.
    EMPTY: a `history` response with `[]` (or null) content.
    MIXED: a list whose items use different shapes.
    """

    OBJECTS = "objects"
    JSON_STRINGS = "json-strings"
    TRIPLES = "triples"
    JSON_TEXT = "json-text"
    INFO_LIST = "info-list"
    PER_MESSAGE = "per-message"
    HEADER_THEN_MESSAGES = "header-then-messages"
    PLAIN_STRING = "plain-string"
    ABSENT = "absent"
    EMPTY = "empty"
    MIXED = "mixed"


@dataclass(frozen=True)
class ChatLine:
    """One displayable line from the server.

    kind: "error" | "info" | "message" | "history_item" | "other".
    sender: the sender as text (a list sender is joined with ", "), None if absent/null.
    text: the content as text (non-string content is shown as compact JSON).
    timestamp: compact display form ("12:34:56", "12:34", or the raw text shortened).
    raw_timestamp: the timestamp value as received (any JSON type, None if absent).
    msg_id: the ktnchat extension "id" when it is an int.
    extra: the object's keys beyond the four envelope keys (ktnchat extensions).
    label: for kind "other", the unknown response word (or a description of the value).
    """

    kind: str
    sender: Optional[str]
    text: str
    timestamp: Optional[str] = None
    raw_timestamp: Any = None
    msg_id: Optional[int] = None
    extra: Dict[str, Any] = field(default_factory=dict, hash=False)
    label: Optional[str] = None


@dataclass(frozen=True)
class Notice:
    """An answer to `names`.

    names: the usernames when they could be made out, else None.
    text: what to show: the names joined with ", " when they came as a list, else the
        server's own text.
    """

    names: Optional[Tuple[str, ...]]
    text: str
    sender: Optional[str] = None
    timestamp: Optional[str] = None
    raw_timestamp: Any = None
    extra: Dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Unreadable:
    """A frame that is not JSON (garbage, broken UTF-8 beyond repair, too deep or too big)."""

    data: bytes
    reason: str


ServerEvent = Union[ChatLine, Notice, Unreadable]


# --- the byte stream ---------------------------------------------------------------------


class ServerStreamDecoder:
    """Bytes from a server in, ServerEvent out. Never raises on input.

    `expect_names()` tells the decoder a `names` request was sent, so the next plain
    `info` answer (or error) is interpreted as a names list.
    """

    def __init__(self, max_frame_bytes: int = LENIENT_MAX_FRAME_BYTES) -> None:
        self._max_frame_bytes = max_frame_bytes
        self._splitter = FrameSplitter(max_frame_bytes, LENIENT_MAX_DEPTH)
        self._names_pending = 0
        self._resyncing = False  # after an oversized frame: skip to the next object start
        self._resync_prev = b""

    def expect_names(self) -> None:
        """A `names` request was sent: read the next plain info as its answer."""
        self._names_pending = min(self._names_pending + 1, _MAX_NAMES_PENDING)

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete frame held."""
        return self._splitter.buffered

    def feed(self, data: bytes) -> List[ServerEvent]:
        """Buffer `data` and return every event completed by it."""
        out: List[ServerEvent] = []
        for _ in range(len(data) + 2):  # each overflow consumes at least one byte of `data`
            if self._resyncing:
                data = self._resync(data)
                if self._resyncing:
                    return out
            self._splitter.feed(data)
            held = self._drain(out)
            if held is None:
                return out
            data = data[max(0, len(data) - held + 1) :]  # resync after the oversized start
        return out

    def _drain(self, out: List[ServerEvent]) -> Optional[int]:
        """Collect complete frames; on overflow return the bytes the oversized frame held."""
        for _ in range(1 << 30):  # each frame consumes at least one byte
            try:
                frame = self._splitter.next_frame()
            except FrameTooLarge:
                held = self._splitter.buffered
                self._splitter = FrameSplitter(self._max_frame_bytes, LENIENT_MAX_DEPTH)
                out.append(Unreadable(b"", f"frame larger than {self._max_frame_bytes} bytes"))
                self._resyncing = True
                self._resync_prev = b""
                return held
            if frame is None:
                return None
            out.extend(self._events_from_frame(frame))
        return None

    def _resync(self, data: bytes) -> bytes:
        """Skip bytes up to an object that starts a line or follows a "}"."""
        match = _RESYNC.search(self._resync_prev + data)
        if match is None:
            tail = data.rstrip(b" \t\r")
            if tail:
                self._resync_prev = tail[-1:]
            return b""
        self._resyncing = False
        return data[max(0, match.end() - 1 - len(self._resync_prev)) :]

    def close(self) -> List[ServerEvent]:
        """End of stream: report a partial frame left in the buffer, if any."""
        out: List[ServerEvent] = []
        if not self._splitter.idle:
            # A trailing bare token (e.g. a number) is complete at EOF; feed a separator.
            self._splitter.feed(b"\n")
            out.extend(self.feed(b""))
            if not self._splitter.idle:
                out.append(Unreadable(b"", "connection ended inside a JSON value"))
        self._splitter = FrameSplitter(self._max_frame_bytes, LENIENT_MAX_DEPTH)
        return out

    def _events_from_frame(self, frame: Frame) -> List[ServerEvent]:
        if frame.too_deep:
            return [Unreadable(frame.data[:200], "JSON nested too deeply")]
        try:
            value = _loads(frame.data)
        except ValueError as exc:
            return _salvage(frame.data, str(exc))
        events = events_from_value(value, expect_names=self._names_pending > 0)
        if self._names_pending and any(_answers_names(event) for event in events):
            self._names_pending -= 1
        return events


def _answers_names(event: ServerEvent) -> bool:
    return isinstance(event, Notice) or (isinstance(event, ChatLine) and event.kind == KIND_ERROR)


def _loads(data: bytes) -> Any:
    """Parse one frame, repairing broken UTF-8. Raises ValueError if it is not JSON."""
    text = data.decode("utf-8", errors="replace")
    try:
        return json.loads(text, strict=False)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc


def _salvage(data: bytes, reason: str) -> List[ServerEvent]:
    """An unparsable frame: report it, and rescue any whole objects embedded in it."""
    text = data.decode("utf-8", errors="replace")
    decoder = json.JSONDecoder(strict=False)
    out: List[ServerEvent] = []
    pos = text.find("{", 1)
    garbage_end = len(text)
    for _ in range(64):
        if pos < 0:
            break
        try:
            value, end = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError):
            pos = text.find("{", pos + 1)
            continue
        if isinstance(value, dict):
            if not out:
                garbage_end = pos
            out.extend(events_from_value(value))
            pos = text.find("{", end)
        else:
            pos = text.find("{", pos + 1)
    head = text[:garbage_end].encode("utf-8", errors="replace")
    return [Unreadable(head[:200], f"not JSON: {reason}"), *out]


# --- one decoded value -------------------------------------------------------------------


def events_from_value(
    value: Any, *, expect_names: bool = False, _layer: int = 0
) -> List[ServerEvent]:
    """Normalise one decoded JSON value from a server into events. Never raises."""
    if isinstance(value, str):
        inner = _maybe_json(value)
        if _layer < _MAX_DECODE_LAYERS and isinstance(inner, (dict, list, str)):
            return events_from_value(inner, expect_names=expect_names, _layer=_layer + 1)
        return [ChatLine(KIND_OTHER, None, scrub_surrogates(value), label="text")]
    if isinstance(value, list):
        if value and all(_is_response(item) for item in value):
            out: List[ServerEvent] = []
            for item in value[:10000]:
                out.extend(events_from_value(item, expect_names=expect_names, _layer=_layer + 1))
            return out
        return [ChatLine(KIND_OTHER, None, _as_text(value), label="list")]
    if not isinstance(value, dict):
        return [ChatLine(KIND_OTHER, None, _as_text(value), label=_json_type(value))]
    return _events_from_object(value, expect_names)


def _events_from_object(obj: Dict[str, Any], expect_names: bool) -> List[ServerEvent]:
    word = _get(obj, RESPONSE_KEY)
    kind = word.strip().lower() if isinstance(word, str) else None
    content = _content_of(obj)
    extra = {k: v for k, v in obj.items() if _norm_key(k) not in _ENVELOPE}
    raw_ts = _get(obj, TIMESTAMP_KEY)
    sender = sender_text(_get(obj, SENDER_KEY))
    ts = display_timestamp(raw_ts)

    if kind == HISTORY:
        return list(history_lines(content))
    if kind == INFO:
        if isinstance(extra.get("names"), list):
            names = _clean_names(extra["names"])
            return [Notice(names, ", ".join(names), sender, ts, raw_ts, extra)]
        listed, is_json = _list_in(content)
        if listed:
            names_list = _names_from_list(listed)
            if names_list is not None:
                return [Notice(names_list, ", ".join(names_list), sender, ts, raw_ts, extra)]
            if is_json:
                return list(history_lines(listed))
        plain = not any(key in extra for key in _NOT_NAMES_KEYS)
        if isinstance(content, str) and expect_names and plain:
            names_text = parse_names_text(content)
            return [Notice(names_text, scrub_surrogates(content), sender, ts, raw_ts, extra)]
    line_kind = kind if kind in (ERROR, INFO, MESSAGE) else KIND_OTHER
    label = None
    if line_kind == KIND_OTHER:
        label = _as_text(word) if word is not None else "no response key"
    if kind is None and content is _MISSING:
        text = _as_text(obj)  # not an envelope at all: show the whole object
    else:
        text = _as_text(None if content is _MISSING else content)
    return [ChatLine(line_kind, sender, text, ts, raw_ts, _msg_id(extra), extra, label)]


def history_lines(content: Any) -> Tuple[ChatLine, ...]:
    """The messages held by a history response's content, in any known shape."""
    shape, items = _history(content, 0)
    del shape
    return items


def history_encoding(value: Any) -> Optional[HistoryShape]:
    """Which shape one decoded response uses to carry history, or None if it carries none.

    Looks at one response (a dict, or a JSON string holding one). Stream-level shapes are
    judged by `history_shape_of_session`.
    """
    for _ in range(_MAX_DECODE_LAYERS):
        if not isinstance(value, str):
            break
        inner = _maybe_json(value)
        if inner is _NOT_JSON:
            return None
        value = inner
    if not isinstance(value, dict):
        return None
    word = _get(value, RESPONSE_KEY)
    kind = word.strip().lower() if isinstance(word, str) else None
    content = _content_of(value)
    if kind == HISTORY:
        shape, _ = _history(None if content is _MISSING else content, 0)
        return shape
    if kind == INFO and isinstance(content, list) and content and _names_from_list(content) is None:
        return HistoryShape.INFO_LIST
    return None


def history_shape_of_session(values: Iterable[Any]) -> HistoryShape:
    """The history shape of the responses a server sent after a login.

    `values` are the decoded responses after the login request, up to the next request.
    """
    saw_info = False
    for value in values:
        shape = history_encoding(value)
        if shape is not None:
            return shape
        obj = value if isinstance(value, dict) else None
        word = _get(obj, RESPONSE_KEY) if obj is not None else None
        kind = word.strip().lower() if isinstance(word, str) else None
        if kind == INFO:
            saw_info = True
        elif kind == MESSAGE and saw_info:
            return HistoryShape.HEADER_THEN_MESSAGES
    return HistoryShape.ABSENT


def _history(content: Any, layer: int) -> Tuple[HistoryShape, Tuple[ChatLine, ...]]:
    if content is None or content == [] or content == "":
        return HistoryShape.EMPTY, ()
    if isinstance(content, dict):
        return HistoryShape.PER_MESSAGE, (_history_item(content),)
    if isinstance(content, list):
        shapes = set()
        lines: List[ChatLine] = []
        for item in content[:100000]:
            item_shape, line = _history_list_item(item)
            shapes.add(item_shape)
            lines.append(line)
        shape = shapes.pop() if len(shapes) == 1 else HistoryShape.MIXED
        return shape, tuple(lines)
    if isinstance(content, str):
        inner = _maybe_json(content)
        if layer < _MAX_DECODE_LAYERS and isinstance(inner, (list, dict, str)) and inner != content:
            inner_shape, items = _history(inner, layer + 1)
            if isinstance(inner, list):
                return HistoryShape.JSON_TEXT, items
            if isinstance(inner, dict):
                return HistoryShape.PER_MESSAGE, items
            return inner_shape, items
        return HistoryShape.PLAIN_STRING, (_plain_item(content),)
    return HistoryShape.PLAIN_STRING, (_plain_item(_as_text(content)),)


def _history_list_item(item: Any) -> Tuple[HistoryShape, ChatLine]:
    if isinstance(item, dict):
        return HistoryShape.OBJECTS, _history_item(item)
    if isinstance(item, list):
        return HistoryShape.TRIPLES, _triple_item(item)
    if isinstance(item, str):
        inner = item
        for _ in range(_MAX_DECODE_LAYERS):
            parsed = _maybe_json(inner)
            if isinstance(parsed, dict):
                return HistoryShape.JSON_STRINGS, _history_item(parsed)
            if isinstance(parsed, list):
                return HistoryShape.JSON_STRINGS, _triple_item(parsed)
            if not isinstance(parsed, str):
                break
            inner = parsed
        return HistoryShape.PLAIN_STRING, _plain_item(item)
    return HistoryShape.PLAIN_STRING, _plain_item(_as_text(item))


def _history_item(obj: Dict[str, Any]) -> ChatLine:
    content = _content_of(obj)
    extra = {k: v for k, v in obj.items() if _norm_key(k) not in _ENVELOPE}
    raw_ts = _get(obj, TIMESTAMP_KEY)
    text = _as_text(obj) if content is _MISSING else _as_text(content)
    return ChatLine(
        KIND_HISTORY_ITEM,
        sender_text(_get(obj, SENDER_KEY)),
        text,
        display_timestamp(raw_ts),
        raw_ts,
        _msg_id(extra),
        extra,
    )


def _triple_item(items: List[Any]) -> ChatLine:
    if len(items) >= 3:
        raw_ts, sender, text = items[0], items[1], items[2:]
        body = _as_text(text[0]) if len(text) == 1 else " ".join(_as_text(t) for t in text)
        return ChatLine(
            KIND_HISTORY_ITEM, sender_text(sender), body, display_timestamp(raw_ts), raw_ts
        )
    if len(items) == 2:
        return ChatLine(KIND_HISTORY_ITEM, sender_text(items[0]), _as_text(items[1]))
    return _plain_item(" ".join(_as_text(t) for t in items))


def _plain_item(text: str) -> ChatLine:
    return ChatLine(KIND_HISTORY_ITEM, None, scrub_surrogates(text))


# --- fields ------------------------------------------------------------------------------


def display_timestamp(raw: Any) -> Optional[str]:
    """A compact display form of any timestamp: "HH:MM:SS", "HH:MM" or shortened text."""
    if raw is None or isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        return _epoch_display(float(raw))
    if not isinstance(raw, str):
        return _shorten(_as_text(raw))
    text = raw.strip()
    if not text:
        return None
    if _EPOCH_TEXT.match(text):
        shown = _epoch_display(float(text))
        if shown is not None:
            return shown
    match = _TIME_OF_DAY.search(text)
    if match:
        hour, minute, second = int(match.group(1)), int(match.group(2)), match.group(3)
        if hour < 24 and minute < 60 and (second is None or int(second) < 61):
            shown = f"{hour:02d}:{minute:02d}"
            return shown if second is None else f"{shown}:{int(second):02d}"
    return _shorten(scrub_surrogates(text))


def _epoch_display(value: float) -> Optional[str]:
    if value != value:  # NaN
        return None
    if value > 1e11:  # milliseconds
        value /= 1000.0
    try:
        return datetime.fromtimestamp(value).strftime("%H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return _shorten(repr(value))


def _shorten(text: str) -> str:
    return text if len(text) <= _MAX_TIMESTAMP_CHARS else text[: _MAX_TIMESTAMP_CHARS - 1] + "…"


def sender_text(raw: Any) -> Optional[str]:
    """The sender as one string: lists joined with ", ", null/empty as None."""
    if raw is None:
        return None
    if isinstance(raw, str):
        text = scrub_surrogates(raw.strip())
    elif isinstance(raw, list):
        text = ", ".join(s for s in (sender_text(item) for item in raw[:50]) if s)
    else:
        text = _as_text(raw)
    return text or None


def parse_names_text(text: str) -> Optional[Tuple[str, ...]]:
    """Usernames from a free-text names answer, or None if it does not look like a list.

    Handles "alice, bob", "alice\\nbob", "['alice', 'bob']", "Users: alice bob", ...
    """
    body = scrub_surrogates(text).strip()
    if not body:
        return ()
    literal = _python_list(body)
    if literal is not None:
        return _clean_names(literal)
    if "\n" not in body:
        body = _NAME_PREFIX.sub("", body, count=1)
    else:
        lines = body.splitlines()
        if lines and lines[0].rstrip().endswith(":"):
            body = "\n".join(lines[1:])
    names = _clean_names(_NAME_SPLIT.split(body))
    return names if names else None


def _list_in(content: Any) -> Tuple[Optional[List[Any]], bool]:
    """A list content, or a string that is wholly a JSON or Python list; and if it is JSON."""
    if isinstance(content, list):
        return content, True
    if not isinstance(content, str):
        return None, False
    stripped = content.strip()
    if not (stripped.startswith("[") and stripped.endswith("]")):
        return None, False
    parsed = _maybe_json(stripped)
    if isinstance(parsed, list):
        return parsed, True
    return _python_list(stripped), False


def _python_list(text: str) -> Optional[List[Any]]:
    start, end = text.find("["), text.rfind("]")
    if start < 0 or end <= start:
        return None
    snippet = text[start : end + 1]
    try:
        value = ast.literal_eval(snippet) if len(snippet) < 100000 else None
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        return None
    return value if isinstance(value, list) else None


def _names_from_list(items: List[Any]) -> Optional[Tuple[str, ...]]:
    """A list content is a names list if every item is a short token that is not JSON."""
    if not all(isinstance(item, str) and _SIMPLE_NAME.match(item.strip()) for item in items):
        return None
    if any(_maybe_json(item) is not _NOT_JSON for item in items if item.strip()[:1] in '{["'):
        return None
    return _clean_names(items)


def _clean_names(items: Iterable[Any]) -> Tuple[str, ...]:
    out: List[str] = []
    for item in list(items)[:10000]:
        name = scrub_surrogates(_as_text(item)).strip(_NAME_STRIP)
        if name and len(name) <= _MAX_NAME_CHARS and name not in out:
            out.append(name)
    return tuple(out)


def features_of(event: ServerEvent) -> Tuple[str, ...]:
    """The ktnchat `features` list advertised in a login info (empty for other servers)."""
    if not isinstance(event, ChatLine) or event.kind != KIND_INFO:
        return ()
    features = event.extra.get("features")
    if not isinstance(features, list):
        return ()
    return tuple(f for f in features if isinstance(f, str))


def is_stream_ack(event: ServerEvent) -> bool:
    """The ktnchat info acknowledging `stream on` (not for the user's eyes)."""
    if not isinstance(event, ChatLine):
        return False
    return event.kind == KIND_INFO and event.extra.get("stream") is True


def usernames_in(event: ServerEvent) -> Tuple[str, ...]:
    """Usernames an event reveals (senders, names lists, join/leave notices)."""
    if isinstance(event, Notice):
        return tuple(name for name in event.names or () if name.isprintable())
    if not isinstance(event, ChatLine):
        return ()
    found: List[str] = []
    if event.kind in (KIND_MESSAGE, KIND_HISTORY_ITEM) and event.sender:
        found.append(event.sender)
    for key in ("username", "to", "by"):
        user = event.extra.get(key)
        if isinstance(user, str) and user:
            found.append(user)
    return tuple(name for name in found if _is_plain_name(name))


def _is_plain_name(name: str) -> bool:
    return bool(_SIMPLE_NAME.match(name)) and name.isprintable()


def _extra_of(event: ServerEvent) -> Dict[str, Any]:
    """The extension keys of an info (ChatLine or Notice); empty for anything else."""
    if isinstance(event, Notice):
        return event.extra
    if isinstance(event, ChatLine) and event.kind == KIND_INFO:
        return event.extra
    return {}


def event_name(event: ServerEvent) -> Optional[str]:
    """The ktnchat `event` of an info ("joined", "removed", ...), lower-cased; else None."""
    name = _extra_of(event).get("event")
    return name.strip().lower() if isinstance(name, str) and name.strip() else None


def _room_key(event: ServerEvent) -> Optional[str]:
    room = _extra_of(event).get("room")
    if isinstance(room, str) and _is_plain_name(room.strip()):
        return room.strip()
    return None


def entered_room(event: ServerEvent) -> Optional[str]:
    """The room an info says we are in now, else None.

    A `joined` event names it; so does an info without `event` carrying `room` (the login
    info, a names answer, a topic answer), as those always speak of our current room.
    """
    name = event_name(event)
    if name == "joined" or name is None:
        return _room_key(event)
    return None


def left_room(event: ServerEvent) -> Optional[str]:
    """The room a `kicked` info says we were sent out of, else None."""
    return _room_key(event) if event_name(event) == "kicked" else None


def listed_rooms(event: ServerEvent) -> Optional[Tuple[str, ...]]:
    """The room names of a `rooms` answer's extra list, or None if the info has none."""
    listing = _extra_of(event).get("rooms")
    if not isinstance(listing, list):
        return None
    names: List[str] = []
    for item in listing[:100000]:
        name = item.get("name") if isinstance(item, dict) else item
        if isinstance(name, str) and _is_plain_name(name.strip()) and name.strip() not in names:
            names.append(name.strip())
    return tuple(names)


def room_names_in(event: ServerEvent) -> Tuple[str, ...]:
    """Room names an event reveals (a rooms list, the room of a joined/join/leave info)."""
    listed = listed_rooms(event)
    if listed is not None:
        return listed
    room = _room_key(event)
    return (room,) if room is not None else ()


def deleted_ids(event: ServerEvent) -> Tuple[int, ...]:
    """The message ids of a `removed` info (empty for every other event)."""
    if event_name(event) != "removed":
        return ()
    ids = _extra_of(event).get("deleted")
    if isinstance(ids, int) and not isinstance(ids, bool):
        ids = [ids]
    if not isinstance(ids, list):
        return ()
    return tuple(
        i for i in ids[:_MAX_DELETED_IDS] if isinstance(i, int) and not isinstance(i, bool)
    )


def is_private(event: ServerEvent) -> bool:
    """A ktnchat private message (`"private": true` on a message)."""
    return (
        isinstance(event, ChatLine)
        and event.kind == KIND_MESSAGE
        and event.extra.get("private") is True
    )


# --- helpers -----------------------------------------------------------------------------

_MISSING: Any = object()
_NOT_JSON: Any = object()
_ENVELOPE = frozenset({TIMESTAMP_KEY, SENDER_KEY, RESPONSE_KEY, CONTENT_KEY})
_CONTENT_FALLBACKS = ("message", "msg", "text", "body")


def _norm_key(key: str) -> str:
    return key.strip().lower()


def _get(obj: Dict[str, Any], key: str) -> Any:
    """obj[key], else a key that matches it ignoring case and spaces, else None."""
    if key in obj:
        return obj[key]
    for k, v in obj.items():
        if isinstance(k, str) and _norm_key(k) == key:
            return v
    return None


def _content_of(obj: Dict[str, Any]) -> Any:
    for k, v in obj.items():
        if _norm_key(k) == CONTENT_KEY:
            return v
    for name in _CONTENT_FALLBACKS:
        if isinstance(obj.get(name), str):
            return obj[name]
    return _MISSING


def _maybe_json(text: str) -> Any:
    """The JSON value (object, array, string) a string holds, else _NOT_JSON."""
    stripped = text.strip()
    if not stripped or stripped[0] not in '{["':
        return _NOT_JSON
    try:
        return json.loads(stripped, strict=False)
    except (ValueError, RecursionError):
        return _NOT_JSON


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return scrub_surrogates(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    try:
        return scrub_surrogates(json.dumps(value, ensure_ascii=False, separators=(", ", ": ")))
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def _is_response(item: Any) -> bool:
    return isinstance(item, dict) and _get(item, RESPONSE_KEY) is not None


def _msg_id(extra: Dict[str, Any]) -> Optional[int]:
    value = extra.get("id")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__
