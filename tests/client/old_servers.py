# Models of real 2014- and 2015-edition student servers (seed 000) for the client tests: a
# real threaded TCP server on 127.0.0.1 port 0 speaking the 2014 edition, meeting a 2017
# request (a `content` key, no 2014 key) the way the measured servers did: three close the
# connection (at once; with a reset; after writing a Python error as text), one answers an
# object that is not of the 2017 shape, {"response":"protocolError","error":…}. Each holds
# a backlog and sends it in one of the three forms of the login answer's "messages".
# Every frame received is recorded with its connection number; every wait is bounded;
# stop() ends every thread and socket.
from __future__ import annotations

import enum
import json
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from tests.client.harness import WAIT, accepted, frames_received, wait_on

SERVE_SECONDS = 60.0
STAMP = "2014-03-24 12:00:00"  # every message is said at this time
PROTOCOL_ERROR = {"response": "protocolError", "error": "Unknown request format"}
_NAME = re.compile(r"^[A-Za-z0-9_]+$")


class On2017(enum.Enum):
    """What the server does with a 2017-shaped request (it reads only 2014 keys)."""

    CLOSE = "close"  # data["username"] raises KeyError; the handler ends: FIN
    RESET = "reset"  # the same, with SO_LINGER 0: RST
    TRACEBACK = "traceback"  # writes the exception as text, then closes
    PROTOCOL_ERROR = "protocol-error"  # answers PROTOCOL_ERROR, keeps the connection
    PROTOCOL_ERROR_CLOSE = "protocol-error-close"  # answers PROTOCOL_ERROR, then closes
    LOGIN_ERROR = "login-error"  # reads username as null: the seed's login error


class Backlog(enum.Enum):
    """How the login answer's "messages" holds each earlier message."""

    PLAIN = "plain"  # "bob said @ 2014-03-24 12:00:00: hi"
    JSON = "json"  # "{\"response\": \"message\", \"message\": \"bob said @ …: hi\"}"
    OBJECTS = "objects"  # {"response": "message", "message": "bob said @ …: hi"}


@dataclass(frozen=True)
class Model:
    on_2017: On2017
    backlog: Backlog
    close_after_logout: bool = False
    knows_users: bool = True  # answers {"request":"users"} (an extension of some servers)


# The four real servers the client met, as modelled here.
REAL_SERVERS: Dict[str, Model] = {
    "closes at once, plain backlog": Model(On2017.CLOSE, Backlog.PLAIN, close_after_logout=True),
    "resets, JSON-string backlog": Model(On2017.RESET, Backlog.JSON),
    "writes a traceback and closes, object backlog": Model(
        On2017.TRACEBACK, Backlog.OBJECTS, knows_users=False
    ),
    "answers protocolError, JSON-string backlog": Model(On2017.PROTOCOL_ERROR, Backlog.JSON),
}


def said(user: str, text: str) -> str:
    return f"{user} said @ {STAMP}: {text}"


