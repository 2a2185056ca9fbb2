# Bytes <-> events for the 2017 KTN protocol, server side and client side. No sockets.
#
# Rules:
# - RequestDecoder is the server's reader: `receive_data(bytes)`, then `next_event()` until
#   it returns None. Each event is a Request or a Rejected (answer it with an `error`;
#   close the connection if `fatal`). Bad frames never poison the frames after them.
# - Encoding is conservative: ASCII-only JSON (no split UTF-8 for naive readers), compact
#   separators, envelope keys first, one object per call ending in "\n" (harmless to every
#   measured client, and it makes the stream line-readable).
# - Requests are encoded with no delimiter, exactly as all 16 measured clients send them.
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, replace
from typing import Any, Iterable, List, Optional, Union

from ktnchat.protocol.edition2014 import is_2014_request, request_from_2014
from ktnchat.protocol.errors import FrameTooLarge, LocalProtocolError, RemoteProtocolError
from ktnchat.protocol.events import (
    CONTENT_KEY,
    HISTORY,
    REQUEST_KEY,
    RESPONSE_KEY,
    SENDER_KEY,
    STREAM_KEY,
    TIMESTAMP_KEY,
    HistoryEncoding,
    Request,
    Response,
)
from ktnchat.protocol.framing import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_FRAME_BYTES,
    Frame,
    FrameSplitter,
)

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_SEPARATORS = re.compile("[ \t\r\n\x00]*")  # what FrameSplitter skips between frames
_MAX_WORD_CHARS = 64


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e999: out of range, and not encodable back as JSON
        raise ValueError(f"number {text[:20]} is out of range")
    return value


_json_decoder = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)
_json_encoder = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False)


def scrub_surrogates(text: str) -> str:
    """Replace lone UTF-16 surrogates (legal as JSON escapes, not as text) with U+FFFD."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def parse_json(data: bytes) -> Any:
    """Parse one frame strictly: UTF-8, no NaN/Infinity, bounded recursion.

    Raises:
        RemoteProtocolError: the bytes are not one valid JSON value.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RemoteProtocolError(f"Invalid UTF-8 at byte {exc.start}") from None
    try:
        return _json_decoder.decode(text)
    except json.JSONDecodeError as exc:
        raise RemoteProtocolError(f"Invalid JSON: {exc.msg} (at character {exc.pos})") from None
    except (ValueError, RecursionError) as exc:
        raise RemoteProtocolError(f"Invalid JSON: {exc}") from None


@dataclass(frozen=True)
class Rejected:
    """A frame the server could not accept; `message` is fit for an `error` response."""

    message: str
    fatal: bool = False


RequestEvent = Union[Request, Rejected]


def request_from_value(value: Any, *, escaped: bool = True) -> Request:
    """Validate a decoded JSON value as a request envelope.

    `escaped` says the frame held backslash escapes, so strings may hold lone surrogates.

    Raises:
        RemoteProtocolError: the value is not `{"request": <string>, ...}`.
    """
    if not isinstance(value, dict):
        raise RemoteProtocolError(
            'Expected a JSON object like {"request": "login", "content": "alice"}, '
            f"got {_json_type(value)}"
        )
    word = value.get(REQUEST_KEY)
    if word is None:
        raise RemoteProtocolError('Missing "request" key; send {"request": "help"} for help')
    if not isinstance(word, str):
        raise RemoteProtocolError(f'"request" must be a string, got {_json_type(word)}')
    word = word.strip().lower()
    if not word or len(word) > _MAX_WORD_CHARS:
        raise RemoteProtocolError('"request" must be a request word such as "login" or "help"')
    if is_2014_request(value):  # after the word checks, which hold for both editions
        return _scrubbed_2014(request_from_2014(value), escaped)
    content = value.get(CONTENT_KEY)
    if escaped:
        word = scrub_surrogates(word)
        if isinstance(content, str):
            content = scrub_surrogates(content)
    if STREAM_KEY in value:
        return Request(word, content, stream=stream_choice(value[STREAM_KEY]))
    return Request(word, content)


def stream_choice(value: Any) -> Optional[bool]:
    """The framing a `stream` key or request content asks for: True (on), False (off),
    or None for a value that says neither (ignored)."""
    if value is None or value is True:
        return value
    if value is False:
        return False
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ("on", "1", "true", "yes", ""):
            return True
        if word in ("off", "0", "false", "no"):
            return False
    return None


def _scrubbed_2014(request: Request, escaped: bool) -> Request:
    if not escaped:
        return request
    content = request.content
    return replace(
        request,
        word=scrub_surrogates(request.word),
        content=scrub_surrogates(content) if isinstance(content, str) else content,
        alias=scrub_surrogates(request.alias) if request.alias is not None else None,
    )


