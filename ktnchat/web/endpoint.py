# One connection of the web listener, without I/O: HTTP/1.1 (h11) that may become a
# WebSocket (wsproto). Bytes in with receive_data(), bytes out with data_to_send().
#
# Rules:
# - HTTP serves GET/HEAD of the packaged static files, `/healthz`, `/metrics` (when the
#   settings give a metrics page), and the upgrade to a WebSocket at `/ws`; everything
#   else gets a plain-text 4xx. Keep-alive as HTTP/1.1 says. With `chat` off (the metrics
#   listener) there are no files and no `/ws`: only `/healthz` and `/metrics`.
# - The upgrade is refused (403) when the request carries an Origin that is neither the
#   host it asked for nor one of the allowed origins: a page elsewhere cannot chat as the
#   browser's user. Clients that send no Origin (not browsers) are let in.
# - Over the WebSocket each text message is exactly one KTN JSON request, delivered whole
#   as `messages`; a message larger than `max_message_bytes` closes with 1009, a binary
#   message with 1003, both with a reason the browser shows. Pings are answered.
# - Nothing here raises on bad input: a protocol error closes the connection (HTTP 400 or
#   WebSocket 1002) and `closed_reason` says why, for the log.
from __future__ import annotations

from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Callable, Dict, FrozenSet, List, Optional, Tuple
from urllib.parse import urlsplit

import h11
from wsproto import ConnectionType, WSConnection
from wsproto.connection import Connection as WebSocket
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    RejectConnection,
    TextMessage,
)
from wsproto.utilities import RemoteProtocolError as WebSocketProtocolError

