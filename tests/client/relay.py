# A recording TCP relay for the client tests: listens on 127.0.0.1 port 0, passes one
# client connection through to a real server and records every byte the server sent, so a
# test can tell which shape of response the client was sent. Real sockets and threads;
# every wait is bounded; stop() ends every thread and socket.
from __future__ import annotations

import socket
import threading
import time
from typing import Any, Callable, List, Tuple

from tests.client.harness import WAIT, accepted, wait_on

SERVE_SECONDS = 60.0


class Relay:
    """Client <-> relay <-> `upstream`; `from_server` holds what the server sent."""

    def __init__(self, upstream: Tuple[str, int]) -> None:
        self.upstream = upstream
        self.from_server = bytearray()
        self.cond = threading.Condition()
        self._stop = threading.Event()
        self._socks: List[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self._threads: List[threading.Thread] = []
        self._start(self._accept)

    def wait_for(self, needle: bytes) -> None:
        wait_on(
            self.cond,
            lambda: needle in self.from_server,
            lambda: f"{needle!r} from the server in {bytes(self.from_server)!r}",
        )

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(WAIT)
        for sock in self._socks:
            sock.close()
        self._listener.close()
        assert not any(thread.is_alive() for thread in self._threads)

    def _start(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        deadline = time.monotonic() + SERVE_SECONDS
        client = next(accepted(self._listener, self._stop, deadline), None)  # one client
        if client is None:
            return
        server = socket.create_connection(self.upstream, timeout=WAIT)
        for sock in (client, server):
            sock.settimeout(0.05)
            self._socks.append(sock)
        self._start(self._pump, client, server, False, deadline)
        self._start(self._pump, server, client, True, deadline)

    def _pump(
        self, source: socket.socket, sink: socket.socket, record: bool, deadline: float
    ) -> None:
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                data = source.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            if not data:
                break
            if record:
                with self.cond:
                    self.from_server += data
                    self.cond.notify_all()
            try:
                sink.sendall(data)
            except OSError:
                break
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass
