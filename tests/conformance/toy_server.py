# A small threaded KTN server (2017 or 2014 edition) written the way a good student would,
# with switches that each add ONE defect, for testing that the checker reports exactly it.
# Also "hostile" servers: silent, garbage flood, close at once.
#
# Rules: loopback port 0; one thread per connection, all daemon; stop() closes every socket
# and joins every thread (bounded).
from __future__ import annotations

import json
import re
import socket
import threading
import time
from typing import Any, Dict, List, Optional, Set, Tuple

from ktnchat.protocol.framing import FrameSplitter

REPLAYED = 30  # replay-history: the newest messages replayed at login

DEFECTS = (
    "no-echo",  # the sender does not get its own message back
    "names-stay-taken",  # a vanished client's name is freed only by logout
    "dies-on-concat",  # two requests in one segment: the connection is closed
    "hijack",  # a taken name is given to the newcomer
    "numeric-timestamps",  # time.time() instead of a string
    "no-history",  # no history response at login
    "empty-history",  # a history response at login, always [] (no earlier messages)
    "replay-history",  # earlier messages replayed as message responses, no history response
    "underscore-ok",  # 2017: underscores accepted in names
    "error-text",  # 2014: other error texts than the seed's
)


class ToyServer:
    def __init__(self, edition: str = "2017", defects: Set[str] = frozenset(), mode: str = "chat"):
        self.edition = edition
        self.defects = set(defects)
        self.mode = mode  # chat | silent | flood | close
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.listener.settimeout(0.2)
        self.address: Tuple[str, int] = self.listener.getsockname()
        self.users: Dict[str, socket.socket] = {}
        self.history: List[Dict[str, Any]] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.conns: List[socket.socket] = []
        self.threads: List[threading.Thread] = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def stop(self) -> None:
        self.stopping.set()
        self.listener.close()
        with self.lock:
            conns = list(self.conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
        self.acceptor.join(5)
        for thread in list(self.threads):
            thread.join(5)

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.conns.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    # -- one connection ------------------------------------------------------------------

    def _serve(self, conn: socket.socket) -> None:
        if self.mode == "close":
            conn.close()
            return
        if self.mode == "flood":
            chunk = b'{"response": "info", "content": "' + b"x" * 1000 + b'"}' + b"\xff garbage "
            try:
                while not self.stopping.is_set():
                    conn.sendall(chunk)
            except OSError:
                pass
            return
        conn.settimeout(0.2)
        splitter = FrameSplitter()
        me: Optional[str] = None
        try:
            while not self.stopping.is_set():
                try:
                    data = conn.recv(65536)
                except socket.timeout:
                    continue
                if not data or self.mode == "silent":
                    if not data:
                        break
                    continue
                splitter.feed(data)
                frames = []
                while True:
                    frame = splitter.next_frame()
                    if frame is None:
                        break
                    frames.append(frame.data)
                if len(frames) > 1 and "dies-on-concat" in self.defects:
                    break
                for raw in frames:
                    me = self._handle(conn, me, raw)
        except OSError:
            pass
        finally:
            with self.lock:
                kept = "names-stay-taken" in self.defects
                if me is not None and not kept and self.users.get(me) is conn:
                    del self.users[me]
            conn.close()

    def _send(self, conn: socket.socket, obj: Dict[str, Any]) -> None:
        try:
            conn.sendall(json.dumps(obj).encode() + b"\n")
        except OSError:
            pass
        time.sleep(0.02)  # one object per segment, as for naive clients

    def _resp(self, kind: str, content: Any, sender: str = "server") -> Dict[str, Any]:
        stamp: Any = time.time() if "numeric-timestamps" in self.defects else time.strftime("%X")
        return {"timestamp": stamp, "sender": sender, "response": kind, "content": content}

    def _broadcast(self, obj: Dict[str, Any], sender_conn: socket.socket) -> None:
        with self.lock:
            targets = list(self.users.values())
        for target in targets:
            if target is sender_conn and "no-echo" in self.defects:
                continue
            self._send(target, obj)

    def _handle(self, conn: socket.socket, me: Optional[str], raw: bytes) -> Optional[str]:
        try:
            req = json.loads(raw)
            word = req["request"]
        except (ValueError, KeyError, TypeError):
            if self.edition == "2017":
                self._send(conn, self._resp("error", "Invalid request"))
            return me
        if self.edition == "2014":
            return self._handle14(conn, me, req)
        content = req.get("content")
        if word == "help":
            self._send(conn, self._resp("info", "login <name>, logout, msg <text>, names, help"))
        elif word == "login":
            allowed = r"[A-Za-z0-9_]+" if "underscore-ok" in self.defects else r"[A-Za-z0-9]+"
            if me is not None:
                self._send(conn, self._resp("error", f"Already logged in as {me}"))
            elif not isinstance(content, str) or not re.fullmatch(allowed, content):
                self._send(conn, self._resp("error", "Invalid username"))
            else:
                with self.lock:
                    taken = content in self.users and "hijack" not in self.defects
                    if not taken:
                        self.users[content] = conn
                if taken:
                    self._send(conn, self._resp("error", "Username taken"))
                    return me
                self._send(conn, self._resp("info", "Login successful"))
                with self.lock:
                    history = list(self.history)
                if "replay-history" in self.defects:
                    for message in history[-REPLAYED:]:
                        self._send(conn, {**message, "history": True})
                elif "empty-history" in self.defects:
                    self._send(conn, self._resp("history", []))
                elif "no-history" not in self.defects:
                    items = [json.dumps(m) for m in history]
                    self._send(conn, self._resp("history", items))
                return content
        elif me is None:
            self._send(conn, self._resp("error", "Not logged in"))
        elif word == "msg":
            message = self._resp("message", content, me)
            with self.lock:
                self.history.append(message)
            self._broadcast(message, conn)
        elif word == "names":
            with self.lock:
                names = ", ".join(self.users)
            self._send(conn, self._resp("info", names))
        elif word == "logout":
            with self.lock:
                self.users.pop(me, None)
            self._send(conn, self._resp("info", "Logged out"))
            return None
        else:
            self._send(conn, self._resp("error", f"Unknown request {word}"))
        return me

    def _handle14(
        self, conn: socket.socket, me: Optional[str], req: Dict[str, Any]
    ) -> Optional[str]:
        word = req["request"]
        bad = "error-text" in self.defects
        if word == "login":
            name = req.get("username")
            if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_]+", name):
                error = "bad name" if bad else "Invalid username!"
                self._send(conn, {"response": "login", "error": error, "username": name})
                return me
            with self.lock:
                taken = name in self.users and "hijack" not in self.defects
                if not taken:
                    self.users[name] = conn
                    backlog = list(self.history)
            if taken:
                error = "taken" if bad else "Name already taken!"
                self._send(conn, {"response": "login", "error": error, "username": name})
                return me
            self._send(conn, {"response": "login", "username": name, "messages": backlog})
            return name
        if word == "message":
            if me is None:
                self._send(conn, {"response": "message", "error": "You are not logged in!"})
                return me
            with self.lock:
                self.history.append(req.get("message"))
            self._broadcast({"response": "message", "message": req.get("message")}, conn)
            return me
        if word == "logout":
            if me is None:
                self._send(
                    conn, {"response": "logout", "error": "Not logged in!", "username": None}
                )
                return me
            with self.lock:
                self.users.pop(me, None)
            self._send(conn, {"response": "logout", "username": me})
            return None
        return me
