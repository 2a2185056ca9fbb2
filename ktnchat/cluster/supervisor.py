# `ktnchat server --workers N`: N worker processes sharing one port, supervised.
#
# Rules:
# - The supervisor reserves the port with a bound, non-listening SO_REUSEPORT socket (so
#   `--port 0` works and nobody else takes the port), then starts N workers that listen on
#   it with SO_REUSEPORT; the kernel spreads connections over them.
# - Each worker reports readiness on a pipe; "listening on" is logged once all are ready.
# - A worker that dies is restarted (its users saw a disconnect; the others noticed
#   nothing), with a backoff that grows if it keeps dying. SIGTERM/SIGINT stop every
#   worker cleanly (they tell their clients), then the supervisor exits 0.
# - Workers are the same command with `--workers 1 --port P --reuse-port on` appended.
from __future__ import annotations

import logging
import os
import select
import signal
import socket
import subprocess
import sys
import time
from typing import Dict, List, Optional

log = logging.getLogger("ktnchat.cluster")

READY_SECONDS = 60.0
STOP_SECONDS = 15.0


def reserve_port(host: str, port: int) -> socket.socket:
    """A bound (not listening) SO_REUSEPORT socket holding the port for the workers."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise OSError("this platform has no SO_REUSEPORT: run one process (--workers 1)")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


class Supervisor:
    def __init__(self, argv: List[str], host: str, port: int, workers: int) -> None:
        self.argv = argv
        self.host = host
        self.workers = workers
        self.reserved = reserve_port(host, port)
        self.port = int(self.reserved.getsockname()[1])
        self.children: Dict[int, subprocess.Popen] = {}  # type: ignore[type-arg]
        self.failures: Dict[int, int] = {}
        self.stopping = False

    def _spawn(self, index: int) -> int:
        """Start worker `index`; returns the read end of its readiness pipe."""
        ready_r, ready_w = os.pipe()
        env = dict(os.environ, KTNCHAT_READY_FD=str(ready_w), KTNCHAT_WORKER_INDEX=str(index))
        command = [
            sys.executable,
            "-m",
            "ktnchat",
            "server",
            *self.argv,
            "--workers",
            "1",
            "--port",
            str(self.port),
            "--reuse-port",
            "on",
        ]
        self.children[index] = subprocess.Popen(
            command, env=env, pass_fds=(ready_w,), stdin=subprocess.DEVNULL
        )
        os.close(ready_w)
        return ready_r

    def _await_ready(self, pipes: List[int]) -> bool:
        deadline = time.monotonic() + READY_SECONDS
        pending = list(pipes)
        while pending and time.monotonic() < deadline:
            readable, _, _ = select.select(pending, [], [], 0.5)
            for fd in readable:
                os.read(fd, 16)  # b"1" when ready, b"" if the worker died first
                os.close(fd)
                pending.remove(fd)
        for fd in pending:
            os.close(fd)
        return not pending and all(c.poll() is None for c in self.children.values())

    def run(self) -> int:
        stop: Dict[str, Optional[int]] = {"signal": None}

        def on_signal(signum: int, frame: object) -> None:
            stop["signal"] = signum

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        if not self._await_ready([self._spawn(i) for i in range(self.workers)]):
            log.error("workers did not start; stopping")
            self._stop_all()
            return 1
        log.info("ktnchat listening on %s:%d (%d workers)", self.host, self.port, self.workers)
        restart_at: Dict[int, float] = {}
        while stop["signal"] is None:
            time.sleep(0.2)
            now = time.monotonic()
            for index, child in list(self.children.items()):
                if index in restart_at:
                    if now >= restart_at[index]:
                        del restart_at[index]
                        fd = self._spawn(index)
                        ok = self._await_ready([fd])
                        log.warning("worker %d restarted%s", index, "" if ok else " (not ready)")
                    continue
                code = child.poll()
                if code is not None:
                    self.failures[index] = self.failures.get(index, 0) + 1
                    delay = min(0.5 * 2 ** (self.failures[index] - 1), 30.0)
                    log.warning(
                        "worker %d (pid %d) exited with %s; restarting in %.1f s",
                        index,
                        child.pid,
                        code,
                        delay,
                    )
                    restart_at[index] = now + delay
        log.info(
            "received %s; stopping %d workers", signal.Signals(stop["signal"]).name, self.workers
        )
        return self._stop_all()

    def _stop_all(self) -> int:
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        worst = 0
        for child in self.children.values():
            try:
                code: Optional[int] = child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                code = child.wait(5)
            worst = worst or (code or 0)
        self.reserved.close()
        log.info("ktnchat stopped")
        return 0 if worst in (0, -signal.SIGTERM) else 1


def report_ready() -> None:
    """In a worker: tell the supervisor (if any) that this process is listening."""
    fd = os.environ.get("KTNCHAT_READY_FD")
    if fd is None:
        return
    try:
        os.write(int(fd), b"1")
        os.close(int(fd))
    except OSError:
        pass
    del os.environ["KTNCHAT_READY_FD"]