WS_PATH = "/ws"
HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"
MAX_HEADER_BYTES = 16 * 1024
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_TOO_BIG = 1009
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-cache"),
)
PAGE_POLICY = (
    b"default-src 'self'; connect-src 'self' ws: wss:; img-src 'self'; "
    b"style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)


@dataclass(frozen=True)
class StaticFile:
    content_type: str
    body: bytes


@dataclass(frozen=True)
class WebSettings:
    """What the web listener serves and allows."""

    files: Dict[str, StaticFile] = field(default_factory=dict)  # "/" and "/app.js" ...
    origins: FrozenSet[str] = frozenset()  # extra allowed origins ("https://chat.example")
    max_message_bytes: int = 512 * 1024
    health: Callable[[], Tuple[int, bytes]] = lambda: (200, b"ok\n")
    # () -> (status, body, content type) of /metrics; None: no such page here.
    metrics: Optional[Callable[[], Tuple[int, bytes, str]]] = None
    chat: bool = True  # False: no pages and no WebSocket (the metrics listener)


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b""


class WebEndpoint:
    """The protocol state of one web connection."""

    def __init__(self, settings: WebSettings) -> None:
        self.settings = settings
        self._http: Optional[h11.Connection] = h11.Connection(
            h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES
        )
        # After the upgrade only wsproto's frame-level connection is kept: the handshake
        # object (with an h11 connection of its own) would cost every idle socket ~2 KiB.
        self._ws: Optional[WebSocket] = None
        self._out = bytearray()
        self._partial: List[str] = []
        self._partial_bytes = 0
        self.messages: List[str] = []  # complete text messages, one KTN request each
        self.closed_reason: Optional[str] = None  # set: close once data_to_send() is sent
        self.path: Optional[str] = None  # what the last HTTP request asked for

    @property
    def is_websocket(self) -> bool:
        return self._ws is not None

    @property
    def closing(self) -> bool:
        return self.closed_reason is not None

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    # -- input ----------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Feed received bytes (b"" at EOF)."""
        if self.closing:
            return
        if self._ws is not None:
            self._receive_ws(data)
            return
        http = self._http
        assert http is not None
        try:
            http.receive_data(data)
            self._http_events()
        except h11.RemoteProtocolError as exc:
            self._http_error(exc.error_status_hint, f"bad HTTP request: {exc}")

    def _http_events(self) -> None:
        http = self._http
        while http is not None and not self.closing:
            event = http.next_event()
            if event is h11.NEED_DATA:
                if http.their_state is h11.CLOSED or (
                    http.their_state is h11.DONE and http.our_state is h11.MUST_CLOSE
                ):
                    self.closed_reason = "HTTP connection closed"
                return
            if event is h11.PAUSED:
                if http.our_state is h11.DONE and http.their_state is h11.DONE:
                    http.start_next_cycle()
                    continue
                return
            if isinstance(event, h11.ConnectionClosed):
                self.closed_reason = "HTTP connection closed"
                return
            if isinstance(event, h11.Request):
                self._request(event)
                http = self._http  # None after an upgrade
            # Data and EndOfMessage of a request body: ignored (we answered already).

    def _request(self, request: h11.Request) -> None:
        target = request.target.decode("ascii", "replace")
        path = urlsplit(target).path or "/"
        self.path = path
        headers = {name.lower(): value for name, value in request.headers}
        method = request.method.upper()
        chat = self.settings.chat
        if chat and path == WS_PATH and headers.get(b"upgrade", b"").lower() == b"websocket":
            self._upgrade(request, headers)
            return
        if method not in (b"GET", b"HEAD"):
            self._respond(
                405, b"only GET and HEAD here\n", "text/plain", extra=[(b"allow", b"GET, HEAD")]
            )
            return
        if path == HEALTH_PATH:
            status, body = self.settings.health()
            self._respond(status, body, "text/plain", head=method == b"HEAD")
            return
        if path == METRICS_PATH and self.settings.metrics is not None:
            status, body, content_type = self.settings.metrics()
            self._respond(status, body, content_type, head=method == b"HEAD")
            return
        if chat and path == WS_PATH:
            self._respond(
                426,
                b"this is the WebSocket endpoint: upgrade to websocket\n",
                "text/plain",
                extra=[(b"upgrade", b"websocket")],
            )
            return
        page = self.settings.files.get("/index.html" if path == "/" else path)
        if page is None:
            self._respond(404, b"not found\n", "text/plain", head=method == b"HEAD")
            return
        extra = (
            [(b"content-security-policy", PAGE_POLICY)]
            if page.content_type.startswith("text/html")
            else []
        )
        self._respond(200, page.body, page.content_type, head=method == b"HEAD", extra=extra)

    def _respond(
        self,
        status: int,
        body: bytes,
        content_type: str,
        head: bool = False,
        extra: Optional[List[Tuple[bytes, bytes]]] = None,
    ) -> None:
        http = self._http
        assert http is not None
        headers = [
            (b"content-type", content_type.encode("ascii")),
            (b"content-length", str(len(body)).encode("ascii")),
            *SECURITY_HEADERS,
            *(extra or []),
        ]
        try:
            self._out += http.send(
                h11.Response(status_code=status, headers=headers, reason=_reason(status))
            )
            if body and not head:
                self._out += http.send(h11.Data(data=body))
            self._out += http.send(h11.EndOfMessage())
        except h11.LocalProtocolError as exc:  # e.g. the client half-closed: just close
            self.closed_reason = f"HTTP response not sent: {exc}"
            return
        if http.our_state is h11.MUST_CLOSE:
            self.closed_reason = "HTTP response sent; connection not kept alive"

    def _http_error(self, status: int, reason: str) -> None:
        http = self._http
        body = f"{reason}\n".encode("utf-8", "replace")
        if http is not None and http.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            try:
                self._out += http.send(
                    h11.Response(
                        status_code=status,
                        reason=_reason(status),
                        headers=[
                            (b"content-type", b"text/plain"),
                            (b"content-length", str(len(body)).encode("ascii")),
                            (b"connection", b"close"),
                        ],
                    )
                )
                self._out += http.send(h11.Data(data=body))
                self._out += http.send(h11.EndOfMessage())
            except h11.LocalProtocolError:
                pass
        self.closed_reason = reason

    # -- the upgrade ----------------------------------------------------------------------

    def _upgrade(self, request: h11.Request, headers: Dict[bytes, bytes]) -> None:
        origin = headers.get(b"origin")
        if origin is not None and not self._origin_allowed(origin, headers.get(b"host", b"")):
            self._respond(
                403, b"origin not allowed\n", "text/plain", extra=[(b"connection", b"close")]
            )
            self.closed_reason = (
                f"WebSocket refused: origin {origin.decode('ascii', 'replace')} not allowed"
            )
            return
        http = self._http
        assert http is not None
        ws = WSConnection(ConnectionType.SERVER)
        try:
            ws.initiate_upgrade_connection(list(request.headers), request.target)
            handshake = ws.send(AcceptConnection())
        except WebSocketProtocolError as exc:
            self._http_error(400, f"bad WebSocket upgrade: {exc}")
            return
        assert ws.connection is not None  # open once the acceptance is sent
        trailing, _ = http.trailing_data
        self._http = None
        self._ws = ws.connection
        self._out += handshake
        if trailing:
            self._receive_ws(bytes(trailing))

    def _origin_allowed(self, origin: bytes, host: bytes) -> bool:
        text = origin.decode("ascii", "replace").strip()
        if text in self.settings.origins:
            return True
        parts = urlsplit(text)
        return (
            bool(parts.netloc)
            and parts.netloc.lower() == host.decode("ascii", "replace").strip().lower()
        )

    # -- WebSocket ------------------------------------------------------------------------

    def _receive_ws(self, data: bytes) -> None:
        ws = self._ws
        assert ws is not None
        try:
            ws.receive_data(data or None)
            for event in ws.events():
                if isinstance(event, TextMessage):
                    self._text(event)
                elif isinstance(event, BytesMessage):
                    self.close(
                        CLOSE_UNSUPPORTED_DATA, "binary frames are not supported: send JSON as text"
                    )
                elif isinstance(event, Ping):
                    self._out += ws.send(event.response())
                elif isinstance(event, CloseConnection):
                    self._close_answer(event)
                elif isinstance(event, RejectConnection):  # pragma: no cover - client side only
                    self.closed_reason = "WebSocket rejected"
                if self.closing:
                    return
        except WebSocketProtocolError as exc:
            self.close(CLOSE_PROTOCOL_ERROR, f"WebSocket protocol error: {exc}")
        if not data and not self.closing:
            self.closed_reason = "connection closed"

    def _text(self, event: TextMessage) -> None:
        self._partial_bytes += len(event.data.encode("utf-8", "surrogatepass"))
        if self._partial_bytes > self.settings.max_message_bytes:
            self.close(
                CLOSE_TOO_BIG,
                f"message larger than {self.settings.max_message_bytes} bytes",
            )
            return
        self._partial.append(event.data)
        if event.message_finished:
            self.messages.append("".join(self._partial))
            self._partial.clear()
            self._partial_bytes = 0

    def _close_answer(self, event: CloseConnection) -> None:
        ws = self._ws
        assert ws is not None
        try:
            self._out += ws.send(event.response())
        except Exception:  # already closing; nothing more to say
            pass
        self.closed_reason = f"WebSocket closed by the client ({event.code})"

    # -- output ---------------------------------------------------------------------------

    def frame_text(self, text: str) -> bytes:
        """One text message as WebSocket bytes (to queue in the connection's outbox)."""
        ws = self._ws
        assert ws is not None, "not a WebSocket yet"
        return ws.send(Message(data=text))

    def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        """Start a WebSocket close (or end the HTTP connection)."""
        if self.closing:
            return
        ws = self._ws
        if ws is not None:
            try:
                self._out += ws.send(CloseConnection(code=code, reason=reason[:120]))
            except Exception:  # the state machine says it is closed already
                pass
        self.closed_reason = reason or f"closed ({code})"
