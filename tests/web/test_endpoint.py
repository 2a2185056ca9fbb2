# The web endpoint without sockets: HTTP answers, the WebSocket upgrade and its checks,
# and WebSocket framing (fragments, ping, binary, oversized), driven by wsproto's own
# client side so every frame is one a real client would send.
from __future__ import annotations

from typing import List, Tuple

import h11
import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Message,
    Ping,
    Pong,
    Request,
    TextMessage,
)

from ktnchat.web.endpoint import WebEndpoint, WebSettings
from ktnchat.web.static import load_static_files

HOST = "127.0.0.1:8080"


def settings(**options: object) -> WebSettings:
    return WebSettings(files=load_static_files(), **options)  # type: ignore[arg-type]


def http_get(endpoint: WebEndpoint, target: str, method: str = "GET") -> Tuple[int, dict, bytes]:
    client = h11.Connection(h11.CLIENT)
    wire = client.send(h11.Request(method=method, target=target, headers=[("Host", HOST)]))
    wire += client.send(h11.EndOfMessage())
    endpoint.receive_data(wire)
    client.receive_data(endpoint.data_to_send())
    response = client.next_event()
    assert isinstance(response, h11.Response)
    body = b""
    while True:
        event = client.next_event()
        if isinstance(event, h11.Data):
            body += event.data
        else:
            break
    return response.status_code, dict(response.headers), body


def open_ws(endpoint: WebEndpoint, origin: str = f"http://{HOST}") -> WSConnection:
    client = WSConnection(ConnectionType.CLIENT)
    extra = [(b"origin", origin.encode())] if origin else []
    endpoint.receive_data(client.send(Request(host=HOST, target="/ws", extra_headers=extra)))
    client.receive_data(endpoint.data_to_send())
    assert any(isinstance(e, AcceptConnection) for e in client.events())
    assert endpoint.is_websocket
    return client


def replies(client: WSConnection, endpoint: WebEndpoint) -> List[object]:
    client.receive_data(endpoint.data_to_send())
    return list(client.events())


def test_serves_the_client_and_health() -> None:
    endpoint = WebEndpoint(settings())
    status, headers, body = http_get(endpoint, "/")
    assert status == 200 and b"<script type=\"module\" src=\"app.js\">" in body
    assert b"default-src 'self'" in headers[b"content-security-policy"]
    status, headers, body = http_get(endpoint, "/app.js")  # same connection: keep-alive
    assert status == 200 and headers[b"content-type"].startswith(b"text/javascript")
    assert http_get(endpoint, "/healthz")[0] == 200
    assert http_get(endpoint, "/nope")[0] == 404
    assert http_get(endpoint, "/", method="POST")[0] == 405
    assert http_get(endpoint, "/ws")[0] == 426
    assert not endpoint.closing


def test_garbage_gets_a_400_and_a_close() -> None:
    endpoint = WebEndpoint(settings())
    endpoint.receive_data(b"\x16\x03\x01\x00\xa5 not http at all\r\n\r\n")
    assert endpoint.data_to_send().startswith(b"HTTP/1.1 400")
    assert endpoint.closing


def test_an_upgrade_without_a_key_is_refused() -> None:
    endpoint = WebEndpoint(settings())
    endpoint.receive_data(
        b"GET /ws HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\n\r\n"
    )
    assert endpoint.data_to_send().startswith(b"HTTP/1.1 400")
    assert endpoint.closing and not endpoint.is_websocket


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (f"http://{HOST}", True),
        ("", True),  # not a browser
        ("https://chat.example.org", True),  # --web-origin
        ("http://evil.example", False),
        ("http://127.0.0.1:9999", False),  # same host, other port: another origin
    ],
)
def test_origin_check(origin: str, allowed: bool) -> None:
    endpoint = WebEndpoint(settings(origins=frozenset({"https://chat.example.org"})))
    client = WSConnection(ConnectionType.CLIENT)
    extra = [(b"origin", origin.encode())] if origin else []
    endpoint.receive_data(client.send(Request(host=HOST, target="/ws", extra_headers=extra)))
    out = endpoint.data_to_send()
    if allowed:
        assert out.startswith(b"HTTP/1.1 101") and endpoint.is_websocket
    else:
        assert out.startswith(b"HTTP/1.1 403") and endpoint.closing
        assert not endpoint.is_websocket


def test_fragmented_text_is_one_request_and_ping_is_answered() -> None:
    endpoint = WebEndpoint(settings())
    client = open_ws(endpoint)
    wire = client.send(Message(data='{"request": "lo', message_finished=False))
    wire += client.send(Ping(b"are you there"))  # a control frame between fragments
    wire += client.send(Message(data='gin", "content": "alice"}', message_finished=True))
    for i in range(len(wire)):  # byte by byte: framing must not care where reads split
        endpoint.receive_data(wire[i : i + 1])
    assert endpoint.messages == ['{"request": "login", "content": "alice"}']
    [pong] = [e for e in replies(client, endpoint) if isinstance(e, Pong)]
    assert pong.payload == b"are you there"


def test_outgoing_text_is_one_message_per_object() -> None:
    endpoint = WebEndpoint(settings())
    client = open_ws(endpoint)
    wire = endpoint.frame_text('{"response": "info"}') + endpoint.frame_text('{"b": 1}')
    client.receive_data(wire)
    texts = [e.data for e in client.events() if isinstance(e, TextMessage)]
    assert texts == ['{"response": "info"}', '{"b": 1}']


def test_binary_frames_are_refused_with_a_reason() -> None:
    endpoint = WebEndpoint(settings())
    client = open_ws(endpoint)
    endpoint.receive_data(client.send(Message(data=b"\x00\x01binary")))
    [close] = [e for e in replies(client, endpoint) if isinstance(e, CloseConnection)]
    assert close.code == 1003 and "text" in close.reason
    assert endpoint.closing and endpoint.messages == []


def test_an_oversized_message_closes_with_1009() -> None:
    endpoint = WebEndpoint(settings(max_message_bytes=1000))
    client = open_ws(endpoint)
    endpoint.receive_data(client.send(Message(data="x" * 600, message_finished=False)))
    assert not endpoint.closing
    endpoint.receive_data(client.send(Message(data="y" * 600, message_finished=True)))
    [close] = [e for e in replies(client, endpoint) if isinstance(e, CloseConnection)]
    assert close.code == 1009 and endpoint.messages == []


def test_a_client_close_is_answered() -> None:
    endpoint = WebEndpoint(settings())
    client = open_ws(endpoint)
    endpoint.receive_data(client.send(CloseConnection(code=1000, reason="bye")))
    [close] = [e for e in replies(client, endpoint) if isinstance(e, CloseConnection)]
    assert close.code == 1000 and endpoint.closing


def test_invalid_frames_close_with_a_protocol_error() -> None:
    endpoint = WebEndpoint(settings())
    open_ws(endpoint)
    endpoint.receive_data(b"\x81\x05hello")  # unmasked client frame: not allowed
    out = endpoint.data_to_send()
    assert out[:1] == b"\x88" and int.from_bytes(out[2:4], "big") == 1002
    assert endpoint.closing