class RequestDecoder:
    """The server side of the stream: bytes in, Request / Rejected events out."""

    def __init__(
        self,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        max_depth: int = DEFAULT_MAX_DEPTH,
    ) -> None:
        self._splitter = FrameSplitter(max_frame_bytes, max_depth)
        self._pending: list[RequestEvent] = []
        self.broken = False  # set after a fatal error: no more events

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete request held in memory."""
        return self._splitter.buffered

    @property
    def partial(self) -> bool:
        """True while part of a request has arrived and the rest has not."""
        return not self._splitter.idle

    @property
    def waiting(self) -> int:
        """Decoded requests not yet taken with next_event()."""
        return len(self._pending)

    def receive_data(self, data: bytes) -> None:
        """Buffer received bytes (whole objects in one chunk are parsed at once)."""
        if self.broken or not data:
            return
        splitter = self._splitter
        if (
            splitter.buffered == 0
            and len(data) <= splitter.max_frame_bytes
            and data[-1:] in (b"}", b"\n")
            and data.lstrip()[:1] == b"{"
        ):
            # Fast path: the chunk is whole objects, as clients send them (one, or a
            # pipelined burst): parsed by the json module's scanner, no frame splitting.
            events = self._whole_objects(data)
            if events is not None:
                self._pending.extend(events)
                return
        splitter.feed(data)

    def _whole_objects(self, data: bytes) -> Optional[List[RequestEvent]]:
        """The events of a chunk that is nothing but complete JSON objects and separators,
        or None (anything else, or an object the splitter would flag as too deep): then
        the splitter takes the whole chunk, and its answers are the ones that count."""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return None
        events: List[RequestEvent] = []
        max_depth = self._splitter.max_depth
        # Nesting could exceed the depth cap only with that many brackets, and a string
        # could hold a lone surrogate only with a backslash: asked of each object only
        # when the whole chunk has them.
        deep = data.count(b"{") + data.count(b"[") > max_depth
        escapes = b"\\" in data
        scan = _json_decoder.raw_decode
        skip = _SEPARATORS.match
        end = len(text)
        pos = 0
        for _ in range(end):  # at most one object per character
            if not text.startswith("{", pos):  # objects sent back to back need no skip
                pos = skip(text, pos).end()  # type: ignore[union-attr]  # [...]* matches
                if pos >= end:
                    return events
                if text[pos] != "{":
                    return None
            try:
                value, stop = scan(text, pos)
            except (ValueError, RecursionError):
                return None
            if deep and text.count("{", pos, stop) + text.count("[", pos, stop) > max_depth:
                return None
            try:  # _event_from_value, written out: this is every request's path
                escaped = escapes and text.find("\\", pos, stop) >= 0
                events.append(request_from_value(value, escaped=escaped))
            except RemoteProtocolError as exc:
                events.append(Rejected(str(exc)))
            pos = stop
        return None

    def receive_message(self, data: bytes) -> None:
        """Queue the one request of a whole message (a WebSocket text message): exactly
        one JSON object, never joined with the bytes of another message."""
        if self.broken:
            return
        splitter = FrameSplitter(self._splitter.max_frame_bytes, self._splitter.max_depth)
        splitter.feed(data)
        try:
            frame = splitter.next_frame()
        except FrameTooLarge as exc:
            self._pending.append(Rejected(str(exc)))
            return
        if frame is not None and splitter.idle:
            self._pending.append(self._event_from_frame(frame))
            return
        try:  # not one object: say what it is instead (invalid JSON, two objects, ...)
            value = parse_json(data)
        except RemoteProtocolError as exc:
            self._pending.append(Rejected(str(exc)))
            return
        self._pending.append(self._event_from_value(value, b"\\" in data))

    def next_requests(self, limit: int) -> List[Request]:
        """Up to `limit` further requests, stopping before any Rejected (left in place)."""
        taken: List[Request] = []
        while len(taken) < limit:
            event = self.next_event()
            if event is None:
                break
            if isinstance(event, Rejected):
                self._pending.insert(0, event)
                break
            taken.append(event)
        return taken

    def next_event(self) -> Optional[RequestEvent]:
        """The next complete event, or None when more data is needed."""
        if self._pending:
            return self._pending.pop(0)
        if self.broken:
            return None
        try:
            frame = self._splitter.next_frame()
        except FrameTooLarge as exc:
            self.broken = True
            return Rejected(str(exc), fatal=True)
        if frame is None:
            return None
        return self._event_from_frame(frame)

    def _event_from_frame(self, frame: Frame) -> RequestEvent:
        if frame.too_deep:
            return Rejected("Invalid request: JSON nested too deeply")
        try:
            value = parse_json(frame.data)
        except RemoteProtocolError as exc:
            return Rejected(str(exc))
        return self._event_from_value(value, b"\\" in frame.data)

    @staticmethod
    def _event_from_value(value: Any, escaped: bool) -> RequestEvent:
        try:
            return request_from_value(value, escaped=escaped)
        except RemoteProtocolError as exc:
            return Rejected(str(exc))


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def encode_json(value: Any) -> str:
    """Compact, ASCII-only JSON text.

    Raises:
        LocalProtocolError: the value cannot be encoded (our bug).
    """
    try:
        return _json_encoder.encode(value)
    except (TypeError, ValueError) as exc:
        raise LocalProtocolError(f"cannot encode {value!r}: {exc}") from exc


def encode_request(word: str, content: Any = None, **extra: Any) -> bytes:
    """The bytes of one client request, no delimiter (as every measured client sends);
    `extra` keys (such as "stream") follow the envelope's two."""
    return encode_json({REQUEST_KEY: word, CONTENT_KEY: content, **extra}).encode("ascii")


