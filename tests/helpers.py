# Test helpers: a real ChatServer on a loopback port 0, and a raw-socket Peer that reads
# the server's stream with bounded waits (no sleeps: every wait is for a condition).
from __future__ import annotations

import json
import socket
import time
from dataclasses import replace
from typing import Any, Callable, Dict, Iterator, List, Optional

from ktnchat.protocol import FrameSplitter, parse_json
from ktnchat.server import ChatServer, ServerConfig
from ktnchat.service import ChatService, ServiceConfig
from ktnchat.service.flood import FloodConfig
from ktnchat.storage import Storage, storage_from_url

WAIT = 5.0  # seconds: the most any single expectation waits before failing
NO_FLOOD = ServiceConfig(flood=FloodConfig(enabled=False))


def start_server(
    storage: Optional[Storage] = None,
    service_config: Optional[ServiceConfig] = None,
    admin_secret: Optional[str] = None,
    **server_options: Any,
) -> ChatServer:
    """A started server on 127.0.0.1 with a free port; the caller must shut it down.

    Flood control is off unless `service_config` says otherwise: tests about other things
    send bursts no person would (tests/server/test_moderation_e2e.py turns it on)."""
    config = replace(ServerConfig(host="127.0.0.1", port=0), **server_options)
    if service_config is None:
        service_config = NO_FLOOD
    service = ChatService(
        storage or storage_from_url("memory://"), service_config, admin_secret=admin_secret
    )
    server = ChatServer(service, config)
    server.start()
    return server


class Peer:
    """A raw TCP client that records every object the server sends."""

    def __init__(self, address: tuple, stream: bool = False) -> None:
        self.sock = socket.create_connection(address, timeout=WAIT)
        self.splitter = FrameSplitter(max_frame_bytes=16 * 1024 * 1024)
        self.received: List[Dict[str, Any]] = []
        self.segments: List[bytes] = []
        self.cursor = 0
        self.eof = False
        self.streaming = stream
        if stream:
            self.send("stream", "on")
            self.expect(lambda r: r.get("stream") is True)

    # sending
    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, request: str, content: Any = None) -> None:
        self.sock.sendall(json.dumps({"request": request, "content": content}).encode())

    # receiving
    def _pump(self, deadline: float) -> bool:
        """Read once (until the deadline); False on EOF or timeout."""
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except OSError:
            self.eof = True
            return False
        if not data:
            self.eof = True
            return False
        self.segments.append(data)
        self.splitter.feed(data)
        while True:
            frame = self.splitter.next_frame()
            if frame is None:
                break
            self.received.append(parse_json(frame.data))
        return True

    def expect(
        self, predicate: Callable[[Dict[str, Any]], bool], timeout: float = WAIT
    ) -> Dict[str, Any]:
        """The next unread object matching `predicate` (skipping others); fails on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            while self.cursor < len(self.received):
                obj = self.received[self.cursor]
                self.cursor += 1
                if predicate(obj):
                    return obj
            if not self._pump(deadline):
                raise AssertionError(
                    f"no matching response within {timeout}s (eof={self.eof}); "
                    f"unread: {self.received[self.cursor - 5 :]!r}"
                )

    def expect_response(self, kind: str, timeout: float = WAIT, **fields: Any) -> Dict[str, Any]:
        def matches(obj: Dict[str, Any]) -> bool:
            return obj.get("response") == kind and all(obj.get(k) == v for k, v in fields.items())

        return self.expect(matches, timeout)

    def login(self, name: str) -> List[Dict[str, Any]]:
        """Log in; the earlier messages the login brought, oldest first."""
        self.send("login", name)
        self.send("names")  # a marker: its answer comes after the login's earlier messages
        self.expect_response("info", username=name)
        return self.earlier_messages()

    def earlier_messages(self) -> List[Dict[str, Any]]:
        """The earlier messages up to the answer of a `names` marker already sent, as
        message objects: from `history` responses (a streaming peer; JSON strings, the
        default encoding) or replayed `message` responses marked "history" (a paced one).
        Other objects in between stay unread, in order."""
        found: List[Dict[str, Any]] = []
        start = self.cursor
        deadline = time.monotonic() + WAIT
        index = start
        while True:
            while index < len(self.received):
                obj = self.received[index]
                if obj.get("response") == "info" and "names" in obj:
                    # Read: the earlier messages and the marker; unread: the rest, in order.
                    between = self.received[start:index]
                    taken = [o for o in between if _is_earlier(o)] + [obj]
                    self.received[start : index + 1] = taken + [
                        o for o in between if not _is_earlier(o)
                    ]
                    self.cursor = start + len(taken)
                    return found
                if obj.get("response") == "history":
                    content = obj["content"]
                    found.extend(json.loads(e) if isinstance(e, str) else e for e in content)
                elif _is_earlier(obj):
                    found.append({k: v for k, v in obj.items() if k != "history"})
                index += 1
            if not self._pump(deadline):
                raise AssertionError(
                    f"no names answer after the earlier messages within {WAIT}s "
                    f"(eof={self.eof}); unread: {self.received[start:]!r}"
                )

    def wait_eof(self, timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        while not self.eof:
            if not self._pump(deadline) and not self.eof:
                raise AssertionError("connection still open")

    def unread(self) -> Iterator[Dict[str, Any]]:
        while self.cursor < len(self.received):
            self.cursor += 1
            yield self.received[self.cursor - 1]

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_earlier(obj: Dict[str, Any]) -> bool:
    """A history response, or an earlier message replayed as a `message` response."""
    kind = obj.get("response")
    return kind == "history" or (kind == "message" and obj.get("history") is True)


def wait_until(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    """Poll a condition of the server's state (bounded); fail if it never holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)
