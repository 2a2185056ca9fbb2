# The KTN wire vocabulary as values: what a request and a response are.
# Rules: this is the only module that spells the JSON keys of the 2017 envelope
# ("request", "content", "timestamp", "sender", "response"). Events are frozen and
# hold plain JSON-able values; they validate their own shape on construction.
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping, Optional, Tuple

from ktnchat.protocol.errors import LocalProtocolError
from ktnchat.quickinit import quick_init

REQUEST_KEY = "request"
CONTENT_KEY = "content"
TIMESTAMP_KEY = "timestamp"
SENDER_KEY = "sender"
RESPONSE_KEY = "response"
STREAM_KEY = "stream"  # extension key of a request envelope: switch framing first
ENVELOPE_KEYS = frozenset({TIMESTAMP_KEY, SENDER_KEY, RESPONSE_KEY, CONTENT_KEY})

ERROR = "error"
INFO = "info"
MESSAGE = "message"
HISTORY = "history"
RESPONSE_KINDS = frozenset({ERROR, INFO, MESSAGE, HISTORY})

_NO_EXTRA: Mapping[str, Any] = MappingProxyType({})


class HistoryEncoding(enum.Enum):
    """How the `content` list of a `history` response holds its messages.

    JSON_STRINGS: each message object JSON-encoded into a string (what the course's
        reference server sent; accepted by 7 of 12 measured clients). The default.
    OBJECTS: each message as a JSON object (4 of 12).
    JSON_TEXT: the whole list JSON-encoded into one string (5 of 12).
    """

    JSON_STRINGS = "json-strings"
    OBJECTS = "objects"
    JSON_TEXT = "json-text"


class HistoryDelivery(enum.Enum):
    """How earlier messages reach a client that has not shown it parses `history`.

    MESSAGES: each earlier message as an ordinary `message` response (its own timestamp,
        sender and id, plus the extra key "history": true), which all 16 measured clients
        render; a client that said `stream on` gets the `history` response. The default.
    HISTORY: always the `history` response in the configured HistoryEncoding (the seed's
        shape exactly; a list of JSON strings kills 5 of 12 measured 2016/17 clients).
    """

    MESSAGES = "messages"
    HISTORY = "history"


@quick_init
@dataclass(frozen=True)
class Request:
    """A client request: `{"request": word, "content": content}`.

    `word` is the request word as sent, stripped and lower-cased; `content` is the raw
    JSON value (None when the key is missing). Which requests take an argument is the
    service's business, so argument-less requests may carry any junk in `content`.
    """

    word: str
    content: Any = None
    edition: int = 2017  # 2014 for a request in the 2014 edition's shape
    alias: Optional[str] = None  # the word as the client sent it, if it was translated
    # The extension key "stream" of the envelope ({"request":"login","content":"alice",
    # "stream":"on"}): switch framing before this request is handled. None: not given.
    stream: Optional[bool] = None

    def text(self) -> Optional[str]:
        """The content if it is a string, else None."""
        return self.content if isinstance(self.content, str) else None


@quick_init
@dataclass(frozen=True)
class Response:
    """A server response in the 2017 envelope.

    For `history`, `content` is a tuple of `message` responses; the encoder renders it
    in the configured HistoryEncoding. `extra` holds extension keys (e.g. "id") that old
    clients ignore; they may not shadow the envelope keys.
    """

    kind: str
    content: Any
    sender: str
    timestamp: str
    extra: Mapping[str, Any] = field(default_factory=lambda: _NO_EXTRA)

    def __post_init__(self) -> None:
        if self.kind not in RESPONSE_KINDS:
            raise LocalProtocolError(f"unknown response kind {self.kind!r}")
        if not isinstance(self.timestamp, str):
            raise LocalProtocolError("timestamp must be a string (seed 001)")
        if self.kind == HISTORY:
            if not isinstance(self.content, tuple) or not all(
                isinstance(item, Response) and item.kind == MESSAGE for item in self.content
            ):
                raise LocalProtocolError("history content must be a tuple of message responses")
        elif not isinstance(self.content, str):
            raise LocalProtocolError(f"{self.kind} content must be a string")
        if self.extra and not ENVELOPE_KEYS.isdisjoint(self.extra):
            raise LocalProtocolError("extra keys may not shadow the envelope")

    @classmethod
    def message(
        cls, content: str, sender: str, timestamp: str, extra: Mapping[str, Any]
    ) -> Response:
        """A `message` response, as Response(MESSAGE, ...) makes it, with only the checks
        that a message can fail (the service makes one per chat message)."""
        if type(content) is not str or type(timestamp) is not str:
            raise LocalProtocolError("message content and timestamp must be strings")
        if extra and not ENVELOPE_KEYS.isdisjoint(extra):
            raise LocalProtocolError("extra keys may not shadow the envelope")
        response = object.__new__(cls)
        fields = response.__dict__
        fields["kind"] = MESSAGE
        fields["content"] = content
        fields["sender"] = sender
        fields["timestamp"] = timestamp
        fields["extra"] = extra
        return response

    @property
    def messages(self) -> Tuple[Response, ...]:
        """The messages of a history response (empty for other kinds)."""
        return self.content if self.kind == HISTORY else ()