def response_to_dict(response: Response, history: HistoryEncoding) -> dict[str, Any]:
    """The JSON object for a response: the seed's four keys in its order, then extras."""
    content: Any = response.content
    if response.kind == HISTORY:
        content = encode_history_content(response.content, history)
    out: dict[str, Any] = {
        TIMESTAMP_KEY: response.timestamp,
        SENDER_KEY: response.sender,
        RESPONSE_KEY: response.kind,
        CONTENT_KEY: content,
    }
    if response.extra:
        out.update(response.extra)
    return out


def encode_response(
    response: Response, history: HistoryEncoding = HistoryEncoding.JSON_STRINGS
) -> bytes:
    """The bytes of one response object, ending in a newline."""
    text = _flat_json(response) if response.kind != HISTORY else None
    if text is None:
        text = encode_json(response_to_dict(response, history))
    return (text + "\n").encode("ascii")


_quote = json.encoder.encode_basestring_ascii  # what the ensure_ascii encoder calls
_ENVELOPE_START = "{" + _quote(TIMESTAMP_KEY) + ":"
_AFTER_TIMESTAMP = "," + _quote(SENDER_KEY) + ":"
_AFTER_SENDER = "," + _quote(RESPONSE_KEY) + ":"
_AFTER_KIND = "," + _quote(CONTENT_KEY) + ":"


def _flat_json(response: Response) -> Optional[str]:
    """The text encode_json(response_to_dict(response)) gives, for the common response
    whose values are all strings, integers, booleans or null (every message, info and
    error the service makes), built without the dict or the general encoder; None for
    anything else (history, a float, a nested value), which takes the general path."""
    sender = response.sender
    if type(sender) is not str:
        return None
    parts = [
        _ENVELOPE_START,
        _quote(response.timestamp),
        _AFTER_TIMESTAMP,
        _quote(sender),
        _AFTER_SENDER,
        _quote(response.kind),
        _AFTER_KIND,
        _quote(response.content),
    ]
    for key, value in response.extra.items():
        kind = type(value)
        if kind is str:
            text = _quote(value)
        elif kind is int:  # exactly int (not bool): str() is int's repr
            text = str(value)
        elif value is None:
            text = "null"
        elif value is True:
            text = "true"
        elif value is False:
            text = "false"
        else:
            return None
        if type(key) is not str:
            return None
        parts += (",", _quote(key), ":", text)
    parts.append("}")
    return "".join(parts)


def encode_history_content(messages: Iterable[Response], encoding: HistoryEncoding) -> Any:
    """The `content` of a history response in the chosen encoding."""
    objects = [response_to_dict(message, encoding) for message in messages]
    if encoding is HistoryEncoding.OBJECTS:
        return objects
    if encoding is HistoryEncoding.JSON_TEXT:
        return encode_json(objects)
    return [encode_json(obj) for obj in objects]


def encode_response_frames(
    response: Response, history: HistoryEncoding, max_object_bytes: int
) -> List[bytes]:
    """Encode a response as one or more objects of at most `max_object_bytes` each.

    Only `history` responses are split (into several `history` responses with
    consecutive messages), because naive clients read with one fixed-size recv(); one
    message longer than the limit still travels alone in one object.
    """
    if response.kind != HISTORY or len(response.content) <= 1:
        return [encode_response(response, history)]
    empty_size = len(encode_response(replace(response, content=()), history))
    batches: List[List[Response]] = [[]]
    size = empty_size
    for message in response.content:
        entry = _history_entry_size(message, history) + 1  # +1: the comma
        if batches[-1] and size + entry > max_object_bytes:
            batches.append([])
            size = empty_size
        batches[-1].append(message)
        size += entry
    return [encode_response(replace(response, content=tuple(batch)), history) for batch in batches]


def encode_history_as_messages(response: Response, limit: Optional[int] = None) -> List[bytes]:
    """A `history` response as ordinary `message` responses, one object per message,
    oldest first, each marked with the extra key "history": true (none for an empty one);
    only the newest `limit` messages when a limit is given.

    Every measured client renders a `message`; no single `history` content keeps all of
    them alive (docs/protocol.md, "Earlier messages at login")."""
    messages = response.messages
    if limit is not None and len(messages) > limit:
        messages = messages[len(messages) - max(0, limit) :]
    return [
        encode_response(replace(message, extra={**message.extra, HISTORY: True}))
        for message in messages
    ]


def _history_entry_size(message: Response, encoding: HistoryEncoding) -> int:
    text = encode_json(response_to_dict(message, encoding))
    if encoding is HistoryEncoding.OBJECTS:
        return len(text)
    quoted = len(encode_json(text))  # escaping is per character, so sizes add up exactly
    return quoted if encoding is HistoryEncoding.JSON_STRINGS else quoted - 2
