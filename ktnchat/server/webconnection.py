# A browser's connection on the web listener: HTTP until it upgrades, then the same KTN
# requests and responses as TCP, one JSON object per WebSocket text message.
#
# Rules:
# - Everything the base Connection guarantees holds (one owning loop, request order,
#   the storage-worker hand-off, the outbox cap, flood control in the service): only
#   the bytes differ. The endpoint (ktnchat/web/endpoint.py) turns received bytes into
#   whole text messages and HTTP answers; each message is decoded alone as one request.
# - Outgoing objects are framed by the server (`framing`), once per broadcast; the
#   endpoint's own bytes (HTTP answers, the handshake, pongs, close frames) go through
#   the same outbox, so they keep their place in the stream.
# - A browser parses every object it gets: no pacing, and earlier messages come as
#   `history` responses.
from __future__ import annotations

import logging
import socket

from ktnchat.server.connection import Connection, LoopRole, ServerRole
from ktnchat.web.endpoint import CLOSE_GOING_AWAY, CLOSE_NORMAL, WebEndpoint, WebSettings
from ktnchat.web.frames import ws_text_frame

log = logging.getLogger("ktnchat.server")


class WebConnection(Connection):
    __slots__ = ("endpoint",)

    def __init__(
        self,
        sock: socket.socket,
        peer: str,
        loop: LoopRole,
        server: ServerRole,
        now: float,
        host: str,
        settings: WebSettings,
    ) -> None:
        super().__init__(sock, peer, loop, server, now, host)
        self.endpoint = WebEndpoint(settings)
        self.plain = False
        self.framing = ws_text_frame
        self.transport = "websocket"
        self.wants_history = True
        self.outbox.stream()

    def received(self, data: bytes, now: float) -> None:
        """HTTP or WebSocket bytes: the endpoint answers HTTP itself and hands over whole
        text messages, each decoded alone as one request."""
        endpoint = self.endpoint
        was_websocket = endpoint.is_websocket
        endpoint.receive_data(data)
        if not was_websocket and endpoint.is_websocket:
            log.info("%s: WebSocket open", self.peer)
        self._take_output()
        for text in endpoint.messages:
            self.decoder.receive_message(text.encode("utf-8"))
        endpoint.messages.clear()
        if endpoint.closing:
            reason = endpoint.closed_reason or "closed"
            if endpoint.is_websocket:
                log.info("%s: WebSocket closing: %s", self.peer, reason)
            self.process(now)  # what arrived before the close is still answered
            Connection.close_after_flush(self, now, reason)
        else:
            self.go_on(now)

    def _take_output(self) -> None:
        out = self.endpoint.data_to_send()
        if out:
            self.send([out])

    def close_after_flush(self, now: float, reason: str) -> None:
        """Say goodbye in WebSocket terms (a close frame with the reason), then close."""
        if self.endpoint.is_websocket and not self.endpoint.closing:
            self.endpoint.close(CLOSE_NORMAL, reason)
            self._take_output()
        super().close_after_flush(now, reason)

    def farewell(self) -> None:
        """The server is stopping: a 1001 close frame after the shutdown notice."""
        if self.endpoint.is_websocket and not self.endpoint.closing:
            self.endpoint.close(CLOSE_GOING_AWAY, "server shutting down")
            self._take_output()