class OldServer:
    """A 2014-edition chat server; `backlog` holds (user, text) said before any login."""

    def __init__(self, model: Model, backlog: Sequence[Tuple[str, str]] = ()) -> None:
        self.model = model
        self.frames: List[Tuple[int, Dict[str, Any]]] = []  # (connection number, request)
        self.connections = 0
        self.cond = threading.Condition()
        self._said = [said(user, text) for user, text in backlog]
        self._users: Dict[socket.socket, str] = {}
        self._socks: List[socket.socket] = []
        self._send_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: List[threading.Thread] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self._start(self._accept)

    # --- for the tests -----------------------------------------------------------------

    def wait_frames(self, count: int) -> List[Tuple[int, Dict[str, Any]]]:
        wait_on(self.cond, lambda: len(self.frames) >= count, lambda: f"{count} in {self.frames!r}")
        with self.cond:
            return list(self.frames)

    def stop(self) -> None:
        self._stop.set()
        with self.cond:
            socks = list(self._socks)
        for sock in socks:
            _close(sock)
        for thread in self._threads:
            thread.join(WAIT)
        self._listener.close()
        assert not any(thread.is_alive() for thread in self._threads)

    # --- serving -----------------------------------------------------------------------

    def _start(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        deadline = time.monotonic() + SERVE_SECONDS
        for conn in accepted(self._listener, self._stop, deadline):
            with self.cond:
                self.connections += 1
                self._socks.append(conn)
                number = self.connections
                self.cond.notify_all()
            self._start(self._serve, conn, number, deadline)

    def _serve(self, conn: socket.socket, number: int, deadline: float) -> None:
        try:
            for frame in frames_received(conn, self._stop, deadline):
                request = json.loads(frame)
                with self.cond:
                    self.frames.append((number, request))
                    self.cond.notify_all()
                if not self._handle(conn, request):
                    return
        finally:
            with self.cond:
                self._users.pop(conn, None)
            _close(conn)

    def _handle(self, conn: socket.socket, request: Dict[str, Any]) -> bool:
        """Answer one request; False when the connection is to be closed."""
        word = request.get("request")
        if "content" in request and "username" not in request and "message" not in request:
            return self._on_2017(conn)
        if word == "login":
            return self._login(conn, request.get("username"))
        if word == "message":
            name = self._users.get(conn)
            if name is None:
                self._send(conn, {"response": "message", "error": "You are not logged in!"})
                return True
            text = said(name, str(request.get("message")))
            with self.cond:
                self._said.append(text)
                targets = list(self._users)
            for target in targets:
                self._send(target, {"response": "message", "message": text})
            return True
        if word == "logout":
            with self.cond:
                name = self._users.pop(conn, None)
            if name is None:
                answer = {"response": "logout", "error": "Not logged in!", "username": None}
                self._send(conn, answer)
                return True
            self._send(conn, {"response": "logout", "username": name})
            return not self.model.close_after_logout
        if word == "users" and self.model.knows_users:
            with self.cond:
                names = sorted(self._users.values())
            self._send(conn, {"response": "users", "users": names})
            return True
        self._send(conn, {"response": "message", "error": f"Unknown request: {word}"})
        return True

    def _on_2017(self, conn: socket.socket) -> bool:
        on = self.model.on_2017
        if on is On2017.RESET:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if on is On2017.TRACEBACK:
            self._send_bytes(conn, b"KeyError: 'username'\n")
            return False
        if on in (On2017.PROTOCOL_ERROR, On2017.PROTOCOL_ERROR_CLOSE):
            self._send(conn, PROTOCOL_ERROR)
            return on is On2017.PROTOCOL_ERROR
        if on is On2017.LOGIN_ERROR:
            return self._login(conn, None)
        return False

    def _login(self, conn: socket.socket, name: Any) -> bool:
        if not isinstance(name, str) or not _NAME.match(name):
            self._send(conn, {"response": "login", "error": "Invalid username!", "username": name})
            return True
        with self.cond:
            taken = name in self._users.values()
            if not taken:
                self._users[conn] = name
            backlog = list(self._said)
        if taken:
            self._send(
                conn, {"response": "login", "error": "Name already taken!", "username": name}
            )
            return True
        entries = [self._entry(text) for text in backlog]
        self._send(conn, {"response": "login", "username": name, "messages": entries})
        return True

    def _entry(self, text: str) -> Any:
        if self.model.backlog is Backlog.PLAIN:
            return text
        obj = {"response": "message", "message": text}
        return json.dumps(obj) if self.model.backlog is Backlog.JSON else obj

    def _send(self, conn: socket.socket, obj: Dict[str, Any]) -> None:
        self._send_bytes(conn, json.dumps(obj).encode())

    def _send_bytes(self, conn: socket.socket, data: bytes) -> None:
        with self._send_lock:
            try:
                conn.sendall(data)
            except OSError:
                pass


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


def first_2014_connection(frames: Sequence[Tuple[int, Dict[str, Any]]]) -> Optional[int]:
    """The number of the first connection that sent a 2014 login."""
    for number, request in frames:
        if request.get("request") == "login" and "username" in request:
            return number
    return None
