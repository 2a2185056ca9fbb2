# The web listener over real loopback sockets: a WebSocket client (wsproto's client side
# on a plain socket) against a real server, beside raw TCP peers of the same chat.
from __future__ import annotations

import json
import logging
import socket
import time
from typing import Any, Dict, List, Optional

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Message,
    Ping,
    Pong,
    RejectConnection,
    Request,
    TextMessage,
)

from tests.helpers import WAIT, Peer, wait_until


class WSPeer:
    """A WebSocket client of the server's web listener; records every event."""

    def __init__(self, address: tuple, origin: Optional[str] = "same") -> None:
        host, port = address
        self.sock = socket.create_connection(address, timeout=WAIT)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.objects: List[Dict[str, Any]] = []
        self.events: List[Any] = []
        self.cursor = 0
        self.eof = False
        extra = []
        if origin == "same":
            extra = [(b"origin", f"http://{host}:{port}".encode())]
        elif origin is not None:
            extra = [(b"origin", origin.encode())]
        self.sock.sendall(
            self.ws.send(Request(host=f"{host}:{port}", target="/ws", extra_headers=extra))
        )
        self.handshake = self.next_event(
            lambda e: isinstance(e, (AcceptConnection, RejectConnection))
        )

    def _pump(self, deadline: float) -> bool:
        if self.eof:
            return False
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except OSError:
            data = b""
        if not data:
            self.eof = True
        self.ws.receive_data(data or None)
        for event in self.ws.events():
            self.events.append(event)
            if isinstance(event, TextMessage):
                self.objects.append(json.loads(event.data))
        return not self.eof

    def next_event(self, predicate: Any, timeout: float = WAIT) -> Any:
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for event in self.events[seen:]:
                if predicate(event):
                    return event
            seen = len(self.events)
            if time.monotonic() > deadline or not self._pump(deadline):
                for event in self.events[seen:]:
                    if predicate(event):
                        return event
                raise AssertionError(f"no such event within {timeout}s: {self.events!r}")

    def send(self, request: str, content: Any = None) -> None:
        self.send_text(json.dumps({"request": request, "content": content}))

    def send_text(self, text: str, finished: bool = True) -> None:
        self.sock.sendall(self.ws.send(Message(data=text, message_finished=finished)))

    def expect(self, predicate: Any, timeout: float = WAIT) -> Dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            while self.cursor < len(self.objects):
                obj = self.objects[self.cursor]
                self.cursor += 1
                if predicate(obj):
                    return obj
            if not self._pump(deadline) and time.monotonic() > deadline:
                raise AssertionError(f"no matching object; got {self.objects!r}")
            if self.eof and self.cursor >= len(self.objects):
                raise AssertionError(f"closed; got {self.objects!r}")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def web(server_factory: Any) -> Any:
    return server_factory(web_port=0, max_frame_bytes=4096)


def test_a_browser_and_a_terminal_chat_in_one_room(web: Any) -> None:
    browser = WSPeer(web.web_address)
    assert isinstance(browser.handshake, AcceptConnection)
    with Peer(web.address, stream=True) as terminal:
        terminal.login("term")
        terminal.send("msg", "before the browser came")
        terminal.expect_response("message", content="before the browser came")
        browser.send("login", "webby")
        login = browser.expect(lambda r: r.get("username") == "webby")
        assert login["response"] == "info" and "stream" in login["features"]
        # A browser parses history: it gets the history response, not replayed messages.
        history = browser.expect(lambda r: r["response"] == "history")
        assert [json.loads(e)["content"] for e in history["content"]] == ["before the browser came"]
        terminal.expect(lambda r: r.get("event") == "join" and r.get("username") == "webby")
        browser.send("msg", "hei fra nettleseren")
        got = terminal.expect_response("message", sender="webby")
        echo = browser.expect(lambda r: r["response"] == "message")
        assert got == echo  # the same object over both transports
        terminal.send("msg", "hei tilbake")
        browser.expect(lambda r: r.get("content") == "hei tilbake" and r["sender"] == "term")
        browser.send("names")
        names = browser.expect(lambda r: "names" in r)
        assert names["names"] == ["term", "webby"]
    browser.close()


def test_fragments_and_pings(web: Any) -> None:
    browser = WSPeer(web.web_address)
    browser.send_text('{"request": "log', finished=False)
    browser.sock.sendall(browser.ws.send(Ping(b"still there?")))
    browser.send_text('in", "content": "frag"}', finished=True)
    pong = browser.next_event(lambda e: isinstance(e, Pong))
    assert pong.payload == b"still there?"
    browser.expect(lambda r: r.get("username") == "frag")
    browser.close()


def test_one_object_per_message_and_bad_json_is_answered(web: Any) -> None:
    browser = WSPeer(web.web_address)
    browser.send_text('{"request": "help"}{"request": "help"}')
    error = browser.expect(lambda r: r["response"] == "error")
    assert "Invalid JSON" in error["content"]
    browser.send_text("not json")
    assert browser.expect(lambda r: r["response"] == "error")["content"].startswith("Invalid JSON")
    browser.send("help")
    assert browser.expect(lambda r: r["response"] == "info")["content"].startswith("Requests")
    browser.close()


def test_binary_frames_close_with_1003(web: Any) -> None:
    browser = WSPeer(web.web_address)
    browser.sock.sendall(browser.ws.send(Message(data=b"\x00\x01\x02")))
    close = browser.next_event(lambda e: isinstance(e, CloseConnection))
    assert close.code == 1003 and "text" in close.reason


