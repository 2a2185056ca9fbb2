# Shared by the tests/compat tests: finding a Python 2.7 that really runs, running a client
# program as a real subprocess (its output drained by threads from the start, every wait
# bounded, the process always stopped), realistic chat lines, and a streaming peer that
# fills the history.
#
# Rules: no sleeps (waits are for a process, a thread or a response, each with a limit);
# a ClientProcess is killed by stop(), which __exit__ calls, so a failing test leaves none.
from __future__ import annotations

import functools
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, TypeVar

from tests.helpers import Peer

HERE = Path(__file__).parent
PY27_CANDIDATES = ("python2.7", "~/.pyenv/versions/2.7.18/bin/python")
PY27_MISSING = (
    "no working Python 2.7: neither python2.7 on PATH nor ~/.pyenv/versions/2.7.18/bin/python runs"
)
FINISH_SECONDS = 60.0  # the most a test waits for a client process to exit
START_SECONDS = 30.0  # the most a test waits for a held client to be ready (a loaded box)
T = TypeVar("T", bound="ClientProcess")
CHATTER = (
    "hei alle sammen noen som har fått til server klienten min krasjer når to "
    'meldinger kommer samtidig json.loads sier "Extra data" prøv recv(4096) eller '
    "lag en buffer tråden henger på socket login funker men history blir rar "
    "æøå går fint nå takk for hjelpen demo på fredag i P15 KTN2 er ferdig snart"
)


@functools.cache
def find_python27() -> Optional[str]:
    """A Python 2.7 interpreter that really runs (a pyenv shim may exist but not work)."""
    for candidate in PY27_CANDIDATES:
        path = shutil.which(candidate) if "/" not in candidate else os.path.expanduser(candidate)
        if not path or not os.access(path, os.X_OK):
            continue
        try:
            probe = subprocess.run(
                [path, "-c", "import sys; sys.exit(0 if sys.version_info[:2] == (2, 7) else 1)"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=py27_env(),
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return path
    return None


def py27_env() -> Dict[str, str]:
    drop = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYENV_VERSION")
    return {key: value for key, value in os.environ.items() if key not in drop}


def env_for(python: str) -> Dict[str, str]:
    return dict(os.environ) if python == sys.executable else py27_env()


class ClientProcess:
    """One client program as a subprocess; stdout and stderr are read line by line by
    threads from the start. With `hold`, the program (started with --hold) waits for a
    line on stdin before it connects: wait_ready(), then release()."""

    def __init__(
        self,
        python: str,
        program: Path,
        args: Sequence[str],
        label: str = "",
        hold: bool = False,
    ) -> None:
        self.label = label or program.name
        self.argv = [python, str(program), *args, *(["--hold"] if hold else [])]
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE if hold else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env_for(python),
        )
        self._lines: Dict[str, List[bytes]] = {"stdout": [], "stderr": []}
        self._open = 2
        self._cond = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(name,), daemon=True) for name in self._lines
        ]
        for reader in self._readers:
            reader.start()
        self.returncode: Optional[int] = None
        self.stdout = ""
        self.stderr = ""

    def _read(self, name: str) -> None:
        stream = getattr(self.proc, name)
        for line in iter(stream.readline, b""):
            with self._cond:
                self._lines[name].append(line)
                self._cond.notify_all()
        with self._cond:
            self._open -= 1
            self._cond.notify_all()

    def wait_ready(self, timeout: float = START_SECONDS) -> None:
        """Wait (bounded) for the "ready" line of a held program."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not any(b"ready" in line for line in self._lines["stderr"]):
                remaining = deadline - time.monotonic()
                if self._open == 0 or remaining <= 0:
                    raise AssertionError(f"{self.label} never got ready: {self._text('stderr')}")
                self._cond.wait(remaining)

    def release(self) -> None:
        """Let a held program connect."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(b"go\n")
            self.proc.stdin.close()
        except OSError:
            pass  # it has already exited; wait() shows why

    def _text(self, name: str) -> str:
        return b"".join(self._lines[name]).decode("utf-8", "replace")

    def wait(self, timeout: float = FINISH_SECONDS) -> Tuple[int, str, str]:
        """Wait (bounded) for the exit: (status, stdout, stderr). Kills it if too slow."""
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"{self.label} still running after {timeout}s") from None
        for reader in self._readers:
            reader.join(10)
        with self._cond:
            self.stdout, self.stderr = self._text("stdout"), self._text("stderr")
        return self.returncode, self.stdout, self.stderr

    def describe(self) -> str:
        return (
            f"{self.label} exited {self.returncode}\nstderr:\n{self.stderr}\nstdout:\n{self.stdout}"
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        for reader in self._readers:
            reader.join(10)

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def realistic_messages(count: int) -> List[str]:
    """`count` distinct chat lines of 20-120 characters, each starting "#NN " (some
    Norwegian, some quotes)."""
    words = CHATTER.split()
    rng = random.Random(2017)
    lines = []
    for index in range(count):
        target = rng.randint(20, 120)
        line = f"#{index:02d}"
        while True:
            word = rng.choice(words)
            if len(line) + 1 + len(word) > target:
                break
            line += " " + word
        lines.append(line.ljust(20, "!"))
    assert all(20 <= len(line) <= 120 for line in lines)
    return lines


def login(peer: Peer, name: str) -> Dict[str, Any]:
    """Log `peer` in as `name`; the login `info` (whatever earlier messages follow stay
    unread)."""
    peer.send("login", name)
    return peer.expect_response("info", username=name)


def login_peer(address: Tuple[str, int], name: str, stream: bool = True) -> Peer:
    peer = Peer(address, stream=stream)
    try:
        login(peer, name)
    except BaseException:
        peer.close()
        raise
    return peer


def seed_history(peer: Peer, name: str, texts: List[str]) -> None:
    """Send `texts` as chat messages from `peer` (logged in as `name`); wait for each echo."""
    for text in texts:
        peer.send("msg", text)
        peer.expect_response("message", sender=name, content=text)