def test_oversized_messages_close_with_1009_and_others_are_fine(web: Any) -> None:
    browser = WSPeer(web.web_address)
    with Peer(web.address, stream=True) as terminal:
        terminal.login("calm")
        browser.send_text('{"request": "msg", "content": "' + "x" * 5000 + '"}')
        close = browser.next_event(lambda e: isinstance(e, CloseConnection))
        assert close.code == 1009
        terminal.send("msg", "unbothered")
        terminal.expect_response("message", content="unbothered")


@pytest.mark.parametrize("origin", ["http://evil.example", "null"])
def test_a_foreign_origin_is_refused(web: Any, origin: str) -> None:
    browser = WSPeer(web.web_address, origin=origin)
    assert isinstance(browser.handshake, RejectConnection)
    assert browser.handshake.status_code == 403
    browser.close()


def test_an_allowed_extra_origin_is_let_in(server_factory: Any) -> None:
    server = server_factory(web_port=0, web_origins=("https://chat.example.org",))
    browser = WSPeer(server.web_address, origin="https://chat.example.org")
    assert isinstance(browser.handshake, AcceptConnection)
    browser.close()


def test_a_bad_upgrade_gets_400(web: Any) -> None:
    with socket.create_connection(web.web_address, timeout=WAIT) as sock:
        sock.sendall(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        )
        answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 400")


def test_healthz_and_the_page(web: Any) -> None:
    with socket.create_connection(web.web_address, timeout=WAIT) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200 OK")
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        page = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            page += chunk
        assert b'<script type="module" src="app.js">' in page


def test_shutdown_says_going_away(server_factory: Any) -> None:
    server = server_factory(web_port=0)
    browser = WSPeer(server.web_address)
    browser.send("login", "leaving")
    browser.expect(lambda r: r.get("username") == "leaving")
    server.shutdown()
    browser.expect(lambda r: r.get("event") == "shutdown")
    close = browser.next_event(lambda e: isinstance(e, CloseConnection))
    assert close.code == 1001


def test_a_vanished_browser_frees_its_name(web: Any) -> None:
    browser = WSPeer(web.web_address)
    browser.send("login", "ghost")
    browser.expect(lambda r: r.get("username") == "ghost")
    browser.sock.close()
    wait_until(lambda: web.service.presence.holder("ghost") is None)


def test_a_browser_that_never_reads_is_dropped_and_others_get_everything(
    server_factory: Any, caplog: Any
) -> None:
    """The outbox cap holds for WebSocket readers as on TCP (the fan-out's fast path for
    them stops at the cap), and a browser that reads gets every broadcast, whole, in
    order, beside a TCP reader."""
    server = server_factory(
        web_port=0, pace_interval=0.0, max_outbox_bytes=64 * 1024, send_buffer_bytes=32 * 1024
    )
    caplog.set_level(logging.WARNING, logger="ktnchat.server")
    host, port = server.web_address
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect((host, port))
    handshake = WSConnection(ConnectionType.CLIENT)
    stalled.sendall(handshake.send(Request(host=f"{host}:{port}", target="/ws")))
    stalled.settimeout(WAIT)
    handshake.receive_data(stalled.recv(65536))
    assert any(isinstance(e, AcceptConnection) for e in handshake.events())
    stalled.sendall(handshake.send(Message(data='{"request": "login", "content": "sleepy"}')))
    browser = WSPeer(server.web_address)
    browser.send("login", "webby")
    browser.expect(lambda r: r.get("username") == "webby")
    with Peer(server.address) as alice, Peer(server.address) as bob:
        alice.login("alice")
        bob.login("bob")
        wait_until(lambda: server.service.presence.holder("sleepy") is not None)
        text = "x" * 200
        for i in range(3000):  # ~0.7 MB to every reader: far past the stalled one's buffers
            alice.send_raw(json.dumps({"request": "msg", "content": f"{i} {text}"}).encode())
            if i % 100 == 99:  # only `sleepy` never reads
                alice.expect_response("message", content=f"{i} {text}")
                bob.expect_response("message", content=f"{i} {text}")
                browser.expect(lambda r, i=i: r.get("content") == f"{i} {text}")
        for peer in (bob.received, browser.objects):
            got = [r for r in peer if r.get("response") == "message" and r["sender"] == "alice"]
            assert [int(r["content"].split()[0]) for r in got] == list(range(3000))
        assert [e for e in browser.events if isinstance(e, CloseConnection)] == []
        wait_until(lambda: server.service.presence.holder("sleepy") is None)
    stalled.close()
    browser.close()
    assert any("sleepy" in r.getMessage() and "dropped" in r.getMessage() for r in caplog.records)


def test_a_2014_client_over_websocket_gets_framed_2014_objects(web: Any) -> None:
    # The 2014 edition is detected per connection on every listener; over a WebSocket
    # its objects must still travel one per text message (not raw JSON on the socket).
    old = WSPeer(web.web_address)
    with Peer(web.address, stream=True) as terminal:
        terminal.login("term")
        old.send_text(json.dumps({"request": "login", "username": "oldie"}))
        login = old.expect(lambda r: r.get("response") == "login")
        assert login["username"] == "oldie"
        terminal.send("msg", "to the old client")
        said = old.expect(lambda r: r.get("response") == "message")
        assert "to the old client" in said["message"]
        old.send_text(json.dumps({"request": "message", "message": "from 2014"}))
        terminal.expect_response("message", sender="oldie", content="from 2014")
    assert not [e for e in old.events if type(e).__name__ == "CloseConnection"]
    old.close()
